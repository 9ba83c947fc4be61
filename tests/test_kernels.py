"""Every fast kernel (tinygrad_cnn.kernels.conv / .pool) against the plain reference kernel, in float64.

The fast kernels chunk the batch, pick flat shifts or window views per layer shape
(`kernels.conv.plan`), and split chunks over threads; whatever they pick, they must compute the
reference's numbers. Each case forces every choice the plan could make.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest

from tinygrad_cnn.kernels import conv, parallel, pool, reference

TOL = {"rtol": 1e-12, "atol": 1e-12}

# (N, C, H, W), (O, C/G, KH, KW), stride, padding, dilation, groups
CONV_CASES = [
    ((3, 4, 9, 8), (6, 4, 3, 3), (1, 1), (1, 1), (1, 1), 1),      # 3x3 pad 1 (VGG)
    ((2, 3, 10, 9), (5, 3, 5, 5), (1, 1), (0, 0), (1, 1), 1),     # 5x5 (LeNet)
    ((3, 6, 7, 7), (4, 6, 1, 1), (1, 1), (0, 0), (1, 1), 1),      # 1x1: the columns are the input
    ((2, 6, 9, 7), (6, 3, 3, 2), (2, 1), (1, 2), (2, 1), 2),      # grouped, strided, dilated, padded
    ((2, 4, 8, 8), (8, 4, 1, 1), (2, 2), (0, 0), (1, 1), 1),      # 1x1 stride 2
    ((2, 4, 7, 9), (4, 2, 3, 3), (1, 1), (2, 1), (1, 2), 2),      # stride 1, dilated, uneven padding
]


def ids(case: tuple) -> str:
    x, w, s, p, d, g = case
    return f"x{x}-w{w}-s{s}-p{p}-d{d}-g{g}".replace(" ", "")


@pytest.fixture(params=[True, False], ids=["flat", "windows"])
def forced_plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every layer takes flat shifts (where the stride allows) or window views, in chunks of 2 images."""
    def forced(shape: conv.ConvShape, itemsize: int, chunk_bytes: int) -> conv.ConvPlan:
        return conv.ConvPlan(2, request.param and shape.stride == (1, 1))  # flat shifts need stride 1

    monkeypatch.setattr(conv, "plan", forced)
    yield


def arrays(case: tuple, seed: int = 0) -> tuple[np.ndarray, ...]:
    x_shape, w_shape, stride, padding, dilation, groups = case
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    y = reference.conv2d(x, w, b, stride, padding, dilation, groups)
    return x, w, b, rng.standard_normal(y.shape)


@pytest.mark.parametrize("case", CONV_CASES, ids=ids)
def test_conv_kernels_match_the_reference(case: tuple, forced_plan: None) -> None:
    x, w, b, g = arrays(case)
    params = case[2:]
    np.testing.assert_allclose(conv.conv2d(x, w, b, *params), reference.conv2d(x, w, b, *params), **TOL)
    np.testing.assert_allclose(conv.conv2d(x, w, None, *params), reference.conv2d(x, w, None, *params), **TOL)
    np.testing.assert_allclose(conv.conv2d_input_grad(g, w, x.shape[2:], *params),
                               reference.conv2d_input_grad(g, w, x.shape[2:], *params), **TOL)
    np.testing.assert_allclose(conv.conv2d_weight_grad(x, g, w.shape[2:], *params),
                               reference.conv2d_weight_grad(x, g, w.shape[2:], *params), **TOL)


@pytest.mark.parametrize("case", CONV_CASES[:2], ids=ids)
def test_conv_kernels_match_the_reference_on_two_threads(case: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "MIN_PARALLEL_MACS", 0)
    parallel.set_threads(2)
    try:
        x, w, b, g = arrays(case, seed=1)
        params = case[2:]
        np.testing.assert_allclose(conv.conv2d(x, w, b, *params), reference.conv2d(x, w, b, *params), **TOL)
        np.testing.assert_allclose(conv.conv2d_input_grad(g, w, x.shape[2:], *params),
                                   reference.conv2d_input_grad(g, w, x.shape[2:], *params), **TOL)
        np.testing.assert_allclose(conv.conv2d_weight_grad(x, g, w.shape[2:], *params),
                                   reference.conv2d_weight_grad(x, g, w.shape[2:], *params), **TOL)
    finally:
        parallel.set_threads(1)


@pytest.mark.parametrize("case", CONV_CASES, ids=ids)
@pytest.mark.parametrize("threads", [1, 2])
def test_kept_columns_give_the_reference_weight_gradient(case: tuple, threads: int,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A small layer's forward keeps its columns; the weight gradient computed from them is the reference's."""
    monkeypatch.setattr(parallel, "MIN_PARALLEL_MACS", 0)
    parallel.set_threads(threads)
    try:
        x, w, b, g = arrays(case, seed=2)
        params = case[2:]
        keep: list = []
        np.testing.assert_allclose(conv.conv2d(x, w, b, *params, keep=keep), reference.conv2d(x, w, b, *params), **TOL)
        assert keep and sum(part.stop - part.start for part, _, _ in keep) == x.shape[0]
        np.testing.assert_allclose(conv.conv2d_weight_grad(x, g, w.shape[2:], *params, kept=keep),
                                   reference.conv2d_weight_grad(x, g, w.shape[2:], *params), **TOL)
        too_big: list = []
        monkeypatch.setattr(conv, "KEEP_COLUMNS_BYTES", 0)
        conv.conv2d(x, w, b, *params, keep=too_big)
        assert too_big == []
    finally:
        parallel.set_threads(1)


def test_the_reference_is_the_definition() -> None:
    """reference.conv2d against the sum written out pixel by pixel; its two adjoints by <g, conv(x, w)>."""
    x, w, b, g = arrays(CONV_CASES[3])
    stride, padding, dilation, groups = CONV_CASES[3][2:]
    y = reference.conv2d(x, w, b, stride, padding, dilation, groups)
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    og, cg = w.shape[0] // groups, w.shape[1]
    for n, o, i, j in itertools.product(range(y.shape[0]), range(y.shape[1]), range(y.shape[2]), range(y.shape[3])):
        c0 = o // og * cg
        window = xp[n, c0:c0 + cg, i * stride[0]: i * stride[0] + dilation[0] * (w.shape[2] - 1) + 1: dilation[0],
                    j * stride[1]: j * stride[1] + dilation[1] * (w.shape[3] - 1) + 1: dilation[1]]
        assert y[n, o, i, j] == pytest.approx(np.sum(window * w[o]) + b[o], rel=1e-12)
    inner = np.sum(g * reference.conv2d(x, w, None, stride, padding, dilation, groups))
    assert np.sum(reference.conv2d_input_grad(g, w, x.shape[2:], stride, padding, dilation, groups) * x) == \
        pytest.approx(inner, rel=1e-12)
    assert np.sum(reference.conv2d_weight_grad(x, g, w.shape[2:], stride, padding, dilation, groups) * w) == \
        pytest.approx(inner, rel=1e-12)


def test_plan_is_chosen_once_per_layer_shape() -> None:
    shape = conv.ConvShape(32, 32, (32, 32), (3, 3), (1, 1), (1, 1), (1, 1), 1)
    first = conv.plan(shape, 4, conv.CHUNK_BYTES)
    assert conv.plan(shape, 4, conv.CHUNK_BYTES) is first
    assert first.flat and first.chunk >= 1
    assert first.chunk == max(1, conv.CHUNK_BYTES // shape.column_bytes(4))  # as many images as fit, at least one
    assert not conv.plan(conv.ConvShape(32, 64, (8, 8), (1, 1), (1, 1), (0, 0), (1, 1), 1), 4, conv.CHUNK_BYTES).flat


# (N, C, H, W), kernel, stride, padding
POOL_CASES = [((2, 3, 8, 8), (2, 2), (2, 2), (0, 0)), ((2, 2, 7, 9), (3, 2), (2, 1), (1, 1)),
              ((1, 2, 9, 8), (3, 3), (1, 1), (1, 0)), ((2, 2, 6, 7), (1, 3), (2, 3), (0, 1))]


@pytest.fixture(params=[1, 2], ids=["one-thread", "two-threads"])
def pool_threads(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """On two threads every batch of two or more images is split (the batch parts of each thread)."""
    monkeypatch.setattr(parallel, "MIN_PARALLEL_MACS", 0)
    parallel.set_threads(request.param)
    try:
        yield
    finally:
        parallel.set_threads(1)


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_max_pool_kernels_match_the_reference(case: tuple, ties: bool, pool_threads: None) -> None:
    shape, kernel, stride, padding = case
    rng = np.random.default_rng(2)
    x = rng.integers(0, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    y, winners = pool.max_pool2d(x, kernel, stride, padding)
    y_ref, winner_ref = reference.max_pool2d(x, kernel, stride, padding)
    np.testing.assert_array_equal(y, y_ref)
    assert pool.max_pool2d(x, kernel, stride, padding, record=False)[1] is None
    g, u = rng.standard_normal(y.shape), rng.standard_normal(x.shape)
    np.testing.assert_allclose(pool.max_pool2d_scatter(g, winners, shape[2:], kernel, stride, padding),
                               reference.max_pool2d_scatter(g, winner_ref, shape[2:], kernel, stride, padding),
                               **TOL)  # overlapping windows add in another order
    np.testing.assert_array_equal(pool.max_pool2d_gather(u, winners, kernel, stride, padding),
                                  reference.max_pool2d_gather(u, winner_ref, kernel, stride, padding))


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_kernels_match_the_reference(case: tuple, count_include_pad: bool) -> None:
    shape, kernel, stride, padding = case
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    y = pool.avg_pool2d(x, kernel, stride, padding, count_include_pad)
    np.testing.assert_allclose(y, reference.avg_pool2d(x, kernel, stride, padding, count_include_pad), **TOL)
    g = rng.standard_normal(y.shape)
    np.testing.assert_allclose(pool.avg_pool2d_scatter(g, shape[2:], kernel, stride, padding, count_include_pad),
                               reference.avg_pool2d_scatter(g, shape[2:], kernel, stride, padding, count_include_pad),
                               **TOL)


@pytest.mark.parametrize(("a_shape", "b_shape"), [((7, 5), (5, 3)), ((1, 4), (4, 2)), ((6, 4), (4, 9)),
                                                  ((2, 3, 4), (4, 5)), ((4,), (4, 3))], ids=str)
@pytest.mark.parametrize("transposed", [False, True], ids=["contiguous", "transposed"])
def test_matmul_kernel_matches_numpy(a_shape: tuple, b_shape: tuple, transposed: bool, pool_threads: None,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Row blocks over the threads (2-d products with two or more rows), np.matmul for the rest; operands
    that are transposed views (as in the VJP of a linear layer) too."""
    from tinygrad_cnn.kernels import matmul

    rng = np.random.default_rng(4)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    if transposed and a.ndim == 2:
        a, b = np.ascontiguousarray(a.T).T, np.ascontiguousarray(b.T).T
        assert not a.flags.c_contiguous or a.shape[0] == 1
    splits: list[int] = []
    real_map_parts = parallel.map_parts
    monkeypatch.setattr(parallel, "map_parts", lambda fn, parts: splits.append(len(parts)) or real_map_parts(fn, parts))
    np.testing.assert_allclose(matmul.matmul(a, b), np.matmul(a, b), rtol=1e-13, atol=1e-13)
    two_d_rows = a.shape[0] if a.ndim == b.ndim == 2 else 0
    assert splits == ([2] if parallel.get_threads() == 2 and two_d_rows >= 2 else [])
