"""The Tensor front: operators and methods over the primitive ops, attached to the engine's `Tensor`.

The engine (`autograd.py`) knows nothing of the ops; this module imports both and registers each method
on `Tensor`, the way tinygrad (2020) registered its ops. (`tinygrad_cnn.tensor` is the factory function,
as in PyTorch; this module is the methods.) Methods check their arguments
and name the op in every error; the primitives they call trust them.
"""

from __future__ import annotations

import builtins
import collections
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import devices, factories, ops, rng
from .autograd import Config, Function, Tensor, no_grad

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
    if not number:
        b = lift(a, b)  # an array or nested list keeps its own dtype; a number's depends on a
    dtype = result_type(a, b)
    if true_divide and dtype.kind != "f":
        dtype = np.dtype(np.float32)  # int / int is a float division, as in PyTorch
    return a.astype(dtype), lift(a, b).astype(dtype)


def _binary(op: type[Function], reflected: bool = False) -> Callable[[Tensor, Any], Tensor]:
    true_divide = op is ops.Div

    def method(self: Tensor, other: Any) -> Tensor:
        dtype = self._data.dtype
        if (type(other) is float or type(other) is int) and (dtype == np.float32 or dtype == np.float64):
            # the most common case, first: the number takes the tensor's dtype (PyTorch's rule)
            number = Tensor._make(np.array(other, dtype=dtype))
            return op.apply(number, self) if reflected else op.apply(self, number)
        if dtype == np.float16 and isinstance(other, (int, float)) and not isinstance(other, bool):
            # PyTorch's opmath: a float16 tensor meets a Python number in float32, rounded once; rounding the
            # number to float16 first makes x * 1e5 inf for x = 0.5 and x * 1e-8 zero
            return method(self.float(), other).half()
        a, b = _operands(self, other, true_divide)
        return op.apply(b, a) if reflected else op.apply(a, b)

    return method


def _in_place(update: np.ufunc, symbol: str) -> Callable[[Tensor, Any], Tensor]:
    """`t op= other`: changes t's array in place and bumps its version, as PyTorch does, so a backward
    that saved t refuses the stale value. A leaf that requires grad may only change under no_grad()."""
    def method(self: Tensor, other: Any) -> Tensor:
        if Config.enable_grad and self.requires_grad:
            what = "a leaf tensor that requires grad" if self._ctx is None else "a tensor recorded in a graph"
            raise RuntimeError(f"{symbol}: cannot update {what} (shape {self.shape}) in place while grad mode is "
                               f"on: wrap a parameter update in `with tinygrad_cnn.no_grad():`, or write "
                               f"x = x {symbol[0]} y to record the op")
        value = other._data if isinstance(other, Tensor) else np.asarray(other)
        try:
            update(self._data, value, out=self._data, casting="same_kind")
        except (TypeError, ValueError) as e:  # numpy's casting error is a TypeError
            raise (TypeError if isinstance(e, TypeError) else ValueError)(
                f"{symbol}: cannot update a {self.dtype} tensor of shape {self.shape} in place with a "
                f"{value.dtype} value of shape {value.shape} ({e})") from None
        self._bump_version()
        return self
    return method


def _cast_to(dtype: type) -> Callable[[Tensor], Tensor]:
    def cast(self: Tensor) -> Tensor:
        return self.astype(dtype)
    cast.__doc__ = f"This tensor as {np.dtype(dtype)} (itself if it already is)."
    return cast


def _outside_graph(ufunc: np.ufunc) -> Callable[[Tensor], Tensor]:
    """A method applying `ufunc` to the data: for results with no gradient (tests, rounding)."""
    def method(self: Tensor) -> Tensor:
        return Tensor._make(np.asarray(ufunc(self._data)))
    method.__doc__ = f"np.{ufunc.__name__} elementwise, as a tensor outside the graph."
    return method


class TensorMethods:
    """The Tensor's operators and methods, written as a class body for reading; `_attach` copies them
    onto the engine's `Tensor` (this class is never instantiated)."""

    # ---- properties and conversions ----------------------------------------------------------------------
    shape = property(lambda self: self._data.shape)
    ndim = property(lambda self: self._data.ndim)
    dtype = property(lambda self: self._data.dtype)
    T = property(lambda self: ops.Permute.apply(self, axes=tuple(reversed(range(self.ndim)))))
    device = property(lambda self: devices.CPU)
    is_cuda = False

    def size(self, dim: int | None = None) -> Size | int:
        """The shape as a `Size` (a tuple), or the length of dimension `dim` (PyTorch's `size()`)."""
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_dim(dim, self.ndim, "size")]

    def numel(self) -> int:
        return int(self._data.size)

    nelement = numel

    def dim(self) -> int:
        return self._data.ndim

    ndimension = dim

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    def element_size(self) -> int:
        return self._data.itemsize

    def numpy(self) -> np.ndarray:
        return self._data

    def item(self) -> float | int | bool:
        if self._data.size != 1:
            raise ValueError(f"item: only a one-element tensor converts to a Python number, got shape {self.shape}")
        return self._data.item()

    def tolist(self) -> Any:
        """The values as (nested lists of) Python numbers; a 0-d tensor gives a number."""
        return self._data.tolist()

    def __float__(self) -> float:
        return float(_one_element(self, "float"))

    def __int__(self) -> int:
        return int(_one_element(self, "int"))

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iu" or self._data.size != 1:
            raise TypeError(f"only integer tensors of a single element can be converted to an index, got a "
                            f"{self.dtype} tensor of shape {self.shape}")
        return int(self._data.item())

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def __repr__(self) -> str:
        body = np.array2string(self._data, separator=", ", prefix="Tensor(", threshold=50)
        extra = f", grad_fn=<{self._ctx.name}>" if self._ctx is not None else (
            ", requires_grad=True" if self.requires_grad else "")
        return f"Tensor({body}, dtype={self.dtype}{extra})"

    def __iter__(self) -> Any:
        """The sub-tensors along the first dimension (PyTorch refuses to iterate a 0-d tensor)."""
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self._data)))

    def __contains__(self, element: Any) -> bool:
        """`element in t`: whether any element equals it."""
        if not isinstance(element, (Tensor, int, float, bool, np.generic)):
            raise RuntimeError(f"Tensor.__contains__ only supports a Tensor or a number, got {type(element).__name__}")
        return bool(np.any(self._data == _array(element)))

    def __format__(self, spec: str) -> str:
        """f"{loss:.4f}" for a 0-d tensor formats its value, as in PyTorch."""
        if self._data.ndim == 0:
            return format(self._data.item(), spec)
        return object.__format__(self, spec)

    def contiguous(self, memory_format: Any = None) -> Tensor:
        """This tensor if its memory is in row-major order, else a row-major copy (in the graph)."""
        if self._data.flags.c_contiguous:
            return self
        return self.reshape(self._data.size).reshape(self.shape)  # flattening copies into row-major order

    def is_contiguous(self, memory_format: Any = None) -> bool:
        return bool(self._data.flags.c_contiguous)

    def pin_memory(self) -> Tensor:
        return self

    def astype(self, dtype: Any) -> Tensor:
        """This tensor in `dtype` (itself if it already is). Float to float is differentiable; a cast to an
        integer or bool dtype leaves the graph, as in PyTorch."""
        dtype = factories.as_dtype(dtype, "astype")
        if dtype == self._data.dtype:
            return self
        if dtype.kind == "f" and self._data.dtype.kind == "f":
            return ops.Cast.apply(self, dtype=dtype)
        return Tensor._make(self._data.astype(dtype))

    # x.float(), x.long(), ...: PyTorch's cast methods
    float, double, half = _cast_to(np.float32), _cast_to(np.float64), _cast_to(np.float16)
    long, int, short, byte, bool = (_cast_to(np.int64), _cast_to(np.int32), _cast_to(np.int16), _cast_to(np.uint8),
                                    _cast_to(np.bool_))

    def type_as(self, other: Tensor) -> Tensor:
        return self.astype(other.dtype)

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """`to(dtype)`, `to(device)`, `to(device, dtype)`, `to(other_tensor)`, keywords `dtype`, `device`,
        `copy`, `non_blocking` (as PyTorch). Only the CPU exists: any other device is an error naming it.
        Returns this very tensor when nothing changes (unless copy=True)."""
        dtype, copy = factories.to_args(args, kwargs, "to")
        out = self if dtype is None else self.astype(dtype)
        return out.clone() if copy and out is self else out

    def cpu(self) -> Tensor:
        return self

    def cuda(self, device: Any = None, non_blocking: bool = False) -> Tensor:
        devices.resolve("cuda" if device is None else device if isinstance(device, (str, devices.device))
                        else devices.device("cuda", device), "cuda")
        return self

    def clone(self, *, memory_format: Any = None) -> Tensor:
        """A copy with its own memory, in the graph (its gradient is the identity)."""
        return ops.Cast.apply(self, dtype=self._data.dtype)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set `requires_grad` in place (leaves only, floating point only) and return the tensor."""
        if requires_grad and self._data.dtype.kind != "f":
            raise RuntimeError(f"requires_grad_: only tensors of floating point dtype can require gradients, "
                               f"got {self.dtype}")
        if not requires_grad and self._ctx is not None:
            raise RuntimeError("requires_grad_: you can only change requires_grad flags of leaf tensors; use "
                               "detach() to get a tensor out of the graph")
        self.requires_grad = bool(requires_grad)
        return self

    def new_tensor(self, data: Any, *, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
        return factories.tensor(data, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    def new_zeros(self, *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
        return factories.zeros(*size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    def new_ones(self, *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
        return factories.ones(*size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    def new_empty(self, *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
        return factories.empty(*size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    def new_full(self, size: Sequence[int], fill_value: Any, *, dtype: Any = None, device: Any = None,
                 requires_grad: bool = False) -> Tensor:
        return factories.full(size, fill_value, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

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

    def logical_and(self, other: Any) -> Tensor:
        return _compare(self, other, np.logical_and, "logical_and")

    def logical_or(self, other: Any) -> Tensor:
        return _compare(self, other, np.logical_or, "logical_or")

    def logical_xor(self, other: Any) -> Tensor:
        return _compare(self, other, np.logical_xor, "logical_xor")

    logical_not, isnan, isinf, isfinite = (_outside_graph(np.logical_not), _outside_graph(np.isnan),
                                           _outside_graph(np.isinf), _outside_graph(np.isfinite))

    # ~, &, |, ^: bitwise on bool and integer tensors (masks), as PyTorch; refused on floats
    def __invert__(self) -> Tensor:
        return _bitwise(self, None, np.invert, "bitwise_not")

    def __and__(self, other: Any) -> Tensor:
        return _bitwise(self, other, np.bitwise_and, "bitwise_and")

    def __or__(self, other: Any) -> Tensor:
        return _bitwise(self, other, np.bitwise_or, "bitwise_or")

    def __xor__(self, other: Any) -> Tensor:
        return _bitwise(self, other, np.bitwise_xor, "bitwise_xor")

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

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

    # ---- elementwise functions -------------------------------------------------------------------------------
    def sigmoid(self) -> Tensor:
        return ops.Sigmoid.apply(_floating(self))

    def tanh(self) -> Tensor:
        return ops.Tanh.apply(_floating(self))

    def abs(self) -> Tensor:
        """|x| = relu(x) + relu(-x): its gradient at 0 is 0, as PyTorch's sign(x)."""
        return ops.Relu.apply(self) + ops.Relu.apply(-self)

    __abs__ = abs

    def sqrt(self) -> Tensor:
        return _floating(self) ** 0.5

    def rsqrt(self) -> Tensor:
        return _floating(self) ** -0.5

    def square(self) -> Tensor:
        return self * self

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:
        """Each element limited to [min, max] (numbers or tensors, broadcast); the gradient passes where
        min <= x <= max, and to a tensor bound where it is the result. min > max gives max, as in PyTorch."""
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        out = self
        if min is not None:
            out = where(_lt(out, min), min, out)
        if max is not None:
            out = where(_lt(max, out), max, out)
        return out

    clip = clamp

    def clamp_min(self, min: Any) -> Tensor:
        return self.clamp(min=min)

    def clamp_max(self, max: Any) -> Tensor:
        return self.clamp(max=max)

    def where(self, condition: Any, other: Any) -> Tensor:
        """`self` where `condition` holds, else `other` (torch's `x.where(cond, y)`)."""
        return where(condition, self, other)

    def masked_fill(self, mask: Any, value: Any) -> Tensor:
        """`value` where `mask` is True, else this tensor's elements."""
        m = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
        if m.dtype != np.bool_:
            raise RuntimeError(f"masked_fill: expected a bool mask, got dtype {m.dtype}")
        if isinstance(value, Tensor) and value.ndim != 0:
            raise RuntimeError(f"masked_fill: value must be a number or a 0-d tensor, got shape {value.shape}")
        # the value takes this tensor's dtype, as in PyTorch (an integer tensor stays one)
        out = where(mask, value.astype(self.dtype) if isinstance(value, Tensor) else Tensor._make(
            np.array(_check_scalar(value, "masked_fill"), dtype=self.dtype)), self)
        if out.shape != self.shape:
            raise RuntimeError(f"masked_fill: mask of shape {m.shape} does not broadcast to shape {self.shape}")
        return out

    def maximum(self, other: Any) -> Tensor:
        """Elementwise maximum; ties split the gradient equally, NaN propagates (as PyTorch)."""
        return _extremum(self, other, "maximum")

    def minimum(self, other: Any) -> Tensor:
        return _extremum(self, other, "minimum")

    # named arithmetic (torch.add, x.pow(2), ...): the operators, with PyTorch's extra arguments
    def add(self, other: Any, *, alpha: Any = 1) -> Tensor:
        return self + (other * alpha if alpha != 1 else other)

    def sub(self, other: Any, *, alpha: Any = 1) -> Tensor:
        return self - (other * alpha if alpha != 1 else other)

    def mul(self, other: Any) -> Tensor:
        return self * other

    def div(self, other: Any, *, rounding_mode: str | None = None) -> Tensor:
        """self / other; rounding_mode 'trunc' or 'floor' rounds the quotient (no gradient, as its
        derivative is 0 almost everywhere)."""
        if rounding_mode is None:
            return self / other
        if rounding_mode not in ("trunc", "floor"):
            raise RuntimeError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
        a, b = _common(self, other)
        with np.errstate(divide="ignore", invalid="ignore"):
            if a._data.dtype.kind != "f":
                if rounding_mode == "floor":
                    return Tensor._make(np.asarray(np.floor_divide(a._data, b._data)))
                return Tensor._make(np.asarray(np.trunc(a._data / b._data)).astype(a.dtype))
            quotient = np.true_divide(a._data, b._data)
        return Tensor._make(np.asarray((np.floor if rounding_mode == "floor" else np.trunc)(quotient)))

    def pow(self, exponent: Any) -> Tensor:
        return self ** exponent

    def neg(self) -> Tensor:
        return -self

    def reciprocal(self) -> Tensor:
        return 1.0 / _floating(self)

    # rounding and sign: their derivative is 0 almost everywhere, so their results leave the graph
    def sign(self) -> Tensor:
        """-1, 0 or 1 (0 for NaN, as PyTorch)."""
        return Tensor._make(np.asarray(np.nan_to_num(np.sign(self._data), nan=0.0)))

    floor, ceil, trunc = _outside_graph(np.floor), _outside_graph(np.ceil), _outside_graph(np.trunc)

    def round(self, *, decimals: int = 0) -> Tensor:
        """Half to even, as PyTorch (and numpy)."""
        return Tensor._make(np.asarray(np.round(self._data, decimals)))

    def nan_to_num(self, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None) -> Tensor:
        """NaN, inf and -inf replaced (by 0 and the dtype's largest and smallest values by default). The
        gradient passes where the element was finite."""
        finite = np.isfinite(self._data)
        fill = np.nan_to_num(self._data, nan=nan, posinf=posinf, neginf=neginf)
        return where(finite, self, Tensor._make(fill))

    # ---- reductions: PyTorch's dim/keepdim, numpy's axis/keepdims beside them ---------------------------------
    def sum(self, dim: Any = None, keepdim: bool = False, *, dtype: Any = None, axis: Any = None,
            keepdims: bool | None = None) -> Tensor:
        axes, keep = _reduce_args(self, dim, keepdim, axis, keepdims, "sum")
        x = self if dtype is None else self.astype(dtype)
        if x._data.dtype.kind != "f":  # integers and bools sum to int64 (no gradient), as in PyTorch
            return Tensor._make(np.asarray(x._data.sum(axis=axes, keepdims=keep, dtype=np.int64)))
        return ops.Sum.apply(x, axis=axes, keepdims=keep)

    def mean(self, dim: Any = None, keepdim: bool = False, *, dtype: Any = None, axis: Any = None,
             keepdims: bool | None = None) -> Tensor:
        axes, keep = _reduce_args(self, dim, keepdim, axis, keepdims, "mean")
        x = self if dtype is None else self.astype(dtype)
        if x._data.dtype.kind != "f":
            raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be floating point, got "
                               f"{x.dtype}; convert first, e.g. x.float().mean()")
        if x._data.dtype == np.float16:  # accumulate in float32, as PyTorch: a float16 count or sum overflows
            return x.float().mean(axes, keep).half()
        count = math.prod(x.shape[a] for a in axes)
        return x.sum(axes, keep) / count

    def prod(self, dim: Any = None, keepdim: bool = False, *, dtype: Any = None, axis: Any = None,
             keepdims: bool | None = None) -> Tensor:
        """The product over `dim` (all elements by default); its gradient is exact where elements are 0."""
        axes, keep = _reduce_args(self, dim, keepdim, axis, keepdims, "prod")
        x = self if dtype is None else self.astype(dtype)
        if x._data.dtype.kind != "f":  # integers and bools multiply to int64 (no gradient), as in PyTorch
            return Tensor._make(np.asarray(x._data.prod(axis=axes, keepdims=keep, dtype=np.int64)))
        return ops.Prod.apply(x, axis=axes, keepdims=keep)

    def var(self, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
            correction: float | None = None, axis: Any = None, keepdims: bool | None = None) -> Tensor:
        """Variance over `dim`: sum((x - mean)^2) / (N - correction); correction defaults to 1 (Bessel),
        `unbiased=False` means 0. Composite: its gradient is 2 (x - mean) / (N - correction)."""
        if isinstance(dim, bool):  # x.var(False): PyTorch's var(unbiased) overload
            dim, unbiased = None, dim
        if unbiased is not None and correction is not None:
            raise TypeError("var: pass either unbiased or correction, not both")
        c = correction if correction is not None else (0 if unbiased is False else 1)
        axes, keep = _reduce_args(self, dim, keepdim, axis, keepdims, "var")
        x = _floating(self)
        if x.dtype == np.float16:  # accumulate in float32, as PyTorch: a float16 sum of squares overflows
            return x.float().var(axes, keepdim=keep, correction=c).half()
        centred = x - x.mean(axes, keepdim=True)
        count = math.prod(x.shape[a] for a in axes)
        return (centred * centred).sum(axes, keep) / builtins.max(0, count - c)

    def std(self, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
            correction: float | None = None, axis: Any = None, keepdims: bool | None = None) -> Tensor:
        """The square root of var; its gradient is zero where the variance is zero (as PyTorch), not
        sqrt's 1 / (2 * 0) times var's zero gradient, which is NaN."""
        v = self.var(dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims)
        nonzero = v != 0  # NaN stays NaN
        return where(nonzero, where(nonzero, v, 1.0).sqrt(), 0.0)

    def amax(self, dim: Any = (), keepdim: bool = False, *, axis: Any = None, keepdims: bool | None = None) -> Tensor:
        """Maximum over `dim` (all dimensions by default); the gradient is shared equally among ties."""
        axes, keep = _reduce_args(self, None if dim == () else dim, keepdim, axis, keepdims, "amax")
        _check_not_empty(self, axes, "amax")
        return ops.Max.apply(self, axis=axes, keepdims=keep)

    def amin(self, dim: Any = (), keepdim: bool = False, *, axis: Any = None, keepdims: bool | None = None) -> Tensor:
        axes, keep = _reduce_args(self, None if dim == () else dim, keepdim, axis, keepdims, "amin")
        _check_not_empty(self, axes, "amin")
        if self._data.dtype.kind != "f":
            return Tensor._make(np.asarray(self._data.min(axis=axes, keepdims=keep)))
        return -ops.Max.apply(-self, axis=axes, keepdims=keep)

    def max(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: bool | None = None) -> Any:
        """`max()`: the largest element (ties share the gradient). `max(dim)`: a (values, indices) named
        tuple, the gradient going to the index returned, as in PyTorch. `max(other)`: `maximum`.
        `max(axis=...)` (numpy style) reduces over several axes and returns the values only."""
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        if dim is None:
            return self.amax(axis if axis is not None else (), keepdim if keepdims is None else keepdims)
        return _max_with_indices(self, dim, keepdim, "max")

    def min(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: bool | None = None) -> Any:
        """As `max`, for the smallest elements."""
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        if dim is None:
            return self.amin(axis if axis is not None else (), keepdim if keepdims is None else keepdims)
        return _max_with_indices(self, dim, keepdim, "min")

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """The index (int64) of the first largest element over `dim`, or in the flattened tensor."""
        return _arg_extremum(self, dim, keepdim, np.argmax, "argmax")

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return _arg_extremum(self, dim, keepdim, np.argmin, "argmin")

    def all(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        axes, keep = _reduce_args(self, dim, keepdim, None, None, "all")
        return Tensor._make(np.asarray(self._data.all(axis=axes, keepdims=keep)))

    def any(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        axes, keep = _reduce_args(self, dim, keepdim, None, None, "any")
        return Tensor._make(np.asarray(self._data.any(axis=axes, keepdims=keep)))

    def norm(self, p: Any = "fro", dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
        """The vector p-norm over `dim` (all elements by default): p = 2/'fro', 1, inf, -inf or any number.
        The 2-norm's gradient at a zero vector is 0, as in PyTorch (not sqrt's 1/0 times 0)."""
        axes, keep = _reduce_args(self, dim, keepdim, None, None, "norm")
        x = _floating(self if dtype is None else self.astype(dtype))
        if p in ("fro", 2, 2.0, None):
            squares = (x * x).sum(axes, keep)
            nonzero = squares != 0
            return where(nonzero, where(nonzero, squares, 1.0).sqrt(), 0.0)
        if not isinstance(p, (int, float)) or isinstance(p, bool):
            raise ValueError(f"norm: p must be a number, 'fro' or inf, got {p!r}")
        if p == math.inf:
            return x.abs().amax(axes, keep)
        if p == -math.inf:
            return x.abs().amin(axes, keep)
        if p == 0:
            return x.ne(0).sum(axes, keepdim=keep).astype(x.dtype)
        # PyTorch's gradient conventions: zero at a zero element (|x|^p's derivative there is inf * sign 0 =
        # NaN for p < 1) and zero where the norm is zero (s^(1/p)'s derivative is inf at s = 0 for p > 1).
        a = x.abs()
        nonzero = a != 0
        powered = where(nonzero, where(nonzero, a, 1.0) ** p, 0.0 if p > 0 else math.inf)
        s = powered.sum(axes, keep)
        positive = s != 0
        return where(positive, where(positive, s, 1.0) ** (1 / p), 0.0)

    def cumsum(self, dim: int, *, dtype: Any = None) -> Tensor:
        """Running sums along `dim`; integers and bools accumulate in int64, as in PyTorch."""
        x = self if dtype is None else self.astype(dtype)
        d = _dim(dim, x.ndim, "cumsum")
        if x.ndim == 0:
            return x.clone()
        if x._data.dtype.kind != "f":
            return Tensor._make(np.cumsum(x._data, axis=d, dtype=np.int64))
        return ops.Cumsum.apply(x, axis=d)

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
        """(values, indices) sorted along `dim`, ties in their original order and NaN as the largest value,
        as PyTorch on the CPU; the values' gradient goes back to where each came from."""
        d = _dim(dim, self.ndim, "sort")
        if self.ndim == 0:
            return SortResult(self.clone(), Tensor._make(np.zeros((), np.int64)))
        idx = _sort_order(self._data, d, bool(descending))
        return SortResult(self[_along(idx, d)], Tensor._make(idx))

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
        return self.sort(dim, descending, stable).indices

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
        """The k largest (or smallest) elements along `dim` and their indices, largest first."""
        d = _dim(dim, self.ndim, "topk")
        n = self.shape[d] if self.ndim else 1
        if not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
            raise RuntimeError(f"topk: selected index k={k!r} out of range for dimension {dim} of size {n}")
        if self.ndim == 0:
            return TopkResult(self.clone(), Tensor._make(np.zeros((), np.int64)))
        idx = np.take(_sort_order(self._data, d, bool(largest)), np.arange(int(k)), axis=d)
        return TopkResult(self[_along(idx, d)], Tensor._make(idx))

    def logsumexp(self, dim: Any, keepdim: bool = False) -> Tensor:
        """log(sum(exp(x))) over `dim`, shifted by the maximum so that large values do not overflow."""
        axes, keep = _reduce_args(self, dim, keepdim, None, None, "logsumexp")
        x = _floating(self)
        shift = x._data.max(axis=axes, keepdims=True) if x._data.size else np.zeros((), x.dtype)
        shift = np.where(np.isfinite(shift), shift, 0).astype(x.dtype)  # a constant: no gradient needed
        out = (x - shift).exp().sum(axes, keepdim=True).log() + shift
        return out if keep else out.squeeze(axes)

    def log_softmax(self, dim: int | None = None, dtype: Any = None, *, axis: int | None = None) -> Tensor:
        (d,) = _reduce_args(self, -1 if dim is None and axis is None else dim, False, axis, None, "log_softmax")[0]
        x = _floating(self if dtype is None else self.astype(dtype))
        if x.dtype == np.float16:  # in float32, rounded once (PyTorch's opmath)
            return x.float().log_softmax(d).half()
        # A constant shift (no gradient needed); `initial` lets an empty dimension through, as in PyTorch.
        shifted = x - x._data.max(axis=d, keepdims=True, initial=-np.inf)
        return shifted - shifted.exp().sum(d, keepdim=True).log()

    def softmax(self, dim: int | None = None, dtype: Any = None, *, axis: int | None = None) -> Tensor:
        if (self.dtype if dtype is None else np.dtype(dtype)) == np.float16:  # exp of a float16 log: 0.4 % off
            return self.float().softmax(dim, dtype and np.float32, axis=axis).half()
        return self.log_softmax(dim, dtype, axis=axis).exp()

    # ---- shape and movement ----------------------------------------------------------------------------------
    def expand(self, *sizes: int) -> Tensor:
        """A broadcast view to `sizes`; -1 keeps a dimension's size, new dimensions come first."""
        sizes = _shape_arg(sizes)
        lead = len(sizes) - self.ndim
        if lead < 0 or any(d == -1 for d in sizes[:lead]):
            raise ShapeError(f"expand: cannot expand shape {self.shape} to {sizes}: the number of sizes must be at "
                             f"least the number of dimensions ({self.ndim}), and -1 is not allowed for a new one")
        shape = sizes[:lead] + tuple(n if d == -1 else d for d, n in zip(sizes[lead:], self.shape))
        try:
            if builtins.min(shape, default=0) < 0 or np.broadcast_shapes(self.shape, shape) != shape:
                raise ValueError
        except ValueError:
            raise ShapeError(f"expand: cannot expand shape {self.shape} to {sizes}: only dimensions of size 1 can "
                             "grow") from None
        return self if shape == self.shape else ops.Expand.apply(self, shape=shape)

    def expand_as(self, other: Tensor) -> Tensor:
        return self.expand(other.shape)

    def reshape(self, *shape: int) -> Tensor:
        shape = _shape_arg(shape)
        size = self._data.size
        known = math.prod(d for d in shape if d != -1)
        wildcards = shape.count(-1)
        if not (all(d >= -1 for d in shape) and (known == size if wildcards == 0 else
                                                 wildcards == 1 and known > 0 and size % known == 0)):
            raise ShapeError(f"reshape: cannot reshape tensor of shape {self.shape} ({size} elements) "
                             f"into shape {shape}")
        shape = tuple(size // known if d == -1 else d for d in shape)
        if shape == self.shape:
            return self
        return ops.Reshape.apply(self, shape=shape)

    def view(self, *shape: int) -> Tensor:
        """`reshape`: a view of the same memory here whenever numpy can make one (never an error)."""
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer, tuple, list)):
            raise TypeError(f"view: expected a shape, got {shape[0]!r} (view(dtype) is not supported)")
        return self.reshape(*shape)

    def view_as(self, other: Tensor) -> Tensor:
        return self.reshape(other.shape)

    def reshape_as(self, other: Tensor) -> Tensor:
        return self.reshape(other.shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Dimensions start_dim..end_dim merged into one (all of them by default, as PyTorch's method;
        `nn.Flatten` and `F.flatten` keep the batch: start_dim=1)."""
        if self.ndim == 0:
            return self.reshape(1)
        start, end = _dim(start_dim, self.ndim, "flatten"), _dim(end_dim, self.ndim, "flatten")
        if start > end:
            raise RuntimeError(f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim})")
        # the size, not -1: a -1 is ambiguous for an empty batch (N = 0)
        return self.reshape(*self.shape[:start], math.prod(self.shape[start:end + 1]), *self.shape[end + 1:])

    def unflatten(self, dim: int, sizes: Sequence[int]) -> Tensor:
        d = _dim(dim, self.ndim, "unflatten")
        return self.reshape(*self.shape[:d], *sizes, *self.shape[d + 1:])

    def unsqueeze(self, dim: int) -> Tensor:
        """A new dimension of size 1 at `dim` (in [-ndim-1, ndim])."""
        d = _dim(dim, self.ndim + 1, "unsqueeze")
        return self.reshape(*self.shape[:d], 1, *self.shape[d:])

    def squeeze(self, dim: int | Sequence[int] | None = None) -> Tensor:
        """Dimensions of size 1 removed: all of them, or those among `dim` (others are left, as in PyTorch)."""
        if dim is None:
            dims = range(self.ndim)
        elif isinstance(dim, (tuple, list)):
            dims = [_dim(d, self.ndim, "squeeze") for d in dim] if self.ndim else []
        else:
            dims = [_dim(dim, self.ndim, "squeeze")] if self.ndim else []
        drop = {d for d in dims if self.shape[d] == 1}
        return self.reshape(*(n for i, n in enumerate(self.shape) if i not in drop))

    def permute(self, *axes: int) -> Tensor:
        axes = _shape_arg(axes)
        if (len(axes) != self.ndim or not all(-self.ndim <= a < self.ndim for a in axes)
                or sorted(a % self.ndim for a in axes) != list(range(self.ndim))):
            raise ValueError(f"permute: {axes} is not a permutation of the {self.ndim} axes of shape {self.shape}")
        return ops.Permute.apply(self, axes=tuple(a % self.ndim for a in axes))

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        a, b = _dim(dim0, self.ndim, "transpose"), _dim(dim1, self.ndim, "transpose")
        if a == b or self.ndim < 2:  # swapping a dimension with itself changes nothing
            return self
        axes = list(range(self.ndim))
        axes[a], axes[b] = axes[b], axes[a]
        return self.permute(*axes)

    def t(self) -> Tensor:
        """The transpose of a matrix (a tensor of at most 2 dimensions is returned transposed)."""
        if self.ndim > 2:
            raise RuntimeError(f"t: expects a tensor with <= 2 dimensions, got shape {self.shape}; use transpose()")
        return self.transpose(0, 1) if self.ndim == 2 else self

    def repeat(self, *sizes: int) -> Tensor:
        """The tensor tiled `sizes[i]` times along each dimension (leading sizes add dimensions)."""
        sizes = _shape_arg(sizes)
        if len(sizes) < self.ndim or builtins.min(sizes, default=0) < 0:
            raise RuntimeError(f"repeat: got sizes {sizes} for shape {self.shape}: one non-negative size per "
                               "dimension is needed (more add leading dimensions)")
        shape = (1,) * (len(sizes) - self.ndim) + self.shape
        # (a, b) -> (1, a, 1, b) -> (r0, a, r1, b) -> (r0 a, r1 b): one broadcast and two reshapes
        interleaved = [n for pair in zip((1,) * len(shape), shape) for n in pair]
        tiled = [n for pair in zip(sizes, shape) for n in pair]
        return self.reshape(*interleaved).expand(*tiled).reshape(*(r * n for r, n in zip(sizes, shape)))

    def split(self, split_size_or_sections: int | Sequence[int], dim: int = 0) -> tuple[Tensor, ...]:
        """Pieces along `dim`: of `split_size` each (the last may be shorter), or of the listed sizes."""
        d = _dim(dim, self.ndim, "split")
        n = self.shape[d]
        if isinstance(split_size_or_sections, (int, np.integer)):
            step = int(split_size_or_sections)
            if step <= 0 and not (step == 0 and n == 0):
                raise RuntimeError(f"split: split_size must be positive, got {step}")
            sizes = [builtins.min(step, n - start) for start in range(0, n, step)] if n else [0]
        else:
            sizes = [int(k) for k in split_size_or_sections]
            if sum(sizes) != n or builtins.min(sizes, default=0) < 0:
                raise RuntimeError(f"split: sizes {sizes} must be non-negative and sum to the length {n} of "
                                   f"dimension {dim} (shape {self.shape})")
        pieces, start = [], 0
        for k in sizes:
            pieces.append(self[(slice(None),) * d + (slice(start, start + k),)])
            start += k
        return tuple(pieces)

    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        """At most `chunks` pieces of ceil(n / chunks) along `dim` (fewer when they run out, as PyTorch)."""
        if not isinstance(chunks, (int, np.integer)) or chunks <= 0:
            raise RuntimeError(f"chunk: chunks must be a positive int, got {chunks!r}")
        n = self.shape[_dim(dim, self.ndim, "chunk")]
        return self.split(builtins.max(1, -(-n // int(chunks))), dim)

    def unbind(self, dim: int = 0) -> tuple[Tensor, ...]:
        d = _dim(dim, self.ndim, "unbind")
        return tuple(self[(slice(None),) * d + (i,)] for i in range(self.shape[d]))

    def narrow(self, dim: int, start: int, length: int) -> Tensor:
        d = _dim(dim, self.ndim, "narrow")
        start = start + self.shape[d] if start < 0 else start
        if not (0 <= start and length >= 0 and start + length <= self.shape[d]):
            raise RuntimeError(f"narrow: start {start} + length {length} exceeds dimension {dim} of shape {self.shape}")
        return self[(slice(None),) * d + (slice(start, start + length),)]

    def index_select(self, dim: int, index: Any) -> Tensor:
        d = _dim(dim, self.ndim, "index_select")
        idx = _int_index(index, "index_select").reshape(-1)
        _check_bounds(idx, self.shape[d], "index_select")
        return self[(slice(None),) * d + (idx,)]

    def nonzero(self, *, as_tuple: bool = False) -> Any:
        """The indices of the nonzero elements: an (n, ndim) int64 tensor, or one index tensor per dimension."""
        found = np.nonzero(self._data) if self._data.ndim else np.nonzero(self._data.reshape(1))
        if as_tuple:
            return tuple(Tensor._make(i.astype(np.int64)) for i in found)
        return Tensor._make(np.stack(found, axis=1).astype(np.int64).reshape(-1, self._data.ndim))

    def unique(self, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False,
               dim: int | None = None) -> Any:
        """The distinct values, sorted (and, if asked, each element's position among them and their counts)."""
        if dim is not None:
            raise NotImplementedError("unique: dim is not supported; flatten first")
        values, inverse, counts = np.unique(self._data, return_inverse=True, return_counts=True)
        out = [Tensor._make(values)]
        if return_inverse:
            out.append(Tensor._make(inverse.reshape(self.shape).astype(np.int64)))
        if return_counts:
            out.append(Tensor._make(counts.astype(np.int64)))
        return out[0] if len(out) == 1 else tuple(out)

    def bincount(self, weights: Any = None, minlength: int = 0) -> Tensor:
        """How often each value 0, 1, ... occurs in a 1-D tensor of non-negative integers."""
        if self._data.dtype.kind not in "iu":  # PyTorch's class: the kernel is "not implemented" for floats
            raise NotImplementedError(f"bincount: expected an integer tensor, got {self.dtype}")
        if self.ndim != 1 or (self._data.size and self._data.min() < 0):
            raise RuntimeError(f"bincount: expected a 1-D tensor of non-negative integers, got a {self.dtype} "
                               f"tensor of shape {self.shape}")
        w = None if weights is None else _array(weights)
        counts = np.bincount(self._data, weights=w, minlength=minlength)
        return Tensor._make(counts if w is not None else counts.astype(np.int64))

    def flip(self, *dims: int) -> Tensor:
        """The order of elements reversed along `dims` (a view, as a negative-step slice)."""
        dims = _shape_arg(dims)
        flipped = {_dim(d, self.ndim, "flip") for d in dims}
        if len(flipped) != len(dims):
            raise RuntimeError(f"flip: dims {dims} name a dimension more than once")
        if not flipped or self.ndim == 0:
            return self
        return self[tuple(slice(None, None, -1) if i in flipped else slice(None) for i in range(self.ndim))]

    def gather(self, dim: int, index: Any) -> Tensor:
        """out[i][j][k] = self[index[i][j][k]][j][k] for dim 0 (and so on): the gradient goes back to the
        gathered places, adding where an index repeats."""
        d = _dim(dim, self.ndim, "gather")
        idx = _int_index(index, "gather")
        if idx.ndim != self.ndim or any(idx.shape[i] > self.shape[i] for i in range(self.ndim) if i != d):
            raise RuntimeError(f"gather: index of shape {idx.shape} does not fit input of shape {self.shape} "
                               f"(same number of dimensions, no larger except in dimension {dim})")
        _check_bounds(idx, self.shape[d], "gather")
        return self[_along(idx, d)]

    def mm(self, mat2: Tensor) -> Tensor:
        """The product of two matrices (both 2-D, no broadcasting)."""
        if self.ndim != 2 or not isinstance(mat2, Tensor) or mat2.ndim != 2:
            raise RuntimeError(f"mm: expected two 2-D tensors, got shapes {self.shape} and "
                               f"{getattr(mat2, 'shape', type(mat2).__name__)}")
        return self.matmul(mat2)

    def bmm(self, mat2: Tensor) -> Tensor:
        """Batched matrix products: (b, n, m) @ (b, m, p) -> (b, n, p), no broadcasting."""
        if self.ndim != 3 or not isinstance(mat2, Tensor) or mat2.ndim != 3 or self.shape[0] != mat2.shape[0]:
            raise RuntimeError(f"bmm: expected two 3-D tensors with the same batch size, got shapes {self.shape} "
                               f"and {getattr(mat2, 'shape', type(mat2).__name__)}")
        return self.matmul(mat2)

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

    # ---- in-place updates: change the memory, bump the version --------------------------------------------
    def fill_(self, value: Any) -> Tensor:
        return _write(self, _check_scalar(value, "fill_"), "fill_")

    def zero_(self) -> Tensor:
        return _write(self, 0, "zero_")

    def copy_(self, src: Any, non_blocking: bool = False) -> Tensor:
        """This tensor's elements replaced by `src`'s (broadcast to its shape, cast to its dtype)."""
        return _write(self, src._data if isinstance(src, Tensor) else np.asarray(src), "copy_")

    def add_(self, other: Any, *, alpha: Any = 1) -> Tensor:
        return _update(self, self._data + alpha * _array(other) if alpha != 1 else self._data + _array(other), "add_")

    def sub_(self, other: Any, *, alpha: Any = 1) -> Tensor:
        return _update(self, self._data - alpha * _array(other) if alpha != 1 else self._data - _array(other), "sub_")

    def mul_(self, other: Any) -> Tensor:
        return _update(self, self._data * _array(other), "mul_")

    def div_(self, other: Any) -> Tensor:
        return _update(self, self._data / _array(other), "div_")

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:
        with no_grad():  # the new values are data, never recorded
            return _update(self, self.clamp(min, max)._data, "clamp_")

    def masked_fill_(self, mask: Any, value: Any) -> Tensor:
        with no_grad():
            return _update(self, self.masked_fill(mask, value)._data, "masked_fill_")

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> Tensor:
        """Fill with draws from U(a, b), from the generator `manual_seed` seeds."""
        return _write(self, rng.generator().uniform(a, b, self.shape), "uniform_")

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> Tensor:
        """Fill with draws from N(mean, std^2), from the generator `manual_seed` seeds."""
        return _write(self, rng.generator().normal(mean, std, self.shape), "normal_")

    def scatter_(self, dim: int, index: Any, src: Any = None, *, value: Any = None) -> Tensor:
        """self[index[i][j]][j] = src[i][j] (for dim 0, and so on): e.g. one-hot rows with src=1.0."""
        return _scatter(self, dim, index, value if src is None else src, "scatter_", add=False)

    def scatter_add_(self, dim: int, index: Any, src: Any) -> Tensor:
        """self[index[i][j]][j] += src[i][j], repeated indices adding up."""
        return _scatter(self, dim, index, src, "scatter_add_", add=True)


# ---- functions: torch.cat, torch.stack, torch.where, and the function form of methods (torch.flatten(x, 1)) --
def where(condition: Any, input: Any = None, other: Any = None) -> Any:
    """`input` where `condition` (a bool tensor) holds, else `other`; all three broadcast, and input and other
    (tensors or numbers) meet in their common dtype, as in PyTorch. Differentiable in input and other.
    `where(condition)` alone is `condition.nonzero(as_tuple=True)`."""
    if input is None and other is None and isinstance(condition, Tensor):
        return condition.nonzero(as_tuple=True)
    cond = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != np.bool_:
        raise RuntimeError(f"where: expected condition to be a bool tensor, got dtype {cond.dtype}")
    a, b = _common(input, other)
    try:
        np.broadcast_shapes(cond.shape, a.shape, b.shape)
    except ValueError:
        raise ShapeError(f"where: shapes {cond.shape} (condition), {a.shape} and {b.shape} do not broadcast") from None
    return ops.Where.apply(a, b, condition=cond)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """The tensors joined along `dim` (equal in every other dimension; dtypes promoted, as in PyTorch)."""
    ts = _tensor_list(tensors, "cat")
    ndim = ts[0].ndim
    if ndim == 0:
        raise RuntimeError("cat: zero-dimensional tensor (at position 0) cannot be concatenated")
    d = _dim(dim, ndim, "cat")
    rest = ts[0].shape[:d] + ts[0].shape[d + 1:]
    for k, t in enumerate(ts):
        if t.ndim != ndim or t.shape[:d] + t.shape[d + 1:] != rest:
            raise ShapeError(f"cat: sizes of tensors must match except in dimension {d}: tensor 0 has shape "
                             f"{ts[0].shape}, tensor {k} has shape {t.shape}")
    dtype = _common_dtype([t.dtype for t in ts])
    return ops.Cat.apply(*(t.astype(dtype) for t in ts), axis=d)


concat = concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """The tensors (all of one shape) joined along a new dimension `dim`."""
    ts = _tensor_list(tensors, "stack")
    for k, t in enumerate(ts):
        if t.shape != ts[0].shape:
            raise ShapeError(f"stack: expects each tensor to be equal size, but got {ts[0].shape} at entry 0 and "
                             f"{t.shape} at entry {k}")
    d = _dim(dim, ts[0].ndim + 1, "stack")
    return cat([t.unsqueeze(d) for t in ts], d)


def _as_function(name: str) -> Callable[..., Any]:
    def function(input: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(input, np.ndarray):  # `t.data` is the array here: torch.max(outputs.data, 1) must work
            input = Tensor._make(input)
        elif not isinstance(input, Tensor):
            raise TypeError(f"{name}(): argument 'input' must be a Tensor, not {type(input).__name__}")
        return getattr(input, name)(*args, **kwargs)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"`{name}(input, ...)`: the function form of `Tensor.{name}`, as `torch.{name}`."
    return function


# Exported by the package (tinygrad_cnn.flatten, .max, ...); a dict, because names such as max, sum and all
# must not shadow the builtins in this module.
FUNCTIONS = {name: _as_function(name) for name in (
    "abs", "add", "all", "amax", "amin", "any", "argmax", "argmin", "argsort", "bincount", "bmm", "ceil", "chunk",
    "clamp", "clip", "clone", "cumsum", "div", "eq", "exp", "flatten", "flip", "floor", "gather", "ge", "gt",
    "index_select", "isfinite", "isinf", "isnan", "le", "log", "log_softmax", "logical_and", "logical_not",
    "logical_or", "logical_xor", "logsumexp", "lt", "masked_fill", "matmul", "max", "maximum", "mean", "min",
    "minimum", "mm", "mul", "nan_to_num", "narrow", "ne", "neg", "nonzero", "norm", "permute", "pow", "prod",
    "reciprocal", "relu", "reshape", "round", "rsqrt", "sigmoid", "sign", "softmax", "sort", "split", "sqrt",
    "square", "squeeze", "std", "sub", "sum", "t", "tanh", "topk", "transpose", "trunc", "unbind", "unflatten",
    "unique", "unsqueeze", "var")}


# ---- results and errors --------------------------------------------------------------------------------------------
class Size(tuple):
    """A shape, as `size()` returns it (PyTorch's torch.Size): a tuple of ints with `numel()`."""

    def numel(self) -> int:
        return math.prod(self)

    def __repr__(self) -> str:
        return f"Size({list(self)})"


class ShapeError(ValueError, RuntimeError):
    """Shapes that do not fit: PyTorch raises RuntimeError, numpy-minded code catches ValueError."""


class DimensionError(ValueError, IndexError):
    """A dimension out of range: PyTorch raises IndexError, numpy-minded code catches ValueError."""


# `max(dim)` and `min(dim)` return these, as torch.return_types.max / .min
MaxResult = collections.namedtuple("max", ["values", "indices"])
MinResult = collections.namedtuple("min", ["values", "indices"])
SortResult = collections.namedtuple("sort", ["values", "indices"])
TopkResult = collections.namedtuple("topk", ["values", "indices"])


# ---- helpers of the methods above --------------------------------------------------------------------------------
_CATEGORIES = {"b": 0, "u": 1, "i": 1, "f": 2}  # bool < integer < floating point


def _common_dtype(dtypes: Sequence[np.dtype]) -> np.dtype:
    """PyTorch's promotion among tensors: the highest category wins (int64 and float32 give float32), and
    within it numpy's promotion (float32 and float64 give float64)."""
    top = builtins.max(_CATEGORIES[d.kind] for d in dtypes)
    return functools.reduce(np.promote_types, [d for d in dtypes if _CATEGORIES[d.kind] == top])


def _common(*values: Any) -> list[Tensor]:
    """Tensors, arrays and Python numbers as Tensors of their common dtype: tensors with dimensions decide;
    0-d tensors and then numbers only raise the category (int tensor and 0.5 give float32), as PyTorch."""
    dims = [v.dtype for v in values if isinstance(v, (Tensor, np.ndarray)) and v.ndim > 0]
    zeros = [v.dtype for v in values if isinstance(v, (Tensor, np.ndarray)) and v.ndim == 0]
    numbers = [factories.scalar_dtype(v) for v in values if not isinstance(v, (Tensor, np.ndarray))]
    dtype = None
    for group in (dims, zeros, numbers):
        if group:
            candidate = _common_dtype(group)
            if group is numbers and candidate.kind == "f":
                candidate = np.dtype(np.float32) if dtype is None or dtype.kind != "f" else dtype
            if dtype is None or _CATEGORIES[candidate.kind] > _CATEGORIES[dtype.kind]:
                dtype = candidate
    out = []
    for v in values:
        if isinstance(v, Tensor):
            out.append(v.astype(dtype))
        elif isinstance(v, np.ndarray):
            out.append(Tensor._make(v.astype(dtype, copy=False)))
        else:
            out.append(Tensor._make(np.array(_check_scalar(v, "where"), dtype=dtype)))
    return out


def _floating(t: Tensor) -> Tensor:
    """Integer and bool tensors become float32 for functions with fractional results (sqrt, sigmoid...)."""
    return t if t._data.dtype.kind == "f" else t.astype(np.float32)


def _one_element(t: Tensor, op: str) -> Any:
    if t._data.size != 1:
        raise ValueError(f"{op}: only one element tensors can be converted to Python scalars, got shape {t.shape}")
    return t._data.item()


def _check_scalar(value: Any, op: str) -> Any:
    """A number, or a 0-d tensor's value."""
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"{op}: expected a number or a 0-d tensor, got a tensor of shape {value.shape}")
        return value._data
    if not isinstance(value, (int, float, bool, np.generic)):
        raise TypeError(f"{op}: expected a number, got {type(value).__name__}")
    return value


def _array(value: Any) -> Any:
    return value._data if isinstance(value, Tensor) else value


def _lt(a: Any, b: Any) -> np.ndarray:
    return np.less(_array(a), _array(b))


def _extremum(a: Tensor, other: Any, op: str) -> Tensor:
    """maximum/minimum: the larger (smaller) element, the mean of the two where they tie or one is NaN, so
    that ties share the gradient and NaN propagates, as in PyTorch."""
    if not isinstance(other, Tensor):
        raise TypeError(f"{op}: expected a Tensor as other, got {type(other).__name__}")
    x, y = _common(a, other)
    if x._data.dtype.kind != "f":
        return Tensor._make(np.asarray((np.maximum if op == "maximum" else np.minimum)(x._data, y._data)))
    first, second = (np.greater, np.less) if op == "maximum" else (np.less, np.greater)
    return where(first(x._data, y._data), x, where(second(x._data, y._data), y, x * 0.5 + y * 0.5))


def _check_not_empty(x: Tensor, axes: tuple[int, ...], op: str) -> None:
    for a in axes if x.ndim else ():
        if x.shape[a] == 0:
            raise DimensionError(f"{op}: cannot reduce dimension {a} of size 0 (shape {x.shape}): there is no "
                                 "identity")


def _max_with_indices(x: Tensor, dim: Any, keepdim: bool, op: str) -> tuple[Tensor, Tensor]:
    result = MaxResult if op == "max" else MinResult
    d = _dim(dim, x.ndim, op)
    if x.ndim == 0:
        return result(x.clone(), Tensor._make(np.zeros((), np.int64)))
    _check_not_empty(x, (d,), op)
    idx = (np.argmax if op == "max" else np.argmin)(x._data, axis=d, keepdims=True)  # first extremum (or NaN)
    values = x[_along(idx, d)]  # the gradient goes to the index returned, as in PyTorch
    if not keepdim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return result(values, Tensor._make(idx.astype(np.int64, copy=False)))


def _arg_extremum(x: Tensor, dim: Any, keepdim: bool, fn: Callable, op: str) -> Tensor:
    if dim is None:
        if x._data.size == 0:
            raise DimensionError(f"{op}: expected reduction dim to be specified for an empty tensor")
        idx = np.asarray(fn(x._data.reshape(-1)))
        return Tensor._make(idx.reshape((1,) * x.ndim if keepdim else ()).astype(np.int64))
    d = _dim(dim, x.ndim, op)
    if x.ndim == 0:
        return Tensor._make(np.zeros((), np.int64))
    _check_not_empty(x, (d,), op)
    return Tensor._make(np.asarray(fn(x._data, axis=d, keepdims=bool(keepdim))).astype(np.int64, copy=False))


def _along(idx: np.ndarray, d: int) -> tuple[np.ndarray, ...]:
    """An advanced index picking idx[..., i, ...] along dimension d and the matching position elsewhere."""
    return tuple(idx if i == d else np.arange(n).reshape([-1 if j == i else 1 for j in range(idx.ndim)])
                 for i, n in enumerate(idx.shape))


def _int_index(index: Any, op: str) -> np.ndarray:
    idx = index._data if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"{op}: index must be an integer (int64) tensor, got dtype {idx.dtype}")
    return idx


def _check_bounds(idx: np.ndarray, n: int, op: str) -> None:
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = idx[(idx < 0) | (idx >= n)]
        raise RuntimeError(f"{op}: index {bad.reshape(-1)[0]} is out of bounds for a dimension of size {n}")


def _tensor_list(tensors: Any, op: str) -> list[Tensor]:
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: expected a list or tuple of Tensors, got {type(tensors).__name__}")
    if not tensors:  # PyTorch's classes: ValueError from cat, RuntimeError from stack
        raise (ValueError if op == "cat" else RuntimeError)(f"{op}: expected a non-empty list of Tensors")
    for k, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected Tensors, got {type(t).__name__} at position {k}")
    return list(tensors)


def _sort_order(a: np.ndarray, d: int, descending: bool) -> np.ndarray:
    """Indices sorting `a` along d, stably; NaN counts as the largest value (first when descending)."""
    a = np.moveaxis(a, d, -1)
    if not descending:
        order = np.argsort(a, axis=-1, kind="stable")  # numpy puts NaN last, as PyTorch does
    else:
        nan = np.isnan(a) if a.dtype.kind == "f" else np.zeros(a.shape, bool)
        key = -(a.astype(np.int64) if a.dtype.kind in "bu" else a)
        order = np.lexsort((np.where(nan, 0, key), ~nan), axis=-1)  # NaN first, then by -a; lexsort is stable
    return np.moveaxis(order, -1, d).astype(np.int64, copy=False)


def _bitwise(a: Tensor, other: Any, ufunc: np.ufunc, op: str) -> Tensor:
    values = [a._data] if other is None else [a._data, _array(other)]
    if any(np.asarray(v).dtype.kind not in "biu" for v in values):
        raise (TypeError if other is None else NotImplementedError)(  # PyTorch's classes
            f"{op}: only bool and integer tensors (masks) have bitwise operators, got "
            f"{', '.join(str(np.asarray(v).dtype) for v in values)}")
    try:
        return Tensor._make(np.asarray(ufunc(*values)))
    except ValueError:
        raise ShapeError(f"{op}: shapes {' and '.join(str(np.shape(v)) for v in values)} do not broadcast") from None


def _scatter(t: Tensor, dim: int, index: Any, src: Any, op: str, add: bool) -> Tensor:
    d = _dim(dim, t.ndim, op)
    idx = _int_index(index, op)
    if idx.ndim != t.ndim or any(idx.shape[i] > t.shape[i] for i in range(t.ndim) if i != d):
        raise RuntimeError(f"{op}: index of shape {idx.shape} does not fit a tensor of shape {t.shape}")
    _check_bounds(idx, t.shape[d], op)
    values = _array(src)
    values = np.broadcast_to(values, idx.shape) if np.ndim(values) == 0 else np.asarray(values)[
        tuple(slice(0, n) for n in idx.shape)]
    result = t._data.copy()
    if add:
        np.add.at(result, _along(idx, d), values)
    else:
        result[_along(idx, d)] = values
    return _write(t, result, op)


def _update(t: Tensor, result: Any, op: str) -> Tensor:
    """An in-place arithmetic update: like PyTorch, refuse a result that the tensor's dtype cannot hold."""
    result = np.asarray(result)
    if _CATEGORIES[result.dtype.kind] > _CATEGORIES[t._data.dtype.kind]:
        raise RuntimeError(f"{op}: result type {result.dtype} can't be cast to the desired output type "
                           f"{t.dtype}")
    return _write(t, result, op)


def _write(t: Tensor, value: Any, op: str) -> Tensor:
    """An in-place update of t's memory, refused where PyTorch refuses it; bumps the version."""
    if Config.enable_grad and t.requires_grad:
        what = "a leaf tensor that requires grad" if t._ctx is None else "a tensor recorded in a graph"
        raise RuntimeError(f"{op}: cannot update {what} (shape {t.shape}) in place while grad mode is on; "
                           "wrap it in `with tinygrad_cnn.no_grad():`")
    if not t._data.flags.writeable:
        raise RuntimeError(f"{op}: the tensor's memory is read-only (an expand() view, or a read-only array); "
                           "clone() it first")
    try:
        np.copyto(t._data, value, casting="unsafe")
    except ValueError:
        raise ShapeError(f"{op}: a source of shape {np.shape(value)} does not broadcast to shape {t.shape}") from None
    t._bump_version()
    return t


def _dim(dim: Any, ndim: int, op: str) -> int:
    """One dimension as a non-negative int; a 0-d tensor accepts 0 and -1, as in PyTorch."""
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    n = builtins.max(ndim, 1)
    if not -n <= dim < n:
        raise DimensionError(f"{op}: dimension {dim} is out of range for a tensor with {ndim} dimensions (expected "
                             f"to be in range of [{-n}, {n - 1}])")
    return int(dim) % n


def _reduce_args(x: Tensor, dim: Any, keepdim: bool, axis: Any, keepdims: bool | None,
                 op: str) -> tuple[tuple[int, ...], bool]:
    """PyTorch's (dim, keepdim) or numpy's (axis, keepdims) as sorted axes and a flag."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: pass dim or axis, not both")
        dim = axis
    return norm_axis(dim, x.ndim, op), bool(keepdim if keepdims is None else keepdims)


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
            raise DimensionError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
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
    for name in ("eq", "ne", "lt", "le", "gt", "ge"):  # ==, <, ... are the comparison methods
        setattr(Tensor, f"__{name}__", getattr(methods, name))


_attach(TensorMethods)
