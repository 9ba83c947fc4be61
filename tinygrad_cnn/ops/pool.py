"""2-D pooling as primitives, each forward beside its VJP.

  y = max_pool2d(x)    y[n, c, i, j] = max of window (i, j) of x[n, c]; the winner (its first maximum,
                       PyTorch's rule for ties) is recorded for the VJP
  MaxPoolScatter       the VJP: each window's gradient added at its winner, (N, C, Ho, Wo) -> (N, C, H, W)
  MaxPoolGather        the scatter's adjoint (and VJP): each window read at its winner; its VJP is
                       the scatter again, so max pooling has double backward
  y = avg_pool2d(x)    each window's mean; linear, so AvgPool2d and AvgPoolScatter (its transpose)
                       are each other's VJPs

The numpy work is `tinygrad_cnn.kernels.pool` (separable passes along W, then H), tested against the
plain definitions in `kernels.reference`.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Context, Function, Tensor
from ..kernels import pool as kernels
from ..kernels.pool import Winners
from ..kernels.windows import Pair, col2im, out_hw, pad_hw, window_view


class MaxPool2d(Function):
    @staticmethod
    def kinks(x: np.ndarray, attrs: dict, step: float) -> np.ndarray:
        """Elements within 2 * step of their window's maximum, in windows with more than one of them:
        a step of at most `step` per element could change which one wins."""
        kernel, stride, padding = attrs["kernel"], attrs["stride"], attrs["padding"]
        windows = window_view(pad_hw(x, padding, -np.inf), kernel, stride, (1, 1),
                              out_hw(x.shape[2:], kernel, stride, padding))     # (N, C, KH, KW, Ho, Wo)
        close = windows >= windows.max(axis=(2, 3), keepdims=True) - 2 * step
        tied = close & (close.sum(axis=(2, 3), keepdims=True) > 1)
        return col2im(tied.astype(x.dtype), x.shape[2:], kernel, stride, padding, (1, 1)) > 0  # (N, C, H, W)

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair) -> np.ndarray:
        # Inference (nothing needs the input's gradient) keeps no winners.
        y, winners = kernels.max_pool2d(x, kernel, stride, padding, record=bool(ctx.needs_input_grad))
        ctx.winners = winners                                                   # (N, C, Ho, Wo) and (N, C, Hp, Wo)
        return y                                                                # (N, C, Ho, Wo)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        return MaxPoolScatter.apply(grad, winners=ctx.winners, input_hw=ctx.inputs[0].shape[2:], **ctx.attrs)


class MaxPoolScatter(Function):
    """(N, C, Ho, Wo) -> (N, C, H, W): each window's gradient to its winner."""

    @staticmethod
    def forward(ctx: Context, grad: np.ndarray, winners: Winners, input_hw: Pair, kernel: Pair, stride: Pair,
                padding: Pair) -> np.ndarray:
        return kernels.max_pool2d_scatter(grad, winners, input_hw, kernel, stride, padding)

    @staticmethod
    def backward(ctx: Context, u: Tensor) -> Tensor:
        return MaxPoolGather.apply(u, **ctx.attrs)


class MaxPoolGather(Function):
    """(N, C, H, W) -> (N, C, Ho, Wo): each window read at its winner (the scatter's adjoint)."""

    @staticmethod
    def forward(ctx: Context, u: np.ndarray, winners: Winners, input_hw: Pair, kernel: Pair, stride: Pair,
                padding: Pair) -> np.ndarray:
        return kernels.max_pool2d_gather(u, winners, kernel, stride, padding)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        return MaxPoolScatter.apply(grad, **ctx.attrs)


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx: Context, x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair,
                count_include_pad: bool) -> np.ndarray:
        if x.dtype == np.float16:  # summed in float32 and rounded once, as PyTorch: float16 sums lose digits
            return kernels.avg_pool2d(x.astype(np.float32), kernel, stride, padding, count_include_pad).astype(x.dtype)
        return kernels.avg_pool2d(x, kernel, stride, padding, count_include_pad)  # (N, C, Ho, Wo)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        return AvgPoolScatter.apply(grad, input_hw=ctx.inputs[0].shape[2:], **ctx.attrs)


class AvgPoolScatter(Function):
    """(N, C, Ho, Wo) -> (N, C, H, W): spread each window's gradient evenly over it (avg pool's adjoint)."""

    @staticmethod
    def forward(ctx: Context, grad: np.ndarray, input_hw: Pair, kernel: Pair, stride: Pair, padding: Pair,
                count_include_pad: bool) -> np.ndarray:
        return kernels.avg_pool2d_scatter(grad, input_hw, kernel, stride, padding, count_include_pad)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        return AvgPool2d.apply(grad, **{k: v for k, v in ctx.attrs.items() if k != "input_hw"})
