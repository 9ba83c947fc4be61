"""Adversarial pooling and convolution cases against PyTorch: NaN, +-inf and ties inside windows,
padding that could steal a gradient, edge shapes (1x1, kernel = input, stride > kernel, ceil_mode,
empty batches, channels), second derivatives. Every expected number comes from PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor
from tinygrad_cnn.kernels import reference

torch = pytest.importorskip("torch")
TF = torch.nn.functional

INF, NAN = np.inf, np.nan
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def run_both(ours, theirs, x: np.ndarray, upstream_seed: int = 0):
    """Forward value and input gradient (a random upstream gradient) in both frameworks."""
    tx = torch.tensor(x.copy(), requires_grad=True)
    ty = theirs(tx)
    g = np.random.default_rng(upstream_seed).normal(size=tuple(ty.shape)).astype(x.dtype)
    ty.backward(torch.tensor(g))
    ox = Tensor(x.copy(), requires_grad=True)
    oy = ours(ox)
    oy.backward(Tensor(g))
    return (oy.data, ox.grad.data), (ty.detach().numpy(), tx.grad.numpy())


def assert_same(ours, theirs, rtol=None):
    """Same shapes, dtypes and values (NaN where PyTorch has NaN); float32 sums may differ in the last ulp."""
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and a.dtype == b.dtype
        tol = rtol if rtol is not None else (1e-12 if a.dtype == np.float64 else 1e-6)
        np.testing.assert_allclose(a, b, rtol=tol, atol=0, equal_nan=True)


# ---- issue 14.7: who gets a max-pool window's gradient ------------------------------------------------------

MAXPOOL_WINDOWS = {
    # name: (input row(s), kernel, stride, padding)
    "all-inf-real-with-padding": ([[-INF, -INF], [-INF, -INF]], 2, 2, 1),
    "all-inf-real-left-padding-only": ([[-INF, -INF, -INF]], (1, 3), 1, (0, 1)),
    "all-inf-no-padding-first-wins": ([[-INF, -INF], [-INF, -INF]], 2, 2, 0),
    "nan-middle": ([[1.0, NAN, 3.0]], (1, 3), 1, 0),
    "nan-first": ([[NAN, 5.0, 3.0]], (1, 3), 1, 0),
    "two-nans-last-wins": ([[1.0, NAN, 3.0, NAN]], (1, 4), 1, 0),
    "nan-column-last-row-wins": ([[NAN, 1.0], [NAN, 2.0]], 2, 2, 0),
    "nan-and-inf": ([[INF, NAN], [-INF, 0.0]], 2, 2, 0),
    "nan-in-overlapping-windows": ([[0.0, NAN, 1.0, 2.0], [3.0, 4.0, NAN, 5.0]], 2, 1, 0),
    "nan-with-padding": ([[NAN, -INF], [-INF, -INF]], 3, 1, 1),
    "ties-first-wins": ([[2.0, 2.0], [2.0, 2.0]], 2, 2, 0),
    "ties-overlapping": ([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], 2, 1, 1),
    "inf-wins": ([[INF, 3e38], [-3e38, 0.0]], 2, 2, 0),
    "negative-zero-tie": ([[-0.0, 0.0]], (1, 2), 1, 0),
    "minus-inf-and-finite-with-padding": ([[-INF, -3e38], [-INF, -INF]], 3, 2, 1),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(MAXPOOL_WINDOWS))
def test_max_pool_routes_the_gradient_as_pytorch(name: str, dtype: type) -> None:
    rows, kernel, stride, padding = MAXPOOL_WINDOWS[name]
    x = np.asarray(rows, dtype=dtype)[None, None]
    ours, theirs = run_both(lambda t: F.max_pool2d(t, kernel, stride, padding),
                            lambda t: TF.max_pool2d(t, kernel, stride, padding), x)
    assert_same(ours, theirs)


def test_reference_kernel_routes_like_the_fast_one() -> None:
    """kernels.reference is the definition the fast kernels are tested against: same NaN/-inf rules."""
    for rows, kernel, stride, padding in MAXPOOL_WINDOWS.values():
        x = np.asarray(rows, dtype=np.float64)[None, None]
        k, s, p = (F.as_pair(v, "", "", 0) for v in (kernel, stride, padding))
        tx = torch.tensor(x, requires_grad=True)
        ty = TF.max_pool2d(tx, k, s, p)
        ty.sum().backward()
        y, winner = reference.max_pool2d(x, k, s, p)
        grad = reference.max_pool2d_scatter(np.ones_like(y), winner, x.shape[2:], k, s, p)
        np.testing.assert_array_equal(y, ty.detach().numpy())
        np.testing.assert_array_equal(grad, tx.grad.numpy())


@st.composite
def special_pool_case(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 6))
    w = draw(st.integers(max(1, kw - 2 * pw), 6))
    ceil = draw(st.booleans())
    values = st.sampled_from([-INF, NAN, INF, 0.0, -0.0, 1.0, -1.0, 1e300, -1e-300])
    x = np.array(draw(st.lists(values, min_size=2 * h * w, max_size=2 * h * w))).reshape(1, 2, h, w)
    return x, (kh, kw), (sh, sw), (ph, pw), ceil


@SETTINGS
@given(special_pool_case())
def test_max_pool_with_special_values_matches_pytorch(case) -> None:
    """Windows full of -inf, NaN, +inf, signed zeros and ties, any geometry, ceil_mode or not."""
    x, kernel, stride, padding, ceil = case
    ours, theirs = run_both(lambda t: F.max_pool2d(t, kernel, stride, padding, ceil_mode=ceil),
                            lambda t: TF.max_pool2d(t, kernel, stride, padding, ceil_mode=ceil), x)
    assert_same(ours, theirs)


@SETTINGS
@given(special_pool_case())
def test_max_pool_double_backward_with_special_values(case) -> None:
    """The gather (double backward) reads each window at the same winner as PyTorch."""
    x, kernel, stride, padding, ceil = case
    rng = np.random.default_rng(1)
    tx = torch.tensor(x, requires_grad=True)
    ty = TF.max_pool2d(tx, kernel, stride, padding, ceil_mode=ceil)
    g = rng.normal(size=tuple(ty.shape))
    tg_ = torch.tensor(g, requires_grad=True)
    (tgx,) = torch.autograd.grad(ty, tx, tg_, create_graph=True)
    u = rng.normal(size=x.shape)
    (tgg,) = torch.autograd.grad((tgx * torch.tensor(u)).sum(), tg_)
    from tinygrad_cnn import grad
    ox = Tensor(x.copy(), requires_grad=True)
    og = Tensor(g.copy(), requires_grad=True)
    oy = F.max_pool2d(ox, kernel, stride, padding, ceil_mode=ceil)
    (ogx,) = grad(oy, [ox], og, create_graph=True)
    (ogg,) = grad((ogx * Tensor(u)).sum(), [og])
    np.testing.assert_allclose(ogx.data, tgx.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ogg.data, tgg.numpy(), rtol=1e-12)


@SETTINGS
@given(special_pool_case(), st.booleans())
def test_avg_pool_with_special_values_matches_pytorch(case, include_pad) -> None:
    """inf - inf and NaN in a window make NaN, never a silently finite mean; gradients are finite."""
    x, kernel, stride, padding, ceil = case
    with np.errstate(invalid="ignore"):  # inf - inf
        ours, theirs = run_both(
            lambda t: F.avg_pool2d(t, kernel, stride, padding, ceil_mode=ceil, count_include_pad=include_pad),
            lambda t: TF.avg_pool2d(t, kernel, stride, padding, ceil_mode=ceil, count_include_pad=include_pad), x)
    assert_same(ours, theirs)


# ---- edge shapes ----------------------------------------------------------------------------------------

POOL_SHAPES = {
    # name: (input shape, kernel, stride, padding, ceil_mode)
    "1x1-image-1x1-kernel": ((2, 3, 1, 1), 1, 1, 0, False),
    "kernel-equals-input": ((1, 2, 5, 7), (5, 7), None, 0, False),
    "stride-larger-than-kernel": ((1, 1, 9, 9), 2, 4, 0, False),
    "stride-larger-than-kernel-ceil": ((1, 1, 9, 9), 2, 4, 0, True),
    "ceil-last-window-starts-in-padding-is-dropped": ((1, 1, 5, 5), 2, 2, 1, True),
    "ceil-partial-window": ((1, 1, 6, 6), 4, 3, 0, True),
    "ceil-partial-with-padding": ((1, 1, 7, 4), 3, 2, 1, True),
    "max-padding-half-kernel": ((1, 1, 2, 2), 4, 1, 2, False),
    "non-square-everything": ((2, 1, 6, 11), (2, 5), (3, 1), (1, 2), False),
    "one-row": ((1, 4, 1, 12), (1, 3), (1, 2), 0, False),
    "one-column": ((1, 4, 12, 1), (3, 1), (2, 1), 0, True),
    "many-channels": ((1, 64, 3, 3), 2, 1, 1, False),
    "empty-batch": ((0, 3, 4, 4), 2, 2, 0, False),
    "big-kernel-127": ((1, 1, 1, 130), (1, 127), 1, 0, False),
    "kernel-200-int16-winners": ((1, 1, 1, 200), (1, 200), 1, 0, False),
}


@pytest.mark.parametrize("kind", ["max", "avg", "avg-exclude-pad"])
@pytest.mark.parametrize("name", list(POOL_SHAPES))
def test_pool_edge_shapes_match_pytorch(name: str, kind: str) -> None:
    shape, kernel, stride, padding, ceil = POOL_SHAPES[name]
    x = np.random.default_rng(len(name)).normal(size=shape)
    if kind == "max":
        ours_fn = lambda t: F.max_pool2d(t, kernel, stride, padding, ceil_mode=ceil)  # noqa: E731
        theirs_fn = lambda t: TF.max_pool2d(t, kernel, stride, padding, ceil_mode=ceil)  # noqa: E731
    else:
        inc = kind == "avg"
        ours_fn = lambda t: F.avg_pool2d(t, kernel, stride, padding, ceil_mode=ceil, count_include_pad=inc)  # noqa: E731
        theirs_fn = lambda t: TF.avg_pool2d(t, kernel, stride, padding, ceil_mode=ceil, count_include_pad=inc)  # noqa: E731
    ours, theirs = run_both(ours_fn, theirs_fn, x)
    assert_same(ours, theirs)


def test_max_pool_of_many_nans_in_a_wide_kernel() -> None:
    """A 200-wide window (int16 winners) whose NaN sits past index 127."""
    x = np.zeros((1, 1, 1, 200))
    x[..., 150] = NAN
    x[..., 199] = 5.0
    ours, theirs = run_both(lambda t: F.max_pool2d(t, (1, 200)), lambda t: TF.max_pool2d(t, (1, 200)), x)
    assert_same(ours, theirs)


def test_max_pool_float16_matches_pytorch() -> None:
    x = np.array([[[[-INF, 65504.0, NAN, 1e-7], [0.5, -65504.0, 2.0, -0.0]]]], dtype=np.float16)
    ours, theirs = run_both(lambda t: F.max_pool2d(t, 2, 2), lambda t: TF.max_pool2d(t, 2, 2), x)
    assert_same(ours, theirs, rtol=0)
