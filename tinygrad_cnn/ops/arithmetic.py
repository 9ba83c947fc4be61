"""Elementwise maths, reductions and matmul: each primitive's forward (numpy) beside its VJP (Tensor ops).

Binary ops broadcast like numpy; their VJPs sum the gradient back down to each input's shape
(`unbroadcast`). Python scalars reach these ops already lifted to 0-d Tensors by `Tensor._lift`.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Context, Function, Tensor
from ..kernels.matmul import matmul
from .movement import Reshape, swap_last_axes

# The VJPs below call other primitives' `apply` directly where the Tensor methods would only re-check
# arguments that are valid by construction (shapes and axes taken from the forward): that checking
# was a tenth of the engine's time in a LeNet step.


def unbroadcast(grad: Tensor, shape: tuple[int, ...]) -> Tensor:
    """The VJP of numpy broadcasting: sum `grad` over the axes that broadcasting stretched to `shape`."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    stretched = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    summed = Sum.apply(grad, axis=stretched, keepdims=False)
    return summed if summed.shape == shape else Reshape.apply(summed, shape=shape)


class Add(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + b

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> tuple[Tensor, Tensor]:
        a, b = ctx.inputs
        return unbroadcast(grad, a.shape), unbroadcast(grad, b.shape)


class Sub(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a - b

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> tuple[Tensor, Tensor | None]:
        a, b = ctx.inputs
        return unbroadcast(grad, a.shape), unbroadcast(-grad, b.shape) if ctx.needs_input_grad[1] else None


class Neg(Function):
    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        return -x

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        return -grad


class Mul(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = ctx.saved_tensors
        return (unbroadcast(grad * b, a.shape) if ctx.needs_input_grad[0] else None,
                unbroadcast(grad * a, b.shape) if ctx.needs_input_grad[1] else None)


class Div(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        y = a / b
        ctx.save_for_backward(b, y)
        return y

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        b, y = ctx.saved_tensors
        # d(a/b)/db = -a/b^2, computed as -(a/b)/b: b*b overflows (or underflows) in float32 long before a/b does
        return (unbroadcast(grad / b, ctx.inputs[0].shape) if ctx.needs_input_grad[0] else None,
                unbroadcast(-(grad * y) / b, b.shape) if ctx.needs_input_grad[1] else None)


class Pow(Function):
    """x ** c for a constant exponent c (a Tensor exponent is `TensorPow`)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, exponent: float) -> np.ndarray:
        ctx.save_for_backward(x)
        if x.dtype.kind == "f" and exponent in (0.5, -0.5):
            # Square roots as sqrt (PyTorch's float32/float64 pow, and Tensor.sqrt/rsqrt): C's pow gives
            # (-inf) ** 0.5 = inf in float16, (-inf) ** -0.5 = 0 and (-0) ** -0.5 = +inf in every dtype.
            root = np.sqrt(x)
            return root if exponent > 0 else np.reciprocal(root)
        # A float tensor keeps its precision; an integer one becomes float for a fractional power.
        return x ** (np.asarray(exponent, dtype=x.dtype) if x.dtype.kind == "f" else exponent)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        c = ctx.attrs["exponent"]
        if c == 0:  # constant: zero, also at x = 0 where c * x**(c-1) would be 0 * inf
            return Tensor._make(np.zeros(x.shape, dtype=grad.dtype))
        if c == -0.5 and x.dtype.kind == "f":  # PyTorch's rsqrt VJP -y^3 / 2: x ** -1.5 is 0 at -inf, not NaN
            return grad * c * (x ** -0.5) ** 3
        return grad * c * x ** (c - 1) if c != 1 else grad


class TensorPow(Function):
    """a ** b elementwise, both tensors (broadcast)."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        y = a ** b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b, y = ctx.saved_tensors
        ga = gb = None
        if ctx.needs_input_grad[0]:  # b a^(b-1), taken as 0 where b = 0 (as PyTorch): 0^-1 would give 0 * inf
            one_where_0_0 = Tensor._make(((b.data == 0) & (a.data == 0)).astype(a.dtype))
            ga = unbroadcast(grad * b * TensorPow.apply(a + one_where_0_0, b - 1), a.shape)
        if ctx.needs_input_grad[1]:  # a^b log a, taken as 0 where a = 0 and b >= 0 (as PyTorch)
            one_where_0 = Tensor._make(((a.data == 0) & (b.data >= 0)).astype(a.dtype))
            gb = unbroadcast(grad * y * (a + one_where_0).log(), b.shape)
        return ga, gb


class Exp(Function):
    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors  # exp' = exp: reuse the output
        return grad * y


class Log(Function):
    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad / x


class Relu(Function):
    kinks = staticmethod(lambda x, attrs, step: np.abs(x) <= step)  # not differentiable at 0

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        y = np.maximum(x, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        # The mask is a constant of the graph: relu is linear on each side of 0, so its second
        # derivative is zero. `grad * bool-mask` is ~10x faster than np.where.
        # Not y <= 0 (PyTorch's threshold_backward), so a NaN passes its gradient on, as in PyTorch.
        (y,) = ctx.saved_tensors
        return grad * Tensor._make(~(y.data <= 0))


class Sum(Function):
    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
        return x.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        shape = ctx.inputs[0].shape
        kept = tuple(1 if i in ctx.attrs["axis"] else n for i, n in enumerate(shape))
        return Expand.apply(Reshape.apply(grad, shape=kept), shape=shape)


class Expand(Function):
    """Broadcast to a larger shape (the adjoint of Sum)."""

    view = True

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return np.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        return unbroadcast(grad, ctx.inputs[0].shape)


class Max(Function):
    """Maximum over axes; the gradient is shared equally among tied maxima."""

    @staticmethod
    def kinks(x: np.ndarray, attrs: dict, step: float) -> np.ndarray:
        """Elements within 2 * step of their group's maximum, in groups with more than one of them."""
        close = x >= x.max(axis=attrs["axis"], keepdims=True) - 2 * step
        return close & (close.sum(axis=attrs["axis"], keepdims=True) > 1)

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
        y = x.max(axis=axis, keepdims=True)
        hits = (x == y) | (np.isnan(x) & np.isnan(y))  # a NaN maximum takes the gradient, as in PyTorch
        ctx.route = hits / hits.sum(axis=axis, keepdims=True, dtype=x.dtype)  # (x.shape) weights, sum 1
        return y if keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in axis])

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        shape = ctx.inputs[0].shape
        kept = tuple(1 if i in ctx.attrs["axis"] else n for i, n in enumerate(shape))
        return grad.reshape(*kept) * Tensor._make(ctx.route)


class MatMul(Function):
    """(..., M, K) @ (..., K, N) -> (..., M, N), batch axes broadcast."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return matmul(a, b)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = ctx.saved_tensors
        return (unbroadcast(MatMul.apply(grad, swap_last_axes(b)), a.shape) if ctx.needs_input_grad[0] else None,
                unbroadcast(MatMul.apply(swap_last_axes(a), grad), b.shape) if ctx.needs_input_grad[1] else None)


class Cast(Function):
    @staticmethod
    def forward(ctx: Context, x: np.ndarray, dtype: np.dtype) -> np.ndarray:
        with np.errstate(over="ignore"):  # a value beyond a narrower float's range becomes inf, as in PyTorch
            return x.astype(dtype)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        return grad.astype(ctx.inputs[0].dtype)
