"""Neural-network building blocks with PyTorch's names: `Module`, `Parameter` and layers."""

from .adaptive import AdaptiveAvgPool2d
from .layers import AvgPool2d, Conv2d, Dropout, Flatten, Linear, LogSoftmax, MaxPool2d, ReLU
from .module import IncompatibleKeys, Module, Parameter, Sequential

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "Conv2d", "Dropout", "Flatten", "IncompatibleKeys", "Linear", "LogSoftmax",
           "MaxPool2d", "Module", "Parameter", "ReLU", "Sequential"]
