"""Neural-network building blocks with PyTorch's names: `Module`, `Parameter` and layers."""

import sys

from .. import functional
from . import init, utils
from .activation import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .containers import Identity, ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .dropout import Dropout, Dropout2d
from .layers import Conv2d, ConvTranspose2d, Flatten, Linear, Unflatten
from .loss import CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .module import IncompatibleKeys, Module, Parameter, StateDictError
from .normalization import BatchNorm1d, BatchNorm2d
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

# `import tinygrad_cnn.nn.functional as F` is `tinygrad_cnn.functional`, one module under both names (as torch's)
sys.modules[f"{__name__}.functional"] = functional

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "ConvTranspose2d",
           "CrossEntropyLoss", "Dropout", "Dropout2d", "Flatten", "GELU", "Identity", "IncompatibleKeys", "L1Loss",
           "LeakyReLU", "Linear", "LogSoftmax", "MSELoss", "MaxPool2d", "Module", "ModuleDict", "ModuleList", "NLLLoss",
           "Parameter", "ParameterDict", "ParameterList", "ReLU", "Sequential", "Sigmoid", "Softmax", "StateDictError",
           "Tanh", "Unflatten", "functional", "init", "utils"]
