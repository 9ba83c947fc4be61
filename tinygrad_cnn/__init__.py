"""tinygrad_cnn: a small, exact autograd tensor framework for convolutional networks, on numpy.

    from tinygrad_cnn import Tensor, nn, optim
    import tinygrad_cnn.functional as F
"""

import sys  # noqa: I001  (the imports below are in dependency order, not sorted)

# The order matters: the engine, then the Tensor front that attaches the operators and methods to Tensor,
# then everything that uses them.
from .autograd import (Config, Context, Function, Tensor, enable_grad, grad, inference_mode,
                       is_grad_enabled, no_grad, set_grad_enabled, using_config)
from . import tensor_methods  # noqa: F401
from .devices import accelerator, backends, cuda, device
from .factories import (arange, as_tensor, bool_, double, empty, empty_like, eye, float16, float32, float64,
                        from_numpy, full, full_like, get_default_dtype, half, int8, int16, int32, int64, is_tensor,
                        linspace, long, numel, ones, ones_like, rand, rand_like, randint, randn, randn_like, randperm,
                        short, tensor, uint8, zeros, zeros_like)
from .hooks import Observer, observe
from .tensor_methods import FUNCTIONS, Size, cat, concat, concatenate, stack, where
from . import functional, nn, optim, utils, viz  # noqa: F401  (utils: torch.utils.data after `import tinygrad_cnn as torch`)
from .rng import Generator, initial_seed, manual_seed, seed
from .runtime import data_parallel, threads
from .runtime.threads import get_num_threads, set_num_threads
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

# PyTorch's dtype names that are also Python builtins: attributes of the package only (torch.float, torch.bool).
globals().update({"float": float32, "int": int32, "bool": bool_})
globals().update(FUNCTIONS)  # tinygrad_cnn.flatten(x, 1), .max(x, 1), .sum, ...: the function forms of methods

__all__ = ["CheckpointError", "Config", "Context", "Function", "GradcheckError", "Observer", "Tensor", "check_graph",
           "detect_anomaly", "enable_grad", "functional", "grad", "gradcheck", "gradgradcheck", "inference_mode",
           "get_num_threads", "is_grad_enabled", "set_num_threads",
           "load", "manual_seed", "nn", "no_grad", "observe", "optim", "parallel", "save", "set_grad_enabled", "tensor",
           "using_config", "viz",
           "accelerator", "arange", "as_tensor", "backends", "cuda", "device", "double", "empty", "empty_like", "eye",
           "float16", "float32", "float64", "from_numpy", "full", "full_like", "get_default_dtype", "half", "int8",
           "int16", "int32", "int64", "is_tensor", "linspace", "long", "numel", "ones", "ones_like", "rand",
           "rand_like", "randint", "randn", "randn_like", "randperm", "short", "uint8", "zeros", "zeros_like",
           "Size", "cat", "concat", "concatenate", "stack", "where", "Generator", "initial_seed", "seed", *FUNCTIONS]
