"""Fast convolution kernels: the reference kernels' results, computed in cache-sized chunks of the batch.

Every kernel works through the batch a chunk of images at a time (the chunk's columns stay in cache
while the GEMM reads them) and hands the chunks to the threads of `parallel`. How each layer shape is
computed is decided once, in `plan`, and cached, as cuDNN's heuristics do:

- columns (B, G, CKK, P) and one batched GEMM per image, whose output lands in NCHW as it is; for 1x1
  convolutions with stride 1 and no padding the columns are the input itself. (One GEMM per chunk over
  (G, CKK, B*P) columns measured no faster, and its output needs a transpose: docs/performance.md.)
- chunks of as many images as fit their columns in CHUNK_BYTES.
- flat shifts (stride 1): each image's padded planes are flattened, so a kernel offset's columns are
  one contiguous run of the input (a fast copy instead of a strided gather), at the price of Wp - Wo
  junk columns per output row; and the input gradient is KH row-shifted adds of one GEMM over KW
  column-shifted copies of g, with no col2im. Other strides use window views and col2im.

Shapes: B images in a chunk, P = Ho * Wo, CKK = C/G * KH * KW.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import parallel
from .windows import Pair, col2im, crop_hw, out_hw, pad_hw, window_view

# A chunk's columns are kept under this many bytes: small enough to stay in cache while the GEMM reads
# them, big enough that a chunk's fixed costs (a dozen numpy calls) stay small. docs/performance.md
# compares budgets ("Chunk budget").
CHUNK_BYTES = 2 << 20

# Small layers are computed the way LeNet-sized convolutions are fastest: the whole batch (split over the
# threads only) with window-view columns, no junk columns, which the forward keeps for the weight gradient.
# A layer is small when its columns for the batch take at most this many bytes: a bound on what a conv keeps
# for backward beyond x and w (the CIFAR-style network's first conv is over it; docs/performance.md).
KEEP_COLUMNS_BYTES = 6 << 20

# What the forward of a small layer keeps: each thread's part of the batch, its columns and their width Wo.
KeptColumns = list[tuple[slice, np.ndarray, int]]


@dataclass(frozen=True)
class ConvShape:
    """A convolution layer's geometry, the key of the plan cache."""

    channels: int
    out_channels: int
    input_hw: Pair
    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    groups: int

    @functools.cached_property  # read several times per kernel call
    def out_hw(self) -> Pair:
        return out_hw(self.input_hw, self.kernel, self.stride, self.padding, self.dilation)

    @functools.cached_property  # read several times per kernel call
    def ckk(self) -> int:
        return self.channels // self.groups * self.kernel[0] * self.kernel[1]

    @functools.cached_property  # read several times per kernel call
    def pixels(self) -> int:
        return self.out_hw[0] * self.out_hw[1]

    def column_bytes(self, itemsize: int) -> int:
        """The size of one image's im2col columns."""
        return self.groups * self.ckk * self.pixels * itemsize

    @property
    def pointwise(self) -> bool:
        """1x1, stride 1, no padding: the columns are the input itself."""
        return self.kernel == (1, 1) and self.stride == (1, 1) and self.padding == (0, 0)


@dataclass(frozen=True)
class ConvPlan:
    chunk: int          # images per chunk
    flat: bool          # stride 1: flat-shift columns and input gradient


@functools.cache
def plan(shape: ConvShape, itemsize: int, chunk_bytes: int) -> ConvPlan:
    """How to compute a layer of this shape: the one place where kernels are chosen."""
    chunk = max(1, chunk_bytes // shape.column_bytes(itemsize))
    return ConvPlan(chunk, flat=shape.stride == (1, 1) and not shape.pointwise)


def _macs(shape: ConvShape, n: int) -> int:
    return n * shape.out_channels * shape.pixels * shape.ckk


def _plan_and_parts(shape: ConvShape, n: int, dtype: np.dtype) -> tuple[ConvPlan, list[slice]]:
    p = plan(shape, np.dtype(dtype).itemsize, CHUNK_BYTES)
    return p, parallel.batch_parts(n, p.chunk, _macs(shape, n))


def _columns(x: np.ndarray, s: ConvShape, p: ConvPlan) -> tuple[np.ndarray, int]:
    """A chunk's input windows, one column per output pixel, (B, C, H, W) -> (B, G, CKK, Ho*Wc), and Wc.
    Wc is Wo, or with flat shifts the padded width Wp: each kernel offset's columns are then one
    contiguous run of the flattened padded input, and the Wp - Wo extra columns of each row are junk
    that the caller crops (forward) or multiplies by zero (dW)."""
    b, c = x.shape[:2]
    (ho, wo), (kh, kw), (dh, dw) = s.out_hw, s.kernel, s.dilation
    if p.flat:
        hp, wc = s.input_hw[0] + 2 * s.padding[0], s.input_hw[1] + 2 * s.padding[1]
        flat = np.zeros((b, c, hp * wc + (kw - 1) * dw), dtype=x.dtype)  # (B, C, Hp*Wp + overhang of the last shift)
        crop_hw(flat[:, :, :hp * wc].reshape(b, c, hp, wc), s.input_hw, s.padding)[...] = x
        sb, sc, e = flat.strides
        windows = as_strided(flat, (b, c, kh, kw, ho, wc), (sb, sc, dh * wc * e, dw * e, wc * e, e),
                             writeable=False)                                   # (B, C, KH, KW, Ho, Wp)
    else:
        wc = wo
        windows = window_view(pad_hw(x, s.padding), s.kernel, s.stride, s.dilation, s.out_hw)  # (B, C, KH, KW, Ho, Wo)
    return windows.reshape(b, s.groups, s.ckk, ho * wc), wc                   # a view when pointwise, else a copy


def _grad_matrix(g: np.ndarray, s: ConvShape, wc: int) -> np.ndarray:
    """A chunk's output gradient with its pixels laid out as `_columns` lays them out, zero in the junk
    columns: (B, O, Ho, Wo) -> (B, G, O/G, Ho*Wc)."""
    b, (ho, wo), og = g.shape[0], s.out_hw, s.out_channels // s.groups
    g5 = g.reshape(b, s.groups, og, ho, wo)                                   # (B, G, O/G, Ho, Wo)
    if wc == wo:
        return g5.reshape(b, s.groups, og, ho * wo)
    wide = np.zeros((b, s.groups, og, ho, wc), dtype=g.dtype)                 # (B, G, O/G, Ho, Wc)
    wide[..., :wo] = g5
    return wide.reshape(b, s.groups, og, ho * wc)


def _shape(x_or_dx_shape: tuple[int, ...], w: np.ndarray, stride: Pair, padding: Pair, dilation: Pair,
           groups: int) -> ConvShape:
    return ConvShape(x_or_dx_shape[1], w.shape[0], tuple(x_or_dx_shape[2:]), tuple(w.shape[2:]), stride, padding,
                     dilation, groups)


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair, dilation: Pair,
           groups: int, keep: KeptColumns | None = None) -> np.ndarray:
    """reference.conv2d: (N, C, H, W), (O, C/G, KH, KW), (O,) -> (N, O, Ho, Wo). Given a `keep` list (the
    weight gradient will be wanted), a small layer's columns are added to it for `conv2d_weight_grad`."""
    s = _shape(x.shape, w, stride, padding, dilation, groups)
    n, o, og, (ho, wo) = x.shape[0], s.out_channels, s.out_channels // groups, s.out_hw
    dtype = np.result_type(x, w) if b is None else np.result_type(x, w, b)  # as a separate y + b would give
    y = np.empty((n, o, ho, wo), dtype=dtype)                              # (N, O, Ho, Wo)
    w_mat = w.reshape(groups, og, s.ckk)                                    # (G, O/G, CKK)
    b_col = None if b is None else b.reshape(groups, og, 1, 1)             # (G, O/G, 1, 1)
    keeping = keep is not None and n * s.column_bytes(x.itemsize) <= KEEP_COLUMNS_BYTES
    if keeping:
        p, parts = ConvPlan(max(1, n), flat=False), parallel.batch_parts(n, max(1, n), _macs(s, n))
    else:
        p, parts = _plan_and_parts(s, n, dtype)

    def chunk(part: slice) -> tuple[slice, np.ndarray, int] | None:
        cols, wc = _columns(x[part], s, p)
        y_b = y[part].reshape(-1, groups, og, ho, wo)                       # a view of y: (B, G, O/G, Ho, Wo)
        if wc == wo:                                                        # the product lands in y as it is
            np.matmul(w_mat, cols, out=y_b.reshape(cols.shape[0], groups, og, ho * wo))
            if b_col is not None:
                y_b += b_col                                                # while the chunk is in cache
        else:
            prod = np.matmul(w_mat, cols).reshape(-1, groups, og, ho, wc)  # (B, G, O/G, Ho, Wp)
            if b_col is None:
                np.copyto(y_b, prod[..., :wo])                              # the junk columns cropped
            else:
                np.add(prod[..., :wo], b_col, out=y_b)                      # and the bias added in the same pass
        return (part, cols, wc) if keeping else None                        # else freed chunk by chunk

    kept = parallel.map_parts(chunk, parts)
    if keeping:
        keep.extend(kept)
    return y


def conv2d_weight_grad(x: np.ndarray, g: np.ndarray, kernel_hw: Pair, stride: Pair, padding: Pair,
                       dilation: Pair, groups: int, kept: KeptColumns | None = None) -> np.ndarray:
    """reference.conv2d_weight_grad: (N, C, H, W), (N, O, Ho, Wo) -> (O, C/G, KH, KW), from the columns that
    conv2d kept (`kept`, if not empty), else from columns built here a chunk at a time."""
    n, o = g.shape[:2]
    s = ConvShape(x.shape[1], o, tuple(x.shape[2:]), tuple(kernel_hw), stride, padding, dilation, groups)
    if kept:  # window-view columns: no junk columns
        dw_t = _weight_grad_t(x, g, s, None, kept)                          # (G, CKK, O/G)
    else:
        p, parts = _plan_and_parts(s, n, np.result_type(x, g))
        dw_t = _weight_grad_t(x, g, s, p, parts)
        if p.flat and not np.isfinite(dw_t).all():
            # The junk columns are multiplied by zero: an inf/NaN input pixel there makes NaN * 0 in dW, which
            # PyTorch (reading no junk) does not have. Checking the small result costs nothing when all is finite.
            dw_t = _weight_grad_t(x, g, s, ConvPlan(p.chunk, flat=False), parts)
    return dw_t.transpose(0, 2, 1).reshape(o, s.channels // groups, *s.kernel)  # (O, C/G, KH, KW)


def _weight_grad_t(x: np.ndarray, g: np.ndarray, s: ConvShape, p: ConvPlan | None,
                   parts: list[slice] | KeptColumns) -> np.ndarray:
    """dW^T = sum over images of cols g^T, (G, CKK, O/G), over slices of the batch whose columns are built
    here with plan p, or over kept columns. BLAS is faster with the big operand row-major."""

    def chunk(part: slice | tuple[slice, np.ndarray, int]) -> np.ndarray:
        if isinstance(part, tuple):
            part, cols, wc = part
        else:
            cols, wc = _columns(x[part], s, p)                              # (B, G, CKK, Ho*Wc)
        g_mat = _grad_matrix(g[part], s, wc)                                # (B, G, O/G, Ho*Wc)
        return np.matmul(cols, g_mat.transpose(0, 1, 3, 2)).sum(axis=0)    # (B, G, CKK, O/G) -> (G, CKK, O/G)

    dw_t = parallel.map_parts(chunk, parts)
    return sum(dw_t[1:], dw_t[0])


def conv2d_input_grad(g: np.ndarray, w: np.ndarray, input_hw: Pair, stride: Pair, padding: Pair, dilation: Pair,
                      groups: int) -> np.ndarray:
    """reference.conv2d_input_grad: (N, O, Ho, Wo), (O, C/G, KH, KW) -> (N, C, H, W)"""
    n = g.shape[0]
    s = _shape((n, w.shape[1] * groups, *input_hw), w, stride, padding, dilation, groups)
    dx = np.empty((n, s.channels, *input_hw), dtype=np.result_type(g, w))  # (N, C, H, W)
    p, parts = _plan_and_parts(s, n, dx.dtype)
    # The flat shifts multiply w by the zero junk columns: an inf/NaN weight would spread NaN (0 * inf).
    kernel = _input_grad_flat_shift if p.flat and np.isfinite(w).all() else _input_grad_col2im

    def chunk(part: slice) -> None:
        dx[part] = kernel(g[part], w, s)

    parallel.map_parts(chunk, parts)
    return dx


def _input_grad_col2im(g: np.ndarray, w: np.ndarray, s: ConvShape) -> np.ndarray:
    """(B, O, Ho, Wo) -> (B, C, H, W): the gradient of every column, W^T g, added back by col2im."""
    b, o = g.shape[:2]
    w_t = w.reshape(s.groups, o // s.groups, s.ckk).transpose(0, 2, 1)    # (G, CKK, O/G)
    cols = np.matmul(w_t, g.reshape(b, s.groups, o // s.groups, s.pixels))  # (B, G, CKK, P)
    if s.pointwise:
        return cols.reshape(b, s.channels, *s.input_hw)                     # each column is one input pixel
    cols = cols.reshape(b, s.channels, *s.kernel, *s.out_hw)                # (B, C, KH, KW, Ho, Wo)
    return col2im(cols, s.input_hw, s.kernel, s.stride, s.padding, s.dilation)


def _input_grad_flat_shift(g: np.ndarray, w: np.ndarray, s: ConvShape) -> np.ndarray:
    """col2im for stride 1 with flat shifts. Widen each row of g to the padded input width Wp and
    flatten it: kernel offset (i, j) then adds w[:, :, i, j]^T @ g to the flattened padded input at a
    shift of i*dh*Wp + j*dw, one contiguous run. The widened columns are zero, so nothing they carry
    past a row's end is wrong. The KW column shifts go into the GEMM's operand (KW shifted copies of g),
    leaving KH row-shifted adds of a (C*KH)-row product instead of KH*KW adds of a (C*KH*KW)-row one."""
    n, o, ho, wo = g.shape
    groups, (kh, kw), (dh, dw) = s.groups, s.kernel, s.dilation
    c_g, o_g = s.channels // groups, o // groups
    hp, wp = s.input_hw[0] + 2 * s.padding[0], s.input_hw[1] + 2 * s.padding[1]
    span = ho * wp + (kw - 1) * dw                 # a widened, flattened g with room for the largest shift
    shifted = np.zeros((n, groups, o_g, kw, span), dtype=g.dtype)          # (B, G, O/G, KW, span)
    shifted[:, :, :, 0, :ho * wp].reshape(n, groups, o_g, ho, wp)[..., :wo] = g.reshape(n, groups, o_g, ho, wo)
    for j in range(1, kw):
        shifted[:, :, :, j, j * dw:j * dw + ho * wp] = shifted[:, :, :, 0, :ho * wp]
    w_rows = (w.reshape(groups, o_g, c_g, kh, kw).transpose(0, 2, 3, 1, 4)
              .reshape(groups, c_g * kh, o_g * kw))                        # (G, C/G*KH, O/G*KW)
    rows = np.matmul(w_rows, shifted.reshape(n, groups, o_g * kw, span))  # (B, G, C/G*KH, span)
    rows = rows.reshape(n, s.channels, kh, span)                           # (B, C, KH, span)
    flat = np.zeros((n, s.channels, (kh - 1) * dh * wp + span), dtype=g.dtype)  # >= Hp*Wp: room for overhang
    for i in range(kh):
        flat[:, :, i * dh * wp:i * dh * wp + span] += rows[:, :, i]
    xp = flat[:, :, :hp * wp].reshape(n, s.channels, hp, wp)               # (B, C, Hp, Wp)
    return crop_hw(xp, s.input_hw, s.padding)                              # (B, C, H, W) view
