"""Finite-difference checks of the VJPs: `gradcheck` (first order) and `gradgradcheck` (second order).

For a function f and a fixed random output weighting v, the scalar s(x) = <v, f(x)> has gradient
J^T v: exactly what one backward pass with grad=v computes. Each input element's entry is compared with
the central difference (s(x + eps e_i) - s(x - eps e_i)) / (2 eps). A wrong VJP (A^T v instead of J^T v)
agrees with the numeric gradient only if (A - J)^T v = 0, which a random v almost surely rules out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class InputError:
    """How far one input's analytic gradient is from the numeric one (what `gradcheck` judges)."""

    input: int                 # position in `inputs`
    shape: tuple[int, ...]
    max_abs: float             # max |analytic - numeric| over the elements
    max_rel: float             # max |analytic - numeric| / |numeric| over elements with |numeric| > atol
    worst: tuple[int, ...]     # the element furthest beyond the tolerance atol + rtol * |numeric|
    analytic: float            # the two values at `worst`
    numeric: float
    passed: bool


def relative_error(abs_error: np.ndarray, numeric: np.ndarray, atol: float) -> float:
    """max |a - n| / |n|, over the entries whose |n| exceeds atol (the rest are judged by atol alone)."""
    large = np.abs(numeric) > atol
    return float((np.asarray(abs_error)[large] / np.abs(numeric[large])).max()) if large.any() else 0.0


def gradient_errors(fn: Callable[..., Tensor | Sequence[Tensor]], inputs: Sequence[Tensor], eps: float = 1e-6,
                    atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0) -> list[InputError]:
    """Compare the VJPs of `fn` at `inputs` (float64 Tensors) with central finite differences, one
    `InputError` per input that requires grad. `gradcheck` is the pass/fail verdict on this list."""
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
    errors = []
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
        if x.size == 0:
            errors.append(InputError(i, x.shape, 0.0, 0.0, (), 0.0, 0.0, passed=True))
            continue
        difference = np.abs(analytic[k] - numeric)
        excess = difference - (atol + rtol * np.abs(numeric))
        worst = tuple(map(int, np.unravel_index(int(np.argmax(excess)), x.shape)))
        errors.append(InputError(i, x.shape, float(difference.max()), relative_error(difference, numeric, atol), worst,
                                 float(analytic[k][worst]), float(numeric[worst]), passed=bool(excess.max() <= 0)))
    return errors


def second_order_errors(fn: Callable[..., Tensor | Sequence[Tensor]], inputs: Sequence[Tensor], eps: float = 1e-6,
                        atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0) -> list[InputError]:
    """`gradient_errors` of the map (inputs, v) -> J(inputs)^T v built with create_graph=True.

    The output weighting v is itself an input (the last ones in the returned positions), so the VJPs
    of the VJPs with respect to both the original inputs and the incoming gradient are compared.
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

    return gradient_errors(first_derivatives, inputs + vs, eps, atol, rtol, seed)


def _verdict(errors: list[InputError], atol: float, rtol: float, raise_exception: bool) -> bool:
    for e in errors:
        if not e.passed:
            if raise_exception:
                raise GradcheckError(
                    f"gradcheck: the gradient of input {e.input} (shape {e.shape}) is wrong at index {e.worst}: "
                    f"analytic {e.analytic:.10g} vs numeric {e.numeric:.10g} "
                    f"(max abs difference {e.max_abs:.3g}, atol={atol}, rtol={rtol})")
            return False
    return True


def gradcheck(fn: Callable[..., Tensor | Sequence[Tensor]], inputs: Sequence[Tensor], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True, seed: int = 0) -> bool:
    """Check the VJPs of `fn` at `inputs` (float64 Tensors) against central finite differences.

    Returns True, or raises `GradcheckError` (returns False with raise_exception=False) naming the
    input, the worst element index and the analytic and numeric values there.
    """
    return _verdict(gradient_errors(fn, inputs, eps, atol, rtol, seed), atol, rtol, raise_exception)


def gradgradcheck(fn: Callable[..., Tensor | Sequence[Tensor]], inputs: Sequence[Tensor], eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True, seed: int = 0) -> bool:
    """Check second derivatives: gradcheck the map (inputs, v) -> J(inputs)^T v built with create_graph=True.

    The output weighting v is itself an input, so the VJPs of the VJPs with respect to both the
    original inputs and the incoming gradient are checked.
    """
    return _verdict(second_order_errors(fn, inputs, eps, atol, rtol, seed), atol, rtol, raise_exception)
