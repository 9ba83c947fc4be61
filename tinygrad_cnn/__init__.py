"""tinygrad_cnn: a small, exact autograd tensor framework for convolutional networks, on numpy.

    from tinygrad_cnn import Tensor, nn, optim
    import tinygrad_cnn.functional as F
"""

import sys

from . import functional, nn, optim, viz
from .autograd import Config, Context, Function, Tensor, enable_grad, grad, is_grad_enabled, no_grad, using_config
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

__all__ = ["CheckpointError", "Config", "Context", "Function", "GradcheckError", "Tensor", "check_graph",
           "detect_anomaly", "enable_grad", "functional", "grad", "gradcheck", "gradgradcheck", "is_grad_enabled",
           "load", "manual_seed", "nn", "no_grad", "optim", "parallel", "save", "using_config", "viz"]
