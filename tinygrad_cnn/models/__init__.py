"""Ready-made models."""

from .lenet import lenet5

__all__ = ["lenet5"]
