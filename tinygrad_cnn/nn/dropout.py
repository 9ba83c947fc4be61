"""Dropout layers over `functional`: active in training mode, the identity in eval mode."""

from __future__ import annotations

from .. import functional as F
from ..autograd import Tensor
from .module import Module


class Dropout(Module):
    """Zero each element with probability p in training mode and scale the rest by 1/(1-p) (p = 1 zeroes all)."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p, self.inplace = F._check_p(p, type(self).__name__), inplace

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002 - PyTorch's argument name
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(Dropout):
    """Zero whole channels: each (sample, channel) of an (N, C, H, W) input with probability p."""

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F.dropout2d(input, self.p, self.training)
