"""Differential tests against PyTorch in float64: forward values, gradients and second derivatives.

Each check runs the same function in both frameworks, then compares
  y = f(x1..xk),   g_i = J_i^T v   (v a random upstream gradient),
  d/d(x1..xk, v) of  sum_i <g_i, u_i>   (random u_i: the second derivatives, via create_graph=True).
v takes part in the second-order comparison, so ops whose gradient does not depend on the input
(linear ops, pools) still have a second-order path to compare.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import helpers
import numpy as np
import pytest
from helpers import Inputs
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tinygrad_cnn.functional as F
import tinygrad_cnn.kernels.conv as conv_kernels
from tinygrad_cnn import Tensor

torch = pytest.importorskip("torch")
TF = torch.nn.functional
TOL = {"rtol": 1e-10, "atol": 1e-10}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny tensors: torch's thread pool only contends with numpy (several times slower on 2 cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def assert_matches_torch(ours: Callable[..., Tensor], theirs: Callable[..., Any], *arrays: np.ndarray,
                         seed: int = 0) -> None:
    helpers.assert_matches_torch(ours, theirs, list(arrays), seed, tol=TOL["rtol"])


I = Inputs(seed=1)  # noqa: E741


# ---- conv2d ---------------------------------------------------------------------------------------
def check_conv2d(n: int, c: int, hw: tuple[int, int], o: int, kernel: tuple[int, int], bias: bool, stride: Any,
                 padding: Any, dilation: Any, groups: int) -> None:
    params = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    arrays = [I.randn(n, c, *hw), I.randn(o, c // groups, *kernel)] + ([I.randn(o)] if bias else [])
    assert_matches_torch(lambda x, w, b=None: F.conv2d(x, w, b, **params),
                         lambda x, w, b=None: TF.conv2d(x, w, b, **params), *arrays)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("groups", [1, 2, 6], ids=lambda g: f"g{g}")
@pytest.mark.parametrize("dilation", [1, 2], ids=lambda d: f"d{d}")
@pytest.mark.parametrize("padding", [0, 1, 2], ids=lambda p: f"p{p}")
@pytest.mark.parametrize("stride", [1, 2, 3], ids=lambda s: f"s{s}")
def test_conv2d_grid(stride: int, padding: int, dilation: int, groups: int, bias: bool) -> None:
    # 6 channels so groups=6 is depthwise with a channel multiplier of 2 (12 outputs); 7x6 input, 3x2 kernel.
    check_conv2d(2, 6, (7, 6), 12, (3, 2), bias, stride, padding, dilation, groups)


@pytest.mark.parametrize("stride, padding, dilation", [((1, 2), (2, 0), (2, 1)), ((3, 1), (0, 1), (1, 2))])
def test_conv2d_pair_params(stride: tuple, padding: tuple, dilation: tuple) -> None:
    check_conv2d(2, 4, (8, 7), 4, (2, 3), True, stride, padding, dilation, 2)


@pytest.mark.parametrize("stride", [1, 2], ids=lambda s: f"s{s}")
def test_conv2d_over_several_batch_chunks(monkeypatch: pytest.MonkeyPatch, stride: int) -> None:
    # The conv kernels work through the batch as many images at a time as fit in CHUNK_BYTES of columns;
    # with room for 2 images, a batch of 5 takes three chunks, the last one short.
    shape = conv_kernels.ConvShape(4, 6, (6, 5), (3, 2), (stride, stride), (1, 1), (1, 1), 2)
    monkeypatch.setattr(conv_kernels, "CHUNK_BYTES", 2 * shape.column_bytes(8))
    assert conv_kernels.plan(shape, 8, conv_kernels.CHUNK_BYTES).chunk == 2
    check_conv2d(5, 4, (6, 5), 6, (3, 2), True, stride, 1, 1, 2)


@st.composite
def conv_configs(draw: st.DrawFn) -> dict[str, Any]:
    groups = draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    hw = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    for size, k, p, d in zip(hw, kernel, padding, dilation):
        assume(size + 2 * p >= d * (k - 1) + 1)  # at least one output position
    return {"n": draw(st.integers(1, 3)), "c": groups * draw(st.integers(1, 3)), "hw": hw,
            "o": groups * draw(st.integers(1, 3)), "kernel": kernel, "bias": draw(st.booleans()),
            "stride": (draw(st.integers(1, 4)), draw(st.integers(1, 4))), "padding": padding,
            "dilation": dilation, "groups": groups}


@pytest.mark.slow
@settings(max_examples=80, deadline=None)
@given(conv_configs())
def test_conv2d_random_configs(config: dict[str, Any]) -> None:
    check_conv2d(**config)


# ---- pools ----------------------------------------------------------------------------------------
POOLS = {
    "max_pool2d": (F.max_pool2d, TF.max_pool2d, {}),
    "avg_pool2d": (F.avg_pool2d, TF.avg_pool2d, {"count_include_pad": True}),
    "avg_pool2d-exclude-pad": (F.avg_pool2d, TF.avg_pool2d, {"count_include_pad": False}),
}


def check_pool(name: str, x: np.ndarray, kernel: Any, stride: Any, padding: Any) -> None:
    ours, theirs, options = POOLS[name]
    assert_matches_torch(lambda x: ours(x, kernel, stride, padding, **options),
                         lambda x: theirs(x, kernel, stride, padding, **options), x)


@pytest.mark.parametrize("padding", [0, 1], ids=lambda p: f"p{p}")
@pytest.mark.parametrize("stride", [1, 2, 3], ids=lambda s: f"s{s}")
@pytest.mark.parametrize("kernel", [2, 3], ids=lambda k: f"k{k}")
@pytest.mark.parametrize("name", POOLS)
def test_pool_grid(name: str, kernel: int, stride: int, padding: int) -> None:
    check_pool(name, I.distinct(2, 3, 7, 6), kernel, stride, padding)


@pytest.mark.parametrize("name", POOLS)
def test_pool_pair_params(name: str) -> None:
    check_pool(name, I.distinct(2, 2, 7, 8), (2, 3), (1, 2), (1, 1))


@pytest.mark.parametrize("params", [(3, 1, 1), (2, 2, 0), ((2, 3), (2, 1), (1, 1)), ((3, 2), (1, 3), (1, 0))],
                         ids=["k3s1p1", "k2s2", "k2x3s2x1p1", "k3x2s1x3p1x0"])
@pytest.mark.parametrize("name", POOLS)
def test_pool_with_ties_matches_torch(name: str, params: tuple) -> None:
    """Windows full of equal values: max pool must route each window's gradient to the first maximum
    in row-major order, also when the tie is between different rows and columns of a window."""
    x = np.floor(I.rng.uniform(0, 3, (2, 2, 6, 6)))
    check_pool(name, x, *params)


@st.composite
def pool_configs(draw: st.DrawFn) -> dict[str, Any]:
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    hw = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    for size, k, p in zip(hw, kernel, padding):
        assume(size + 2 * p >= k)
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *hw)
    return {"name": draw(st.sampled_from(sorted(POOLS))), "x": I.distinct(*shape), "kernel": kernel,
            "stride": stride, "padding": padding}


@pytest.mark.slow
@settings(max_examples=80, deadline=None)
@given(pool_configs())
def test_pool_random_configs(config: dict[str, Any]) -> None:
    check_pool(**config)


# ---- dense layers, softmax, losses, matmul ----------------------------------------------------------
@pytest.mark.parametrize("shapes", [[(3, 4), (5, 4), (5,)], [(3, 4), (5, 4)], [(2, 3, 4), (5, 4), (5,)]],
                         ids=["bias", "no-bias", "3d-input"])
def test_linear(shapes: list[tuple[int, ...]]) -> None:
    assert_matches_torch(F.linear, TF.linear, *(I.randn(*s) for s in shapes))


@pytest.mark.parametrize("scale", [1.0, 200.0], ids=["unit", "large-logits"])
@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("name", ["log_softmax", "softmax"])
def test_softmax(name: str, axis: int, scale: float) -> None:
    # Logits of a few hundred overflow exp() unless the implementation shifts by the max first.
    assert_matches_torch(lambda x: getattr(F, name)(x, axis=axis), lambda x: getattr(TF, name)(x, dim=axis),
                         I.randn(4, 5) * scale)


TARGET = np.array([1, 0, 4, 1, 2])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", ["nll_loss", "cross_entropy"])
def test_losses(name: str, reduction: str) -> None:
    target = torch.tensor(TARGET)
    assert_matches_torch(lambda x: getattr(F, name)(x, TARGET, reduction=reduction),
                         lambda x: getattr(TF, name)(x, target, reduction=reduction), I.randn(5, 6))


MATMUL_SHAPES = [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (3, 4, 5)), ((4,), (4, 5)),
                 ((3, 4), (4,)), ((4,), (4,)), ((4,), (2, 4, 3))]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=lambda s: "@".join("x".join(map(str, d)) for d in s))
def test_matmul(shapes: tuple[tuple[int, ...], ...]) -> None:
    assert_matches_torch(lambda a, b: a @ b, torch.matmul, *(I.randn(*s) for s in shapes))


def test_small_cnn_end_to_end() -> None:
    """conv -> relu -> max pool -> grouped conv -> avg pool -> linear -> cross entropy, as one graph."""

    def net(lib: Any, target: Any, x: Any, w1: Any, b1: Any, w2: Any, w3: Any, b3: Any) -> Any:
        h = lib.max_pool2d(lib.relu(lib.conv2d(x, w1, b1, padding=1)), 2)   # (3, 4, 4, 4)
        h = lib.avg_pool2d(lib.conv2d(h, w2, groups=2), 2)                 # (3, 4, 1, 1)
        return lib.cross_entropy(lib.linear(h.reshape(x.shape[0], -1), w3, b3), target)

    target = np.array([2, 0, 1])
    arrays = [I.randn(3, 2, 8, 8), I.randn(4, 2, 3, 3), I.randn(4), I.randn(4, 2, 3, 3), I.randn(3, 4), I.randn(3)]
    assert_matches_torch(lambda *a: net(F, target, *a), lambda *a: net(TF, torch.tensor(target), *a), *arrays)
