"""The primitive ops: the only functions with hand-written VJPs. Everything else is composed of them."""

from .arithmetic import (
                         Add,
                         Cast,
                         Div,
                         Exp,
                         Expand,
                         Log,
                         MatMul,
                         Max,
                         Mul,
                         Neg,
                         Pow,
                         Relu,
                         Sub,
                         Sum,
                         TensorPow,
                         unbroadcast,
)
from .conv import Conv2d, Conv2dInputGrad, Conv2dWeightGrad
from .elementwise import Sigmoid, Tanh, Where
from .movement import Cat, Getitem, IndexAdd, Pad, Permute, Reshape
from .pool import AvgPool2d, AvgPoolScatter, MaxPool2d, MaxPoolGather, MaxPoolScatter
from .reduce import Cumsum, Prod
from .special import BinaryCrossEntropy, Erf

PRIMITIVES = (Add, Sub, Neg, Mul, Div, Pow, TensorPow, Exp, Log, Relu, Sum, Expand, Max, MatMul, Cast,
              Sigmoid, Tanh, Where, Prod, Cumsum,
              Reshape, Permute, Getitem, IndexAdd, Pad, Cat,
              Conv2d, Conv2dInputGrad, Conv2dWeightGrad,
              MaxPool2d, MaxPoolScatter, MaxPoolGather, AvgPool2d, AvgPoolScatter, Erf, BinaryCrossEntropy)

__all__ = [p.__name__ for p in PRIMITIVES] + ["PRIMITIVES", "unbroadcast"]
