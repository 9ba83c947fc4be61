"""Products and running sums over axes.

Prod is a primitive because no composite of the others is exact at zero.

exp(sum(log x)) fails for x <= 0, and the gradient y / x of the product is 0/0 wherever an element is 0.
The VJP is PyTorch's: g * y / x when no element is 0, and otherwise, for each element, the product of
the others, itself a Prod (over an n x n arrangement with ones on the diagonal), so that double backward
works at zeros too.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Context, Function, Tensor
from .elementwise import Where
from .movement import Getitem, Permute, Reshape


class Prod(Function):
    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
        # x.shape without (or with 1 at) the axes; an array even for a full reduction, so that the saved y
        # is the output itself (a numpy scalar would become a new array, a constant in double backward)
        y = np.asarray(np.prod(x, axis=axis, keepdims=keepdims))
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        x, y = ctx.saved_tensors
        axis = ctx.attrs["axis"]
        kept = tuple(1 if i in axis else n for i, n in enumerate(x.shape))
        g = Reshape.apply(grad, shape=kept)                      # kept: broadcasts against x.shape
        if not (x.data == 0).any():
            return g * (Reshape.apply(y, shape=kept) / x)        # x.shape: the product of the others
        return g * _product_of_others(x, axis)


def _product_of_others(x: Tensor, axis: tuple[int, ...]) -> Tensor:
    """For each element, the product of the other elements of its group (exact with zeros)."""
    rest = tuple(i for i in range(x.ndim) if i not in axis)
    order = rest + axis
    n = int(np.prod([x.shape[i] for i in axis]))
    grouped = Reshape.apply(Permute.apply(x, axes=order), shape=(*[x.shape[i] for i in rest], 1, n))  # (..., 1, n)
    one = Tensor._make(np.ones((), dtype=x.dtype))
    # (..., n, n): row i is the group with its i-th element replaced by 1
    others = Where.apply(one, grouped, condition=np.eye(n, dtype=bool))
    out = Prod.apply(others, axis=(others.ndim - 1,), keepdims=False)                                 # (..., n)
    out = Reshape.apply(out, shape=tuple(x.shape[i] for i in order))
    return Permute.apply(out, axes=tuple(np.argsort(order).tolist()))                                # x.shape


class Cumsum(Function):
    """Running sums along one axis. A primitive: as a composite it would be a matmul with a triangular
    matrix, O(n^2) work. The VJP is the running sum from the other end: flip, cumsum, flip."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axis: int) -> np.ndarray:
        if x.dtype == np.float16:  # accumulated in float32 and rounded once, as PyTorch: float16 running sums drift
            return np.cumsum(x, axis=axis, dtype=np.float32).astype(np.float16)
        return np.cumsum(x, axis=axis)                            # (x.shape)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        axis = ctx.attrs["axis"]
        reverse = (slice(None),) * axis + (slice(None, None, -1),)
        flipped = Getitem.apply(grad, index=reverse)               # (x.shape), last element first
        return Getitem.apply(Cumsum.apply(flipped, axis=axis), index=reverse)
