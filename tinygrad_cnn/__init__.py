"""tinygrad_cnn: a small, exact autograd tensor framework for convolutional networks, on numpy.

    from tinygrad_cnn import Tensor, nn, optim
    import tinygrad_cnn.functional as F
"""

import sys

from .autograd import (Config, Context, Function, Observer, Tensor, enable_grad, grad, is_grad_enabled, no_grad,
                       observe, set_grad_enabled, using_config)
from . import tensor  # noqa: I001  (attaches the operators and methods to Tensor before anything uses them)
from . import functional, nn, optim, viz
from .rng import manual_seed
from .runtime import data_parallel, threads
from .serialization import CheckpointError, load, save
from .tools.doctor import check_graph, detect_anomaly
from .tools.gradcheck import GradcheckError, gradcheck, gradgradcheck

__version__ = "0.1.0"

# Import paths of the first release, kept working: the modules now live in the runtime layer.
parallel = threads
sys.modules[f"{__name__}.parallel"] = threads
sys.modules[f"{__name__}.data_parallel"] = data_parallel
sys.modules[f"{__name__}.perf"] = sys.modules[f"{__name__}.runtime.memory"] = __import__(
    f"{__name__}.runtime.memory", fromlist=["memory"])

__all__ = ["CheckpointError", "Config", "Context", "Function", "GradcheckError", "Observer", "Tensor", "check_graph",
           "detect_anomaly", "enable_grad", "functional", "grad", "gradcheck", "gradgradcheck", "is_grad_enabled",
           "load", "manual_seed", "nn", "no_grad", "observe", "optim", "parallel", "save", "set_grad_enabled", "tensor",
           "using_config", "viz"]
