"""2-D convolution as three primitives that are each other's VJPs.

  y  = conv2d(x, w) (+ b)        (N, C, H, W), (O, C/G, KH, KW) (, (O,)) -> (N, O, Ho, Wo)
  dx = conv2d_input_grad(g, w)   the transposed convolution: im2col's adjoint, col2im
  dw = conv2d_weight_grad(x, g)  correlation of the input with the output gradient

Without its bias, conv2d is linear in x and in w, so <g, conv2d(x, w)> = <conv2d_input_grad(g, w), x> =
<conv2d_weight_grad(x, g), w>. Differentiating each of these three bilinear forms gives the other
two, which is why every VJP below is one of the three ops and double backward works for all of them.
The bias is added inside conv2d's forward (as PyTorch does): its VJP is a sum over N, Ho and Wo.

All three go through the same im2col layout: per image, the (C/G * KH * KW, Ho * Wo) matrix of input
windows, so each conv is a batched GEMM (G, O/G, CKK) @ (N, G, CKK, P) per chunk of images; no loops
over pixels.
Shapes use P = Ho * Wo and CKK = C/G * KH * KW.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..autograd import Context, Function, Tensor
from ..runtime import threads as parallel

Pair = tuple[int, int]


def conv_out_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """floor((H + 2P - D(K-1) - 1) / S) + 1"""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _pad_hw(x: np.ndarray, padding: Pair, value: float = 0.0) -> np.ndarray:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def window_view(xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """(N, C, Hp, Wp) -> (N, C, KH, KW, Ho, Wo): every kernel window as a strided view (no copy)."""
    n, c = xp.shape[:2]
    sn, sc, sh, sw = xp.strides
    return as_strided(xp, (n, c, *kernel, *out_hw),
                      (sn, sc, sh * dilation[0], sw * dilation[1], sh * stride[0], sw * stride[1]),
                      writeable=False)


def im2col(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, groups: int) -> np.ndarray:
    """(N, C, H, W) -> (N, G, C/G * KH * KW, Ho * Wo), one contiguous copy."""
    n, c, h, w = x.shape
    out_hw = tuple(conv_out_size(s, k, st, p, d) for s, k, st, p, d in zip((h, w), kernel, stride, padding, dilation))
    xp = _pad_hw(x, padding)                                                  # (N, C, Hp, Wp)
    windows = window_view(xp, kernel, stride, dilation, out_hw)               # (N, C, KH, KW, Ho, Wo)
    return windows.reshape(n, groups, c // groups * kernel[0] * kernel[1], out_hw[0] * out_hw[1])


def col2im(cols: np.ndarray, input_hw: Pair, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair,
           out_hw: Pair) -> np.ndarray:
    """(N, C, KH, KW, Ho, Wo) -> (N, C, H, W): add every window back where it came from (im2col's adjoint)."""
    n, c = cols.shape[:2]
    (ho, wo), (sh, sw), (dh, dw) = out_hw, stride, dilation
    xp = np.zeros((n, c, input_hw[0] + 2 * padding[0], input_hw[1] + 2 * padding[1]), dtype=cols.dtype)
    # One strided slice per kernel offset: KH*KW vectorised adds (faster than np.add.at for wide outputs).
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            xp[:, :, i * dh: i * dh + sh * (ho - 1) + 1: sh, j * dw: j * dw + sw * (wo - 1) + 1: sw] += cols[:, :, i, j]
    ph, pw = padding
    return xp[:, :, ph: ph + input_hw[0], pw: pw + input_hw[1]] if ph or pw else xp


def _as_group_matrices(w: np.ndarray, groups: int) -> np.ndarray:
    """(O, C/G, KH, KW) -> (G, O/G, C/G * KH * KW)"""
    return w.reshape(groups, w.shape[0] // groups, -1)


def _columns_of_grad(g: np.ndarray, w: np.ndarray, groups: int) -> np.ndarray:
    """(N, O, Ho, Wo) -> (N, G, CKK, Ho * Wo): w^T @ g, the gradient of every im2col column."""
    n, o = g.shape[:2]
    w_t = _as_group_matrices(w, groups).transpose(0, 2, 1)                 # (G, CKK, O/G)
    return np.matmul(w_t, g.reshape(n, groups, o // groups, g.shape[2] * g.shape[3]))


def _input_grad_flat_shift(g: np.ndarray, w: np.ndarray, input_hw: Pair, padding: Pair, dilation: Pair,
                           groups: int) -> np.ndarray:
    """col2im for stride 1 with flat shifts. Widen each row of g to the padded input width Wp and
    flatten it: kernel offset (i, j) then adds w[:, :, i, j]^T @ g to the flattened padded input at a
    shift of i*dh*Wp + j*dw, one contiguous run. The widened columns are zero, so nothing they carry
    past a row's end is wrong. The KW column shifts go into the GEMM's operand (KW shifted copies of g),
    leaving KH row-shifted adds of a (C*KH)-row product instead of KH*KW adds of a (C*KH*KW)-row one:
    LeNet's conv2 input gradient went from 0.86 to 0.59 ms (benchmarks/kernel_variants.py)."""
    n, o, ho, wo = g.shape
    c_g, kh, kw = w.shape[1:]
    o_g = o // groups
    (dh, dw), (ph, pw) = dilation, padding
    hp, wp = input_hw[0] + 2 * ph, input_hw[1] + 2 * pw
    span = ho * wp + (kw - 1) * dw                 # a widened, flattened g with room for the largest shift
    shifted = np.zeros((n, groups, o_g, kw, span), dtype=g.dtype)          # (N, G, O/G, KW, span)
    shifted[:, :, :, 0, :ho * wp].reshape(n, groups, o_g, ho, wp)[..., :wo] = g.reshape(n, groups, o_g, ho, wo)
    for j in range(1, kw):
        shifted[:, :, :, j, j * dw:j * dw + ho * wp] = shifted[:, :, :, 0, :ho * wp]
    w_rows = (w.reshape(groups, o_g, c_g, kh, kw).transpose(0, 2, 3, 1, 4)
              .reshape(groups, c_g * kh, o_g * kw))                        # (G, C/G*KH, O/G*KW)
    rows = np.matmul(w_rows, shifted.reshape(n, groups, o_g * kw, span))  # (N, G, C/G*KH, span)
    rows = rows.reshape(n, groups * c_g, kh, span)                         # (N, C, KH, span)
    flat = np.zeros((n, groups * c_g, (kh - 1) * dh * wp + span), dtype=g.dtype)  # >= Hp*Wp: room for overhang
    for i in range(kh):
        flat[:, :, i * dh * wp:i * dh * wp + span] += rows[:, :, i]
    xp = flat[:, :, :hp * wp].reshape(n, groups * c_g, hp, wp)            # (N, C, Hp, Wp)
    return xp[:, :, ph:ph + input_hw[0], pw:pw + input_hw[1]]              # (N, C, H, W) view


# Images per GEMM batch. A chunk's im2col columns stay in cache while they are used: at batch 256 this
# made conv2d's forward and gradients 1.1-1.7x faster than one pass over the whole batch.
BATCH_CHUNK = 64


def _chunks(out: np.ndarray, ckk: int) -> list[slice]:
    """The batch in chunks of at most BATCH_CHUNK images, spread over the threads if the conv is big
    enough: `out` is the (N, O, Ho, Wo) output or output gradient, each element CKK multiply-adds."""
    return parallel.batch_parts(out.shape[0], BATCH_CHUNK, macs=out.size * ckk)


def _input_grad_col2im(g: np.ndarray, w: np.ndarray, input_hw: Pair, stride: Pair, padding: Pair,
                       dilation: Pair, groups: int) -> np.ndarray:
    n, _, ho, wo = g.shape
    cols = _columns_of_grad(g, w, groups)                                  # (N, G, CKK, P)
    cols = cols.reshape(n, w.shape[1] * groups, *w.shape[2:], ho, wo)      # (N, C, KH, KW, Ho, Wo)
    return col2im(cols, input_hw, w.shape[2:], stride, padding, dilation, (ho, wo))  # (N, C, H, W)


class Conv2d(Function):
    @staticmethod
    def forward(ctx: Context, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair,
                dilation: Pair, groups: int) -> np.ndarray:
        n, o = x.shape[0], w.shape[0]
        out_hw = _out_hw(x.shape[2:], w.shape[2:], stride, padding, dilation)
        dtype = np.result_type(x, w) if b is None else np.result_type(x, w, b)  # as a separate y + b would give
        y = np.empty((n, o, *out_hw), dtype=dtype)                         # (N, O, Ho, Wo)
        w_mat = _as_group_matrices(w, groups)                              # (G, O/G, CKK)
        b_col = None if b is None else b.reshape(groups, o // groups, 1)  # (G, O/G, 1)

        def chunk(part: slice) -> tuple[slice, np.ndarray]:
            cols = im2col(x[part], w.shape[2:], stride, padding, dilation, groups)  # (B, G, CKK, P)
            y_b = y[part].reshape(cols.shape[0], groups, o // groups, cols.shape[3])  # a view of y: (B, G, O/G, P)
            np.matmul(w_mat, cols, out=y_b)
            if b_col is not None:  # while the chunk is in cache: a separate op would be another pass over y
                y_b += b_col
            return part, cols

        # The weight gradient needs the same columns: keep them (per chunk) instead of rebuilding them.
        ctx.cols = parallel.map_parts(chunk, _chunks(y, w[0].size))
        ctx.save_for_backward(x, w)
        return y

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x, w = ctx.saved_tensors
        return (conv2d_input_grad(grad, w, x.shape[2:], **ctx.attrs) if ctx.needs_input_grad[0] else None,
                conv2d_weight_grad(x, grad, w.shape[2:], _cols=ctx.cols, **ctx.attrs)
                if ctx.needs_input_grad[1] else None,
                grad.sum(axis=(0, 2, 3)) if ctx.needs_input_grad[2] else None)  # (N, O, Ho, Wo) -> (O,)


class Conv2dInputGrad(Function):
    """The transposed convolution (g, w) -> dx: the VJP of conv2d with respect to its input."""

    @staticmethod
    def forward(ctx: Context, g: np.ndarray, w: np.ndarray, input_hw: Pair, stride: Pair, padding: Pair,
                dilation: Pair, groups: int) -> np.ndarray:
        ctx.save_for_backward(g, w)
        dx = np.empty((g.shape[0], w.shape[1] * groups, *input_hw), dtype=np.result_type(g, w))  # (N, C, H, W)

        def chunk(b: slice) -> None:
            if stride == (1, 1):
                dx[b] = _input_grad_flat_shift(g[b], w, input_hw, padding, dilation, groups)
            else:
                dx[b] = _input_grad_col2im(g[b], w, input_hw, stride, padding, dilation, groups)

        parallel.map_parts(chunk, _chunks(g, w[0].size))
        return dx

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
                dilation: Pair, groups: int, _cols: list[tuple[slice, np.ndarray]] | None = None) -> np.ndarray:
        o, c = g.shape[1], x.shape[1]
        ckk = c // groups * kernel_hw[0] * kernel_hw[1]
        ctx.save_for_backward(x, g)

        def chunk(b: slice, cols: np.ndarray | None = None) -> np.ndarray:
            if cols is None:
                cols = im2col(x[b], kernel_hw, stride, padding, dilation, groups)  # (B, G, CKK, P)
            g_mat = g[b].reshape(cols.shape[0], groups, o // groups, cols.shape[3])  # (B, G, O/G, P)
            # dw^T = cols @ g^T rather than dw = g @ cols^T: with the big operand (the columns) row-major,
            # BLAS ran LeNet's conv2 weight gradient 1.7x faster (benchmarks/kernel_variants.py).
            return np.matmul(cols, g_mat.transpose(0, 1, 3, 2)).sum(axis=0)  # (B, G, CKK, O/G) -> (G, CKK, O/G)

        if _cols is None:  # our own chunks, or forward's when it kept its columns
            parts = parallel.map_parts(chunk, _chunks(g, ckk))
        else:
            parts = parallel.map_parts(lambda bc: chunk(*bc), _cols)
        dw_t = sum(parts[1:], parts[0])                                         # (G, CKK, O/G)
        return dw_t.transpose(0, 2, 1).reshape(o, c // groups, *kernel_hw)      # (O, C/G, KH, KW)

    @staticmethod
    def backward(ctx: Context, u: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, g = ctx.saved_tensors
        params = {k: v for k, v in ctx.attrs.items() if k not in ("kernel_hw", "_cols")}
        return (conv2d_input_grad(g, u, x.shape[2:], **params) if ctx.needs_input_grad[0] else None,
                conv2d(x, u, **params) if ctx.needs_input_grad[1] else None)


def _out_hw(input_hw: Pair, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair) -> Pair:
    return tuple(conv_out_size(*a) for a in zip(input_hw, kernel, stride, padding, dilation))


def conv2d(x: Tensor, w: Tensor, stride: Pair, padding: Pair, dilation: Pair, groups: int,
           b: Tensor | None = None) -> Tensor:
    return Conv2d.apply(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv2d_input_grad(g: Tensor, w: Tensor, input_hw: Pair, **params: object) -> Tensor:
    return Conv2dInputGrad.apply(g, w, input_hw=tuple(input_hw), **params)


def conv2d_weight_grad(x: Tensor, g: Tensor, kernel_hw: Pair, **params: object) -> Tensor:
    return Conv2dWeightGrad.apply(x, g, kernel_hw=tuple(kernel_hw), **params)
