"""Reference kernels: the definitions of convolution and pooling, as plainly as numpy says them.

Slow on purpose (whole batch at once, einsum, no layout tricks). The fast kernels in this package are
tested against these in float64 (tests/test_kernels.py), with the same arguments and results, except
that the two max-pool implementations record their winners in their own formats.
Shapes: P = Ho * Wo, CKK = C/G * KH * KW.
"""

from __future__ import annotations

import numpy as np

from .windows import Pair, col2im, out_hw, pad_hw, window_view


def im2col(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, groups: int) -> np.ndarray:
    """(N, C, H, W) -> (N, G, CKK, P): every input window as a column."""
    n, c = x.shape[:2]
    ho, wo = out_hw(x.shape[2:], kernel, stride, padding, dilation)
    windows = window_view(pad_hw(x, padding), kernel, stride, dilation, (ho, wo))  # (N, C, KH, KW, Ho, Wo)
    return windows.reshape(n, groups, c // groups * kernel[0] * kernel[1], ho * wo)


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair, dilation: Pair,
           groups: int) -> np.ndarray:
    """y[n, o] = W[o] . window(x[n]) + b[o]: (N, C, H, W), (O, C/G, KH, KW), (O,) -> (N, O, Ho, Wo)"""
    n, o = x.shape[0], w.shape[0]
    ho, wo = out_hw(x.shape[2:], w.shape[2:], stride, padding, dilation)
    cols = im2col(x, w.shape[2:], stride, padding, dilation, groups)             # (N, G, CKK, P)
    y = np.einsum("gok,ngkp->ngop", w.reshape(groups, o // groups, -1), cols)    # (N, G, O/G, P)
    y = y.reshape(n, o, ho, wo)                                                  # (N, O, Ho, Wo)
    return y if b is None else y + b.reshape(o, 1, 1)


def conv2d_input_grad(g: np.ndarray, w: np.ndarray, input_hw: Pair, stride: Pair, padding: Pair, dilation: Pair,
                      groups: int) -> np.ndarray:
    """dx = col2im(W^T g): (N, O, Ho, Wo), (O, C/G, KH, KW) -> (N, C, H, W)"""
    n, o, ho, wo = g.shape
    c_g, kh, kw = w.shape[1:]
    g_mat = g.reshape(n, groups, o // groups, ho * wo)                           # (N, G, O/G, P)
    cols = np.einsum("gok,ngop->ngkp", w.reshape(groups, o // groups, -1), g_mat)  # (N, G, CKK, P)
    return col2im(cols.reshape(n, groups * c_g, kh, kw, ho, wo), input_hw, (kh, kw), stride, padding, dilation)


def conv2d_weight_grad(x: np.ndarray, g: np.ndarray, kernel_hw: Pair, stride: Pair, padding: Pair, dilation: Pair,
                       groups: int) -> np.ndarray:
    """dW = sum over images of g cols^T: (N, C, H, W), (N, O, Ho, Wo) -> (O, C/G, KH, KW)"""
    n, o = g.shape[:2]
    cols = im2col(x, kernel_hw, stride, padding, dilation, groups)               # (N, G, CKK, P)
    g_mat = g.reshape(n, groups, o // groups, -1)                                # (N, G, O/G, P)
    dw = np.einsum("ngop,ngkp->gok", g_mat, cols)                                # (G, O/G, CKK)
    return dw.reshape(o, x.shape[1] // groups, *kernel_hw)


def _windows(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, fill: float) -> np.ndarray:
    """(N, C, H, W) -> (N, C, KH * KW, Ho, Wo): each pooling window's elements, the padding `fill`."""
    n, c = x.shape[:2]
    ho, wo = out_hw(x.shape[2:], kernel, stride, padding)
    windows = window_view(pad_hw(x, padding, fill), kernel, stride, (1, 1), (ho, wo))  # (N, C, KH, KW, Ho, Wo)
    return windows.reshape(n, c, kernel[0] * kernel[1], ho, wo)


def max_pool2d(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, H, W) -> y (N, C, Ho, Wo), and each window's winner: the row-major index in the window of
    its first maximum (PyTorch's rule for ties), of its last NaN if it holds one, and of its first real
    element if all of them are -inf (PyTorch's rules: the padding never wins), (N, C, Ho, Wo)."""
    windows = _windows(x, kernel, stride, padding, -np.inf)                      # (N, C, KK, Ho, Wo)
    real = _windows(np.ones_like(x, dtype=bool), kernel, stride, padding, False)   # (N, C, KK, Ho, Wo)
    kk = kernel[0] * kernel[1]
    nan = np.isnan(windows)
    last_nan = kk - 1 - nan[:, :, ::-1].argmax(axis=2)
    winner = np.where(windows.max(axis=2) == -np.inf, real.argmax(axis=2), windows.argmax(axis=2))
    winner = np.where(nan.any(axis=2), last_nan, winner)                         # (N, C, Ho, Wo)
    return np.take_along_axis(windows, winner[:, :, None], axis=2)[:, :, 0], winner


def max_pool2d_scatter(grad: np.ndarray, winner: np.ndarray, input_hw: Pair, kernel: Pair, stride: Pair,
                       padding: Pair) -> np.ndarray:
    """max pool's VJP: (N, C, Ho, Wo) -> (N, C, H, W), each window's gradient added at its winner."""
    n, c, ho, wo = grad.shape
    one_hot = winner[:, :, None] == np.arange(kernel[0] * kernel[1])[:, None, None]  # (N, C, KK, Ho, Wo)
    cols = (one_hot * grad[:, :, None]).reshape(n, c, *kernel, ho, wo)               # (N, C, KH, KW, Ho, Wo)
    return col2im(cols, input_hw, kernel, stride, padding, (1, 1))


def max_pool2d_gather(u: np.ndarray, winner: np.ndarray, kernel: Pair, stride: Pair, padding: Pair) -> np.ndarray:
    """The scatter's adjoint: (N, C, H, W) -> (N, C, Ho, Wo), each window read at its winner."""
    windows = _windows(u, kernel, stride, padding, 0.0)                          # (N, C, KK, Ho, Wo)
    return np.take_along_axis(windows, winner[:, :, None], axis=2)[:, :, 0]


def avg_pool_divisor(input_hw: Pair, kernel: Pair, stride: Pair, padding: Pair, count_include_pad: bool,
                     dtype: np.dtype) -> np.ndarray:
    """How many elements each window averages: KH*KW, or the (Ho, Wo) counts of non-padding elements."""
    if count_include_pad or padding == (0, 0):
        return np.asarray(kernel[0] * kernel[1], dtype=dtype)
    return _windows(np.ones((1, 1, *input_hw), dtype=dtype), kernel, stride, padding, 0.0).sum(axis=2)[0, 0]


def avg_pool2d(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, count_include_pad: bool) -> np.ndarray:
    """(N, C, H, W) -> (N, C, Ho, Wo): each window's mean."""
    total = _windows(x, kernel, stride, padding, 0.0).sum(axis=2)                # (N, C, Ho, Wo)
    return total / avg_pool_divisor(x.shape[2:], kernel, stride, padding, count_include_pad, x.dtype)


def avg_pool2d_scatter(grad: np.ndarray, input_hw: Pair, kernel: Pair, stride: Pair, padding: Pair,
                       count_include_pad: bool) -> np.ndarray:
    """avg pool's VJP (its transpose): (N, C, Ho, Wo) -> (N, C, H, W), each window's gradient spread evenly."""
    n, c, ho, wo = grad.shape
    share = grad / avg_pool_divisor(input_hw, kernel, stride, padding, count_include_pad, grad.dtype)
    cols = np.broadcast_to(share[:, :, None, None], (n, c, *kernel, ho, wo))     # (N, C, KH, KW, Ho, Wo)
    return col2im(cols, input_hw, kernel, stride, padding, (1, 1))
