"""2-D convolution as three primitives that are each other's VJPs.

  y  = conv2d(x, w) (+ b)        y[n, o] = W[o] . window(x[n]) (+ b[o]):  im2col, then a GEMM
  dx = conv2d_input_grad(g, w)   dx = col2im(W^T g): the transposed convolution
  dw = conv2d_weight_grad(x, g)  dW = sum over images of g im2col(x)^T

Without its bias, conv2d is linear in x and in w, so <g, conv2d(x, w)> = <conv2d_input_grad(g, w), x> =
<conv2d_weight_grad(x, g), w>. Differentiating each of these three bilinear forms gives the other
two, which is why every VJP below is one of the three ops and double backward works for all of them.
The bias is added inside conv2d's forward (as PyTorch does): its VJP is a sum over N, Ho and Wo.

The numpy work is `tinygrad_cnn.kernels.conv` (chunked, threaded, chosen per layer shape), tested
against the plain definitions in `kernels.reference`. Between forward and backward a conv keeps x and w
and, for a small layer (its im2col columns at most `kernels.conv.KEEP_COLUMNS_BYTES`), the forward's
columns, which a first-order backward's weight gradient starts from; a bigger layer's weight gradient
rebuilds them a chunk at a time (docs/performance.md measures both).
Shapes: (N, C, H, W) input, (O, C/G, KH, KW) weight, (N, O, Ho, Wo) output.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Context, Function, Tensor, is_grad_enabled
from ..kernels import conv as kernels
from ..kernels.windows import Pair, conv_out_size

__all__ = ["Conv2d", "Conv2dInputGrad", "Conv2dWeightGrad", "conv2d", "conv2d_input_grad", "conv2d_weight_grad",
           "conv_out_size"]  # conv_out_size: the formula functional and utils check shapes with


class Conv2d(Function):
    @staticmethod
    def forward(ctx: Context, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair,
                dilation: Pair, groups: int) -> np.ndarray:
        ctx.save_for_backward(x, w)
        ctx.columns = [] if ctx.needs_input_grad and ctx.needs_input_grad[1] else None  # filled if small
        return kernels.conv2d(x, w, b, stride, padding, dilation, groups, keep=ctx.columns)  # (N, O, Ho, Wo)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x, w = ctx.saved_tensors
        dw = None
        if ctx.needs_input_grad[1] and ctx.columns and not is_grad_enabled():
            # First order: dW joins no graph, so the kernel may start from the forward's columns.
            dw = Tensor(kernels.conv2d_weight_grad(x.data, grad.data, w.shape[2:], **ctx.attrs, kept=ctx.columns))
        elif ctx.needs_input_grad[1]:
            dw = conv2d_weight_grad(x, grad, w.shape[2:], **ctx.attrs)
        return (conv2d_input_grad(grad, w, x.shape[2:], **ctx.attrs) if ctx.needs_input_grad[0] else None, dw,
                grad.sum(axis=(0, 2, 3)) if ctx.needs_input_grad[2] else None)  # (N, O, Ho, Wo) -> (O,)


class Conv2dInputGrad(Function):
    """(g, w) -> dx: the transposed convolution, the VJP of conv2d with respect to its input."""

    @staticmethod
    def forward(ctx: Context, g: np.ndarray, w: np.ndarray, input_hw: Pair, stride: Pair, padding: Pair,
                dilation: Pair, groups: int) -> np.ndarray:
        ctx.save_for_backward(g, w)
        return kernels.conv2d_input_grad(g, w, input_hw, stride, padding, dilation, groups)  # (N, C, H, W)

    @staticmethod
    def backward(ctx: Context, u: Tensor) -> tuple[Tensor | None, Tensor | None]:
        g, w = ctx.saved_tensors
        params = {k: v for k, v in ctx.attrs.items() if k != "input_hw"}
        return (conv2d(u, w, **params) if ctx.needs_input_grad[0] else None,
                conv2d_weight_grad(u, g, w.shape[2:], **params) if ctx.needs_input_grad[1] else None)


class Conv2dWeightGrad(Function):
    """(x, g) -> dw: the VJP of conv2d with respect to its weight."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, g: np.ndarray, kernel_hw: Pair, stride: Pair, padding: Pair,
                dilation: Pair, groups: int) -> np.ndarray:
        ctx.save_for_backward(x, g)
        return kernels.conv2d_weight_grad(x, g, kernel_hw, stride, padding, dilation, groups)  # (O, C/G, KH, KW)

    @staticmethod
    def backward(ctx: Context, u: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, g = ctx.saved_tensors
        params = {k: v for k, v in ctx.attrs.items() if k != "kernel_hw"}
        return (conv2d_input_grad(g, u, x.shape[2:], **params) if ctx.needs_input_grad[0] else None,
                conv2d(x, u, **params) if ctx.needs_input_grad[1] else None)


def conv2d(x: Tensor, w: Tensor, stride: Pair, padding: Pair, dilation: Pair, groups: int,
           b: Tensor | None = None) -> Tensor:
    return Conv2d.apply(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv2d_input_grad(g: Tensor, w: Tensor, input_hw: Pair, **params: object) -> Tensor:
    return Conv2dInputGrad.apply(g, w, input_hw=tuple(input_hw), **params)


def conv2d_weight_grad(x: Tensor, g: Tensor, kernel_hw: Pair, **params: object) -> Tensor:
    return Conv2dWeightGrad.apply(x, g, kernel_hw=tuple(kernel_hw), **params)
