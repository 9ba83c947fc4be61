"""Neural-network building blocks with PyTorch's names: `Module`, `Parameter` and layers."""

import sys

from .. import functional
from . import init, utils
from .activation import ELU, GELU, Hardtanh, LeakyReLU, LogSoftmax, ReLU, ReLU6, Sigmoid, SiLU, Softmax, Softplus, Tanh
from .containers import Identity, ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .dropout import Dropout, Dropout2d
from .layers import Conv2d, ConvTranspose2d, Flatten, Linear, Unflatten
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss
from .module import IncompatibleKeys, Module, Parameter, StateDictError
from .normalization import BatchNorm1d, BatchNorm2d
from .padding import CircularPad2d, ConstantPad2d, ReflectionPad2d, ReplicationPad2d, ZeroPad2d
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, Upsample

# `import tinygrad_cnn.nn.functional as F` is `tinygrad_cnn.functional`, one module under both names (as torch's)
sys.modules[f"{__name__}.functional"] = functional

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d",
           "CircularPad2d", "ConstantPad2d", "Conv2d", "ConvTranspose2d", "CrossEntropyLoss", "Dropout", "Dropout2d",
           "ELU", "Flatten", "GELU", "Hardtanh", "Identity", "IncompatibleKeys", "L1Loss", "LeakyReLU", "Linear",
           "LogSoftmax", "MSELoss", "MaxPool2d", "Module", "ModuleDict", "ModuleList", "NLLLoss", "Parameter",
           "ParameterDict", "ParameterList", "ReLU", "ReLU6", "ReflectionPad2d", "ReplicationPad2d", "Sequential",
           "SiLU", "Sigmoid", "SmoothL1Loss", "Softmax", "Softplus", "StateDictError", "Tanh", "Unflatten", "Upsample",
           "ZeroPad2d", "functional", "init", "utils"]
