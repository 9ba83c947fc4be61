"""Elementwise primitives beyond arithmetic: sigmoid, tanh and where.

sigmoid and tanh are primitives rather than composites of exp for numerical reasons: as a composite,
1 / (1 + exp(-x)) puts exp(-x) = inf into the graph for x < -88 (float32), and its VJP then computes
inf / inf = NaN where the true gradient is 0; (e^2x - 1) / (e^2x + 1) is NaN beyond |x| ~ 44 already in
the forward pass. Both would also be 4-5 ops where one suffices. Their VJPs reuse the output, as
PyTorch's do: sigmoid' = y (1 - y), tanh' = 1 - y^2.
`Where` selects between two tensors by a constant condition: the building block of clamp, masked_fill,
maximum and minimum.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Context, Function, Tensor
from .arithmetic import unbroadcast

# (*) An array even for a 0-d x, where numpy returns a scalar: the engine would turn that into a new array,
# and the saved y would no longer be the output (a constant in double backward).


class Sigmoid(Function):
    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        # float16 in float32, rounded once (PyTorch's opmath): exp(-x) overflows float16 already at x < -11
        xf = x.astype(np.float32) if x.dtype == np.float16 else x
        with np.errstate(over="ignore"):  # exp(-x) = inf for x < -88 (float32) gives 1 / inf = 0, the limit
            y = np.asarray(1 / (1 + np.exp(-xf)), dtype=x.dtype)  # (x.shape), PyTorch's formula and rounding (*)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors  # the output, in the graph: double backward differentiates y itself
        return grad * (y * (1 - y))


class Tanh(Function):
    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        y = np.asarray(np.tanh(x))                                # (x.shape) (*)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y)


class Where(Function):
    """condition ? a : b elementwise, all three broadcast; `condition` is a constant bool array.

    The gradient goes to `a` where the condition holds and to `b` elsewhere: linear in (a, b), so the
    VJP is Where itself and double backward comes for free."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray, condition: np.ndarray) -> np.ndarray:
        return np.where(condition, a, b)                          # broadcast(condition, a, b).shape

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = ctx.inputs
        condition = ctx.attrs["condition"]
        zero = Tensor._make(np.zeros((), dtype=grad.dtype))      # () broadcast against grad
        return (unbroadcast(Where.apply(grad, zero, condition=condition), a.shape)
                if ctx.needs_input_grad[0] else None,
                unbroadcast(Where.apply(zero, grad, condition=condition), b.shape)
                if ctx.needs_input_grad[1] else None)
