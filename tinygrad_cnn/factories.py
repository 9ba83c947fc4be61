"""Tensor factories and dtypes with PyTorch's names, arguments and defaults.

`tensor`, `zeros`, `ones`, `full`, `empty`, `arange`, `linspace`, `eye`, `rand`, `randn`, `randint`,
`randperm`, the `*_like` forms and `from_numpy`. Floating-point results default to float32
(`get_default_dtype()`), integer ones to int64, as in PyTorch. Random draws come from the library's one
generator (`rng.py`), so `manual_seed(n)` makes them reproducible. The dtypes (`float32`, `long`, ...) are
numpy dtypes: `t.dtype == tinygrad_cnn.float32` holds for a float32 tensor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import rng
from .autograd import Tensor, as_array
from .devices import is_device_like, resolve

# ---- dtypes --------------------------------------------------------------------------------------------------
float16 = half = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
uint8 = np.dtype(np.uint8)
int8 = np.dtype(np.int8)
int16 = short = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = long = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)
DTYPES = {"float16": float16, "half": half, "float32": float32, "float": float32, "float64": float64,
          "double": double, "uint8": uint8, "int8": int8, "int16": int16, "short": short, "int32": int32,
          "int": int32, "int64": int64, "long": long, "bool": bool_}


def get_default_dtype() -> np.dtype:
    """The dtype of floating-point tensors made from Python numbers: float32 (as in PyTorch)."""
    return float32


def as_dtype(dtype: Any, op: str) -> np.dtype | None:
    """A dtype argument as a numpy dtype (None stays None). Python's `float` and `int` mean float64 and
    int64, as in both PyTorch and numpy."""
    if dtype is None:
        return None
    try:
        result = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{op}: dtype must be a dtype such as tinygrad_cnn.float32, got {dtype!r}") from None
    if result.kind not in "biuf":
        raise TypeError(f"{op}: unsupported dtype {result}; expected bool, integer or floating point")
    return result


def to_args(args: tuple, kwargs: dict, op: str) -> tuple[np.dtype | None, bool]:
    """The arguments of PyTorch's `.to()`: (device, dtype, non_blocking, copy) positionally in that order,
    a tensor standing for its dtype, or keywords. Checks the device (only the CPU); returns (dtype, copy)."""
    kwargs = dict(kwargs)
    dtype, device = kwargs.pop("dtype", None), kwargs.pop("device", None)
    copy = bool(kwargs.pop("copy", False))
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"{op}: unexpected keyword argument {next(iter(kwargs))!r}")
    flags = [a for a in args if isinstance(a, bool)]  # non_blocking, copy
    args = [a for a in args if not isinstance(a, bool)]
    if len(args) > 2 or len(flags) > 2:
        raise TypeError(f"{op}: expected (device, dtype, non_blocking, copy), got {len(args) + len(flags)} arguments")
    copy = copy or (len(flags) == 2 and flags[1])
    for arg in args:
        if isinstance(arg, Tensor):
            dtype = arg.dtype
        elif is_device_like(arg) or isinstance(arg, (int, np.integer)):
            device = arg
        else:
            dtype = as_dtype(arg, op)
    resolve(device, op)
    return as_dtype(dtype, op), copy


def _finish(arr: np.ndarray, requires_grad: bool, device: Any, op: str) -> Tensor:
    resolve(device, op)
    if requires_grad and arr.dtype.kind != "f":
        raise RuntimeError(f"{op}: only tensors of floating point dtype can require gradients, got {arr.dtype}")
    t = Tensor._make(arr)
    t.requires_grad = bool(requires_grad)
    return t


def size_arg(size: tuple, op: str) -> tuple[int, ...]:
    """`*size` as PyTorch takes it: ints, or one tuple/list (a `Size`)."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in size):
        raise TypeError(f"{op}: size must be ints or one tuple of ints, got {size!r}")
    if any(d < 0 for d in size):
        raise RuntimeError(f"{op}: negative dimension in size {tuple(size)}")
    return tuple(int(d) for d in size)


def _unwrap(data: Any) -> Any:
    """Nested lists holding Tensors (e.g. 0-d results of .sum()) as nested lists of arrays."""
    if isinstance(data, Tensor):
        return data.data
    if isinstance(data, (list, tuple)):
        return [_unwrap(d) for d in data]
    return data


# ---- from data -----------------------------------------------------------------------------------------------
def tensor(data: Any, *, dtype: Any = None, device: Any = None, requires_grad: bool = False,
           pin_memory: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (a number, nested list, ndarray or Tensor).

    Python floats become float32, ints int64, bools bool; an ndarray keeps its dtype."""
    dt = as_dtype(dtype, "tensor")
    arr = np.array(as_array(_unwrap(data), dt, "tensor"), copy=True)
    return _finish(arr, requires_grad, device, "tensor")


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """`data` as a Tensor, sharing memory with an ndarray or Tensor of the right dtype (torch.as_tensor)."""
    dt = as_dtype(dtype, "as_tensor")
    if isinstance(data, Tensor) and (dt is None or data.dtype == dt):
        resolve(device, "as_tensor")
        return data
    return _finish(as_array(_unwrap(data), dt, "as_tensor"), False, device, "as_tensor")


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A Tensor sharing memory with `ndarray` (changes to either show in both); the dtype is kept."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(ndarray).__name__})")
    return Tensor._make(as_array(ndarray, None, "from_numpy"))


# ---- filled ----------------------------------------------------------------------------------------------------
def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    shape = size_arg(size, "zeros")
    return _finish(np.zeros(shape, as_dtype(dtype, "zeros") or float32), requires_grad, device, "zeros")


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    shape = size_arg(size, "ones")
    return _finish(np.ones(shape, as_dtype(dtype, "ones") or float32), requires_grad, device, "ones")


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uninitialised in PyTorch; zeros here (deterministic, and as cheap)."""
    shape = size_arg(size, "empty")
    return _finish(np.zeros(shape, as_dtype(dtype, "empty") or float32), requires_grad, device, "empty")


def scalar_dtype(value: Any) -> np.dtype:
    """The dtype PyTorch infers from a fill value: bool, int64 for ints, the default float for floats."""
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return int64
    if isinstance(value, np.generic):
        return value.dtype
    return float32


def _check_number(value: Any, name: str, op: str) -> Any:
    if isinstance(value, Tensor):
        if value.data.size != 1:
            raise RuntimeError(f"{op}: {name} must be a number or a one-element tensor, got shape {value.shape}")
        return value.data.reshape(()).item()
    if not isinstance(value, (int, float, bool, np.generic)):
        raise TypeError(f"{op}: {name} must be a number, got {type(value).__name__}")
    return value


def full(size: Sequence[int], fill_value: Any, *, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    shape = size_arg((size,) if isinstance(size, (int, np.integer)) else tuple(size), "full")
    value = _check_number(fill_value, "fill_value", "full")
    dt = as_dtype(dtype, "full") or scalar_dtype(value)
    return _finish(np.full(shape, value, dt), requires_grad, device, "full")


def eye(n: int, m: int | None = None, *, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    for name, v in (("n", n), ("m", m)):
        if v is not None and (not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0):
            raise RuntimeError(f"eye: {name} must be a non-negative int, got {v!r}")
    return _finish(np.eye(n, n if m is None else m, dtype=as_dtype(dtype, "eye") or float32), requires_grad, device,
                   "eye")


# ---- ranges ----------------------------------------------------------------------------------------------------
def arange(start: Any = 0, end: Any = None, step: Any = 1, *, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """[start, end) in steps of `step`; `arange(n)` is 0..n-1. int64 for integer arguments, else float32."""
    if end is None:
        start, end = 0, start
    start, end, step = (_check_number(v, name, "arange") for v, name in ((start, "start"), (end, "end"),
                                                                        (step, "step")))
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if not all(math.isfinite(v) for v in (start, end, step)):
        raise RuntimeError(f"arange: start, end and step must be finite, got {start}, {end}, {step}")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: upper bound and lower bound inconsistent with step sign "
                           f"(start={start}, end={end}, step={step})")
    integral = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (start, end, step))
    dt = as_dtype(dtype, "arange") or (int64 if integral else float32)
    count = max(0, math.ceil((end - start) / step))
    # Each value computed as start + i * step in float64 (PyTorch's accumulate type), then cast.
    values = np.arange(count, dtype=np.int64) * step + start if integral else start + np.arange(count) * float(step)
    return _finish(values.astype(dt), requires_grad, device, "arange")


def linspace(start: Any, end: Any, steps: int, *, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """`steps` evenly spaced values from start to end inclusive (float32 by default)."""
    start, end = _check_number(start, "start", "linspace"), _check_number(end, "end", "linspace")
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 0:
        raise RuntimeError(f"linspace: number of steps must be a non-negative int, got {steps!r}")
    dt = as_dtype(dtype, "linspace") or float32
    # PyTorch's formula, in the output's precision (float64 for integers): from the start for the first
    # half, from the end for the second, so both ends are exact.
    work = dt if dt.kind == "f" else np.dtype(np.float64)
    first, last = np.array(start, work), np.array(end, work)
    step = (last - first) / work.type(steps - 1) if steps > 1 else work.type(0)
    i = np.arange(steps, dtype=work)
    values = np.where(i < max(steps // 2, 1), first + step * i, last - step * (work.type(steps - 1) - i))
    return _finish(values.astype(dt), requires_grad, device, "linspace")


# ---- random ------------------------------------------------------------------------------------------------------
def _float_dtype(dtype: Any, op: str) -> np.dtype:
    dt = as_dtype(dtype, op) or float32
    if dt.kind != "f":  # PyTorch's class: the random kernel is "not implemented" for integer dtypes
        raise NotImplementedError(f"{op}: random floats need a floating point dtype, got {dt}")
    return dt


def _generator(generator: Any) -> np.random.Generator:
    return rng.generator() if generator is None else generator


def rand(*size: Any, generator: Any = None, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform on [0, 1)."""
    dt = _float_dtype(dtype, "rand")
    arr = _generator(generator).random(size_arg(size, "rand"), dtype=np.float64 if dt == float64 else np.float32)
    return _finish(arr.astype(dt, copy=False), requires_grad, device, "rand")


def randn(*size: Any, generator: Any = None, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal."""
    dt = _float_dtype(dtype, "randn")
    arr = _generator(generator).standard_normal(size_arg(size, "randn"),
                                                dtype=np.float64 if dt == float64 else np.float32)
    return _finish(arr.astype(dt, copy=False), requires_grad, device, "randn")


def randint(*args: Any, size: Any = None, generator: Any = None, dtype: Any = None, device: Any = None,
            requires_grad: bool = False) -> Tensor:
    """Integers uniform on [low, high): `randint(high, size)` or `randint(low, high, size)`; int64."""
    args = args + (() if size is None else (size,))
    if len(args) == 2:
        (low, high), shape = (0, args[0]), args[1]
    elif len(args) == 3:
        low, high, shape = args
    else:
        raise TypeError("randint: expected randint(high, size) or randint(low, high, size)")
    low, high = int(_check_number(low, "low", "randint")), int(_check_number(high, "high", "randint"))
    if low >= high:
        raise RuntimeError(f"randint: expected low < high, got low={low}, high={high}")
    shape = size_arg((shape,) if isinstance(shape, (int, np.integer)) else tuple(shape), "randint")
    dt = as_dtype(dtype, "randint") or int64
    return _finish(_generator(generator).integers(low, high, shape).astype(dt), requires_grad, device, "randint")


def randperm(n: int, *, generator: Any = None, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """A random permutation of 0..n-1 (int64)."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise RuntimeError(f"randperm: n must be a non-negative int, got {n!r}")
    dt = as_dtype(dtype, "randperm") or int64
    return _finish(_generator(generator).permutation(int(n)).astype(dt), requires_grad, device, "randperm")


# ---- *_like: the shape (and by default the dtype) of another tensor ---------------------------------------------
def _like(input: Any, op: str) -> Tensor:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    return input


def zeros_like(input: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    x = _like(input, "zeros_like")
    return _finish(np.zeros(x.shape, as_dtype(dtype, "zeros_like") or x.dtype), requires_grad, device, "zeros_like")


def ones_like(input: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    x = _like(input, "ones_like")
    return _finish(np.ones(x.shape, as_dtype(dtype, "ones_like") or x.dtype), requires_grad, device, "ones_like")


def empty_like(input: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    x = _like(input, "empty_like")
    return _finish(np.zeros(x.shape, as_dtype(dtype, "empty_like") or x.dtype), requires_grad, device, "empty_like")


def full_like(input: Tensor, fill_value: Any, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    x = _like(input, "full_like")
    value = _check_number(fill_value, "fill_value", "full_like")
    return _finish(np.full(x.shape, value, as_dtype(dtype, "full_like") or x.dtype), requires_grad, device,
                   "full_like")


def rand_like(input: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    x = _like(input, "rand_like")
    return rand(x.shape, dtype=dtype or x.dtype, device=device, requires_grad=requires_grad)


def randn_like(input: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    x = _like(input, "randn_like")
    return randn(x.shape, dtype=dtype or x.dtype, device=device, requires_grad=requires_grad)


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    return int(_like(input, "numel").data.size)
