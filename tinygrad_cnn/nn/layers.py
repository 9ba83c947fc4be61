"""Convolution, linear and reshaping layers, each a thin Module over `functional`: PyTorch's constructor
arguments, parameter names, weight layouts and default initialisation (Kaiming-uniform with a = sqrt(5):
bound 1/sqrt(fan_in))."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import devices, factories, rng
from .. import functional as F
from ..autograd import Tensor
from .module import Module, Parameter

IntOrPair = int | tuple[int, int]
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _positive(layer: str, **values: Any) -> None:
    for name, value in values.items():
        F.positive_int(value, name, layer)


def _uniform(shape: tuple[int, ...], fan_in: int, dtype: np.dtype | None = None) -> Parameter:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default for both weights and biases, drawn in float32
    (VGG16's 138M weights build fast) and given `dtype` if one was asked for."""
    bound = np.float32(1.0 / np.sqrt(fan_in))
    w = rng.generator().random(shape, dtype=np.float32)
    w *= 2 * bound
    w -= bound
    return Parameter(w if dtype is None or dtype == np.float32 else w.astype(dtype))


def factory_dtype(layer: str, device: Any, dtype: Any) -> np.dtype | None:
    """The `device` (the CPU, or a clear error) and `dtype` (None: float32) arguments of a layer with parameters."""
    devices.resolve(device, layer)
    return factories.as_dtype(dtype, layer)


class Conv2d(Module):
    """padding: an int, a pair, 'valid' or 'same' (stride 1); padding_mode 'zeros' (the default), 'reflect',
    'replicate' or 'circular' (the input is padded with F.pad first)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair, stride: IntOrPair = 1,
                 padding: IntOrPair | str = 0, dilation: IntOrPair = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        dtype = factory_dtype("Conv2d", device, dtype)
        _positive("Conv2d", in_channels=in_channels, out_channels=out_channels, groups=groups)
        self.kernel_size = F.as_pair(kernel_size, "kernel_size", "Conv2d", 1)
        self.stride = F.as_pair(stride, "stride", "Conv2d", 1)
        self.dilation = F.as_pair(dilation, "dilation", "Conv2d", 1)
        sides = F._conv_padding("Conv2d", padding, self.kernel_size, self.stride, self.dilation)
        self.padding = padding if sides is not None else F.as_pair(padding, "padding", "Conv2d", 0)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"Conv2d: padding_mode must be one of {list(PADDING_MODES)}, but got "
                             f"padding_mode={padding_mode!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.padding_mode = padding_mode
        # F.pad's widths for the non-zero modes: (left, right, top, bottom)
        (top, bottom), (left, right) = sides if sides is not None else ((self.padding[0],) * 2, (self.padding[1],) * 2)
        self._reversed_padding_repeated_twice = (left, right, top, bottom)
        fan_in = in_channels // groups * self.kernel_size[0] * self.kernel_size[1]
        self.weight = _uniform((out_channels, in_channels // groups, *self.kernel_size), fan_in, dtype)
        self.bias = _uniform((out_channels,), fan_in, dtype) if bias else None

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002 - PyTorch's argument name
        if self.padding_mode != "zeros":
            padded = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return F.conv2d(padded, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        s += f", padding={self.padding}" if self.padding != (0, 0) else ""
        s += f", dilation={self.dilation}" if self.dilation != (1, 1) else ""
        s += f", groups={self.groups}" if self.groups != 1 else ""
        s += ", bias=False" if self.bias is None else ""
        return s + (f", padding_mode={self.padding_mode}" if self.padding_mode != "zeros" else "")


class ConvTranspose2d(Module):
    """The transposed convolution (F.conv_transpose2d): weight (in_channels, out_channels/groups, KH, KW),
    initialised as PyTorch (fan_in = out_channels/groups * KH * KW). forward takes an optional output_size
    that picks the output_padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair, stride: IntOrPair = 1,
                 padding: IntOrPair = 0, output_padding: IntOrPair = 0, groups: int = 1, bias: bool = True,
                 dilation: IntOrPair = 1, padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        layer = "ConvTranspose2d"
        dtype = factory_dtype(layer, device, dtype)
        _positive(layer, in_channels=in_channels, out_channels=out_channels, groups=groups)
        self.kernel_size = F.as_pair(kernel_size, "kernel_size", layer, 1)
        self.stride = F.as_pair(stride, "stride", layer, 1)
        self.padding = F.as_pair(padding, "padding", layer, 0)
        self.output_padding = F.as_pair(output_padding, "output_padding", layer, 0)
        self.dilation = F.as_pair(dilation, "dilation", layer, 1)
        if padding_mode != "zeros":
            raise ValueError(f'{layer}: only "zeros" padding mode is supported, got {padding_mode!r}')
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{layer}: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        self.in_channels, self.out_channels, self.groups, self.padding_mode = in_channels, out_channels, groups, \
            padding_mode
        fan_in = out_channels // groups * self.kernel_size[0] * self.kernel_size[1]
        self.weight = _uniform((in_channels, out_channels // groups, *self.kernel_size), fan_in, dtype)
        self.bias = _uniform((out_channels,), fan_in, dtype) if bias else None

    def _output_padding(self, x: Tensor, output_size: Any) -> tuple[int, int]:
        if output_size is None:
            return self.output_padding
        size = tuple(int(s) for s in output_size)[-2:] if len(output_size) in (3, 4) else tuple(output_size)
        if len(size) != 2:
            raise ValueError(f"ConvTranspose2d: for 4D input, output_size must have 2 or 4 elements "
                             f"(got {len(output_size)})")
        smallest = [(n - 1) * s - 2 * p + d * (k - 1) + 1 for n, s, p, d, k in
                    zip(x.shape[2:], self.stride, self.padding, self.dilation, self.kernel_size)]
        largest = [m + s - 1 for m, s in zip(smallest, self.stride)]
        if any(not lo <= n <= hi for n, lo, hi in zip(size, smallest, largest)):
            raise ValueError(f"ConvTranspose2d: requested an output size of {list(size)}, but valid sizes range from "
                             f"{smallest} to {largest} (for an input of {list(x.shape[2:])})")
        return size[0] - smallest[0], size[1] - smallest[1]

    def forward(self, input: Tensor, output_size: Any = None) -> Tensor:  # noqa: A002
        x = F._as_tensor(input)
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(x, output_size), self.groups, self.dilation)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        s += f", padding={self.padding}" if self.padding != (0, 0) else ""
        s += f", dilation={self.dilation}" if self.dilation != (1, 1) else ""
        s += f", output_padding={self.output_padding}" if self.output_padding != (0, 0) else ""
        s += f", groups={self.groups}" if self.groups != 1 else ""
        return s + (", bias=False" if self.bias is None else "")


class Linear(Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        dtype = factory_dtype("Linear", device, dtype)
        _positive("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = _uniform((out_features, in_features), in_features, dtype)
        self.bias = _uniform((out_features,), in_features, dtype) if bias else None

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """Merge dimensions start_dim..end_dim into one (by default all but the batch dimension)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F._as_tensor(input).flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dimension `dim` into `unflattened_size` (one entry may be -1)."""

    def __init__(self, dim: int, unflattened_size: tuple[int, ...] | list[int]) -> None:
        super().__init__()
        if not isinstance(unflattened_size, (tuple, list)) or not all(
                isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in unflattened_size):
            raise TypeError(f"Unflatten: unflattened_size must be a tuple of ints, got {unflattened_size!r}")
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F._as_tensor(input).unflatten(self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
