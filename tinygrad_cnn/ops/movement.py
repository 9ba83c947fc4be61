"""Ops that move elements without arithmetic: reshape, permute, indexing and padding."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Context, Function, Tensor


class Reshape(Function):
    view = True

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return x.reshape(shape)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        return Reshape.apply(grad, shape=ctx.inputs[0].shape)


class Permute(Function):
    view = True

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        return x.transpose(axes)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        axes = ctx.attrs["axes"]
        return Permute.apply(grad, axes=tuple(sorted(range(len(axes)), key=axes.__getitem__)))  # the inverse


def swap_last_axes(t: Tensor) -> Tensor:
    """(..., M, N) -> (..., N, M), for tensors known to have at least 2 axes."""
    return Permute.apply(t, axes=(*range(t.ndim - 2), t.ndim - 1, t.ndim - 2))


def _is_basic(index: Any) -> bool:
    """True for slices/ints/None/Ellipsis only: such an index never repeats an element."""
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, np.integer, slice)) for i in items)


class Getitem(Function):
    """x[index] with basic (slices, ints) or advanced (integer array) indexing."""

    view = True  # basic indexing returns a view

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, index: Any) -> np.ndarray:
        try:
            return x[index]
        except IndexError as e:
            raise IndexError(f"getitem: index {index!r} is invalid for a tensor of shape {x.shape}: {e}") from None

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        x = ctx.inputs[0]
        return IndexAdd.apply(grad, index=ctx.attrs["index"], shape=x.shape)


class IndexAdd(Function):
    """zeros(shape) with `grad` added at `index` (repeated indices accumulate): the adjoint of Getitem."""

    @staticmethod
    def forward(ctx: Context, grad: np.ndarray, index: Any, shape: tuple[int, ...]) -> np.ndarray:
        out = np.zeros(shape, dtype=grad.dtype)
        if _is_basic(index):
            out[index] = grad
        else:
            np.add.at(out, index, grad)
        return out

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        return grad[ctx.attrs["index"]]


class Pad(Function):
    @staticmethod
    def forward(ctx: Context, x: np.ndarray, pad_width: tuple[tuple[int, int], ...], value: float) -> np.ndarray:
        return np.pad(x, pad_width, constant_values=value)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        shape = ctx.inputs[0].shape
        return grad[tuple(slice(lo, lo + n) for (lo, _), n in zip(ctx.attrs["pad_width"], shape))]


class Cat(Function):
    """Concatenation along `axis` (tensors of one dtype, equal in every other axis). A primitive: as a
    composite (each input padded to the full length, then summed) it would cost k full-size buffers."""

    @staticmethod
    def forward(ctx: Context, *xs: np.ndarray, axis: int) -> np.ndarray:
        return np.concatenate(xs, axis=axis)                      # (..., sum of the xs' axis lengths, ...)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> tuple[Tensor | None, ...]:
        axis, grads, start = ctx.attrs["axis"], [], 0
        for x, needed in zip(ctx.inputs, ctx.needs_input_grad):
            stop = start + x.shape[axis]
            # each input's own stretch of grad: a basic slice, so Getitem's VJP (IndexAdd) undoes it
            grads.append(Getitem.apply(grad, index=(slice(None),) * axis + (slice(start, stop),)) if needed else None)
            start = stop
        return tuple(grads)
