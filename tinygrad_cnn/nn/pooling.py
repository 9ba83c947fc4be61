"""Pooling and resampling layers over `functional`, with PyTorch's constructor arguments."""

from __future__ import annotations

from .. import functional as F
from ..autograd import Tensor
from .module import Module

IntOrPair = int | tuple[int, int]


class _Pool2d(Module):
    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None, padding: IntOrPair, ceil_mode: bool) -> None:
        super().__init__()
        layer = type(self).__name__
        F.as_pair(kernel_size, "kernel_size", layer, 1)
        F.as_pair(padding, "padding", layer, 0)
        if stride is not None:
            F.as_pair(stride, "stride", layer, 1)
        self.kernel_size, self.padding, self.ceil_mode = kernel_size, padding, ceil_mode
        self.stride = kernel_size if stride is None else stride


class MaxPool2d(_Pool2d):
    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None, padding: IntOrPair = 0,
                 dilation: IntOrPair = 1, return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        if F.as_pair(dilation, "dilation", "MaxPool2d", 1) != (1, 1) or return_indices:
            raise NotImplementedError("MaxPool2d: dilation > 1 and return_indices=True are not supported")
        self.dilation, self.return_indices = dilation, return_indices

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(_Pool2d):
    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None, padding: IntOrPair = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """A fixed output size whatever the input size: F.adaptive_avg_pool2d."""

    def __init__(self, output_size: IntOrPair | None) -> None:
        super().__init__()
        F._output_size("adaptive_avg_pool2d", output_size, (1, 1))  # checked now; None (keeps a size) allowed
        self.output_size = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * 2

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class Upsample(Module):
    """F.interpolate as a layer (modes 'nearest' and 'nearest-exact')."""

    def __init__(self, size: int | tuple[int, ...] | None = None, scale_factor: float | tuple[float, ...] | None = None,
                 mode: str = "nearest", align_corners: bool | None = None,
                 recompute_scale_factor: bool | None = None) -> None:
        super().__init__()
        self.size, self.mode, self.align_corners = size, mode, align_corners
        self.scale_factor = tuple(float(f) for f in scale_factor) if isinstance(scale_factor, (tuple, list)) else (
            float(scale_factor) if scale_factor else None)
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self) -> str:
        info = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return info + f", mode={self.mode!r}"

