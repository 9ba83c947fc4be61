"""Ready-made models."""

from .alexnet import AlexNet, alexnet
from .lenet import lenet5
from .vgg import VGG, vgg16

__all__ = ["VGG", "AlexNet", "alexnet", "lenet5", "vgg16"]
