"""Finite-difference checks of every primitive op and composite function, first and second order.

`CASES` is a catalog of small float64 functions. Each case is checked by `gradcheck` (its VJPs) and
`gradgradcheck` (the VJPs of its VJPs), run in float32 to check that the dtype survives every op and
gradient, and walked to check that every primitive in `ops.PRIMITIVES` is covered by some case.
The last section checks that gradcheck itself catches wrong derivatives.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from helpers import Inputs, graph_contexts, graph_functions, leaves

import tinygrad_cnn.functional as F
from tinygrad_cnn import Function, GradcheckError, Tensor, grad, gradcheck, gradgradcheck
from tinygrad_cnn.ops import (
    PRIMITIVES,
    AvgPoolScatter,
    Conv2dInputGrad,
    Conv2dWeightGrad,
    IndexAdd,
    MaxPool2d,
    MaxPoolGather,
    MaxPoolScatter,
)


@dataclass(frozen=True)
class Case:
    id: str
    fn: Callable[..., Tensor]
    inputs: tuple[np.ndarray, ...]  # float64; each becomes a leaf with requires_grad=True
    float32: bool = True  # False when the case itself brings in float64 (an ndarray constant, a cast)
    tolerances: dict[str, float] = field(default_factory=dict)


CASES: list[Case] = []
I = Inputs(seed=0)  # noqa: E741  (one generator for the whole catalog: no two inputs share values)


def case(id: str, fn: Callable[..., Tensor], *inputs: np.ndarray, **options: Any) -> None:
    CASES.append(Case(id, fn, inputs, **options))


def shape_id(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


# ---- elementwise arithmetic, with numpy broadcasting ---------------------------------------------
BINARY = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}
BROADCAST_SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((2, 1, 4), (3, 1)), ((3, 4), ()), ((), (2, 3))]

for name, op in BINARY.items():
    for sa, sb in BROADCAST_SHAPES:
        b = I.away_from_zero(*sb) if op is operator.truediv else I.randn(*sb)
        case(f"{name}-{shape_id(sa)}-{shape_id(sb)}", op, I.randn(*sa), b)
    case(f"{name}-python-scalar", lambda x, op=op: op(x, 2.5), I.randn(3, 4))
    case(f"{name}-reflected-python-scalar", lambda x, op=op: op(2.5, x), I.away_from_zero(3, 4))
    constant = I.randn(2, 1, 4)
    case(f"{name}-reflected-ndarray", lambda x, op=op, c=constant: op(c, x), I.away_from_zero(3, 4), float32=False)
case("neg", operator.neg, I.randn(3, 4))

for exponent in (2, 3, 0.5, -1.5, 1, 0):
    case(f"pow-{exponent}", lambda x, e=exponent: x ** e, I.positive(3, 4))
case("pow-3-negative-base", lambda x: x ** 3, -I.positive(3, 4))
case("pow-tensor-exponent", operator.pow, I.positive(3, 4), I.randn(4))
case("rpow-python-scalar-base", lambda x: 2.0 ** x, I.randn(3, 4))

case("exp", Tensor.exp, I.randn(3, 4))
case("log", Tensor.log, I.positive(3, 4))
case("relu", F.relu, I.away_from_zero(3, 4))

# ---- reductions ---------------------------------------------------------------------------------
for reduction, axis, keepdims in itertools.product(("sum", "mean", "max"), (None, 0, 1, 2, -1, (0, 2)), (False, True)):
    axis_id = "all" if axis is None else "+".join(map(str, np.atleast_1d(axis)))
    case(f"{reduction}-axis{axis_id}{'-keepdims' if keepdims else ''}",
         lambda x, r=reduction, a=axis, k=keepdims: getattr(x, r)(axis=a, keepdims=k), I.distinct(2, 3, 4))

# ---- movement -----------------------------------------------------------------------------------
MOVEMENT = {
    "reshape": lambda x: x.reshape(4, 6),
    "reshape-wildcard": lambda x: x.reshape(2, -1, 2),
    "flatten": lambda x: x.flatten(),
    "flatten-from-0": lambda x: x.flatten(0),
    "transpose": lambda x: x.transpose(),
    "transpose-0-2": lambda x: x.transpose(0, 2),
    "permute": lambda x: x.permute(2, 0, 1),
    "permute-negative-axes": lambda x: x.permute(-1, 0, -2),
    "T": lambda x: x.T,
    "pad-int": lambda x: x.pad(1),
    "pad-per-axis-with-value": lambda x: x.pad(((0, 0), (1, 2), (2, 0)), value=0.5),
}
for name, fn in MOVEMENT.items():
    case(name, fn, I.randn(2, 3, 4))
case("expand-row", lambda x: x.expand(3, 4), I.randn(1, 4))
case("expand-new-axes", lambda x: x.expand(2, 3, 4), I.randn(4))

INDICES = {
    "slices": (slice(1, None), slice(None, None, 2)),
    "negative-step": slice(None, None, -1),
    "int": 1,
    "int-and-slice": (0, slice(1, 3)),
    "ellipsis-newaxis": (Ellipsis, None, 1),
    "int-array-with-repeats": np.array([0, 2, 0, 0]),
    "2d-int-array": np.array([[0, 1], [1, 1]]),
    "paired-int-arrays": (np.array([0, 1, 1, 2]), np.array([3, 0, 3, 3])),
    "slice-and-int-list": (slice(None), [0, 0, 2]),
    "bool-mask": I.rng.random((3, 4)) > 0.5,
}
for name, index in INDICES.items():
    case(f"getitem-{name}", lambda x, i=index: x[i], I.randn(3, 4))

# ---- matmul: batched, broadcast batch axes, 1-D operands ----------------------------------------
MATMUL_SHAPES = [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (3, 4, 5)), ((3, 4), (2, 4, 5)),
                 ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4,)), ((4,), (2, 4, 3))]
for sa, sb in MATMUL_SHAPES:
    case(f"matmul-{shape_id(sa)}@{shape_id(sb)}", operator.matmul, I.randn(*sa), I.randn(*sb))
constant = I.randn(2, 3)
case("matmul-reflected-ndarray", lambda x, c=constant: c @ x, I.randn(3, 4), float32=False)

# ---- composites: softmax, linear, losses, cast --------------------------------------------------
for name, softmax in {"log_softmax": F.log_softmax, "softmax": F.softmax}.items():
    case(name, softmax, I.randn(3, 5))
    case(f"{name}-axis0", lambda x, f=softmax: f(x, axis=0), I.randn(3, 5))
    case(f"{name}-3d-axis1", lambda x, f=softmax: f(x, axis=1), I.randn(2, 3, 4))

case("linear", F.linear, I.randn(3, 4), I.randn(5, 4), I.randn(5))
case("linear-no-bias", F.linear, I.randn(3, 4), I.randn(5, 4))
case("linear-3d-input", F.linear, I.randn(2, 3, 4), I.randn(5, 4), I.randn(5))
case("linear-1d-input", F.linear, I.randn(4), I.randn(5, 4), I.randn(5))

TARGET = np.array([2, 0, 2, 4])  # a repeated class: the gradients of its two rows must not overwrite each other
for reduction in ("mean", "sum", "none"):
    case(f"nll_loss-{reduction}", lambda x, r=reduction: F.nll_loss(x, TARGET, reduction=r), I.randn(4, 5))
    case(f"cross_entropy-{reduction}", lambda x, r=reduction: F.cross_entropy(x, TARGET, reduction=r), I.randn(4, 5))

# Through float32 and back: finite differences need a step far above float32's resolution.
case("astype-float32-and-back", lambda x: (x.astype(np.float32) * 3.0).astype(np.float64), I.randn(3, 4),
     float32=False, tolerances={"eps": 1e-3})


# ---- conv2d: a grid over stride, padding, dilation, groups and bias -----------------------------
def conv_case(id: str, n: int, c: int, hw: tuple[int, int], o: int, kernel: tuple[int, int], bias: bool,
              **params: Any) -> None:
    groups = params.get("groups", 1)
    arrays = [I.randn(n, c, *hw), I.randn(o, c // groups, *kernel)] + ([I.randn(o)] if bias else [])
    case(id, lambda x, w, b=None: F.conv2d(x, w, b, **params), *arrays)


# A 2x4x5x4 input and a 3x2 kernel: non-square, valid for every combination below, and small enough
# for finite differences over the whole grid. groups=4 is depthwise.
for stride, padding, dilation, groups, bias in itertools.product((1, 2, 3), (0, 1, 2), (1, 2), (1, 2, 4),
                                                                (True, False)):
    conv_case(f"conv2d-s{stride}-p{padding}-d{dilation}-g{groups}{'-bias' if bias else ''}", 2, 4, (5, 4), 4,
              (3, 2), bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
conv_case("conv2d-depthwise-multiplier-2", 2, 2, (5, 5), 4, (3, 3), True, groups=2)
conv_case("conv2d-1x1-kernel", 2, 3, (4, 3), 2, (1, 1), True)
conv_case("conv2d-kernel-covers-input", 1, 2, (3, 4), 3, (3, 4), True)
conv_case("conv2d-single-channel", 1, 1, (6, 5), 1, (2, 3), False)
conv_case("conv2d-pair-params", 2, 2, (6, 5), 2, (3, 2), True, stride=(1, 2), padding=(2, 0), dilation=(2, 1))

# ---- pools: kernel 2-3, stride 1-3 (overlapping and not), padding, count_include_pad ------------
POOLS = {
    "max_pool2d": F.max_pool2d,
    "avg_pool2d": F.avg_pool2d,
    "avg_pool2d-exclude-pad": lambda x, *args: F.avg_pool2d(x, *args, count_include_pad=False),
}
for (name, pool), kernel, stride, padding in itertools.product(POOLS.items(), (2, 3), (1, 2, 3), (0, 1)):
    if padding == 0 and name.endswith("exclude-pad"):
        continue  # identical to including it
    case(f"{name}-k{kernel}-s{stride}-p{padding}", lambda x, p=pool, a=(kernel, stride, padding): p(x, *a),
         I.distinct(2, 2, 5, 6))
for name, pool in POOLS.items():
    case(f"{name}-pair-params", lambda x, p=pool: p(x, (2, 3), (1, 2), (1, 1)), I.distinct(2, 2, 5, 6))
    case(f"{name}-default-stride", lambda x, p=pool: p(x, 2), I.distinct(1, 2, 5, 6))

# ---- the primitives that only appear inside VJPs, checked directly -------------------------------
# Their own VJPs are what second-order gradients (double backward) run.
CONV = {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": 2}  # 6x6 input, 3x2 kernel -> 3x4
case("conv2d_input_grad", lambda g, w: Conv2dInputGrad.apply(g, w, input_hw=(6, 6), **CONV),
     I.randn(2, 4, 3, 4), I.randn(4, 1, 3, 2))
case("conv2d_weight_grad", lambda x, g: Conv2dWeightGrad.apply(x, g, kernel_hw=(3, 2), **CONV),
     I.randn(2, 2, 6, 6), I.randn(2, 4, 3, 4))

POOL = {"input_hw": (5, 6), "kernel": (3, 3), "stride": (2, 2), "padding": (1, 1)}  # -> 3x3 windows
ARGMAX = MaxPool2d.apply(Tensor(I.distinct(2, 2, 5, 6), requires_grad=True),
                         **{k: v for k, v in POOL.items() if k != "input_hw"})._ctx.argmax
case("max_pool_scatter", lambda g: MaxPoolScatter.apply(g, argmax=ARGMAX, **POOL), I.randn(2, 2, 3, 3))
case("max_pool_gather", lambda u: MaxPoolGather.apply(u, argmax=ARGMAX, **POOL), I.randn(2, 2, 5, 6))
for include in (True, False):
    case(f"avg_pool_scatter{'' if include else '-exclude-pad'}",
         lambda g, c=include: AvgPoolScatter.apply(g, count_include_pad=c, **POOL), I.randn(2, 2, 3, 3))
case("index_add-repeats", lambda g: IndexAdd.apply(g, index=np.array([0, 2, 0]), shape=(4, 3)), I.randn(3, 3))
case("index_add-slice", lambda g: IndexAdd.apply(g, index=(slice(1, 3),), shape=(4, 3)), I.randn(2, 3))


def by_id(cases: list[Case]) -> Any:
    return pytest.mark.parametrize("case", cases, ids=[c.id for c in cases])


@by_id(CASES)
def test_gradcheck(case: Case) -> None:
    assert gradcheck(case.fn, leaves(*case.inputs), **case.tolerances)


@by_id(CASES)
def test_gradgradcheck(case: Case) -> None:
    assert gradgradcheck(case.fn, leaves(*case.inputs), **case.tolerances)


@by_id([c for c in CASES if c.float32])
def test_float32_stays_float32(case: Case) -> None:
    xs = [Tensor(a.astype(np.float32), requires_grad=True) for a in case.inputs]
    out = case.fn(*xs)
    grads = grad(out, xs, grad_outputs=np.ones(out.shape), create_graph=True)
    assert out.dtype == np.float32
    assert [g.dtype for g in grads] == [np.float32] * len(xs)
    promoted = {ctx.name: ctx.out_dtype for ctx in graph_contexts(out, *grads) if ctx.out_dtype != np.float32}
    assert not promoted, f"ops that left float32 in the forward or backward graph: {promoted}"


def test_every_primitive_has_a_case() -> None:
    """A new primitive without a gradcheck case fails here: each must be a node in some case's graph."""
    covered = set().union(*(graph_functions(c.fn(*leaves(*c.inputs))) for c in CASES))
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


class WrongCube(Function):
    """x**3 with a planted wrong VJP: 2x^2 instead of 3x^2."""

    @staticmethod
    def forward(ctx: Any, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad * 2 * x ** 2


class FlatCube(Function):
    """x**3 whose VJP is right, but computed from numpy data: the graph sees 3x^2 as a constant, so
    the second derivative (6x) is lost."""

    @staticmethod
    def forward(ctx: Any, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        return x ** 3

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
