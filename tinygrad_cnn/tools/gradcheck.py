"""Finite-difference checks of the VJPs: `gradcheck` (first order) and `gradgradcheck` (second order).

For a function f and a fixed random output weighting v, the scalar s(x) = <v, f(x)> has gradient
J^T v: exactly what one backward pass with grad=v computes. Each input element's entry is compared with
the central difference (s(x + eps e_i) - s(x - eps e_i)) / (2 eps). A wrong VJP (A^T v instead of J^T v)
agrees with the numeric gradient only if (A - J)^T v = 0, which a random v almost surely rules out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..autograd import Tensor, enable_grad, grad, no_grad


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree; the message says where and by how much."""


def _outputs(fn: Callable[..., Tensor | Sequence[Tensor]], inputs: Sequence[Tensor]) -> list[Tensor]:
    out = fn(*inputs)
    return [out] if isinstance(out, Tensor) else [o for o in out if o is not None]


def _weighted_sum(outputs: list[Tensor], weights: list[np.ndarray]) -> float:
    return float(sum(np.vdot(w, o.data) for o, w in zip(outputs, weights)))


def _check_inputs(inputs: Sequence[Tensor], op: str) -> list[int]:
    wrt = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not wrt:
        raise ValueError(f"{op}: no input has requires_grad=True, so there is nothing to check")
    for i in wrt:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"{op}: input {i} has dtype {inputs[i].dtype}; finite differences with eps ~1e-6 need "
                            "float64 inputs (create them with dtype=np.float64)")
    return wrt


def gradcheck(fn: Callable[..., Tensor | Sequence[Tensor]], inputs: Sequence[Tensor], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True, seed: int = 0) -> bool:
    """Check the VJPs of `fn` at `inputs` (float64 Tensors) against central finite differences.

    Returns True, or raises `GradcheckError` (returns False with raise_exception=False) naming the
    input, the worst element index and the analytic and numeric values there.
    """
    inputs = list(inputs)
    wrt = _check_inputs(inputs, "gradcheck")
    rng = np.random.default_rng(seed)
    outputs = _outputs(fn, inputs)
    weights = [rng.standard_normal(o.shape) for o in outputs]
    differentiable = [(o, w) for o, w in zip(outputs, weights) if o.requires_grad]
    analytic = [np.zeros(inputs[i].shape) for i in wrt]
    for o, w in differentiable:
        found = grad(o, [inputs[i] for i in wrt], grad_outputs=Tensor(w.astype(o.dtype)),
                     retain_graph=True, allow_unused=True)
        for acc, g in zip(analytic, found):
            if g is not None:
                acc += g.data
    for k, i in enumerate(wrt):
        x = inputs[i].data
        numeric = np.zeros(x.shape)
        with no_grad():
            for idx in np.ndindex(x.shape):
                original = x[idx]
                x[idx] = original + eps
                plus = _weighted_sum(_outputs(fn, inputs), weights)
                x[idx] = original - eps
                minus = _weighted_sum(_outputs(fn, inputs), weights)
                x[idx] = original
                numeric[idx] = (plus - minus) / (2 * eps)
        error = np.abs(analytic[k] - numeric) - (atol + rtol * np.abs(numeric))
        if error.size and error.max() > 0:
            worst = np.unravel_index(int(np.argmax(error)), x.shape)
            message = (f"gradcheck: the gradient of input {i} (shape {x.shape}) is wrong at index "
                       f"{tuple(map(int, worst))}: "
                       f"analytic {analytic[k][worst]:.10g} vs numeric {numeric[worst]:.10g} "
                       f"(max abs difference {np.abs(analytic[k] - numeric).max():.3g}, atol={atol}, rtol={rtol})")
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True


def gradgradcheck(fn: Callable[..., Tensor | Sequence[Tensor]], inputs: Sequence[Tensor], eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True, seed: int = 0) -> bool:
    """Check second derivatives: gradcheck the map (inputs, v) -> J(inputs)^T v built with create_graph=True.

    The output weighting v is itself an input, so the VJPs of the VJPs with respect to both the
    original inputs and the incoming gradient are checked.
    """
    inputs = list(inputs)
    wrt = _check_inputs(inputs, "gradgradcheck")
    rng = np.random.default_rng(seed + 1)
    outputs = _outputs(fn, inputs)
    vs = [Tensor(rng.standard_normal(o.shape), requires_grad=True) for o in outputs if o.requires_grad]

    def first_derivatives(*args: Tensor) -> list[Tensor]:
        xs, grad_outputs = list(args[:len(inputs)]), args[len(inputs):]
        with enable_grad():  # the finite differences run under no_grad, but this needs a graph to differentiate
            outs = [o for o in _outputs(fn, xs) if o.requires_grad]
            total = sum(((o * v).sum() for o, v in zip(outs, grad_outputs)), start=Tensor(0.0, dtype=np.float64))
            if not total.requires_grad:
                return []
            found = grad(total, [xs[i] for i in wrt], create_graph=True, allow_unused=True)
        return [g for g in found if g is not None]

    return gradcheck(first_derivatives, inputs + vs, eps, atol, rtol, raise_exception, seed)
