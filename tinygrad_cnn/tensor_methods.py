"""The Tensor front: operators and methods over the primitive ops, attached to the engine's `Tensor`.

The engine (`autograd.py`) knows nothing of the ops; this module imports both and registers each method
on `Tensor`, the way tinygrad (2020) registered its ops. (`tinygrad_cnn.tensor` is the factory function,
as in PyTorch; this module is the methods.) Methods check their arguments
and name the op in every error; the primitives they call trust them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import ops
from .autograd import Config, Function, Tensor


# ---- the operators: PyTorch's type promotion, comparisons, in-place updates ------------------------------
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}  # bool < integer < floating point, as in PyTorch


def result_type(a: Tensor, b: Any) -> np.dtype:
    """The dtype of a binary op's result by PyTorch's rules, which differ from numpy's: a Python number
    or a 0-d tensor only raises the category (int tensor * 0.5 -> float32, not float64), and across
    categories the higher one's dtype wins (int64 + float32 -> float32)."""
    da = a._data.dtype
    if isinstance(b, (bool, int, float, np.bool_, np.number)) and not isinstance(b, Tensor):
        kind = "b" if isinstance(b, (bool, np.bool_)) else "f" if isinstance(b, (float, np.floating)) else "i"
        if _CATEGORY[kind] <= _CATEGORY[da.kind]:
            return da
        return np.dtype(np.float32) if kind == "f" else np.dtype(np.int64)
    db = b._data.dtype
    if da == db:
        return da
    ca, cb = _CATEGORY[da.kind], _CATEGORY[db.kind]
    if (a.ndim == 0) != (b.ndim == 0):  # a 0-d tensor counts only when it raises the category
        dim, zero = (a, b) if b.ndim == 0 else (b, a)
        return zero.dtype if _CATEGORY[zero.dtype.kind] > _CATEGORY[dim.dtype.kind] else dim.dtype
    if ca != cb:
        return da if ca > cb else db
    return np.promote_types(da, db)


def lift(like: Tensor, other: Any) -> Tensor:
    """`other` as a Tensor for a binary op with `like`: a Python number takes the result's dtype."""
    if isinstance(other, Tensor):
        return other
    if isinstance(other, (bool, int, float, np.bool_, np.number)):
        return Tensor._make(np.array(other, dtype=result_type(like, other)))
    return Tensor(other)


def _operands(a: Tensor, b: Any, true_divide: bool = False) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors of the result dtype (a Cast is recorded where one differs)."""
    if isinstance(b, Tensor) and a._data.dtype == b._data.dtype and not (true_divide and a.dtype.kind != "f"):
        return a, b  # the common case, first
    number = isinstance(b, (bool, int, float, np.bool_, np.number))
    dtype = result_type(a, b if number else lift(a, b))
    if true_divide and dtype.kind != "f":
        dtype = np.dtype(np.float32)  # int / int is a float division, as in PyTorch
    return a.astype(dtype), lift(a, b).astype(dtype)


def _binary(op: type[Function], reflected: bool = False) -> Callable[[Tensor, Any], Tensor]:
    true_divide = op is ops.Div
    if reflected:
        return lambda self, other: op.apply(*reversed(_operands(self, other, true_divide)))
    return lambda self, other: op.apply(*_operands(self, other, true_divide))


def _comparison(compare: np.ufunc) -> Callable[[Tensor, Any], Tensor]:
    """An elementwise comparison: a bool Tensor, outside the graph (it has no gradient)."""
    def method(self: Tensor, other: Any) -> Tensor:
        other = other._data if isinstance(other, Tensor) else np.asarray(other)
        try:
            return Tensor._make(np.asarray(compare(self._data, other)))
        except ValueError as e:
            raise ValueError(f"{compare.__name__}: shapes {self.shape} and {other.shape} do not broadcast "
                             f"({e})") from None
    return method


def _in_place(update: np.ufunc, symbol: str) -> Callable[[Tensor, Any], Tensor]:
    """`t op= other`: changes t's array in place and bumps its version, as PyTorch does, so a backward
    that saved t refuses the stale value. A leaf that requires grad may only change under no_grad()."""
    def method(self: Tensor, other: Any) -> Tensor:
        if Config.enable_grad and self.requires_grad:
            what = "a leaf tensor that requires grad" if self._ctx is None else "a tensor recorded in a graph"
            raise RuntimeError(f"{symbol}: cannot update {what} (shape {self.shape}) in place while grad mode is on: "
                               f"wrap a parameter update in `with tinygrad_cnn.no_grad():`, or write x = x {symbol[0]} y "
                               "to record the op")
        value = other._data if isinstance(other, Tensor) else np.asarray(other)
        try:
            update(self._data, value, out=self._data, casting="same_kind")
        except (TypeError, ValueError) as e:  # numpy's casting error is a TypeError
            raise (TypeError if isinstance(e, TypeError) else ValueError)(f"{symbol}: cannot update a {self.dtype} tensor of shape {self.shape} in place with a "
                          f"{value.dtype} value of shape {value.shape} ({e})") from None
        self._bump_version()
        return self
    return method


class TensorMethods:
    """The Tensor's operators and methods, written as a class body for reading; `_attach` copies them
    onto the engine's `Tensor` (this class is never instantiated)."""

    # ---- properties and conversions ----------------------------------------------------------------------
    shape = property(lambda self: self._data.shape)
    ndim = property(lambda self: self._data.ndim)
    dtype = property(lambda self: self._data.dtype)
    size = property(lambda self: self._data.size)
    T = property(lambda self: ops.Permute.apply(self, axes=tuple(reversed(range(self.ndim)))))


    def numpy(self) -> np.ndarray:
        return self._data


    def item(self) -> float | int | bool:
        if self._data.size != 1:
            raise ValueError(f"item: only a one-element tensor converts to a Python number, got shape {self.shape}")
        return self._data.item()


    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)


    def __repr__(self) -> str:
        body = np.array2string(self._data, separator=", ", prefix="Tensor(", threshold=50)
        extra = f", grad_fn=<{self._ctx.name}>" if self._ctx is not None else (
            ", requires_grad=True" if self.requires_grad else "")
        return f"Tensor({body}, dtype={self.dtype}{extra})"


    def astype(self, dtype: Any) -> Tensor:
        dtype = np.dtype(dtype)
        return self if dtype == self.dtype else ops.Cast.apply(self, dtype=dtype)


    def float(self) -> Tensor:
        return self.astype(np.float32)


    def double(self) -> Tensor:
        return self.astype(np.float64)


    # ---- comparisons: elementwise, bool results, never differentiated -------------------------------------
    # The operators (==, <, ...) route here. NaN compares as in IEEE (and PyTorch): unequal to everything.
    def eq(self, other: Any) -> Tensor:
        return _compare(self, other, np.equal, "eq")


    def ne(self, other: Any) -> Tensor:
        return _compare(self, other, np.not_equal, "ne")


    def lt(self, other: Any) -> Tensor:
        return _compare(self, other, np.less, "lt")


    def le(self, other: Any) -> Tensor:
        return _compare(self, other, np.less_equal, "le")


    def gt(self, other: Any) -> Tensor:
        return _compare(self, other, np.greater, "gt")


    def ge(self, other: Any) -> Tensor:
        return _compare(self, other, np.greater_equal, "ge")


    # ---- arithmetic operators ----------------------------------------------------------------------------
    def __neg__(self) -> Tensor:
        return ops.Neg.apply(self)


    def __matmul__(self, other: Any) -> Tensor:
        return self.matmul(lift(self, other))


    def __rmatmul__(self, other: Any) -> Tensor:
        return lift(self, other).matmul(self)


    def __pow__(self, exponent: Any) -> Tensor:
        if isinstance(exponent, (int, float, np.number)) and not isinstance(exponent, (bool, np.bool_)):
            x = self if self.dtype.kind == "f" or float(exponent).is_integer() else self.float()
            return ops.Pow.apply(x, exponent=exponent.item() if isinstance(exponent, np.number) else exponent)
        return ops.TensorPow.apply(*_operands(self, exponent))


    def __rpow__(self, base: Any) -> Tensor:
        return ops.TensorPow.apply(*reversed(_operands(self, base)))


    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(f"bool: the truth value of a tensor with {self._data.size} elements (shape "
                               f"{self.shape}) is ambiguous; use .any() or .all()")
        return bool(self._data.item())


    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self._data if dtype is None else self._data.astype(dtype, copy=False)


    __hash__ = object.__hash__  # identity, as in PyTorch: == compares elementwise


    def __getitem__(self, index: Any) -> Tensor:
        return ops.Getitem.apply(self, index=_plain_index(index))


    def exp(self) -> Tensor:
        return ops.Exp.apply(self)


    def log(self) -> Tensor:
        return ops.Log.apply(self)


    def relu(self) -> Tensor:
        return ops.Relu.apply(self)


    # ---- reductions ------------------------------------------------------------------------------------------
    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.Sum.apply(self, axis=norm_axis(axis, self.ndim, "sum"), keepdims=keepdims)


    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.Max.apply(self, axis=norm_axis(axis, self.ndim, "max"), keepdims=keepdims)


    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        axes = norm_axis(axis, self.ndim, "mean")
        count = math.prod(self.shape[a] for a in axes)
        return self.sum(axes, keepdims) / count


    def log_softmax(self, axis: int = -1) -> Tensor:
        norm_axis(axis, self.ndim, "log_softmax")  # numpy's own error would not name the op
        shifted = self - self._data.max(axis=axis, keepdims=True)  # a constant shift: no gradient needed
        return shifted - shifted.exp().sum(axis, keepdims=True).log()


    def softmax(self, axis: int = -1) -> Tensor:
        return self.log_softmax(axis).exp()


    # ---- shape and movement ----------------------------------------------------------------------------------
    def expand(self, *shape: int) -> Tensor:
        shape = _shape_arg(shape)
        try:
            np.broadcast_shapes(self.shape, shape)
        except ValueError:
            raise ValueError(f"expand: cannot broadcast shape {self.shape} to {shape}") from None
        return self if shape == self.shape else ops.Expand.apply(self, shape=shape)


    def reshape(self, *shape: int) -> Tensor:
        shape = _shape_arg(shape)
        known = math.prod(d for d in shape if d != -1)
        wildcards = shape.count(-1)
        if not (all(d >= -1 for d in shape) and (known == self.size if wildcards == 0 else
                                                 wildcards == 1 and known > 0 and self.size % known == 0)):
            raise ValueError(f"reshape: cannot reshape tensor of shape {self.shape} ({self.size} elements) "
                             f"into shape {shape}")
        shape = tuple(self.size // known if d == -1 else d for d in shape)
        if shape == self.shape:
            return self
        return ops.Reshape.apply(self, shape=shape)


    def flatten(self, start_dim: int = 1) -> Tensor:
        (start,) = norm_axis(start_dim, self.ndim, "flatten") if self.ndim else (0,)
        # the size, not -1: a -1 is ambiguous for an empty batch (N = 0)
        return self.reshape(*self.shape[:start], math.prod(self.shape[start:]))


    def permute(self, *axes: int) -> Tensor:
        axes = _shape_arg(axes)
        if (len(axes) != self.ndim or not all(-self.ndim <= a < self.ndim for a in axes)
                or sorted(a % self.ndim for a in axes) != list(range(self.ndim))):
            raise ValueError(f"permute: {axes} is not a permutation of the {self.ndim} axes of shape {self.shape}")
        return ops.Permute.apply(self, axes=tuple(a % self.ndim for a in axes))


    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        norm_axis((dim0, dim1), self.ndim, "transpose")  # a clear error for a dimension out of range
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return self.permute(*axes)


    def matmul(self, other: Tensor) -> Tensor:
        """Batched matrix product with numpy semantics (1-D operands are promoted, then squeezed)."""
        a, b = self, lift(self, other)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: operands must be at least 1-D, got shapes {a.shape} and {b.shape}")
        if a.dtype != b.dtype:  # as PyTorch: silently promoting would run a float32 model in float64, ~2x slower
            raise TypeError(f"matmul: operands of shapes {a.shape} and {b.shape} have different dtypes {a.dtype} "
                            f"and {b.dtype}; convert one (e.g. a float64 input to a float32 model: x.float())")
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align: the last dimension of the "
                             f"first ({a.shape[-1]}) must equal the {'second-to-last' if b.ndim > 1 else 'only'} "
                             f"dimension of the second ({b.shape[-2 if b.ndim > 1 else 0]})")
        a2 = a.reshape(1, a.shape[0]) if a.ndim == 1 else a
        b2 = b.reshape(b.shape[0], 1) if b.ndim == 1 else b
        try:
            if a2.ndim > 2 or b2.ndim > 2:
                np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        except ValueError:
            raise ValueError(f"matmul: batch dimensions of {a.shape} and {b.shape} do not broadcast") from None
        out = ops.MatMul.apply(a2, b2)
        if a.ndim == 1:
            out = out.reshape(*out.shape[:-2], out.shape[-1])
        if b.ndim == 1:
            out = out.reshape(*out.shape[:-1])
        return out


    def pad(self, pad_width: Sequence[tuple[int, int]] | int, value: float = 0.0) -> Tensor:
        """Constant padding, `pad_width` as for `np.pad`: one (before, after) pair per axis, or an int."""
        try:
            widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (self.ndim, 2))
        except ValueError:
            raise ValueError(f"pad: pad_width {pad_width!r} is not an int, one (before, after) pair, or one pair "
                             f"for each of the {self.ndim} axes of shape {self.shape}") from None
        if (widths < 0).any():
            raise ValueError(f"pad: pad widths must be >= 0, got {pad_width}")
        return ops.Pad.apply(self, pad_width=tuple(map(tuple, widths.tolist())), value=value)


# ---- argument checking shared by the methods above ------------------------------------------------------
def _compare(a: Tensor, other: Any, ufunc: np.ufunc, op: str) -> Tensor:
    """a <op> other elementwise with broadcasting, as a bool Tensor outside any graph."""
    b = other._data if isinstance(other, Tensor) else other
    if not isinstance(b, (np.ndarray, np.generic, int, float, bool)):
        if not isinstance(b, (list, tuple)):
            raise TypeError(f"{op}: expected a Tensor, an array or a number to compare with, "
                            f"got {type(other).__name__}")
        b = np.asarray(b)
    try:
        return Tensor._make(np.asarray(ufunc(a._data, b)))
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {np.shape(b)} do not broadcast") from None


def _shape_arg(shape: tuple) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(d) for d in shape)


def norm_axis(axis: int | Sequence[int] | None, ndim: int, op: str) -> tuple[int, ...]:
    """Axes as sorted non-negative ints; a clear error naming `op` for anything out of range."""
    if type(axis) is int and -ndim <= axis < ndim:  # the common case, first
        return (axis % ndim,)
    axes = tuple(range(ndim)) if axis is None else (axis,) if isinstance(axis, (int, np.integer)) else (
        tuple(axis) if isinstance(axis, (tuple, list)) else None)
    if axes is None or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
        raise TypeError(f"{op}: axis must be None, an int or a sequence of ints, got {axis!r}")
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
    normalized = tuple(sorted(a % ndim for a in axes)) if ndim else ()
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{op}: axis {axis!r} names a dimension more than once")
    return normalized


def _plain_index(index: Any) -> Any:
    """Tensors inside an index become their arrays (indices are never differentiated)."""
    if isinstance(index, tuple):
        return tuple(i._data if isinstance(i, Tensor) else i for i in index)
    return index._data if isinstance(index, Tensor) else index


def _attach(methods: type) -> None:
    for name, value in vars(methods).items():
        if name not in ("__module__", "__qualname__", "__doc__", "__dict__", "__weakref__"):
            setattr(Tensor, name, value)
    for name, op, update, symbol in (("add", ops.Add, np.add, "+="), ("sub", ops.Sub, np.subtract, "-="),
                                     ("mul", ops.Mul, np.multiply, "*="), ("truediv", ops.Div, np.true_divide, "/=")):
        setattr(Tensor, f"__{name}__", _binary(op))
        setattr(Tensor, f"__r{name}__", _binary(op, reflected=True))
        setattr(Tensor, f"__i{name}__", _in_place(update, symbol))
    for name, compare in (("eq", np.equal), ("ne", np.not_equal), ("lt", np.less), ("le", np.less_equal),
                          ("gt", np.greater), ("ge", np.greater_equal)):
        setattr(Tensor, f"__{name}__", _comparison(compare))


_attach(TensorMethods)
