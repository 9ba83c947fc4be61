"""The catalogue of gradient checks: every primitive op and composite function, as data.

Each `Case` is one configuration of one op: a small float64 function and how to draw its inputs. The
test suite (tests/test_ops_gradcheck.py) and `tinygrad-cnn gradcheck` run the same cases through
`gradcheck` (the VJPs) and `gradgradcheck` (the VJPs of the VJPs). Every class in `ops.PRIMITIVES`
must appear in the graph of some case (a test checks it).

Inputs are drawn from a generator seeded by the case's id, so a case gets the same values whether it
runs alone (`--op`) or with the rest, and two inputs of a case never share values by accident (equal
operands would hide e.g. a VJP of a * b that swapped a and b).
"""

from __future__ import annotations

import itertools
import operator
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import functional as F
from .. import rng
from ..autograd import Tensor
from ..ops import AvgPoolScatter, Conv2dInputGrad, Conv2dWeightGrad, IndexAdd, MaxPool2d, MaxPoolGather, MaxPoolScatter
from ..tensor_methods import cat, stack, where
from .gradcheck import InputError, gradient_errors, second_order_errors

Draw = Callable[[np.random.Generator], np.ndarray]


# ---- input distributions: each returns a Draw, called with the case's generator ------------------------

def randn(*shape: int) -> Draw:
    return lambda rng: rng.standard_normal(shape)


def positive(*shape: int) -> Draw:
    """Values in [0.5, 2]: safe for log, division and fractional powers."""
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def negative(*shape: int) -> Draw:
    return lambda rng: -rng.uniform(0.5, 2.0, shape)


def away_from_zero(*shape: int) -> Draw:
    """|values| in [0.3, 1.5] with random signs: relu's kink and division's pole stay far beyond eps."""
    return lambda rng: rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 1.5, shape)


def distinct(*shape: int) -> Draw:
    """A shuffled arange spaced 0.1 apart: no ties, so max and max-pool are differentiable there and a
    finite-difference step cannot change which element wins."""
    size = int(np.prod(shape))
    return lambda rng: (rng.permutation(size) - size / 2).reshape(shape) * 0.1


@dataclass(frozen=True)
class Case:
    op: str                             # the op or function checked: what `tinygrad-cnn gradcheck --op` selects
    id: str                             # unique: op and configuration, e.g. "conv2d-s2-p1-d1-g2-bias"
    fn: Callable[..., Tensor]
    draws: tuple[Draw, ...]             # one per input; each input becomes a float64 leaf requiring grad
    float32: bool = True                # False when fn itself brings in float64 (an ndarray constant, a cast)
    tolerances: dict[str, float] = field(default_factory=dict)  # eps/atol/rtol overrides for gradcheck

    def arrays(self) -> list[np.ndarray]:
        rng = np.random.default_rng(zlib.crc32(self.id.encode()))
        return [draw(rng) for draw in self.draws]

    def leaves(self) -> list[Tensor]:
        return [Tensor(a, requires_grad=True) for a in self.arrays()]


CASES: list[Case] = []
_constants = np.random.default_rng(0)  # fixed arrays captured by some functions (constants, not inputs)


def case(op: str, id: str, fn: Callable[..., Tensor], *draws: Draw, **options: Any) -> None:
    CASES.append(Case(op, id, fn, draws, **options))


def shape_id(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


# ---- elementwise arithmetic, with numpy broadcasting ---------------------------------------------------
BINARY = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}
BROADCAST_SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((2, 1, 4), (3, 1)), ((3, 4), ()), ((), (2, 3))]

for name, op in BINARY.items():
    for sa, sb in BROADCAST_SHAPES:
        b = away_from_zero(*sb) if op is operator.truediv else randn(*sb)
        case(name, f"{name}-{shape_id(sa)}-{shape_id(sb)}", op, randn(*sa), b)
    case(name, f"{name}-python-scalar", lambda x, op=op: op(x, 2.5), randn(3, 4))
    case(name, f"{name}-reflected-python-scalar", lambda x, op=op: op(2.5, x), away_from_zero(3, 4))
    constant = _constants.standard_normal((2, 1, 4))
    case(name, f"{name}-reflected-ndarray", lambda x, op=op, c=constant: op(c, x), away_from_zero(3, 4),
         float32=False)
case("neg", "neg", operator.neg, randn(3, 4))

for exponent in (2, 3, 0.5, -1.5, 1, 0):
    case("pow", f"pow-{exponent}", lambda x, e=exponent: x ** e, positive(3, 4))
case("pow", "pow-3-negative-base", lambda x: x ** 3, negative(3, 4))
case("pow", "pow-tensor-exponent", operator.pow, positive(3, 4), randn(4))
case("pow", "rpow-python-scalar-base", lambda x: 2.0 ** x, randn(3, 4))

case("exp", "exp", Tensor.exp, randn(3, 4))
case("log", "log", Tensor.log, positive(3, 4))
case("relu", "relu", F.relu, away_from_zero(3, 4))

# ---- reductions -------------------------------------------------------------------------------------------
for reduction, axis, keepdims in itertools.product(("sum", "mean", "max"), (None, 0, 1, 2, -1, (0, 2)), (False, True)):
    axis_id = "all" if axis is None else "+".join(map(str, np.atleast_1d(axis)))
    case(reduction, f"{reduction}-axis{axis_id}{'-keepdims' if keepdims else ''}",
         lambda x, r=reduction, a=axis, k=keepdims: getattr(x, r)(axis=a, keepdims=k), distinct(2, 3, 4))

# ---- movement ------------------------------------------------------------------------------------------------
MOVEMENT = {
    "reshape": ("reshape", lambda x: x.reshape(4, 6)),
    "reshape-wildcard": ("reshape", lambda x: x.reshape(2, -1, 2)),
    "flatten": ("flatten", lambda x: x.flatten()),
    "flatten-from-1": ("flatten", lambda x: x.flatten(1)),
    "flatten-1-to-1": ("flatten", lambda x: x.flatten(1, 1)),
    "flatten-0-to-1": ("flatten", lambda x: x.flatten(0, -2)),
    "view": ("view", lambda x: x.view(4, -1)),
    "unflatten": ("unflatten", lambda x: x.unflatten(2, (2, 2))),
    "unsqueeze-0": ("unsqueeze", lambda x: x.unsqueeze(0)),
    "unsqueeze-last": ("unsqueeze", lambda x: x.unsqueeze(-1)),
    "squeeze-dim": ("squeeze", lambda x: x.unsqueeze(1).squeeze(1)),
    "repeat": ("repeat", lambda x: x.repeat(2, 1, 1, 2)),
    "narrow": ("narrow", lambda x: x.narrow(2, 1, 2)),
    "clone": ("clone", lambda x: x.clone() * 2.0),
    "transpose": ("transpose", lambda x: x.transpose()),
    "transpose-0-2": ("transpose", lambda x: x.transpose(0, 2)),
    "permute": ("permute", lambda x: x.permute(2, 0, 1)),
    "permute-negative-axes": ("permute", lambda x: x.permute(-1, 0, -2)),
    "T": ("transpose", lambda x: x.T),
    "pad-int": ("pad", lambda x: x.pad(1)),
    "pad-per-axis-with-value": ("pad", lambda x: x.pad(((0, 0), (1, 2), (2, 0)), value=0.5)),
}
for key, (name, fn) in MOVEMENT.items():
    case(name, key, fn, randn(2, 3, 4))
case("expand", "expand-row", lambda x: x.expand(3, 4), randn(1, 4))
case("expand", "expand-new-axes", lambda x: x.expand(2, 3, 4), randn(4))
case("expand", "expand-minus-one", lambda x: x.expand(2, -1, 4), randn(3, 1))
case("squeeze", "squeeze-all", lambda x: x.squeeze(), randn(1, 3, 1, 4))
case("t", "t", lambda x: x.t(), randn(3, 4))

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
    "bool-mask": _constants.random((3, 4)) > 0.5,
}
for name, index in INDICES.items():
    case("getitem", f"getitem-{name}", lambda x, i=index: x[i], randn(3, 4))

# ---- matmul: batched, broadcast batch axes, 1-D operands ----------------------------------------------------
MATMUL_SHAPES = [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (3, 4, 5)), ((3, 4), (2, 4, 5)),
                 ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4,)), ((4,), (2, 4, 3))]
for sa, sb in MATMUL_SHAPES:
    case("matmul", f"matmul-{shape_id(sa)}@{shape_id(sb)}", operator.matmul, randn(*sa), randn(*sb))
constant = _constants.standard_normal((2, 3))
case("matmul", "matmul-reflected-ndarray", lambda x, c=constant: c @ x, randn(3, 4), float32=False)

# ---- composites: softmax, linear, losses, cast ---------------------------------------------------------------
for name, softmax in {"log_softmax": F.log_softmax, "softmax": F.softmax}.items():
    case(name, name, lambda x, f=softmax: f(x, dim=-1), randn(3, 5))
    case(name, f"{name}-axis0", lambda x, f=softmax: f(x, axis=0), randn(3, 5))  # the numpy-style keyword
    case(name, f"{name}-3d-dim1", lambda x, f=softmax: f(x, dim=1), randn(2, 3, 4))

case("linear", "linear", F.linear, randn(3, 4), randn(5, 4), randn(5))
case("linear", "linear-no-bias", F.linear, randn(3, 4), randn(5, 4))
case("linear", "linear-3d-input", F.linear, randn(2, 3, 4), randn(5, 4), randn(5))
case("linear", "linear-1d-input", F.linear, randn(4), randn(5, 4), randn(5))

TARGET = np.array([2, 0, 2, 4])  # a repeated class: the gradients of its two rows must not overwrite each other
for reduction in ("mean", "sum", "none"):
    case("nll_loss", f"nll_loss-{reduction}", lambda x, r=reduction: F.nll_loss(x, TARGET, reduction=r), randn(4, 5))
    case("cross_entropy", f"cross_entropy-{reduction}",
         lambda x, r=reduction: F.cross_entropy(x, TARGET, reduction=r), randn(4, 5))

# ---- layers' composites: activations, normalisation, dropout, losses (nn.functional) ---------------------------
case("sigmoid", "sigmoid", F.sigmoid, randn(3, 4))
case("sigmoid", "sigmoid-large", F.sigmoid, lambda rng: rng.uniform(-40, 40, (3, 4)))  # exp never overflows
case("tanh", "tanh", F.tanh, randn(3, 4))
case("leaky_relu", "leaky_relu", lambda x: F.leaky_relu(x, 0.2), away_from_zero(3, 4))
case("gelu", "gelu", F.gelu, randn(3, 4))
case("gelu", "gelu-tanh", lambda x: F.gelu(x, approximate="tanh"), randn(3, 4))
case("hardtanh", "hardtanh", lambda x: F.hardtanh(x, -0.5, 0.8), lambda rng: rng.choice([-1, 1], (3, 4)) * rng.uniform(
    0.6, 0.7, (3, 4)) + rng.choice([0.0, 0.1], (3, 4)))  # inside and outside, never within eps of a limit
case("silu", "silu", F.silu, randn(3, 4))
case("elu", "elu", lambda x: F.elu(x, 0.5), away_from_zero(3, 4))
case("softplus", "softplus-beta-threshold", lambda x: F.softplus(x, 2.0, 2.0), lambda rng: rng.uniform(-3, 3, (3, 4)))
case("batch_norm", "batch_norm-train-4d", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
     randn(3, 2, 2, 3), randn(2), randn(2))
case("batch_norm", "batch_norm-train-2d-no-affine", lambda x: F.batch_norm(x, None, None, training=True), randn(4, 3))
RUNNING = (Tensor(_constants.standard_normal(2)), Tensor(_constants.uniform(0.5, 2.0, 2)))
case("batch_norm", "batch_norm-eval", lambda x, w, b: F.batch_norm(x, *RUNNING, w, b), randn(3, 2, 2, 3), randn(2),
     randn(2))


def reseeded(dropout: Callable[..., Tensor], x: Tensor, p: float) -> Tensor:
    """The same mask at every finite-difference evaluation."""
    rng.manual_seed(3)
    return dropout(x, p)


case("dropout", "dropout", lambda x: reseeded(F.dropout, x, 0.4), randn(4, 5))
case("dropout", "dropout-p1", lambda x: reseeded(F.dropout, x, 1.0), randn(4, 5))
case("dropout2d", "dropout2d", lambda x: reseeded(F.dropout2d, x, 0.5), randn(3, 4, 2, 2))

PROBS = _constants.dirichlet(np.ones(5), 4)                 # probability targets, one row per sample
WEIGHT = Tensor(_constants.uniform(0.5, 2.0, 5))              # class weights (constants, as in torch)
IGNORED = np.array([2, -100, 4, 2])                            # a repeated class and an ignored sample
TARGET_3D = np.array([[0, 2, -100], [1, 1, 3]])                # (N, d1) targets for (N, C, d1) scores
for reduction in ("mean", "sum", "none"):
    case("cross_entropy", f"cross_entropy-weight-ignore-smoothing-{reduction}",
         lambda x, r=reduction: F.cross_entropy(x, IGNORED, weight=WEIGHT, reduction=r, label_smoothing=0.2),
         randn(4, 5), float32=False)
    case("cross_entropy", f"cross_entropy-probabilities-{reduction}",
         lambda x, r=reduction: F.cross_entropy(x, PROBS, weight=WEIGHT, reduction=r, label_smoothing=0.1),
         randn(4, 5), float32=False)
    case("nll_loss", f"nll_loss-weight-ignore-3d-{reduction}",
         lambda x, r=reduction: F.nll_loss(x, TARGET_3D, weight=WEIGHT[:4], reduction=r), randn(2, 4, 3),
         float32=False)
    case("mse_loss", f"mse_loss-{reduction}", lambda x, y, r=reduction: F.mse_loss(x, y, reduction=r),
         randn(3, 4), randn(3, 4))
    case("l1_loss", f"l1_loss-{reduction}", lambda x, r=reduction: F.l1_loss(x, np.zeros((3, 4)), reduction=r),
         away_from_zero(3, 4), float32=False)
case("cross_entropy", "cross_entropy-unbatched", lambda x: F.cross_entropy(x, np.array(3)), randn(5))
case("smooth_l1_loss", "smooth_l1_loss", lambda x, y: F.smooth_l1_loss(x, y, beta=0.5), randn(3, 4), randn(3, 4))
case("binary_cross_entropy", "binary_cross_entropy", F.binary_cross_entropy, lambda rng: rng.uniform(0.1, 0.9, (3, 4)),
     lambda rng: rng.uniform(0, 1, (3, 4)))
case("binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits-pos_weight",
     lambda x, t: F.binary_cross_entropy_with_logits(x, t, pos_weight=WEIGHT[:4]), randn(3, 4),
     lambda rng: rng.uniform(0, 1, (3, 4)), float32=False)

# Through float32 and back: finite differences need a step far above float32's resolution.
case("astype", "astype-float32-and-back", lambda x: (x.astype(np.float32) * 3.0).astype(np.float64), randn(3, 4),
     float32=False, tolerances={"eps": 1e-3})


# ---- conv2d: a grid over stride, padding, dilation, groups and bias -----------------------------------------
def conv_case(id: str, n: int, c: int, hw: tuple[int, int], o: int, kernel: tuple[int, int], bias: bool,
              **params: Any) -> None:
    groups = params.get("groups", 1)
    draws = [randn(n, c, *hw), randn(o, c // groups, *kernel)] + ([randn(o)] if bias else [])
    case("conv2d", id, lambda x, w, b=None: F.conv2d(x, w, b, **params), *draws)


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

# ---- pools: kernel 2-3, stride 1-3 (overlapping and not), padding, count_include_pad ------------------------
POOLS = {
    "max_pool2d": ("max_pool2d", F.max_pool2d),
    "avg_pool2d": ("avg_pool2d", F.avg_pool2d),
    "avg_pool2d-exclude-pad": ("avg_pool2d", lambda x, *args: F.avg_pool2d(x, *args, count_include_pad=False)),
}
for (key, (name, pool)), kernel, stride, padding in itertools.product(POOLS.items(), (2, 3), (1, 2, 3), (0, 1)):
    if padding == 0 and key.endswith("exclude-pad"):
        continue  # identical to including it
    case(name, f"{key}-k{kernel}-s{stride}-p{padding}", lambda x, p=pool, a=(kernel, stride, padding): p(x, *a),
         distinct(2, 2, 5, 6))
for key, (name, pool) in POOLS.items():
    case(name, f"{key}-pair-params", lambda x, p=pool: p(x, (2, 3), (1, 2), (1, 1)), distinct(2, 2, 5, 6))
    case(name, f"{key}-default-stride", lambda x, p=pool: p(x, 2), distinct(1, 2, 5, 6))

# ---- padding, resizing and the composite convolutions and pools (nn.functional) -------------------------------
for mode in ("constant", "reflect", "replicate", "circular"):
    case("pad", f"pad-{mode}", lambda x, m=mode: F.pad(x, (2, 1, 1, 2), mode=m), randn(2, 2, 3, 4))
case("pad", "pad-constant-value-and-crop", lambda x: F.pad(x, (1, -1, 0, 2), value=0.5), randn(2, 3, 4))
case("pad", "pad-reflect-3d", lambda x: F.pad(x, (2, 3), mode="reflect"), randn(2, 2, 4))
for key, kwargs in {"scale2": {"scale_factor": 2}, "size": {"size": (5, 3)},
                    "exact-fraction": {"scale_factor": 1.5, "mode": "nearest-exact"}}.items():
    case("interpolate", f"interpolate-{key}", lambda x, k=kwargs: F.interpolate(x, **k), randn(1, 2, 3, 4))
case("adaptive_avg_pool2d", "adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (2, 3)), randn(2, 2, 5, 7))
for key, kwargs in {"same": {"padding": "same"}, "same-dilated": {"padding": "same", "dilation": 2},
                    "valid": {"padding": "valid"}}.items():
    case("conv2d", f"conv2d-padding-{key}", lambda x, w, k=kwargs: F.conv2d(x, w, **k), randn(1, 2, 5, 4),
         randn(3, 2, 2, 3))
TRANSPOSED = [(1, 0, 0, 1, 1), (2, 1, 1, 1, 1), ((2, 3), (1, 0), (1, 2), 1, 2), (2, 0, 1, 2, 2)]
for stride, padding, output_padding, dilation, groups in TRANSPOSED:
    case("conv_transpose2d", f"conv_transpose2d-s{stride}-p{padding}-op{output_padding}-d{dilation}-g{groups}",
         lambda x, w, b, a=(stride, padding, output_padding, groups, dilation): F.conv_transpose2d(x, w, b, *a),
         randn(2, 4, 3, 2), randn(4, 6 // groups, 3, 2), randn(6))
for kernel, stride, padding in [(2, 2, 0), (3, 2, 1), ((3, 2), (2, 3), (1, 0))]:
    config = f"k{kernel}-s{stride}-p{padding}".replace(" ", "")
    case("max_pool2d", f"max_pool2d-ceil-{config}", lambda x, a=(kernel, stride, padding):
         F.max_pool2d(x, *a, ceil_mode=True), distinct(2, 2, 5, 6))
    for include in (True, False):
        case("avg_pool2d", f"avg_pool2d-ceil-{config}{'' if include else '-exclude-pad'}",
             lambda x, a=(kernel, stride, padding), c=include: F.avg_pool2d(x, *a, ceil_mode=True, count_include_pad=c),
             randn(2, 2, 5, 6))
case("avg_pool2d", "avg_pool2d-divisor-override", lambda x: F.avg_pool2d(x, 3, 2, 1, divisor_override=4),
     randn(2, 2, 5, 6))

# ---- the primitives that only appear inside VJPs, checked directly --------------------------------------------
# Their own VJPs are what second-order gradients (double backward) run.
CONV = {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": 2}  # 6x6 input, 3x2 kernel -> 3x4
case("conv2d_input_grad", "conv2d_input_grad", lambda g, w: Conv2dInputGrad.apply(g, w, input_hw=(6, 6), **CONV),
     randn(2, 4, 3, 4), randn(4, 1, 3, 2))
case("conv2d_weight_grad", "conv2d_weight_grad",
     lambda x, g: Conv2dWeightGrad.apply(x, g, kernel_hw=(3, 2), **CONV), randn(2, 2, 6, 6), randn(2, 4, 3, 4))

POOL = {"input_hw": (5, 6), "kernel": (3, 3), "stride": (2, 2), "padding": (1, 1)}  # -> 3x3 windows
WINNERS = MaxPool2d.apply(Tensor(distinct(2, 2, 5, 6)(_constants), requires_grad=True),
                         **{k: v for k, v in POOL.items() if k != "input_hw"})._ctx.winners
case("max_pool_scatter", "max_pool_scatter", lambda g: MaxPoolScatter.apply(g, winners=WINNERS, **POOL),
     randn(2, 2, 3, 3))
case("max_pool_gather", "max_pool_gather", lambda u: MaxPoolGather.apply(u, winners=WINNERS, **POOL),
     randn(2, 2, 5, 6))
for include in (True, False):
    case("avg_pool_scatter", f"avg_pool_scatter{'' if include else '-exclude-pad'}",
         lambda g, c=include: AvgPoolScatter.apply(g, count_include_pad=c, **POOL), randn(2, 2, 3, 3))
case("index_add", "index_add-repeats", lambda g: IndexAdd.apply(g, index=np.array([0, 2, 0]), shape=(4, 3)),
     randn(3, 3))
case("index_add", "index_add-slice", lambda g: IndexAdd.apply(g, index=(slice(1, 3),), shape=(4, 3)), randn(2, 3))

# ---- Tensor API: elementwise functions, selection, reductions over dim, joining and splitting -------------------
case("sigmoid", "sigmoid-method", lambda x: x.sigmoid(), randn(3, 4))
case("tanh", "tanh-method", lambda x: x.tanh(), randn(3, 4))
case("abs", "abs", lambda x: x.abs(), away_from_zero(3, 4))
case("sqrt", "sqrt", lambda x: x.sqrt(), positive(3, 4))
case("rsqrt", "rsqrt", lambda x: x.rsqrt(), positive(3, 4))
case("square", "square", lambda x: x.square(), randn(3, 4))
# distinct() values lie on a 0.1 grid: bounds between grid points keep finite differences off the kinks
case("clamp", "clamp-min-max", lambda x: x.clamp(-0.25, 0.35), distinct(3, 4))
case("clamp", "clamp-min-only", lambda x: x.clamp(min=-0.25), distinct(3, 4))
case("clamp", "clamp-max-only", lambda x: x.clamp(max=0.15), distinct(3, 4))
case("clamp", "clamp-tensor-bounds", lambda x, lo, hi: x.clamp(lo, hi), randn(3, 4), negative(4), positive(3, 1))
COND = _constants.random((3, 4)) > 0.5
case("where", "where", lambda a, b: where(COND, a, b), randn(3, 4), randn(3, 4))
case("where", "where-broadcast", lambda a, b: where(COND, a, b), randn(4), randn(3, 1))
case("where", "where-python-scalar", lambda a: where(COND, a, 0.5), randn(3, 4))
case("where", "where-method", lambda a, b: a.where(COND, b), randn(3, 4), randn())
case("masked_fill", "masked_fill", lambda x: x.masked_fill(COND, -1.5), randn(3, 4))
case("maximum", "maximum", lambda a, b: a.maximum(b), randn(3, 4), randn(4))
case("minimum", "minimum", lambda a, b: a.minimum(b), randn(3, 4), randn(3, 1))

for name in ("amax", "amin"):
    for dim, keepdim in ((None, False), (1, False), ((0, 2), True), (-1, True)):
        dim_id = "all" if dim is None else "+".join(map(str, np.atleast_1d(dim)))
        case(name, f"{name}-dim{dim_id}{'-keepdim' if keepdim else ''}",
             lambda x, n=name, d=dim, k=keepdim: getattr(x, n)() if d is None else getattr(x, n)(d, keepdim=k),
             distinct(2, 3, 4))
for name in ("max", "min"):
    case(name, f"{name}-dim-values", lambda x, n=name: getattr(x, n)(1).values, distinct(2, 3, 4))
    case(name, f"{name}-dim-keepdim-values", lambda x, n=name: getattr(x, n)(dim=-1, keepdim=True)[0],
         distinct(2, 3, 4))
    case(name, f"{name}-all", lambda x, n=name: getattr(x, n)(), distinct(3, 4))
case("mean", "mean-dim-keepdim", lambda x: x.mean(dim=(0, 2), keepdim=True), randn(2, 3, 4))
case("sum", "sum-dim-keepdim", lambda x: x.sum(dim=1, keepdim=True), randn(2, 3, 4))
for name in ("var", "std"):
    case(name, name, lambda x, n=name: getattr(x, n)(), randn(3, 4))
    case(name, f"{name}-dim1", lambda x, n=name: getattr(x, n)(1), randn(3, 4))
    case(name, f"{name}-dim0-keepdim-unbiased-false", lambda x, n=name: getattr(x, n)(0, unbiased=False, keepdim=True),
         randn(3, 4))
    case(name, f"{name}-correction-2", lambda x, n=name: getattr(x, n)(dim=(0, 2), correction=2), randn(3, 4, 2))
def with_zeros(*shape: int, zeros: int) -> Draw:
    """randn with `zeros` elements set to 0: where the gradient of a product needs the product of the others."""
    def draw(rng: np.random.Generator) -> np.ndarray:
        x = rng.standard_normal(shape)
        x.flat[rng.choice(x.size, zeros, replace=False)] = 0.0
        return x
    return draw


case("prod", "prod-all", lambda x: x.prod(), randn(2, 3))
case("prod", "prod-dim1", lambda x: x.prod(1), randn(2, 3, 2))
case("prod", "prod-dims-keepdim", lambda x: x.prod(axis=(0, 2), keepdims=True), randn(2, 3, 2))
case("prod", "prod-one-zero", lambda x: x.prod(1), with_zeros(3, 4, zeros=1))
case("prod", "prod-two-zeros", lambda x: x.prod(), with_zeros(2, 3, zeros=2))
case("cumsum", "cumsum-dim0", lambda x: x.cumsum(0), randn(3, 4))
case("cumsum", "cumsum-last-dim", lambda x: x.cumsum(-1), randn(2, 3, 4))
case("flip", "flip", lambda x: x.flip(0, 2), randn(2, 3, 4))
case("sort", "sort-values", lambda x: x.sort(1).values, distinct(3, 4))
case("sort", "sort-descending-values", lambda x: x.sort(0, descending=True)[0], distinct(3, 4))
case("topk", "topk-values", lambda x: x.topk(2, dim=1).values, distinct(3, 4))
case("norm", "norm-2", lambda x: x.norm(), randn(3, 4))
case("norm", "norm-2-dim", lambda x: x.norm(dim=1, keepdim=True), randn(3, 4))
case("norm", "norm-1", lambda x: x.norm(p=1, dim=0), away_from_zero(3, 4))
case("norm", "norm-3", lambda x: x.norm(p=3), away_from_zero(3, 4))
case("norm", "norm-inf", lambda x: x.norm(p=float("inf"), dim=1), distinct(3, 4))
case("mm", "mm", lambda a, b: a.mm(b), randn(3, 4), randn(4, 2))
case("bmm", "bmm", lambda a, b: a.bmm(b), randn(2, 3, 4), randn(2, 4, 2))
case("logsumexp", "logsumexp", lambda x: x.logsumexp(1), randn(3, 4))
case("logsumexp", "logsumexp-keepdim", lambda x: x.logsumexp((0, 1), keepdim=True), randn(3, 4))
for name in ("softmax", "log_softmax"):
    case(name, f"{name}-dim-keyword", lambda x, n=name: getattr(x, n)(dim=1), randn(2, 3, 4))

case("cat", "cat-dim0", lambda a, b: cat([a, b]), randn(2, 3), randn(4, 3))
case("cat", "cat-dim1-three", lambda a, b, c: cat([a, b, c], dim=1), randn(2, 1), randn(2, 3), randn(2, 2))
case("cat", "cat-same-input-twice", lambda a: cat([a, a * 2.0], -1), randn(2, 3))
case("stack", "stack-dim0", lambda a, b: stack([a, b]), randn(2, 3), randn(2, 3))
case("stack", "stack-last-dim", lambda a, b: stack([a, b], dim=-1), randn(2, 3), randn(2, 3))
case("split", "split-size", lambda x: cat([p * (i + 1.0) for i, p in enumerate(x.split(2, dim=1))], 1), randn(2, 5))
case("split", "split-sections", lambda x: x.split([1, 3], 0)[1], randn(4, 3))
case("chunk", "chunk", lambda x: cat(list(x.chunk(3, -1))[::-1], -1), randn(2, 7))
case("unbind", "unbind", lambda x: x.unbind(1)[2], randn(2, 3))
GATHER_INDEX = np.array([[0, 2, 2, 1], [1, 1, 0, 0]])  # repeated indices: their gradients add up
case("gather", "gather-dim1", lambda x: x.gather(1, GATHER_INDEX), randn(2, 3))
case("gather", "gather-dim0", lambda x: x.gather(0, GATHER_INDEX[:, :3]), randn(3, 3))
case("index_select", "index_select", lambda x: x.index_select(1, np.array([2, 0, 2])), randn(2, 3))

OPS = list(dict.fromkeys(c.op for c in CASES))  # in catalogue order


def quick(cases: list[Case]) -> list[Case]:
    """The first configuration of each op."""
    first: dict[str, Case] = {}
    for c in cases:
        first.setdefault(c.op, c)
    return list(first.values())


@dataclass(frozen=True)
class CaseResult:
    case: Case
    first: list[InputError]             # gradcheck: one entry per input
    second: list[InputError]            # gradgradcheck: per input, then per output weighting

    @property
    def passed(self) -> bool:
        return all(e.passed for e in self.first + self.second)


def run_case(case: Case) -> CaseResult:
    """gradcheck and gradgradcheck of one case, with the error numbers they judge."""
    return CaseResult(case, gradient_errors(case.fn, case.leaves(), **case.tolerances),
                      second_order_errors(case.fn, case.leaves(), **case.tolerances))
