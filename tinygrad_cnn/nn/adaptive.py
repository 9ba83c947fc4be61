"""Adaptive average pooling: a fixed output size whatever the input size, as in PyTorch.

Output cell i along an axis averages the input window [floor(i * H / Ho), ceil((i + 1) * H / Ho)),
PyTorch's windows. An average over a rectangle is an average over rows followed by an average over
columns, so the whole op is two matrix products with constant averaging matrices,
y = A_h @ x @ A_w^T, and its gradient comes from MatMul's VJP: no hand-written backward.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Tensor
from .module import Module

IntOrPair = int | tuple[int, int]


def _output_pair(output_size: IntOrPair) -> tuple[int, int]:
    pair = (output_size, output_size) if isinstance(output_size, (int, np.integer)) else tuple(output_size) if (
        isinstance(output_size, (tuple, list))) else ()
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
                                 for v in pair):
        raise ValueError(f"adaptive_avg_pool2d: output_size must be a positive int or a pair of them, "
                         f"got {output_size!r}")
    return int(pair[0]), int(pair[1])


def averaging_matrix(in_size: int, out_size: int, dtype: np.dtype) -> np.ndarray:
    """(out_size, in_size): row i holds 1/len over PyTorch's window i of the input axis."""
    matrix = np.zeros((out_size, in_size), dtype=dtype)
    for i in range(out_size):
        start, end = i * in_size // out_size, -(-(i + 1) * in_size // out_size)  # floor, ceil
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


def adaptive_avg_pool2d(x: Tensor, output_size: IntOrPair) -> Tensor:
    """(N, C, H, W) -> (N, C, Ho, Wo), averaging PyTorch's adaptive windows."""
    out_hw = _output_pair(output_size)
    if x.ndim != 4 or x.dtype.kind != "f":
        raise ValueError(f"adaptive_avg_pool2d: expected a floating-point 4-D input (N, C, H, W), got shape "
                         f"{x.shape} and dtype {x.dtype}")
    if x.shape[2:] == out_hw:  # every window is one element: torchvision's models at 224x224 hit this
        return x
    rows = Tensor._make(averaging_matrix(x.shape[2], out_hw[0], x.dtype))        # (Ho, H)
    cols = Tensor._make(averaging_matrix(x.shape[3], out_hw[1], x.dtype).T)      # (W, Wo)
    return rows.matmul(x.matmul(cols))                                            # (N, C, Ho, Wo)


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size: IntOrPair) -> None:
        self.output_size = _output_pair(output_size)

    def forward(self, x: Tensor) -> Tensor:
        return adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
