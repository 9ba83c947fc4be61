"""The example scripts run as a user runs them, and what they demonstrate holds."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import tinygrad_cnn as tc

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def import_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), EXAMPLES / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not os.environ.get("TINYGRAD_CNN_DATA"), reason="needs real MNIST (TINYGRAD_CNN_DATA)")
def test_train_lenet_learns_in_a_few_steps() -> None:
    out = run_example("train_lenet.py", "--steps", "60", "--limit", "500")
    losses = [float(v) for v in re.findall(r"step \d+: loss (\d+\.\d+)", out)]
    accuracy = float(re.search(r"test accuracy: (\d+\.\d+)% on 500 images", out)[1])
    assert len(losses) == 2  # at steps 50 and 60
    assert accuracy > 50, out  # chance is 10 %; measured 83 % after 60 steps


def test_dynamic_net_runs_gradchecks_and_learns() -> None:
    out = run_example("dynamic_net.py", "--steps", "60")
    assert "gradcheck passed" in out
    before, after = map(float, re.search(r"(\d+\.\d)% before training, (\d+\.\d)% after 60 steps", out).groups())
    assert after > before + 15, out


def test_dynamic_net_graph_depth_follows_the_data() -> None:
    example = import_example("dynamic_net.py")
    model = example.RefineNet(hidden=3)

    def refinements(points: list[list[float]]) -> int:
        """How many times the shared refine layer's weight took part in the recorded graph."""
        groups = model(tc.Tensor(np.array(points, dtype=np.float32)))
        count, stack, seen = 0, [logits for _, logits in groups], set()
        while stack:
            t = stack.pop()
            if id(t) in seen or t._ctx is None:
                continue
            seen.add(id(t))
            count += sum(p is model.refine.weight for p in t._ctx.inputs)
            stack.extend(p for p in t._ctx.inputs if isinstance(p, tc.Tensor))
        return count

    assert refinements([[0.1, 0.0]]) == 1  # radius 0.1: depth 1
    assert refinements([[0.0, 1.2]]) == 3  # radius 1.2: depth 3
    assert refinements([[0.1, 0.0], [0.0, 1.2], [1.9, 0.0]]) == 1 + 3 + 4  # one group per depth


def test_dynamic_net_gradcheck_catches_a_wrong_gradient(monkeypatch: pytest.MonkeyPatch) -> None:
    example = import_example("dynamic_net.py")
    assert example.check_gradients()

    class LeakyGradRelu(tc.Function):  # relu forward with a wrong VJP: passes gradient through negatives too
        @staticmethod
        def forward(ctx: tc.Context, x: np.ndarray) -> np.ndarray:
            return np.maximum(x, 0)

        @staticmethod
        def backward(ctx: tc.Context, grad: tc.Tensor) -> tc.Tensor:
            return grad

    monkeypatch.setattr(tc.Tensor, "relu", lambda self: LeakyGradRelu.apply(self))
    with pytest.raises(tc.GradcheckError):
        example.check_gradients()
