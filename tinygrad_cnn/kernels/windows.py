"""Sliding-window geometry shared by the convolution and pooling kernels."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

Pair = tuple[int, int]


def conv_out_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """floor((H + 2P - D(K-1) - 1) / S) + 1"""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def out_hw(input_hw: Pair, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair = (1, 1)) -> Pair:
    """(Ho, Wo) of a window op on an (H, W) input."""
    return tuple(conv_out_size(*a) for a in zip(input_hw, kernel, stride, padding, dilation))


def pad_hw(x: np.ndarray, padding: Pair, value: float = 0.0) -> np.ndarray:
    """(N, C, H, W) -> (N, C, H + 2PH, W + 2PW); x itself without padding."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def crop_hw(xp: np.ndarray, input_hw: Pair, padding: Pair) -> np.ndarray:
    """pad_hw's adjoint: (N, C, Hp, Wp) -> (N, C, H, W), the padding cut off (a view)."""
    (ph, pw), (h, w) = padding, input_hw
    return xp[:, :, ph: ph + h, pw: pw + w] if ph or pw else xp


def window_view(xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out: Pair) -> np.ndarray:
    """(N, C, Hp, Wp) -> (N, C, KH, KW, Ho, Wo): every kernel window as a strided view (no copy)."""
    n, c = xp.shape[:2]
    sn, sc, sh, sw = xp.strides
    return as_strided(xp, (n, c, *kernel, *out),
                      (sn, sc, sh * dilation[0], sw * dilation[1], sh * stride[0], sw * stride[1]),
                      writeable=False)


def col2im(cols: np.ndarray, input_hw: Pair, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair) -> np.ndarray:
    """window_view's adjoint: (N, C, KH, KW, Ho, Wo) -> (N, C, H, W), every window added back where it
    came from, one strided slice per kernel offset (KH*KW vectorised adds)."""
    n, c, kh, kw, ho, wo = cols.shape
    (sh, sw), (dh, dw) = stride, dilation
    xp = np.zeros((n, c, input_hw[0] + 2 * padding[0], input_hw[1] + 2 * padding[1]), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xp[:, :, i * dh: i * dh + sh * (ho - 1) + 1: sh, j * dw: j * dw + sw * (wo - 1) + 1: sw] += cols[:, :, i, j]
    return crop_hw(xp, input_hw, padding)
