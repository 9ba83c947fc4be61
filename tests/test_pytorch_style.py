"""The PyTorch-style examples (examples/pytorch_style/) run unchanged on tinygrad_cnn and on PyTorch, and started
from the same weights on the same batches, their losses match PyTorch's.

Each script is imported twice, once per framework (its import block reads FRAMEWORK), and its own Net, train
and test functions are driven on identical data; dropout is set to p=0 in both, since the two frameworks draw
different masks.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tinygrad_cnn  # noqa: E402
from tinygrad_cnn.data import mnist as mnist_files  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "pytorch_style"


def load(name: str, framework: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import examples/pytorch_style/<name>.py with FRAMEWORK=<framework> (empty: tinygrad_cnn)."""
    monkeypatch.setenv("FRAMEWORK", framework)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(f"example_{name}_{framework or 'tinygrad_cnn'}",
                                                  EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def both(name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, ModuleType]:
    """(our module, PyTorch's module) of the example."""
    theirs = load(name, "torch", monkeypatch)
    return load(name, "", monkeypatch), theirs


def paired_models(name: str, model_class: str, monkeypatch: pytest.MonkeyPatch) -> list[tuple[ModuleType, Any]]:
    """[(our module, our model), (PyTorch's module, its model)]: the example's model class in both frameworks,
    ours given PyTorch's initial weights and buffers, and dropout turned off in both."""
    ours, theirs = both(name, monkeypatch)
    torch.manual_seed(0)
    their_model = getattr(theirs, model_class)()
    our_model = getattr(ours, model_class)()
    our_model.load_state_dict({k: ours.torch.from_numpy(v.detach().numpy().copy())
                               for k, v in their_model.state_dict().items()})
    for model, dropout in ((our_model, ours.nn.Dropout), (their_model, torch.nn.Dropout)):
        for m in model.modules():
            if isinstance(m, dropout):
                m.p = 0.0
    return [(ours, our_model), (theirs, their_model)]


def assert_runs_match(our_run: tuple[Any, ...], their_run: tuple[Any, ...]) -> None:
    """Each run is (per-batch losses, further results); PyTorch's losses must fall (so that the comparison is
    not of a flat line) and ours must equal them."""
    assert their_run[0][-1] < 0.9 * their_run[0][0]
    for ours, theirs in zip(our_run, their_run, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_mnist_example_matches_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 96)
    x = (rng.standard_normal((10, 1, 28, 28))[y] + rng.standard_normal((96, 1, 28, 28))).astype(np.float32)
    args = SimpleNamespace(log_interval=100, dry_run=False)
    runs = []
    for m, model in paired_models("mnist", "Net", monkeypatch):
        dataset = m.torch.utils.data.TensorDataset(m.torch.from_numpy(x), m.torch.from_numpy(y))
        loader = m.torch.utils.data.DataLoader(dataset, batch_size=32)
        optimizer = m.optim.Adadelta(model.parameters(), lr=1.0)
        scheduler = m.StepLR(optimizer, step_size=1, gamma=0.7)
        losses = []
        for epoch in (1, 2):
            losses += m.train(args, model, m.torch.device("cpu"), loader, optimizer, epoch)
            scheduler.step()
        runs.append((losses, m.test(model, m.torch.device("cpu"), loader)))
    assert_runs_match(*runs)


def test_cifar_style_example_matches_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    templates = rng.standard_normal((10, 3, 32, 32)).astype(np.float32)
    noise = rng.standard_normal((128, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, 128)
    runs = []
    for m, model in paired_models("cifar_style", "SmallNet", monkeypatch):
        dataset = m.SyntheticImages(4)  # the custom Dataset, given the same data in both frameworks
        dataset.templates, dataset.noise, dataset.labels = (m.torch.from_numpy(a) for a in (templates, noise, labels))
        loader = m.DataLoader(dataset, batch_size=32)
        criterion = m.nn.CrossEntropyLoss(label_smoothing=0.1)
        optimizer = m.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        scheduler = m.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=3 * len(loader))
        losses = [loss for _ in range(3) for loss in m.train_epoch(model, loader, criterion, optimizer, scheduler,
                                                                    max_norm=0.5)]
        bn = model.features[0][1]
        runs.append((losses, m.evaluate(model, loader, criterion), bn.running_mean.numpy().copy(),
                     bn.running_var.numpy().copy()))
    assert_runs_match(*runs)


def run(script: str, framework: str, args: list[str], cwd: Path) -> str:
    env = {**os.environ, "FRAMEWORK": framework}
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("framework", ["", "torch"])
def test_cifar_style_script_runs(framework: str, tmp_path: Path) -> None:
    out = run("cifar_style.py", framework, ["--samples", "160", "--epochs", "2"], tmp_path)
    assert "epoch 2: train loss" in out


@pytest.mark.parametrize("framework", ["", "torch"])
def test_mnist_script_runs_and_saves(framework: str, tmp_path: Path) -> None:
    data = os.environ.get(mnist_files.ENV_VAR, "")
    if not data or not mnist_files.has_idx_files(data, mnist_files.MNIST_FILES):
        pytest.skip(f"set {mnist_files.ENV_VAR} to a directory with the MNIST files")
    out = run("mnist.py", framework, ["--dry-run", "--epochs", "1", "--save-model", "--data", str(tmp_path)],
              tmp_path)
    assert "Test set: Average loss" in out and "Accuracy: " in out
    if not framework:
        state = tinygrad_cnn.load(tmp_path / "mnist_cnn.pt")
        assert state["conv1.weight"].shape == (32, 1, 3, 3) and state["fc2.bias"].shape == (10,)
