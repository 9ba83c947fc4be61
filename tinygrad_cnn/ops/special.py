"""Special functions as primitives: erf (for the exact GELU) and binary cross-entropy on probabilities,
each forward beside its VJP."""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Context, Function, Tensor

_erf = np.frompyfunc(math.erf, 1, 1)  # the C library's erf, exact to an ulp; numpy has none


class Erf(Function):
    """erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt. About 0.1 us per element (a Python call each):
    fine for GELU layers, the only user."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        # computed in float64; asarray, as frompyfunc gives a Python float for a 0-d input
        return np.asarray(_erf(x.astype(np.float64)), dtype=x.dtype)   # (x.shape)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x * x * -1.0).exp() * (2.0 / math.sqrt(math.pi))   # erf'(x) = 2/sqrt(pi) exp(-x^2)


class BinaryCrossEntropy(Function):
    """-(t log p + (1 - t) log(1 - p)), each log clamped at -100, elementwise (p and t broadcast alike).

    A primitive for PyTorch's VJP (p - t) / max(p (1 - p), 1e-12): as a composite, a saturated
    prediction (p exactly 0 or 1, what a float32 sigmoid gives beyond |x| ~ 17) has log's 1/0 times the
    clamp's 0, a NaN gradient even when the prediction is right. The target's VJP is log(1 - p) - log p.
    The 1e-12 is PyTorch's float32 EPSILON."""

    @staticmethod
    def forward(ctx: Context, p: np.ndarray, t: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(p, t)
        with np.errstate(divide="ignore"):  # log(0) = -inf, then clamped
            return np.asarray(-(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log1p(-p), -100)))

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        p, t = ctx.saved_tensors
        gp = gt = None
        if ctx.needs_input_grad[0]:
            gp = grad * (p - t) / (p * (1.0 - p)).clamp(min=float(np.float32(1e-12)))
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore"):  # unclamped, as PyTorch's (+-inf at p = 0 or 1)
                gt = grad * ((1.0 - p).log() - p.log())
        return gp, gt
