"""Tests for tinygrad_cnn.app.training, metrics and perf: the loop, evaluation, checkpoints and resuming."""

from __future__ import annotations

import csv
import dataclasses
import gc
import json
import os
import platform
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn import Tensor
from tinygrad_cnn.app import training
from tinygrad_cnn.app.metrics import accuracy, confusion_matrix
from tinygrad_cnn.data import load_mnist, normalize
from tinygrad_cnn.models import lenet5
from tinygrad_cnn.nn import Module
from tinygrad_cnn.optim import Optimizer
from tinygrad_cnn.rng import manual_seed
from tinygrad_cnn.runtime import memory as perf
from tinygrad_cnn.serialization import CheckpointError, load, save

# The spec of the metrics files, written out here rather than read from the code under test.
EXPECTED_COLUMNS = ["epoch", "train_loss", "test_loss", "test_accuracy", "seconds", "images_per_second"]


def synthetic_mnist(n_train: int = 256, n_test: int = 100, seed: int = 0) -> training.MNISTArrays:
    """Random uint8 'digits' whose class is written into their brightness, so a model can learn a little."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 10, n)
        x = rng.integers(0, 100, (n, 28, 28)) + 15 * y[:, None, None]
        return x.astype(np.uint8), y.astype(np.int64)

    return (*split(n_train), *split(n_test))


def quick_config(**overrides: object) -> training.TrainConfig:
    return training.TrainConfig(**{"epochs": 2, "batch_size": 32, "limit_test": 100, **overrides})


def run_quietly(config: training.TrainConfig, data: training.MNISTArrays, out: Path,
                resume_from: training.Checkpoint | None = None, processes: int = 1) -> training.TrainResult:
    return training.train(config, data, out, resume_from, progress=False, log=lambda line: None,
                          processes=processes)


@pytest.fixture(scope="module")
def mnist() -> training.MNISTArrays:
    if not os.environ.get("TINYGRAD_CNN_DATA") or not Path(os.environ["TINYGRAD_CNN_DATA"]).is_dir():
        pytest.skip("real MNIST needed: set TINYGRAD_CNN_DATA to its directory")
    return load_mnist(os.environ["TINYGRAD_CNN_DATA"])


def torch_lenet(state_dict: dict[str, np.ndarray]):
    """PyTorch's LeNet-5 with the same layers (an independent oracle), loaded with `state_dict`."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84),
                          nn.ReLU(), nn.Linear(84, 10))
    index = {"conv1": 0, "conv2": 3, "fc1": 7, "fc2": 9, "fc3": 11}
    model.load_state_dict({f"{index[k.split('.')[0]]}.{k.split('.')[1]}": torch.from_numpy(np.asarray(v))
                           for k, v in state_dict.items()})
    return model


# ---- metrics -------------------------------------------------------------------------------------
def test_accuracy_of_class_predictions_and_of_logits() -> None:
    targets = np.array([0, 1, 2, 2, 1])
    assert accuracy(np.array([0, 1, 1, 2, 0]), targets) == 3 / 5
    logits = np.array([[5.0, 1, 0], [0, 2, 1], [0, 3, 1], [0, 0, 1], [9, 0, 0]])  # argmax 0, 1, 1, 2, 0
    assert accuracy(logits, targets) == 3 / 5
    assert accuracy(Tensor(logits), Tensor(targets)) == 3 / 5


def test_confusion_matrix_by_hand() -> None:
    preds = np.array([0, 1, 1, 2, 0, 2, 2])
    targets = np.array([0, 1, 2, 2, 1, 2, 0])
    # rows = true class: class 0 -> predicted 0 once, 2 once; class 1 -> 1 once, 0 once; class 2 -> 1 once, 2 twice
    expected = np.array([[1, 0, 1], [1, 1, 0], [0, 1, 2]])
    matrix = confusion_matrix(preds, targets, 3)
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.shape == (3, 3) and matrix.dtype.kind == "i"
    np.testing.assert_array_equal(confusion_matrix(preds, targets, 4)[:3, :3], expected)


@pytest.mark.parametrize("call, message", [
    (lambda: accuracy(np.array([0, 1]), np.array([0, 1, 2])), "2 predictions for 3 targets"),
    (lambda: accuracy(np.array([0.5, 1.0]), np.array([0, 1])), "integer class indices"),
    (lambda: confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3), r"preds must be in \[0, 3\), got \[3\]"),
    (lambda: confusion_matrix(np.array([0, 1]), np.array([-1, 1]), 3), r"targets must be in \[0, 3\)"),
    (lambda: confusion_matrix(np.array([0, 1]), np.array([0]), 3), r"shape \(2,\) but targets has shape \(1,\)"),
])
def test_metrics_reject_bad_input(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# ---- perf ----------------------------------------------------------------------------------------
def test_tune_malloc_only_where_glibc_and_never_on_import(monkeypatch: pytest.MonkeyPatch) -> None:
    is_glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert perf.tune_malloc() is is_glibc
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    assert perf.tune_malloc() is False
    # Importing must not pull either lever: record every mallopt call and the GC's frozen count.
    code = ("import ctypes, gc, sys; calls = []; real = ctypes.CDLL\n"
            "class Spy:\n    def __init__(self, *a, **k): self.lib = real(*a, **k)\n"
            "    def __getattr__(self, name):\n        if name == 'mallopt': calls.append(name)\n"
            "        return getattr(self.lib, name)\n"
            "ctypes.CDLL = Spy\n"
            "import tinygrad_cnn, tinygrad_cnn.app.training, tinygrad_cnn.optim, tinygrad_cnn.data\n"
            "print(calls, gc.get_freeze_count())")
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "[] 0"


# ---- evaluation ----------------------------------------------------------------------------------
def test_evaluate_matches_pytorch_in_batches_that_do_not_divide_the_set() -> None:
    torch = pytest.importorskip("torch")
    manual_seed(3)
    model = lenet5()
    _, _, x, y = synthetic_mnist(n_test=23)
    x = normalize(x)
    result = training.evaluate(model, x, y, batch_size=10)

    ref = torch_lenet(model.state_dict())
    with torch.no_grad():
        logits = ref(torch.from_numpy(x))
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y)).item()
    np.testing.assert_array_equal(result.predictions, logits.argmax(1).numpy())
    assert result.accuracy == pytest.approx(float((logits.argmax(1).numpy() == y).mean()))
    assert result.loss == pytest.approx(loss, rel=1e-5)
    assert model.training, "evaluate must put the model back into training mode"


# ---- configs -------------------------------------------------------------------------------------
def test_resolve_config_fills_from_the_checkpoint_and_refuses_contradictions() -> None:
    saved = training.TrainConfig(epochs=2, lr=0.01, optimizer="sgd", limit_train=500)
    none = dict.fromkeys(["epochs", "lr", "optimizer", "limit_train", "limit_test"])
    assert training.resolve_config(none, saved) == saved
    assert training.resolve_config({**none, "epochs": 5, "lr": 0.01}, saved) == training.TrainConfig(
        epochs=5, lr=0.01, optimizer="sgd", limit_train=500)
    with pytest.raises(training.ResumeError, match=r"lr=0\.02 \(the checkpoint has 0\.01\)"):
        training.resolve_config({**none, "lr": 0.02}, saved)
    assert training.resolve_config({**none, "lr": 0.5}) == training.TrainConfig(lr=0.5)


@pytest.mark.parametrize("field, value", [("epochs", 0), ("batch_size", 0), ("lr", 0.0), ("lr", -1.0),
                                          ("optimizer", "rmsprop"), ("limit_train", 0), ("momentum", 1.0)])
def test_train_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"{field}={value!r}"):
        training.TrainConfig(**{field: value})


# ---- training, checkpoints, resuming -------------------------------------------------------------
def test_one_process_trains_with_loss_backward_and_no_data_parallel(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """With one process the step is zero_grad, backward, step; DataParallel only comes in with more."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("DataParallel used by a one-process run")

    monkeypatch.setattr(training, "DataParallel", refuse)
    backward_calls = []
    real_backward = Tensor.backward
    monkeypatch.setattr(Tensor, "backward", lambda self, *a, **k: backward_calls.append(1) or real_backward(
        self, *a, **k))
    result = run_quietly(quick_config(epochs=1), synthetic_mnist(), tmp_path)
    assert len(result.history) == 1 and len(backward_calls) == 256 // 32
    with pytest.raises(AssertionError, match="DataParallel used"):
        run_quietly(quick_config(epochs=1), synthetic_mnist(), tmp_path / "two", processes=2)


def test_each_step_runs_with_the_collector_paused_and_restores_it(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    enabled_in_step = []
    real_step = training.train_step
    monkeypatch.setattr(training, "train_step", lambda *args: enabled_in_step.append(gc.isenabled()) or real_step(
        *args))
    assert gc.isenabled()
    run_quietly(quick_config(epochs=1), synthetic_mnist(), tmp_path)
    assert enabled_in_step == [False] * (256 // 32) and gc.isenabled()
    gc.disable()
    try:
        with perf.gc_paused():
            pass
        assert not gc.isenabled(), "gc_paused must leave a disabled collector disabled"
    finally:
        gc.enable()


def test_short_run_on_real_mnist_learns(mnist: training.MNISTArrays, tmp_path: Path) -> None:
    # 2 epochs of 4000 images in batches of 32: 250 steps. Measured 90.4 % (seeds 0-2: 90-93 %).
    config = training.TrainConfig(epochs=2, batch_size=32, lr=1e-3, lr_decay=1.0, limit_train=4000, limit_test=1000)
    result = run_quietly(config, mnist, tmp_path)
    assert result.history[-1]["test_accuracy"] >= 0.85
    assert result.history[1]["train_loss"] < result.history[0]["train_loss"]


@pytest.mark.parametrize(("optimizer", "processes"), [("sgd", 1), ("adam", 1), ("adam", 2)])
def test_resume_ends_bit_identical_to_an_uninterrupted_run(optimizer: str, processes: int, tmp_path: Path) -> None:
    data = synthetic_mnist()
    config = quick_config(optimizer=optimizer, lr=0.01, seed=7)
    straight = run_quietly(config, data, tmp_path / "straight", processes=processes)

    run_quietly(dataclasses.replace(config, epochs=1), data, tmp_path / "resumed", processes=processes)
    checkpoint = training.load_checkpoint(tmp_path / "resumed" / training.CHECKPOINT_FILE)
    assert checkpoint.epoch == 1
    # the optimizer's state is in the checkpoint: after 8 steps (256 images / 32) every parameter has some
    steps = 256 // 32
    state = checkpoint.optimizer["state"]
    assert len(state) == len(list(straight.model.parameters()))
    if optimizer == "adam":
        assert all(s["step"] == steps and np.any(s["exp_avg"]) for s in state.values())
    else:
        assert all(np.any(s["momentum_buffer"]) for s in state.values())
    resumed = run_quietly(config, data, tmp_path / "resumed", resume_from=checkpoint, processes=processes)

    for (name, p), q in zip(straight.model.named_parameters(), resumed.model.parameters()):
        assert np.array_equal(p.data, q.data), f"{name} differs after resuming"
    for key in ("train_loss", "test_loss", "test_accuracy"):
        assert [r[key] for r in resumed.history] == [r[key] for r in straight.history]
    final = training.load_checkpoint(tmp_path / "resumed" / training.CHECKPOINT_FILE)
    reference = training.load_checkpoint(tmp_path / "straight" / training.CHECKPOINT_FILE)
    for i, s in reference.optimizer["state"].items():
        for key, value in s.items():
            assert np.array_equal(final.optimizer["state"][i][key], value)


def test_resume_with_dropout_on_two_processes_draws_what_the_uninterrupted_run_drew(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers' dropout generators are seeded at each epoch's fork from the library RNG, which the
    checkpoint holds: a resumed run must end with the same weights as an uninterrupted one."""
    from tinygrad_cnn import nn

    def lenet5_with_dropout() -> Module:
        model = lenet5()
        return nn.Sequential(*[layer for _, layer in model.named_children()][:-1], nn.Dropout(0.3),
                             model.fc3)

    monkeypatch.setattr(training, "lenet5", lenet5_with_dropout)
    data = synthetic_mnist()
    config = quick_config(lr=0.01, seed=4)
    straight = run_quietly(config, data, tmp_path / "straight", processes=2)
    run_quietly(dataclasses.replace(config, epochs=1), data, tmp_path / "resumed", processes=2)
    checkpoint = training.load_checkpoint(tmp_path / "resumed" / training.CHECKPOINT_FILE)
    resumed = run_quietly(config, data, tmp_path / "resumed", resume_from=checkpoint, processes=2)
    for p, q in zip(straight.model.parameters(), resumed.model.parameters()):
        assert np.array_equal(p.data, q.data)


def test_two_processes_train_the_same_model_as_one(tmp_path: Path) -> None:
    """Data parallelism only regroups the gradient's sums: after 16 Adam steps the runs still agree closely."""
    data = synthetic_mnist()
    config = quick_config(lr=0.01, seed=3)
    one, two = (run_quietly(config, data, tmp_path / str(n), processes=n) for n in (1, 2))
    for p, q in zip(one.model.parameters(), two.model.parameters()):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-3, atol=1e-5)
    for a, b in zip(one.history, two.history):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
        assert b["test_accuracy"] == a["test_accuracy"]


def test_metrics_files_have_the_columns_and_agree_with_the_checkpoint(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    data = synthetic_mnist()
    result = run_quietly(quick_config(), data, tmp_path)
    with open(tmp_path / training.METRICS_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == EXPECTED_COLUMNS
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    document = json.loads((tmp_path / training.METRICS_JSON).read_text())
    assert document["config"]["epochs"] == 2 and document["config"]["optimizer"] == "adam"
    assert [list(r) for r in document["epochs"]] == [EXPECTED_COLUMNS] * 2
    for row, entry in zip(rows, document["epochs"]):
        assert all(float(row[c]) == pytest.approx(entry[c], rel=1e-12) for c in EXPECTED_COLUMNS)
    assert (tmp_path / training.PLOT_FILE).read_bytes().startswith(b"\x89PNG") and result.plotted

    # The last epoch's test accuracy, recomputed with PyTorch from the checkpoint's weights.
    weights = load(tmp_path / training.CHECKPOINT_FILE)["model"]
    with torch.no_grad():
        logits = torch_lenet(weights)(torch.from_numpy(normalize(data[2][:100])))
    predictions, y = logits.argmax(1).numpy(), data[3][:100]
    assert document["epochs"][-1]["test_accuracy"] == float(np.mean(predictions == y))


def test_missing_matplotlib_skips_the_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # makes `import matplotlib.figure` fail
    result = run_quietly(quick_config(epochs=1), synthetic_mnist(), tmp_path)
    assert not result.plotted and not (tmp_path / training.PLOT_FILE).exists()
    assert (tmp_path / training.METRICS_CSV).exists()


class SigintAtStep:
    """Wraps make_optimizer so that the optimizer sends this process SIGINT (Ctrl-C) before its `at`-th step.

    The signal goes to the main thread with `signal.pthread_kill`, which runs the Python handler before it
    returns: the loop sees the request at its very next check, whatever the machine's load. (`os.kill` to the
    process leaves the handler to run whenever the main thread next checks for signals, possibly after the
    epoch ended: the test then flaked on a busy machine.) `handled` records that the handler had run.
    """

    def __init__(self, at: int) -> None:
        self.at, self.count, self.handled = at, 0, False
        self.make_optimizer = training.make_optimizer

    def __call__(self, config: training.TrainConfig, model: Module) -> Optimizer:
        optimizer = self.make_optimizer(config, model)
        step = optimizer.step

        def step_then_maybe_interrupt() -> None:
            self.count += 1
            if self.count == self.at:
                handler = signal.getsignal(signal.SIGINT)
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                self.handled = signal.getsignal(signal.SIGINT) is not handler  # the first Ctrl-C restores it
            step()

        optimizer.step = step_then_maybe_interrupt
        return optimizer


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name == "nt", reason="needs POSIX signals")
@pytest.mark.parametrize("processes", [1, 2])
def test_ctrl_c_mid_epoch_keeps_the_last_epoch_and_resumes_bit_identically(
        processes: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = synthetic_mnist()
    config = quick_config(epochs=3, seed=1)
    straight = run_quietly(config, data, tmp_path / "straight", processes=processes)

    # 8 steps per epoch: Ctrl-C at step 12 is in the middle of epoch 2
    sigint = SigintAtStep(12)
    monkeypatch.setattr(training, "make_optimizer", sigint)
    interrupted = run_quietly(config, data, tmp_path / "run", processes=processes)
    monkeypatch.undo()
    assert sigint.handled and sigint.count == 12, "the loop must stop right after the step that saw Ctrl-C"
    assert interrupted.interrupted and len(interrupted.history) == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "the SIGINT handler must be restored"
    checkpoint = training.load_checkpoint(tmp_path / "run" / training.CHECKPOINT_FILE)
    assert checkpoint.epoch == 1
    with open(tmp_path / "run" / training.METRICS_CSV, newline="") as f:
        assert len(list(csv.DictReader(f))) == 1

    resumed = run_quietly(config, data, tmp_path / "run", resume_from=checkpoint, processes=processes)
    assert not resumed.interrupted
    for p, q in zip(straight.model.parameters(), resumed.model.parameters()):
        assert np.array_equal(p.data, q.data)


def test_ctrl_c_in_the_first_epoch_leaves_a_resumable_epoch_0(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    data = synthetic_mnist()
    config = quick_config(epochs=1, seed=2)
    straight = run_quietly(config, data, tmp_path / "straight")
    monkeypatch.setattr(training, "make_optimizer", SigintAtStep(3))
    assert run_quietly(config, data, tmp_path / "run").interrupted
    monkeypatch.undo()
    checkpoint = training.load_checkpoint(tmp_path / "run" / training.CHECKPOINT_FILE)
    assert checkpoint.epoch == 0 and checkpoint.history == []
    resumed = run_quietly(config, data, tmp_path / "run", resume_from=checkpoint)
    for p, q in zip(straight.model.parameters(), resumed.model.parameters()):
        assert np.array_equal(p.data, q.data)


def test_load_checkpoint_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=f"no checkpoint at {tmp_path / 'absent.npz'}"):
        training.load_checkpoint(tmp_path / "absent.npz")
    save({"conv1.weight": np.zeros(3, np.float32)}, tmp_path / "weights.npz")
    with pytest.raises(CheckpointError, match="weights.npz is a checkpoint of kind None"):
        training.load_checkpoint(tmp_path / "weights.npz")
