"""Gradient clipping with PyTorch's arithmetic: the total norm is the norm of the per-tensor norms, each
computed in its gradient's dtype, and gradients are scaled in place by min(1, max_norm / (total + 1e-6))."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ...autograd import Tensor


def _tensors(op: str, parameters: Any) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        return [parameters]
    try:
        found = list(parameters)
    except TypeError:
        raise TypeError(f"{op}: parameters must be a Tensor or an iterable of Tensors (e.g. model.parameters()), "
                        f"got {type(parameters).__name__}") from None
    for i, p in enumerate(found):
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: parameters[{i}] is a {type(p).__name__}, expected a Tensor")
    return found


def _number(op: str, name: str, value: Any) -> float:
    if isinstance(value, Tensor) and value.data.size == 1:
        value = value.data.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number, got {type(value).__name__} {value!r}")
    return float(value)


_CHUNK = 2**16


def _vector_norm(a: np.ndarray, ord: float) -> np.generic:  # noqa: A002 - numpy's and PyTorch's name
    """The `ord`-norm of `a` as a scalar of its dtype, accumulated in float64 (so correctly rounded for float32
    gradients, where PyTorch's float32 reduction of a few million elements can be off by ~1e-4 relative)."""
    dtype = a.dtype
    v = a.ravel()
    if ord == 2:
        total = 0.0
        for start in range(0, v.size, _CHUNK):  # float64 a chunk at a time: no gradient-sized temporary
            chunk = v[start:start + _CHUNK].astype(np.float64)
            total += float(np.square(chunk, out=chunk).sum())  # pairwise summation, not BLAS (threads)
        return dtype.type(math.sqrt(total))
    x = np.abs(v)
    if ord == math.inf:
        result = x.max() if x.size else 0.0
    elif ord == -math.inf:
        result = x.min() if x.size else math.inf
    elif ord == 0:
        result = np.count_nonzero(x)
    elif ord == 1:
        result = x.sum(dtype=np.float64)
    else:
        result = (x.astype(np.float64) ** ord).sum() ** (1.0 / ord)
    return dtype.type(result)


def get_total_norm(tensors: Any, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> Tensor:
    """The `norm_type`-norm of all `tensors` together (as if concatenated into one vector), as a 0-d Tensor."""
    op = "get_total_norm"
    found = _tensors(op, tensors)
    norm_type = _number(op, "norm_type", norm_type)
    if not found:
        return Tensor(np.array(0.0, np.float32))
    dtype = np.result_type(*[t.dtype for t in found])
    norms = np.array([_vector_norm(t.data, norm_type) for t in found], dtype=dtype)
    total = _vector_norm(norms, norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"{op}: the total norm of order {norm_type} for gradients from `parameters` is "
                           f"non-finite ({total}), so it cannot be clipped. To scale the gradients by the non-finite "
                           "norm anyway, set `error_if_nonfinite=False`")
    return Tensor(np.array(total, dtype))


def clip_grads_with_norm_(parameters: Any, max_norm: float, total_norm: Any, foreach: bool | None = None) -> None:
    """Scale every gradient in place by min(1, max_norm / (total_norm + 1e-6))."""
    op = "clip_grads_with_norm_"
    found = _tensors(op, parameters)
    max_norm = _number(op, "max_norm", max_norm)
    total = total_norm.data if isinstance(total_norm, Tensor) else np.asarray(_number(op, "total_norm", total_norm))
    grads = {id(p.grad): p.grad for p in found if p.grad is not None}
    if not grads:
        return
    coef = total.dtype.type(max_norm) / (total + total.dtype.type(1e-6))
    coef = np.minimum(coef, total.dtype.type(1.0))
    for g in grads.values():
        # a new array: gradients of different parameters may share memory (one op's VJP reused), and an
        # in-place multiply would then scale the shared values twice
        g.data = g.data * coef.astype(g.dtype)
        g._bump_version()


def clip_grad_norm_(parameters: Any, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> Tensor:
    """Scale the gradients of `parameters` in place so that their total `norm_type`-norm is at most
    `max_norm`; returns the total norm before clipping (a 0-d Tensor), as `torch.nn.utils.clip_grad_norm_`."""
    op = "clip_grad_norm_"
    found = _tensors(op, parameters)
    max_norm = _number(op, "max_norm", max_norm)
    grads = [p.grad for p in found if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    if grads:
        clip_grads_with_norm_(found, max_norm, total)
    return total


def clip_grad_value_(parameters: Any, clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient of `parameters` in place to [-clip_value, clip_value]."""
    op = "clip_grad_value_"
    found = _tensors(op, parameters)
    clip_value = _number(op, "clip_value", clip_value)
    for g in {id(p.grad): p.grad for p in found if p.grad is not None}.values():
        g.data = np.clip(g.data, -clip_value, clip_value).astype(g.dtype, copy=False)
        g._bump_version()


