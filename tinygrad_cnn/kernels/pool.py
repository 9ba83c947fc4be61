"""Fast pooling kernels, separable: a pass along each image row (W) and then along each column (H).

A window's max is the max over its rows of each row's max, and a window's sum is the sum of its row
sums, so pooling runs as two 1-D stages of KW and then KH strided numpy passes. The first stage is
the cheap one: its strided slices of a contiguous array read as a single long run; and for 2x2
pooling, it halves the data before the second stage touches it.

Big batches are split over the threads of `parallel` (images are independent; one slice per thread).

Max pool records, per window, the winning row (N, C, Ho, Wo) and, per row segment, the winning column
(N, C, Hp, Wo). The first maximum wins each stage (strictly greater replaces), which makes the winner
the window's first maximum in row-major order, as in PyTorch and `reference.max_pool2d`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import numpy as np

from . import parallel
from .reference import avg_pool_divisor
from .windows import Pair, crop_hw, out_hw, pad_hw

Winners = tuple[np.ndarray, np.ndarray]  # (winning row per window, winning column per row segment)


def _offset(axis: int, k: int, stride: int, out_size: int) -> tuple[slice, ...]:
    """Index of what kernel offset k reads along `axis` (2: H, 3: W) for each of the out_size windows."""
    return (slice(None),) * axis + (slice(k, k + stride * (out_size - 1) + 1, stride),)


def _first_max(candidates: list[np.ndarray], with_index: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Elementwise max of same-shape views and, if asked, the index of the first view that holds it."""
    if len(candidates) == 1:
        return candidates[0].copy(), np.zeros(candidates[0].shape, np.int8) if with_index else None
    best = np.maximum(candidates[0], candidates[1])
    index = None
    if with_index:
        index = (candidates[1] > candidates[0]).view(np.int8)  # strict: a tie keeps the earlier offset
        if len(candidates) > np.iinfo(np.int8).max:
            index = index.astype(np.int16)
    for k, candidate in enumerate(candidates[2:], start=2):
        if with_index:
            np.putmask(index, candidate > best, k)
        np.maximum(best, candidate, out=best)
    return best, index


def _route_specials(candidates: list[np.ndarray], best: np.ndarray, index: np.ndarray, axis: int, pad: int,
                    stride: int) -> None:
    """PyTorch's winners where `_first_max`'s strict comparison cannot decide: a window holding NaN is won
    by its last NaN; a window whose real elements are all -inf by its first real element, never by the
    -inf padding before it (so the gradient never goes to the padding)."""
    if np.isnan(best).any():
        for k, candidate in enumerate(candidates):
            np.putmask(index, np.isnan(candidate), k)
    lost = best == -np.inf
    if pad and lost.any():
        first = np.maximum(0, pad - stride * np.arange(best.shape[axis]))      # first real offset per window
        np.copyto(index, first.reshape((-1,) + (1,) * (3 - axis)), casting="unsafe", where=lost)


def _gather(src: np.ndarray, weights: Iterable[np.ndarray | None], axis: int, kernel: int, stride: int,
            out_size: int) -> np.ndarray:
    """Along `axis`, size -> out_size: the sum over kernel offsets of each window's element times
    weight_k (None: 1). With one-hot weights, each window's winning element."""
    total = None
    for k, weight in zip(range(kernel), weights):
        term = src[_offset(axis, k, stride, out_size)]
        if weight is not None:
            term = term * weight
        if total is None:
            total = term.copy() if weight is None else term
        else:
            total += term
    return total


def _scatter(src: np.ndarray, weights: Iterable[np.ndarray | None], axis: int, kernel: int, stride: int,
             size: int) -> np.ndarray:
    """The transpose of `_gather`: along `axis`, out_size -> size, src * weight_k added into each
    offset's slice (overlapping windows accumulate)."""
    out_size = src.shape[axis]
    disjoint = stride >= kernel
    # Windows that tile the axis write every element exactly once: no zero fill, no temporaries.
    tiled = stride == kernel and out_size * stride == size
    dst = (np.empty if tiled else np.zeros)(src.shape[:axis] + (size,) + src.shape[axis + 1:], dtype=src.dtype)
    for k, weight in zip(range(kernel), weights):
        part = dst[_offset(axis, k, stride, out_size)]
        if disjoint and weight is None:
            part[...] = src
        elif disjoint:
            np.multiply(src, weight, out=part)
        else:
            part += src if weight is None else src * weight
    return dst


def _one_hot(winner: np.ndarray, kernel: int) -> Iterable[np.ndarray]:
    return (winner == k for k in range(kernel))


def _padded_hw(input_hw: Pair, padding: Pair) -> Pair:
    return input_hw[0] + 2 * padding[0], input_hw[1] + 2 * padding[1]


def max_pool2d(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair,
               record: bool = True) -> tuple[np.ndarray, Winners | None]:
    """reference.max_pool2d, winners in the separable format (None unless `record`: inference needs
    the maxima alone)."""
    parts = parallel.batch_parts(x.shape[0], max(1, x.shape[0]), x.size)
    if len(parts) == 1:
        return _max_pool2d(x, kernel, stride, padding, record)
    results = parallel.map_parts(lambda part: _max_pool2d(x[part], kernel, stride, padding, record), parts)
    best = np.concatenate([r[0] for r in results])                                          # (N, C, Ho, Wo)
    if not record:
        return best, None
    return best, tuple(np.concatenate([r[1][i] for r in results]) for i in range(2))


def _max_pool2d(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair,
                record: bool) -> tuple[np.ndarray, Winners | None]:
    xp = pad_hw(x, padding, value=-np.inf)                                 # (N, C, Hp, Wp)
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw(x.shape[2:], kernel, stride, padding)
    columns = [xp[_offset(3, j, sw, wo)] for j in range(kw)]
    row_max, col_winner = _first_max(columns, record)                                       # (N, C, Hp, Wo)
    rows = [row_max[_offset(2, i, sh, ho)] for i in range(kh)]
    best, row_winner = _first_max(rows, record)                                             # (N, C, Ho, Wo)
    # NaN or -inf maxima need PyTorch's rules; one check of the (small) output finds them.
    if record and x.dtype.kind == "f" and not (best > -np.inf).all():
        _route_specials(columns, row_max, col_winner, 3, padding[1], sw)
        _route_specials(rows, best, row_winner, 2, padding[0], sh)
    return best, (row_winner, col_winner) if record else None


def max_pool2d_scatter(grad: np.ndarray, winners: Winners, input_hw: Pair, kernel: Pair, stride: Pair,
                       padding: Pair) -> np.ndarray:
    """reference.max_pool2d_scatter: each window's gradient to its winning row, then to the winning
    column of that row."""
    n, c = grad.shape[:2]
    parts = parallel.batch_parts(n, max(1, n), n * c * input_hw[0] * input_hw[1])
    if len(parts) == 1:
        return _max_pool2d_scatter(grad, winners, input_hw, kernel, stride, padding)
    dx = np.empty((n, c, *input_hw), dtype=grad.dtype)                                  # (N, C, H, W)

    def part_of(part: slice) -> None:
        dx[part] = _max_pool2d_scatter(grad[part], (winners[0][part], winners[1][part]), input_hw, kernel, stride,
                                       padding)

    parallel.map_parts(part_of, parts)
    return dx


def _max_pool2d_scatter(grad: np.ndarray, winners: Winners, input_hw: Pair, kernel: Pair, stride: Pair,
                        padding: Pair) -> np.ndarray:
    (row_winner, col_winner), (hp, wp) = winners, _padded_hw(input_hw, padding)
    rows = _scatter(grad, _one_hot(row_winner, kernel[0]), 2, kernel[0], stride[0], hp)  # (N, C, Hp, Wo)
    xp = _scatter(rows, _one_hot(col_winner, kernel[1]), 3, kernel[1], stride[1], wp)     # (N, C, Hp, Wp)
    return np.ascontiguousarray(crop_hw(xp, input_hw, padding))                          # (N, C, H, W)


def max_pool2d_gather(u: np.ndarray, winners: Winners, kernel: Pair, stride: Pair, padding: Pair) -> np.ndarray:
    """reference.max_pool2d_gather: read each window at its winner."""
    (row_winner, col_winner), (ho, wo) = winners, winners[0].shape[2:]
    up = pad_hw(u, padding)                                                             # (N, C, Hp, Wp)
    rows = _gather(up, _one_hot(col_winner, kernel[1]), 3, kernel[1], stride[1], wo)    # (N, C, Hp, Wo)
    return _gather(rows, _one_hot(row_winner, kernel[0]), 2, kernel[0], stride[0], ho)  # (N, C, Ho, Wo)


def avg_pool2d(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, count_include_pad: bool) -> np.ndarray:
    """reference.avg_pool2d: the sum of each window, row segments first, over its divisor."""
    ho, wo = out_hw(x.shape[2:], kernel, stride, padding)
    rows = _gather(pad_hw(x, padding), itertools.repeat(None), 3, kernel[1], stride[1], wo)  # (N, C, Hp, Wo)
    total = _gather(rows, itertools.repeat(None), 2, kernel[0], stride[0], ho)              # (N, C, Ho, Wo)
    return total / avg_pool_divisor(x.shape[2:], kernel, stride, padding, count_include_pad, x.dtype)


def avg_pool2d_scatter(grad: np.ndarray, input_hw: Pair, kernel: Pair, stride: Pair, padding: Pair,
                       count_include_pad: bool) -> np.ndarray:
    """reference.avg_pool2d_scatter, along H and then along W."""
    share = grad / avg_pool_divisor(input_hw, kernel, stride, padding, count_include_pad, grad.dtype)
    hp, wp = _padded_hw(input_hw, padding)
    rows = _scatter(share, itertools.repeat(None), 2, kernel[0], stride[0], hp)             # (N, C, Hp, Wo)
    xp = _scatter(rows, itertools.repeat(None), 3, kernel[1], stride[1], wp)                # (N, C, Hp, Wp)
    return np.ascontiguousarray(crop_hw(xp, input_hw, padding))
