"""Padding layers over F.pad, with PyTorch's names: the padding is an int (all four sides) or
(left, right, top, bottom)."""

from __future__ import annotations

from typing import Any

from .. import functional as F
from ..autograd import Tensor
from .module import Module


def _quadruple(layer: str, padding: Any) -> tuple[int, int, int, int]:
    sides = (padding,) * 4 if isinstance(padding, int) and not isinstance(padding, bool) else tuple(padding) if (
        isinstance(padding, (tuple, list))) else ()
    if len(sides) != 4 or not all(isinstance(p, int) and not isinstance(p, bool) for p in sides):
        raise TypeError(f"{layer}: padding must be an int or 4 ints (left, right, top, bottom), got {padding!r}")
    return sides  # type: ignore[return-value]


class _Pad2d(Module):
    mode = "constant"

    def __init__(self, padding: int | tuple[int, int, int, int]) -> None:
        super().__init__()
        self.padding = _quadruple(type(self).__name__, padding)

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002 - PyTorch's argument name
        return F.pad(input, self.padding, self.mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad2d(_Pad2d):
    pass


class ConstantPad2d(_Pad2d):
    def __init__(self, padding: int | tuple[int, int, int, int], value: float) -> None:
        super().__init__(padding)
        self.value = value

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ReflectionPad2d(_Pad2d):
    mode = "reflect"


class ReplicationPad2d(_Pad2d):
    mode = "replicate"


class CircularPad2d(_Pad2d):
    mode = "circular"
