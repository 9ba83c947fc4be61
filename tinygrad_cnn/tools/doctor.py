"""The gradient doctor: check every VJP of a recorded graph in place, and catch NaN/Inf where they appear.

`check_graph(loss)` walks the graph recorded for `loss` and checks each node's VJP at the very inputs
that node saw, by directional finite differences. For a node y = f(x_1, ..., x_k), a random output
weighting v and random input directions d_i, the VJP must satisfy

    sum_i <VJP_i(v), d_i>  ==  d/dt <v, f(x + t d)> at t = 0  ~  (<v, f(x + eps d)> - <v, f(x - eps d)>) / (2 eps)

so each node costs one VJP and 2 forward evaluations of that one op per direction: linear in the
size of the graph, where `gradcheck` (one element at a time) is linear in the number of input
elements. A wrong VJP (A^T v instead of J^T v) passes only if v^T (A - J) d = 0, which random v and
d almost surely rule out.

`detect_anomaly()` records where each op was created and stops at the first op whose forward output
or VJP result holds NaN or Inf; `record_sites()` only records the creation sites.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..autograd import Config, Context, Tensor, enable_grad, grad, no_grad, using_config
from ..hooks import observe
from .gradcheck import relative_error
from .record import Recorder, module_of, site_of, user_site

_SITE = re.compile(r"^(.+?):(\d+): ?(.*)$")  # "path:line: code", the format of `site_of`
_UNKNOWN_SITE_HINT = ("creation sites unknown: record the forward pass under detect_anomaly() or record_sites() "
                      "to see the line that created each op")


# ---- creation sites and anomaly detection ------------------------------------------------------------

def _short_site(site: str | None) -> str:
    """"file.py:line  code" for tables: the directory is rarely needed to find the line."""
    if site is None:
        return "unknown"
    found = _SITE.match(site)
    return f"{os.path.basename(found[1])}:{found[2]}  {found[3]}" if found else site


class AnomalyError(RuntimeError):
    """An op's forward output or VJP result held NaN or Inf (raised inside `detect_anomaly()`)."""

    def __init__(self, message: str, op: str, phase: str, input_shapes: list[tuple[int, ...]],
                 site: str | None) -> None:
        super().__init__(message)
        self.op, self.phase, self.input_shapes, self.site = op, phase, input_shapes, site


def _non_finite(array: np.ndarray) -> bool:
    # A sum is NaN/Inf when any element is, without allocating a mask; a sum that merely overflowed
    # is told apart by the exact (allocating) test, which only runs then.
    return array.dtype.kind == "f" and not np.isfinite(array.sum()) and not np.isfinite(array).all()


def _anomaly(ctx: Context, array: np.ndarray, phase: str) -> AnomalyError:
    kinds = " and ".join(kind for kind, test in (("NaN", np.isnan), ("Inf", np.isinf)) if test(array).any())
    count = int(array.size - np.isfinite(array).sum())
    tensors = [a for a in ctx.inputs if isinstance(a, Tensor)]
    shapes = [a.shape for a in tensors]
    inputs = ", ".join(f"{a.shape} {a.dtype}" for a in tensors) or "none"
    if phase == "forward":
        site = site_of(ctx) if ctx.recorded else user_site()
        where = f"its forward output (shape {array.shape})"
        origin = ("its inputs already held NaN/Inf, so look at the op that made them" if any(
            _non_finite(a.data) for a in tensors) else f"its inputs are all finite, so {ctx.name} made the {kinds}")
    else:
        site = site_of(ctx)
        where = f"a gradient of shape {array.shape} returned by its backward (the VJP)"
        origin = ("the gradient reaching it was finite (else an earlier VJP would be named), so its derivative is "
                  "infinite or undefined at these inputs: e.g. sqrt or a power < 1 at 0, log or division at 0")
    created = site if site is not None else (
        "unknown (the forward ran outside detect_anomaly(): run it inside to see the line)")
    message = (f"detect_anomaly: {ctx.name} produced {kinds} in {where}, {count} of {array.size} elements; "
               f"inputs: {inputs}; {origin}.\n  {ctx.name} was created at {created}")
    return AnomalyError(message, ctx.name, phase, shapes, site)


class AnomalyDetector(Recorder):
    """Records creation sites and raises `AnomalyError` at the first non-finite forward output or VJP result."""

    def __init__(self) -> None:
        super().__init__(sites=True, grad_norms=False)

    def forward(self, ctx: Context, output: np.ndarray) -> None:
        super().forward(ctx, output)
        # Inside a VJP the ops run as forwards too; an Inf there only matters if it reaches the gradient
        # the VJP returns, which `backward` checks and blames on the right node.
        if not Config.in_backward and _non_finite(output):
            raise _anomaly(ctx, output, "forward")

    def backward(self, ctx: Context, grad: Tensor, input_grads: tuple[Tensor | None, ...]) -> None:
        for g, needed in zip(input_grads, ctx.needs_input_grad):
            if g is not None and needed and _non_finite(g.data):
                raise _anomaly(ctx, g.data, "backward")


def record_sites() -> contextlib.AbstractContextManager:
    """Context manager: each op recorded inside remembers the user's line that created it, "path:line: code"
    (the first stack frame outside tinygrad_cnn; see `tools.record.site_of`). Values are not checked."""
    return observe(Recorder(sites=True, grad_norms=False))


def detect_anomaly() -> contextlib.AbstractContextManager:
    """Context manager: record creation sites (as `record_sites`) and raise `AnomalyError` at the first
    op whose forward output, or the gradient its VJP returns, holds NaN or Inf, naming the op, its
    input shapes, the phase and the user's line that created it. Run both forward and backward inside.
    Costs a pass over every array and a stack walk per op; outside it the engine pays nothing."""
    return observe(AnomalyDetector())


# ---- check_graph: every node's VJP by directional finite differences ----------------------------------

@dataclass(frozen=True)
class NodeCheck:
    """The check of one node: its VJP against finite differences along a few random directions."""

    index: int                          # position in forward (topological) order
    op: str                             # the Function's class name, user-defined ones included
    module: str                         # class of the nn.Module whose forward ran it ("" outside any)
    input_shapes: tuple[tuple[int, ...], ...]
    max_abs_err: float                  # max over directions of |analytic - numeric|
    max_rel_err: float                  # the same relative to |numeric| (where |numeric| > atol)
    status: str                         # "PASS", "FAIL" or "SKIP" (nothing could be checked)
    site: str | None                    # "path:line: code" that created the op, None if not recorded
    note: str = ""                      # kinks held fixed, why it was skipped, or the error raised

    @property
    def passed(self) -> bool:
        """False only for a failure: a skipped node showed nothing wrong."""
        return self.status != "FAIL"


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Columns padded to their widest cell; the columns in `right` (numbers) right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in
                               enumerate(zip(r, widths))).rstrip() for r in [header, *rows])


@dataclass(frozen=True)
class GraphReport:
    nodes: list[NodeCheck]              # in forward order
    seconds: float
    directions: int

    @property
    def ok(self) -> bool:
        return all(n.passed for n in self.nodes)

    @property
    def first_failure(self) -> NodeCheck | None:
        return next((n for n in self.nodes if not n.passed), None)

    def __str__(self) -> str:
        rows = [[str(n.index), n.op, n.module, ", ".join("x".join(map(str, s)) or "scalar" for s in n.input_shapes),
                 f"{n.max_abs_err:.2e}", f"{n.max_rel_err:.2e}",
                 n.status + (f" ({n.note})" if n.note and len(n.note) < 40 else ""), _short_site(n.site)]
                for n in self.nodes]
        lines = [text_table(["#", "op", "module", "input shapes", "max abs err", "max rel err", "result", "site"],
                            rows, right=(0, 4, 5))]
        lines += [f"#{n.index} {n.op}: {n.note}" for n in self.nodes if len(n.note) >= 40]
        failures = [n for n in self.nodes if not n.passed]
        lines.append(f"checked {len(self.nodes)} nodes ({self.directions} random directions each) in "
                     f"{self.seconds:.2f} s: {len(failures)} failed, "
                     f"{sum(n.status == 'SKIP' for n in self.nodes)} skipped")
        if failures:
            first = failures[0]
            lines.append(f"first failure: #{first.index} {first.op}, created at {first.site or 'unknown'}")
        if any(n.site is None for n in self.nodes):
            lines.append(_UNKNOWN_SITE_HINT)
        return "\n".join(lines)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    # Not np.vdot: a BLAS dot of a large vector can wake OpenBLAS's sleeping threads, which after the
    # pauses between these small calls cost ~10 ms each on a busy machine; this costs ~50 us.
    return float((a * b).sum())


def _float64_copy(a: Any, needed: bool) -> Any:
    if isinstance(a, Tensor) and a.dtype.kind == "f":
        return Tensor(a.data.astype(np.float64), requires_grad=needed)
    return a  # indices, integer arrays and non-Tensor arguments pass through


def _float64_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """The op's attributes with float dtypes (Cast's target) made float64: the check runs the op in
    float64 from end to end."""
    return {k: np.dtype(np.float64) if isinstance(v, np.dtype) and v.kind == "f" else v for k, v in attrs.items()}


def _check_node(index: int, ctx: Context, rng: np.random.Generator, eps: float, atol: float, rtol: float,
                directions: int) -> NodeCheck:
    shapes = tuple(a.shape for a in ctx.inputs if isinstance(a, Tensor))

    def result(status: str, abs_err: float = 0.0, rel_err: float = 0.0, note: str = "") -> NodeCheck:
        module = module_of(ctx)
        return NodeCheck(index, ctx.name, type(module).__name__ if module is not None else "", shapes, abs_err,
                         rel_err, status, site_of(ctx), note)

    copies = [_float64_copy(a, needed) for a, needed in zip(ctx.inputs, ctx.needs_input_grad)]
    wrt = [i for i, c in enumerate(copies) if isinstance(c, Tensor) and c.requires_grad]
    attrs = _float64_attrs(ctx.attrs)
    if not wrt:
        return result("SKIP", note="no floating-point input needs a gradient")
    dirs = [{i: rng.standard_normal(copies[i].shape) for i in wrt} for _ in range(directions)]
    held = 0
    if ctx.fn.kinks is not None and 0 in wrt:  # hold the elements at a kink fixed in every direction
        step = eps * max(float(np.abs(d[0]).max(initial=0.0)) for d in dirs)  # the farthest an element moves
        kinks = ctx.fn.kinks(copies[0].data, attrs, step)
        held = int(kinks.sum())
        for d in dirs:
            d[0][kinks] = 0.0
        if held == copies[0].numel() and wrt == [0]:
            return result("SKIP", note="kink, skipped: all elements at a kink")

    def evaluate(t: float, d: dict[int, np.ndarray]) -> np.ndarray:
        args = [Tensor._make(c.data + t * d[i]) if i in d else c for i, c in enumerate(copies)]
        return ctx.fn.apply(*args, **attrs).data

    try:
        with enable_grad():
            out = ctx.fn.apply(*copies, **attrs)
        if out.dtype.kind != "f" or not out.requires_grad:
            return result("SKIP", note=f"output is not differentiable (dtype {out.dtype})")
        v = rng.standard_normal(out.shape)
        vjps = grad(out, [copies[i] for i in wrt], grad_outputs=Tensor._make(v.astype(out.dtype)),
                    allow_unused=True)
        analytic = np.array([sum(_dot(g.data, d[i]) for i, g in zip(wrt, vjps) if g is not None) for d in dirs])
        with no_grad():
            numeric = np.array([(_dot(v, evaluate(eps, d)) - _dot(v, evaluate(-eps, d))) / (2 * eps) for d in dirs])
    except Exception as e:  # a VJP that raises (wrong shape, wrong count of gradients) is a failure too
        return result("FAIL", np.inf, np.inf, f"{type(e).__name__}: {e}")
    note = f"{held} kink element{'s' * (held != 1)} held fixed" if held else ""
    if not np.isfinite(analytic).all():
        return result("FAIL", np.inf, np.inf, "the VJP returned NaN/Inf")
    if not np.isfinite(numeric).all():
        return result("SKIP", note="finite differences gave NaN/Inf: the step left the op's domain")
    error = np.abs(analytic - numeric)
    passed = bool((error <= atol + rtol * np.abs(numeric)).all())
    return result("PASS" if passed else "FAIL", float(error.max()), relative_error(error, numeric, atol), note)


def check_graph(loss: Tensor, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0,
                directions: int = 3) -> GraphReport:
    """Check the VJP of every node recorded for `loss`, in place, by directional finite differences.

    Each node is re-run on float64 copies of the inputs it saw (after backward too: the inputs and
    attributes survive it), and sum_i <VJP_i(v), d_i> is compared with the central difference of
    <v, f(x + t d)> for `directions` random (v, d). A node fails when |analytic - numeric| >
    atol + rtol * |numeric|. Returns a `GraphReport`: `.ok`, `.nodes`, `.first_failure`, and a
    table as `str(report)`. Creation sites are known when the forward ran under `detect_anomaly()`
    or `record_sites()`. Check before an optimizer step changes the parameters in place.
    """
    if not isinstance(loss, Tensor) or loss._ctx is None:
        raise ValueError("check_graph: expected a Tensor with a recorded graph (computed with grad mode on from "
                         "inputs that require grad), got " + (f"a leaf of shape {loss.shape}" if isinstance(
                             loss, Tensor) else type(loss).__name__))
    if directions < 1:
        raise ValueError(f"check_graph: directions must be >= 1, got {directions}")
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    with using_config(observers=()):  # the perturbed re-runs are not the user's ops
        nodes = [_check_node(k, t._ctx, rng, eps, atol, rtol, directions) for k, t in enumerate(loss._topo())]
    return GraphReport(nodes, time.perf_counter() - start, directions)
