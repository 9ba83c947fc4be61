"""Layers, each a thin Module over `functional`: PyTorch's constructor arguments, parameter names,
weight layouts and default initialisation (Kaiming-uniform with a = sqrt(5): bound 1/sqrt(fan_in))."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .. import rng
from ..autograd import Tensor
from .module import Module, Parameter

IntOrPair = int | tuple[int, int]


def _positive(layer: str, **values: Any) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")


def _uniform(shape: tuple[int, ...], fan_in: int) -> Parameter:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default for both weights and biases, in float32."""
    bound = np.float32(1.0 / np.sqrt(fan_in))
    w = rng.generator().random(shape, dtype=np.float32)  # drawn in float32: VGG16's 138M weights build fast
    w *= 2 * bound
    w -= bound
    return Parameter(w)


class Conv2d(Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair, stride: IntOrPair = 1,
                 padding: IntOrPair = 0, dilation: IntOrPair = 1, groups: int = 1, bias: bool = True) -> None:
        _positive("Conv2d", in_channels=in_channels, out_channels=out_channels, groups=groups)
        self.kernel_size = F.as_pair(kernel_size, "kernel_size", "Conv2d", 1)
        self.stride = F.as_pair(stride, "stride", "Conv2d", 1)
        self.dilation = F.as_pair(dilation, "dilation", "Conv2d", 1)
        self.padding = F.as_pair(padding, "padding", "Conv2d", 0)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        fan_in = in_channels // groups * self.kernel_size[0] * self.kernel_size[1]
        self.weight = _uniform((out_channels, in_channels // groups, *self.kernel_size), fan_in)
        self.bias = _uniform((out_channels,), fan_in) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        s += f", padding={self.padding}" if self.padding != (0, 0) else ""
        s += f", dilation={self.dilation}" if self.dilation != (1, 1) else ""
        s += f", groups={self.groups}" if self.groups != 1 else ""
        return s + (", bias=False" if self.bias is None else "")


class Linear(Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        _positive("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = _uniform((out_features, in_features), in_features)
        self.bias = _uniform((out_features,), in_features) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _Pool2d(Module):
    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None, padding: IntOrPair = 0) -> None:
        layer = type(self).__name__
        F.as_pair(kernel_size, "kernel_size", layer, 1)
        F.as_pair(padding, "padding", layer, 0)
        if stride is not None:
            F.as_pair(stride, "stride", layer, 1)
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = kernel_size if stride is None else stride

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None, padding: IntOrPair = 0,
                 count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.count_include_pad)


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Flatten(Module):
    def __init__(self, start_dim: int = 1) -> None:
        self.start_dim = start_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim)


class LogSoftmax(Module):
    def __init__(self, dim: int = -1) -> None:
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return x.log_softmax(self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Dropout(Module):
    """Zero each element with probability p in training mode and scale the rest by 1/(1-p)."""

    def __init__(self, p: float = 0.5) -> None:
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        keep = rng.generator().random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64) >= self.p
        return x * Tensor._make((keep / (1 - self.p)).astype(x.dtype))

    def extra_repr(self) -> str:
        return f"p={self.p}"
