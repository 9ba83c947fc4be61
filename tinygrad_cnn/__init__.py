"""tinygrad_cnn: a small, exact autograd tensor framework for convolutional networks, on numpy."""

from . import functional
from .autograd import Config, Context, Function, Tensor, enable_grad, grad, is_grad_enabled, no_grad
from .tools.gradcheck import GradcheckError, gradcheck, gradgradcheck

__version__ = "0.1.0"

__all__ = ["Config", "Context", "Function", "GradcheckError", "Tensor", "enable_grad", "functional", "grad",
           "gradcheck", "gradgradcheck", "is_grad_enabled", "no_grad"]
