"""Optimizers: update parameters in place from their `.grad` (same equations as torch.optim)."""

from .adam import Adam
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Adam", "Optimizer", "SGD"]
