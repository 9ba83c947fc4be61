"""2-D pooling, vectorised over one strided slice per kernel offset (KH*KW numpy passes, no pixel loops).

Max pool:  y = max_pool2d(x) remembers which offset won each window (the first maximum, as PyTorch).
           Its VJP scatters the gradient to the winners (`MaxPoolScatter`); the scatter's VJP is the
           matching gather (`MaxPoolGather`), whose VJP is the scatter again.
Avg pool:  linear, so `AvgPool2d` and `AvgPoolScatter` (its transpose) are each other's VJPs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import numpy as np

from ..autograd import Context, Function, Tensor
from .conv import Pair, _pad_hw, conv_out_size


def _window_slices(kernel: Pair, stride: Pair, out_hw: Pair) -> Iterator[tuple[int, tuple[slice, ...]]]:
    """For each kernel offset k = i*KW + j: the (N, C, Ho, Wo) slice of the padded input it reads."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
    for i in range(kh):
        for j in range(kw):
            yield i * kw + j, (slice(None), slice(None), slice(i, i + sh * (ho - 1) + 1, sh),
                               slice(j, j + sw * (wo - 1) + 1, sw))


def _pooled_hw(input_hw: Pair, kernel: Pair, stride: Pair, padding: Pair) -> Pair:
    return tuple(conv_out_size(s, k, st, p, 1) for s, k, st, p in zip(input_hw, kernel, stride, padding))


def _crop(xp: np.ndarray, input_hw: Pair, padding: Pair) -> np.ndarray:
    (ph, pw), (h, w) = padding, input_hw
    return np.ascontiguousarray(xp[:, :, ph: ph + h, pw: pw + w]) if ph or pw else xp


def _scatter(grad: np.ndarray, weights: Iterable[np.ndarray | float], input_hw: Pair, kernel: Pair, stride: Pair,
             padding: Pair) -> np.ndarray:
    """(N, C, Ho, Wo) -> (N, C, H, W): add grad * weight_k into each offset's slice (overlaps accumulate)."""
    n, c, ho, wo = grad.shape
    padded_hw = (input_hw[0] + 2 * padding[0], input_hw[1] + 2 * padding[1])
    # Windows that neither overlap nor leave gaps write every element exactly once: no zero fill,
    # and each product goes straight into place instead of through a temporary.
    disjoint = stride[0] >= kernel[0] and stride[1] >= kernel[1]
    tiled = disjoint and stride == kernel and (ho * stride[0], wo * stride[1]) == padded_hw
    xp = (np.empty if tiled else np.zeros)((n, c, *padded_hw), dtype=grad.dtype)
    for (_, window), weight in zip(_window_slices(kernel, stride, (ho, wo)), weights):
        if disjoint:
            np.multiply(grad, weight, out=xp[window])
        else:
            xp[window] += grad * weight
    return _crop(xp, input_hw, padding)


class MaxPool2d(Function):
    @staticmethod
    def forward(ctx: Context, x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair) -> np.ndarray:
        xp = _pad_hw(x, padding, value=-np.inf)                            # (N, C, Hp, Wp)
        out_hw = _pooled_hw(x.shape[2:], kernel, stride, padding)
        windows = (xp[window] for _, window in _window_slices(kernel, stride, out_hw))  # (N, C, Ho, Wo) views
        best = next(windows).copy()
        if not ctx.needs_input_grad:  # inference: the maximum alone, no record of the winners
            for candidate in windows:
                np.maximum(best, candidate, out=best)
            return best
        argmax = np.zeros(best.shape, dtype=np.int16)                      # (N, C, Ho, Wo) winning offsets
        for k, candidate in enumerate(windows, start=1):
            np.putmask(argmax, candidate > best, k)  # strict: ties keep the first maximum
            np.maximum(best, candidate, out=best)
        ctx.argmax = argmax
        return best

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        return MaxPoolScatter.apply(grad, argmax=ctx.argmax, input_hw=ctx.inputs[0].shape[2:], **ctx.attrs)


class MaxPoolScatter(Function):
    """(N, C, Ho, Wo) -> (N, C, H, W): each window's gradient to its winning offset."""

    @staticmethod
    def forward(ctx: Context, grad: np.ndarray, argmax: np.ndarray, input_hw: Pair, kernel: Pair, stride: Pair,
                padding: Pair) -> np.ndarray:
        masks = (argmax == k for k in range(kernel[0] * kernel[1]))
        return _scatter(grad, masks, input_hw, kernel, stride, padding)

    @staticmethod
    def backward(ctx: Context, u: Tensor) -> Tensor:
        return MaxPoolGather.apply(u, **ctx.attrs)


class MaxPoolGather(Function):
    """(N, C, H, W) -> (N, C, Ho, Wo): read each window at its winning offset (the scatter's adjoint)."""

    @staticmethod
    def forward(ctx: Context, u: np.ndarray, argmax: np.ndarray, input_hw: Pair, kernel: Pair, stride: Pair,
                padding: Pair) -> np.ndarray:
        up = _pad_hw(u, padding)
        out = np.zeros(argmax.shape, dtype=u.dtype)
        for k, window in _window_slices(kernel, stride, argmax.shape[2:]):
            out += up[window] * (argmax == k)
        return out

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        return MaxPoolScatter.apply(grad, **ctx.attrs)


def _divisor(input_hw: Pair, kernel: Pair, stride: Pair, padding: Pair, count_include_pad: bool,
             dtype: np.dtype) -> np.ndarray:
    """How many elements each window averages: KH*KW, or (Ho, Wo) counts of non-padding elements."""
    if count_include_pad or padding == (0, 0):
        return np.asarray(kernel[0] * kernel[1], dtype=dtype)
    inside = _pad_hw(np.ones((1, 1, *input_hw), dtype=dtype), padding)
    out_hw = _pooled_hw(input_hw, kernel, stride, padding)
    return sum(inside[window] for _, window in _window_slices(kernel, stride, out_hw))[0, 0]


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx: Context, x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair,
                count_include_pad: bool) -> np.ndarray:
        xp = _pad_hw(x, padding)
        out_hw = _pooled_hw(x.shape[2:], kernel, stride, padding)
        total = sum(xp[window] for _, window in _window_slices(kernel, stride, out_hw))  # (N, C, Ho, Wo)
        return total / _divisor(x.shape[2:], kernel, stride, padding, count_include_pad, x.dtype)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        return AvgPoolScatter.apply(grad, input_hw=ctx.inputs[0].shape[2:], **ctx.attrs)


class AvgPoolScatter(Function):
    """(N, C, Ho, Wo) -> (N, C, H, W): spread each window's gradient evenly over it (avg pool's adjoint)."""

    @staticmethod
    def forward(ctx: Context, grad: np.ndarray, input_hw: Pair, kernel: Pair, stride: Pair, padding: Pair,
                count_include_pad: bool) -> np.ndarray:
        share = grad / _divisor(input_hw, kernel, stride, padding, count_include_pad, grad.dtype)
        return _scatter(share, itertools.repeat(1), input_hw, kernel, stride, padding)

    @staticmethod
    def backward(ctx: Context, u: Tensor) -> Tensor:
        return AvgPool2d.apply(u, **{k: v for k, v in ctx.attrs.items() if k != "input_hw"})
