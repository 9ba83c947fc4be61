"""The benchmark's own machinery (tinygrad_cnn.tools.bench): what it times must be what it claims.

No timing is asserted: only that the baselines compute the same thing as the library, that the
interleaving runs every function as often as it says, and that the profile's parts add up.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor
from tinygrad_cnn.ops import PRIMITIVES
from tinygrad_cnn.tools import bench


def test_the_loop_baseline_computes_what_the_library_computes() -> None:
    """The "x times faster than the loop" row compares equal work: forward, dx and dw."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    grad = rng.standard_normal((2, 4, 5, 5))
    y, dx, dw = bench.loop_conv2d_step(x, w, grad)
    xt, wt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    out = F.conv2d(xt, wt)
    out.backward(Tensor(grad))
    np.testing.assert_allclose(y, out.data, rtol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.data, rtol=1e-12)
    np.testing.assert_allclose(dw, wt.grad.data, rtol=1e-12)


def test_interleaved_medians_runs_each_function_as_announced() -> None:
    counts = [0, 0]

    def make(i: int):  # noqa: ANN202
        def fn() -> None:
            counts[i] += 1
        return fn

    medians = bench.interleaved_medians([make(0), make(1)], repeats=3, inner=4, pause=0.0, warmup=2, settle=1)
    assert len(medians) == 2 and all(m >= 0 for m in medians)
    assert counts == [2 + 3 * (1 + 4)] * 2


def test_profile_parts_add_up_and_the_primitives_are_restored() -> None:
    originals = {op: op.__dict__["forward"] for op in PRIMITIVES}
    report = bench.profile_train_step(batch=2, steps=2)
    assert all(op.__dict__["forward"] is f for op, f in originals.items())
    values = {line.split(None, 1)[1]: float(line.split()[0]) for line in report.splitlines()[1:]}
    assert "Conv2d (x2)" in values and "MaxPool2d (x2)" in values
    kernels, rest, total = (values[k] for k in ("all primitive forwards",
                                                "everything else (engine, VJP and loss Python, optimizer)",
                                                "total per step"))
    assert kernels + rest == pytest.approx(total, abs=2e-3)
    assert sum(v for k, v in values.items() if "(x" in k) <= kernels + 1e-3


@pytest.mark.parametrize("model", ["lenet5", "cifar_vgg", "vgg16"])
def test_both_frameworks_build_the_same_layers(model: str) -> None:
    """The rows compare equal networks: the same parameter shapes in the same order."""
    torch = pytest.importorskip("torch")
    from tinygrad_cnn import nn

    build = bench.MODELS[model][0]
    ours = [tuple(p.shape) for p in build(nn).parameters()]
    theirs = [tuple(p.shape) for p in build(torch.nn).parameters()]
    assert ours == theirs


def test_a_cifar_step_runs() -> None:
    bench.our_train_step(2, model="cifar_vgg")()


def test_the_bench_command_offers_the_models_and_says_what_it_does() -> None:
    from tinygrad_cnn.cli import build_parser

    args = build_parser().parse_args(["bench", "--model", "cifar_vgg", "--quick"])
    assert args.model == "cifar_vgg" and args.quick
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "--model", "resnet"])


def test_machine_busy_is_a_share() -> None:
    busy = bench.machine_busy(0.05)
    assert busy is None or 0.0 <= busy <= 1.0
