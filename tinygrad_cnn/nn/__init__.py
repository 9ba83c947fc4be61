"""Neural-network building blocks with PyTorch's names: `Module`, `Parameter` and layers."""

from . import init, utils
from .adaptive import AdaptiveAvgPool2d
from .containers import Identity, ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .layers import AvgPool2d, Conv2d, Dropout, Flatten, Linear, LogSoftmax, MaxPool2d, ReLU
from .module import IncompatibleKeys, Module, Parameter, StateDictError

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "Conv2d", "Dropout", "Flatten", "Identity", "IncompatibleKeys", "Linear",
           "LogSoftmax", "MaxPool2d", "Module", "ModuleDict", "ModuleList", "Parameter", "ParameterDict",
           "ParameterList", "ReLU", "Sequential", "StateDictError", "init", "utils"]
