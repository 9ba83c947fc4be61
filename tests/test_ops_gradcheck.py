"""Finite-difference checks of every primitive op and composite function, first and second order.

The cases are the catalogue in `tinygrad_cnn.tools.opsuite` (the same ones `tinygrad-cnn gradcheck`
runs). Each case is checked by `gradcheck` (its VJPs) and `gradgradcheck` (the VJPs of its VJPs), run
in float32 to check that the dtype survives every op and gradient, and walked to check that every
primitive in `ops.PRIMITIVES` is covered by some case. The last section checks that gradcheck itself
catches wrong derivatives.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from helpers import Inputs, graph_contexts, graph_functions, leaves

import tinygrad_cnn.functional as F
from tinygrad_cnn import Function, GradcheckError, Tensor, grad, gradcheck, gradgradcheck
from tinygrad_cnn.ops import PRIMITIVES
from tinygrad_cnn.tools.opsuite import CASES, Case

I = Inputs(seed=0)  # noqa: E741  (inputs of the checks of gradcheck itself, below)


def by_id(cases: list[Case]) -> Any:
    return pytest.mark.parametrize("case", cases, ids=[c.id for c in cases])


@by_id(CASES)
def test_gradcheck(case: Case) -> None:
    assert gradcheck(case.fn, case.leaves(), **case.tolerances)


@by_id(CASES)
def test_gradgradcheck(case: Case) -> None:
    assert gradgradcheck(case.fn, case.leaves(), **case.tolerances)


@by_id([c for c in CASES if c.float32])
def test_float32_stays_float32(case: Case) -> None:
    xs = [Tensor(a.astype(np.float32), requires_grad=True) for a in case.arrays()]
    out = case.fn(*xs)
    grads = grad(out, xs, grad_outputs=np.ones(out.shape), create_graph=True)
    assert out.dtype == np.float32
    assert [g.dtype for g in grads] == [np.float32] * len(xs)
    promoted = {ctx.name: ctx.output().dtype for ctx in graph_contexts(out, *grads) if ctx.output().dtype != np.float32}
    assert not promoted, f"ops that left float32 in the forward or backward graph: {promoted}"


def test_every_primitive_has_a_case() -> None:
    """A new primitive without a gradcheck case fails here: each must be a node in some case's graph."""
    covered = set().union(*(graph_functions(c.fn(*c.leaves())) for c in CASES))
    missing = [p.__name__ for p in PRIMITIVES if p not in covered]
    assert not missing, f"primitives with no gradcheck case: {missing}"


# ---- gradcheck itself must fail on wrong derivatives ---------------------------------------------
class Cube(Function):
    """The issue's example of a user-defined op, written as a user would (no annotations)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x ** 2


class WrongCube(Cube):
    """x**3 with a planted wrong VJP: 2x^2 instead of 3x^2."""

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad * 2 * x ** 2


class FlatCube(Cube):
    """x**3 whose VJP is right, but computed from numpy data: the graph sees 3x^2 as a constant, so
    the second derivative (6x) is lost."""

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad * Tensor(3 * x.data ** 2)


CUBE_INPUT = np.array([0.5, -1.2, 2.0, 0.7])


def test_user_defined_cube_from_the_issue() -> None:
    x = Tensor(CUBE_INPUT.copy(), requires_grad=True)
    Cube.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 * CUBE_INPUT ** 2, rtol=1e-15)
    assert gradcheck(Cube.apply, leaves(CUBE_INPUT))
    assert gradgradcheck(Cube.apply, leaves(CUBE_INPUT))


def test_gradcheck_reports_a_wrong_vjp() -> None:
    # Summing makes the output weighting one scalar, so the worst error is at the largest |x| (index 2)
    # and analytic/numeric must be 2x^2/3x^2 = 2/3 there.
    with pytest.raises(GradcheckError) as failure:
        gradcheck(lambda x: WrongCube.apply(x).sum(), leaves(CUBE_INPUT))
    message = str(failure.value)
    assert "input 0" in message and "index (2,)" in message
    found = re.search(r"analytic (\S+) vs numeric (\S+)", message)
    assert found, message
    analytic, numeric = map(float, found.groups())
    assert analytic / numeric == pytest.approx(2 / 3, rel=1e-6)


def test_gradcheck_names_the_wrong_input() -> None:
    a, b = leaves(I.randn(3), I.positive(3))
    with pytest.raises(GradcheckError, match="input 1"):
        gradcheck(lambda a, b: a * WrongCube.apply(b), [a, b])


def test_gradcheck_without_raising_returns_false() -> None:
    assert gradcheck(WrongCube.apply, leaves(CUBE_INPUT), raise_exception=False) is False
    assert gradgradcheck(FlatCube.apply, leaves(CUBE_INPUT), raise_exception=False) is False


def test_gradgradcheck_catches_a_wrong_second_derivative() -> None:
    assert gradcheck(FlatCube.apply, leaves(CUBE_INPUT))  # right at first order
    with pytest.raises(GradcheckError, match="input 0"):
        gradgradcheck(FlatCube.apply, leaves(CUBE_INPUT))


@pytest.mark.parametrize("check", [gradcheck, gradgradcheck])
def test_gradcheck_refuses_float32(check: Callable[..., bool]) -> None:
    x = Tensor(CUBE_INPUT.astype(np.float32), requires_grad=True)
    with pytest.raises(TypeError, match=r"input 0 has dtype float32.*float64"):
        check(Cube.apply, [x])


def test_conv2d_with_a_wider_bias_promotes_as_a_separate_add_would() -> None:
    """The bias is added inside Conv2d; a float64 bias on float32 inputs must still give float64, unrounded."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 3, 6, 6), dtype=np.float32), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 3, 3, 3), dtype=np.float32), requires_grad=True)
    b = Tensor(np.array([0.1, 1e-10, 3.0, -2.0]), requires_grad=True)
    y = F.conv2d(x, w, b)
    separate = F.conv2d(x, w) + b.reshape(1, 4, 1, 1)
    assert y.dtype == separate.dtype == np.float64
    np.testing.assert_array_equal(y.data, separate.data)
    g = rng.standard_normal(y.shape)
    y.backward(Tensor(g))
    np.testing.assert_allclose(b.grad.data, g.sum(axis=(0, 2, 3)), rtol=1e-12)
    assert (x.grad.dtype, w.grad.dtype, b.grad.dtype) == (np.float32, np.float32, np.float64)
