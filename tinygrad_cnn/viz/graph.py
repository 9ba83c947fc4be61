"""Draw a recorded graph with Graphviz: the forward ops, the backward pass's VJPs, and gradient magnitudes.

`draw_graph(output)` reads only what survives `backward()` on each `Context` (function, inputs, attributes,
output shape/dtype, module, gradient norm), so a graph can be drawn before or after backward, and also the
graph of a gradient recorded with `create_graph=True`. Three views of the same walk:

  forward   tensor nodes (boxes: name or role, shape, dtype) and op nodes (ellipses: op and attributes),
            edges input -> op -> output.
  backward  one VJP node per recorded op, numbered in the order reverse mode runs them, from the seed
            gradient to each leaf's `.grad`; every edge is labelled with the shape of the gradient it carries.
  show_grads  colours gradients by log10 of their norm on a fixed scale (blue = vanishing, orange = exploding,
            pure red = NaN/Inf), so the same colour means the same magnitude in every drawing.

Node ids follow the engine's topological order (`Tensor._topo`), so the DOT source is deterministic.
"""

from __future__ import annotations

import functools
import math
import shutil
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..autograd import Tensor
from ..nn.module import Module
from ..serialization.files import write_atomically
from ..tools.record import grad_norm_of, module_of, site_of

SUPPORTED_FORMATS = (".svg", ".png", ".pdf", ".dot")
INSTALL_HINT = "install Graphviz (apt-get install graphviz / brew install graphviz)"

if TYPE_CHECKING:
    import graphviz


def _graphviz() -> ModuleType:
    """The graphviz Python package, imported on first use: the rest of the library does not need it."""
    try:
        import graphviz
    except ImportError as e:
        raise ImportError("drawing graphs needs the graphviz Python package: pip install 'tinygrad_cnn[viz]'") from e
    return graphviz


@functools.cache
def _notebook_digraph() -> type[graphviz.Digraph]:
    """graphviz.Digraph that also displays inline in Jupyter without Graphviz's `dot` program.

    A notebook cell ending in `draw_graph(...)` shows the SVG (graphviz's own `_repr_mimebundle_`); without `dot`
    that would be a traceback, so the DOT source and the install hint are shown as text instead.
    """
    graphviz = _graphviz()

    class Digraph(graphviz.Digraph):
        def _repr_mimebundle_(self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None,
                              **kwargs: Any) -> dict[str, Any]:
            if shutil.which("dot") is not None:
                try:
                    return super()._repr_mimebundle_(include, exclude, **kwargs)
                except graphviz.ExecutableNotFound:
                    pass
            return {"text/plain": f"Graphviz's `dot` program was not found: {INSTALL_HINT} to see this graph "
                                  f"drawn. Its DOT source:\n{self.source}"}

    return Digraph


# log10(norm) -> colour, interpolated in RGB and clamped at both ends. Fixed (not fitted to the graph) so
# that colours compare across models and training steps. It never reaches pure red: that is NAN_COLOR.
GRAD_SCALE = ((-8.0, "#2c3592"), (-6.0, "#3f6fd8"), (-4.0, "#3fb0e0"), (-2.0, "#7fd38a"),
              (0.0, "#f5e050"), (2.0, "#f9a23c"), (4.0, "#e8590c"))
NAN_COLOR = "#ff0000"
NO_GRAD_COLOR = "#dddddd"
_PARAM_FILL, _CONST_FILL, _OUTPUT_FILL, _OP_FILL = "#cfe2ff", "#eeeeee", "#d3f0d3", "#fff5cc"
_BOLD_FONT = "Helvetica-Bold"
_ATTR_WIDTH = 34  # characters per line of an op's attributes before wrapping


# ---- gradient colours ------------------------------------------------------------------------------------
def _hex_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def grad_color(norm: float) -> str:
    """The colour of a gradient of this norm: GRAD_SCALE over log10(norm), NAN_COLOR if not finite."""
    if not math.isfinite(norm):
        return NAN_COLOR
    (lo, lo_color), (hi, hi_color) = GRAD_SCALE[0], GRAD_SCALE[-1]
    x = math.log10(norm) if norm > 0 else lo
    if x <= lo:
        return lo_color
    if x >= hi:
        return hi_color
    for (x0, c0), (x1, c1) in zip(GRAD_SCALE, GRAD_SCALE[1:]):
        if x <= x1:
            t = (x - x0) / (x1 - x0)
            rgb = (round(a + t * (b - a)) for a, b in zip(_hex_rgb(c0), _hex_rgb(c1)))
            return "#{:02x}{:02x}{:02x}".format(*rgb)
    raise AssertionError("unreachable: x is within the scale")


def _text_color(fill: str) -> str:
    r, g, b = _hex_rgb(fill)
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 128 else "black"


def _fmt_norm(norm: float) -> str:
    if math.isnan(norm):
        return "NaN"
    if math.isinf(norm):
        return "Inf"
    return "0" if norm == 0 else f"{norm:.2e}"


_BINS_PER_DECADE = 50  # styles are cached per 1/50 decade: far finer than the eye tells colours apart


def _grad_attrs(norm: float | None, node: bool) -> str:
    """DOT attributes showing a gradient of this norm on a node (fill) or an edge (line); None: no gradient."""
    if norm is None or not math.isfinite(norm) or norm == 0:
        return _styled(norm if norm is None or norm == 0 else math.inf, node)  # one cache key for NaN and Inf
    return _styled(10.0 ** (round(math.log10(norm) * _BINS_PER_DECADE) / _BINS_PER_DECADE), node)


@functools.lru_cache(maxsize=1024)
def _styled(norm: float | None, node: bool) -> str:
    if norm is None:
        return _attrs(fillcolor=NO_GRAD_COLOR) if node else _attrs(color="#999999", style="dashed")
    color = grad_color(norm)
    if color == NAN_COLOR:  # bold text and a thick line, so NaN/Inf is found at a glance
        if node:
            return _attrs(fillcolor=color, fontcolor="white", fontname=_BOLD_FONT, penwidth="3")
        return _attrs(color=color, fontcolor=color, fontname=_BOLD_FONT, penwidth="3.5")
    if node:
        return _attrs(fillcolor=color, fontcolor=_text_color(color))
    return _attrs(color=color, penwidth="2.5")


def _norm_of(t: Tensor | None) -> float | None:
    if t is None:
        return None
    return float(np.linalg.norm(t.data.astype(np.float64, copy=False).ravel()))


def _legend() -> str:
    """An HTML-like table: one cell per GRAD_SCALE stop, then NaN/Inf and 'no gradient'."""
    cells = "".join(f'<TD BGCOLOR="{c}"><FONT COLOR="{_text_color(c)}">1e{x:+.0f}</FONT></TD>' for x, c in GRAD_SCALE)
    return ('<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4"><TR>'
            '<TD BORDER="0">gradient norm (log scale):</TD>' + cells +
            f'<TD BORDER="0"> </TD><TD BGCOLOR="{NAN_COLOR}"><FONT COLOR="white"><B>NaN/Inf</B></FONT></TD>'
            f'<TD BGCOLOR="{NO_GRAD_COLOR}">no gradient</TD></TR></TABLE>>')


# ---- labels ----------------------------------------------------------------------------------------------
def _fmt_value(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    if isinstance(value, tuple):
        inner = ", ".join(_fmt_value(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, slice):
        start, stop = ("" if v is None else str(v) for v in (value.start, value.stop))
        return f"{start}:{stop}" + ("" if value.step is None else f":{value.step}")
    if isinstance(value, (np.dtype, np.generic)):  # float32, not dtype('float32'); 2.0, not np.float64(2.0)
        return str(value)
    text = repr(value)
    return text if len(text) <= _ATTR_WIDTH else text[:_ATTR_WIDTH - 3] + "..."


def _wrap(items: Iterable[str]) -> list[str]:
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + 1 + len(item) <= _ATTR_WIDTH:
            lines[-1] += " " + item
        else:
            lines.append(item)
    return lines


def _op_attr_lines(ctx: Any) -> list[str]:
    """`key=value` for the op's attributes and non-tensor positional arguments (arrays and `_private` skipped)."""
    items = [f"arg{i}={_fmt_value(a)}" for i, a in enumerate(ctx.inputs) if not isinstance(a, Tensor)]
    items += [f"{k}={_fmt_value(v)}" for k, v in ctx.attrs.items()
              if not k.startswith("_") and not isinstance(v, np.ndarray)]
    return _wrap(items)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _label(*lines: str) -> str:
    """The lines (empty ones dropped) as the inside of a quoted DOT string: Graphviz breaks lines at "\\n"."""
    return "\\n".join(_escape(line) for line in lines if line)


def _attrs(**attrs: str) -> str:
    """' key="value"' pairs; values are our own constants or already escaped."""
    return "".join(f' {key}="{value}"' for key, value in attrs.items())


@functools.lru_cache(maxsize=4096)  # a big graph repeats a few shapes; str(np.dtype) is slow
def _shape_text(shape: tuple[int, ...], dtype: Any = None) -> str:
    text = str(tuple(shape))
    return f"{text} {np.dtype(dtype)}" if dtype is not None else text


# ---- the walk --------------------------------------------------------------------------------------------
class _Trace:
    """The recorded graph under `output`, flattened into lists in a fixed order, with everything named.

    ops[k] is the k-th tensor with a recorded op in topological order (inputs before outputs): reverse mode
    runs the VJP of ops[k] as number len(ops) - k. Leaves are listed in order of first appearance.
    With `collapse`, group_of[k] is the module-call group op k belongs to (None: recorded outside any module).
    """

    def __init__(self, output: Tensor, params: Module | Mapping[str, Tensor] | None,
                 names: Mapping[str, Tensor] | None, collapse: bool) -> None:
        self.output = output
        self.ops: list[Tensor] = output._topo() if output._ctx is not None else []
        self.op_index = {id(t): k for k, t in enumerate(self.ops)}
        self.leaves: list[Tensor] = []
        self.leaf_index: dict[int, int] = {}
        for a in [a for t in self.ops for a in t._ctx.inputs] + [output]:
            if isinstance(a, Tensor) and a._ctx is None and id(a) not in self.leaf_index:
                self.leaf_index[id(a)] = len(self.leaves)
                self.leaves.append(a)
        self.leaf_norms = [_norm_of(t.grad) for t in self.leaves]
        self.tensor_names, self.module_names = _names_of(params)
        self.tensor_names.update(_tensor_names(names, "names"))
        self.leaf_labels = self._leaf_labels()
        self.group_of, self.group_labels = self._module_groups() if collapse else ([None] * len(self.ops), [])
        # An op's output gets its own node unless only ops of its own group consume it (collapsed away).
        self.drawn_output = [False] * len(self.ops)
        if self.ops:
            self.drawn_output[-1] = True  # the output itself
        for k, t in enumerate(self.ops):
            for a in t._ctx.inputs:
                j = self.op_index.get(id(a)) if isinstance(a, Tensor) else None
                if j is not None and (self.group_of[j] is None or self.group_of[j] != self.group_of[k]):
                    self.drawn_output[j] = True

    def _leaf_labels(self) -> list[str]:
        counts: Counter[str] = Counter()
        labels = []
        for t in self.leaves:
            name = self.tensor_names.get(id(t))
            if name is None:
                role = "leaf" if t.requires_grad else "const"
                counts[role] += 1
                name = f"{role} #{counts[role]}"
                if role == "const" and t.numel() == 1:
                    name += f" = {t.data.item():.4g}"
            labels.append(name)
        return labels

    def tensor_node(self, a: Tensor, consumer_group: int | None) -> str | None:
        """The node an input tensor is drawn as, seen from a consumer in `consumer_group` (None: not drawn,
        it stays inside that group)."""
        j = self.op_index.get(id(a))
        if j is None:
            return f"leaf{self.leaf_index[id(a)]}"
        return f"t{j}" if self.group_of[j] is None or self.group_of[j] != consumer_group else None

    def received_norms(self) -> list[float | None]:
        """What the last backward through this graph recorded (a leaf's .grad may come from an older graph)."""
        if self.ops:
            return [grad_norm_of(t._ctx) for t in self.ops]
        return [self.leaf_norms[0]]

    def module_line(self, k: int) -> str:
        module = module_of(self.ops[k]._ctx)
        name = self.module_names.get(id(module)) if module is not None else None
        return f"[{name}]" if name else ""

    def op_names(self, ks: list[int]) -> str:
        counts = Counter(self.ops[k]._ctx.name for k in ks)
        return ", ".join(name if n == 1 else f"{n}x {name}" for name, n in counts.items())

    def group_members(self) -> list[list[int]]:
        members: list[list[int]] = [[] for _ in self.group_labels]
        for k, g in enumerate(self.group_of):
            if g is not None:
                members[g].append(k)
        return members

    def group_norm(self, ks: list[int]) -> float | None:
        """Norm of the gradient a group received: of its drawn outputs together (None if any is unknown)."""
        norms = [grad_norm_of(self.ops[k]._ctx) for k in ks if self.drawn_output[k]]
        if any(x is None for x in norms):
            return None
        return math.sqrt(sum(x * x for x in norms))

    def _module_groups(self) -> tuple[list[int | None], list[str]]:
        """Each op's group and each group's label ("conv1: Conv2d", or "Conv2d #2" for an unnamed module).

        A group is a connected set of ops recorded by one layer (a module without submodules): a layer called
        twice (shared weights) gives two groups, so the drawing keeps the calls apart instead of looping back.
        Ops a container's own forward records between its layers stay primitive: as one node they would
        sit both before and after those layers.
        """
        layer = [module_of(t._ctx) if module_of(t._ctx) is not None and next(module_of(t._ctx).children(), None) is None
                 else None for t in self.ops]
        parent = list(range(len(self.ops)))

        def find(k: int) -> int:
            while parent[k] != k:
                parent[k] = parent[parent[k]]
                k = parent[k]
            return k

        for k, t in enumerate(self.ops):
            for a in t._ctx.inputs:
                j = self.op_index.get(id(a)) if isinstance(a, Tensor) else None
                if layer[k] is not None and j is not None and layer[j] is layer[k]:
                    parent[find(j)] = find(k)
        # Number the groups by their last op: a call that feeds another comes first ("call 2" is the later one).
        last_op = {find(k): k for k in range(len(self.ops)) if layer[k] is not None}
        group_ids = {root: g for g, root in enumerate(sorted(last_op, key=last_op.get))}
        labels: list[str] = []
        calls: Counter[int] = Counter()
        class_counts: Counter[str] = Counter()
        fallback_names: dict[int, str] = {}
        for root in sorted(last_op, key=last_op.get):
            module = layer[root]
            cls = type(module).__name__
            name = self.module_names.get(id(module))
            if name is None:  # not in params: class and a counter, e.g. "Conv2d #2"
                if id(module) not in fallback_names:
                    class_counts[cls] += 1
                    fallback_names[id(module)] = f"{cls} #{class_counts[cls]}"
                label = fallback_names[id(module)]
            else:
                label = f"{name}: {cls}" if name != cls else name
            calls[id(module)] += 1
            labels.append(label + (f" (call {calls[id(module)]})" if calls[id(module)] > 1 else ""))
        group_of = [group_ids[find(k)] if layer[k] is not None else None for k in range(len(self.ops))]
        return group_of, labels


def _tensor_names(mapping: Mapping[str, Tensor] | None, arg: str) -> dict[int, str]:
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        expected = "a Module or a mapping" if arg == "params" else "a mapping"
        raise TypeError(f"draw_graph: {arg} must be {expected} of name -> Tensor, got {type(mapping).__name__}")
    bad = [name for name, t in mapping.items() if not isinstance(t, Tensor)]
    if bad:
        raise TypeError(f"draw_graph: {arg} must map names to Tensors; {bad} map to "
                        f"{[type(mapping[n]).__name__ for n in bad]}")
    return {id(t): name for name, t in mapping.items()}


def _names_of(params: Module | Mapping[str, Tensor] | None) -> tuple[dict[int, str], dict[int, str]]:
    """(tensor id -> name, module id -> name) from a Module's named_parameters/named_modules or a mapping."""
    if isinstance(params, Module):
        modules = {id(m): name or type(m).__name__ for name, m in params.named_modules()}
        return {id(p): name for name, p in params.named_parameters()}, modules
    return _tensor_names(params, "params"), {}


# ---- building the Digraph --------------------------------------------------------------------------------
_OP_STYLE = _attrs(shape="ellipse", fillcolor=_OP_FILL)
_MODULE_STYLE = _attrs(shape="box3d", fillcolor=_OP_FILL)


def _site_tooltip(ctx: Any) -> str:
    """The line that created the op, when recorded (`site_of`): an SVG shows it on hover."""
    site = site_of(ctx)
    return _attrs(tooltip=_escape(site)) if site else ""


class _Drawing:
    """DOT lines built in plain Python (edges deduplicated by key), then put into one Digraph.

    The lines go straight into `Digraph.body`: `Digraph.node/edge` re-parse and re-quote every attribute,
    which on a 10,000-op graph takes longer than everything else here together.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.edge_keys: set[tuple[str, str, Any]] = set()

    def node(self, name: str, label: str, attrs: str = "") -> None:
        self.lines.append(f'\t{name} [label="{label}"{attrs}]\n')

    def edge(self, src: str, dst: str, key: Any = None, label: str = "", attrs: str = "") -> None:
        if (src, dst, key) in self.edge_keys:
            return
        self.edge_keys.add((src, dst, key))
        attrs = f' label="{label}"{attrs}' if label else attrs
        self.lines.append(f"\t{src} -> {dst} [{attrs[1:]}]\n" if attrs else f"\t{src} -> {dst}\n")

    def digraph(self, name: str, graph_label: str, legend: bool) -> graphviz.Digraph:
        dot = _notebook_digraph()(name, graph_attr={"rankdir": "TB", "fontname": "Helvetica", "fontsize": "12",
                                                 "labelloc": "t", "label": graph_label, "nodesep": "0.25",
                                                 "ranksep": "0.3"},
                               node_attr={"fontname": "Helvetica", "fontsize": "10", "style": "filled",
                                          "height": "0.3"},
                               edge_attr={"fontname": "Helvetica", "fontsize": "9", "arrowsize": "0.7"})
        dot.body.extend(self.lines)
        if legend:
            dot.node("legend", _legend(), shape="plaintext", style="")
        return dot


def draw_graph(output: Tensor, backward: bool = False, params: Module | Mapping[str, Tensor] | None = None,
               show_shapes: bool = True, show_grads: bool = False, collapse_modules: bool = False, *,
               names: Mapping[str, Tensor] | None = None) -> graphviz.Digraph:
    """Draw the graph recorded under `output` (any Tensor) as a `graphviz.Digraph` (see `render`).

    params: a Module (parameters named by `named_parameters()`, modules by `named_modules()`) or a mapping
        name -> Tensor. Other leaves are labelled by role: 'leaf #k' (requires grad), 'const #k' (does not),
        numbered in order of first appearance.
    names: extra name -> Tensor labels for tensors that are not parameters, e.g. {"images": x, "logits": y}.
    backward: draw the VJPs reverse mode runs (numbered in that order) instead of the forward ops.
    show_shapes: show shapes and dtypes on tensor nodes and gradient edges.
    show_grads: after `backward()`, label and colour every gradient by its norm (GRAD_SCALE, NAN_COLOR).
    collapse_modules: one node per module call (Conv2d, Linear, ...) instead of its primitive ops.
    """
    if not isinstance(output, Tensor):
        raise TypeError(f"draw_graph: output must be a Tensor, got {type(output).__name__}")
    trace = _Trace(output, params, names, collapse_modules)
    drawing = _Drawing()
    (_draw_backward if backward else _draw_forward)(trace, drawing, show_shapes, show_grads)
    graph_label = ""
    if show_grads and all(n is None for n in trace.received_norms()):
        graph_label = ("gradient norms unavailable: no recorded backward() has run on this graph; run the "
                       "forward and backward inside `with tinygrad_cnn.viz.record():` before drawing with "
                       "show_grads=True")
    return drawing.digraph("backward" if backward else "forward", graph_label, legend=show_grads)


def _draw_forward(trace: _Trace, drawing: _Drawing, show_shapes: bool, show_grads: bool) -> None:
    group_of = trace.group_of

    def tensor_node(node: str, name: str, shape: tuple[int, ...], dtype: Any, norm: float | None, fill: str) -> None:
        grad = f"|grad| = {_fmt_norm(norm)}" if show_grads and norm is not None else ""
        style = _grad_attrs(norm, node=True) if show_grads else _attrs(fillcolor=fill)
        drawing.node(node, _label(name, _shape_text(shape, dtype) if show_shapes else "", grad),
                     ' shape="box"' + style)

    for i, t in enumerate(trace.leaves):
        name = ("output: " if t is trace.output else "") + trace.leaf_labels[i]
        tensor_node(f"leaf{i}", name, t.shape, t.dtype, trace.leaf_norms[i],
                    _PARAM_FILL if t.requires_grad else _CONST_FILL)
    for k, t in enumerate(trace.ops):
        ctx = t._ctx
        if group_of[k] is None:
            op_node = f"op{k}"
            drawing.node(op_node, _label(ctx.name, trace.module_line(k), *_op_attr_lines(ctx)),
                         _OP_STYLE + _site_tooltip(ctx))
        else:
            op_node = f"mod{group_of[k]}"
        for a in ctx.inputs:
            if isinstance(a, Tensor):
                src = trace.tensor_node(a, group_of[k])
                if src is not None:
                    drawing.edge(src, op_node, id(a))
        if trace.drawn_output[k]:
            name = trace.tensor_names.get(id(t)) or ("output" if t is trace.output else "")
            tensor_node(f"t{k}", name, t.shape, t.dtype, grad_norm_of(ctx),
                        _OUTPUT_FILL if t is trace.output else "white")
            drawing.edge(op_node, f"t{k}")
    for g, ks in enumerate(trace.group_members()):
        drawing.node(f"mod{g}", _label(trace.group_labels[g], trace.op_names(ks)), _MODULE_STYLE)


def _draw_backward(trace: _Trace, drawing: _Drawing, show_shapes: bool, show_grads: bool) -> None:
    n, group_of, out = len(trace.ops), trace.group_of, trace.output

    def vjp_node(k: int) -> str:
        return f"vjp{k}" if group_of[k] is None else f"mod{group_of[k]}"

    def node_style(norm: float | None, fill: str) -> str:
        return _grad_attrs(norm, node=True) if show_grads else _attrs(fillcolor=fill)

    def grad_line(norm: float | None) -> str:
        return f"|grad| = {_fmt_norm(norm)}" if show_grads and norm is not None else ""

    def grad_edge(src: str, dst: str, tensor: Tensor, shape: tuple[int, ...], norm: float | None) -> None:
        """The gradient of `tensor` (shaped like it) flowing from the VJP `src` on to `dst`."""
        label = [_shape_text(shape) if show_shapes else ""]
        if show_grads:
            label.append(f"|g| = {_fmt_norm(norm)}" if norm is not None else "no grad")
        drawing.edge(src, dst, id(tensor), _label(*label), _grad_attrs(norm, node=False) if show_grads else "")

    drawn_grads: set[int] = set()

    def grad_node(i: int) -> str:
        if i not in drawn_grads:
            drawn_grads.add(i)
            leaf, norm = trace.leaves[i], trace.leaf_norms[i]
            drawing.node(f"grad{i}", _label(f"{trace.leaf_labels[i]}.grad",
                                            _shape_text(leaf.shape) if show_shapes else "", grad_line(norm)),
                         ' shape="box"' + node_style(norm, _PARAM_FILL))
        return f"grad{i}"

    root_norm = grad_norm_of(out._ctx) if n else trace.leaf_norms[trace.leaf_index[id(out)]]
    drawing.node("seed", _label(f"seed: gradient of {trace.tensor_names.get(id(out), 'output')}",
                                _shape_text(out.shape) if show_shapes else "", grad_line(root_norm)),
                 ' shape="box" style="rounded,filled"' + node_style(root_norm, _OUTPUT_FILL))
    if n:
        grad_edge("seed", vjp_node(n - 1), out, out.shape, root_norm)
    elif out.requires_grad:
        grad_edge("seed", grad_node(trace.leaf_index[id(out)]), out, out.shape, root_norm)
    for k in reversed(range(n)):
        ctx = trace.ops[k]._ctx
        if group_of[k] is None:
            drawing.node(f"vjp{k}", _label(f"{n - k}. {ctx.name} VJP", trace.module_line(k)),
                         ' shape="ellipse"' + node_style(grad_norm_of(ctx), _OP_FILL) + _site_tooltip(ctx))
        for a, needed in zip(ctx.inputs, ctx.needs_input_grad):
            if needed:
                j = trace.op_index.get(id(a))
                if j is None:
                    i = trace.leaf_index[id(a)]
                    grad_edge(vjp_node(k), grad_node(i), a, a.shape, trace.leaf_norms[i])
                elif group_of[j] is None or group_of[j] != group_of[k]:
                    grad_edge(vjp_node(k), vjp_node(j), a, trace.ops[j].shape, grad_norm_of(trace.ops[j]._ctx))
    for g, ks in enumerate(trace.group_members()):
        numbers = sorted(n - k for k in ks)  # the VJP numbers the group's node stands for
        if len(numbers) == 1:
            span = f"VJP {numbers[0]}"
        elif numbers[-1] - numbers[0] + 1 == len(numbers):
            span = f"VJPs {numbers[0]}-{numbers[-1]}"
        else:
            span = "VJPs " + ", ".join(map(str, numbers))
        drawing.node(f"mod{g}", _label(f"{trace.group_labels[g]} backward", span, trace.op_names(ks)),
                     ' shape="box3d"' + node_style(trace.group_norm(ks), _OP_FILL))


# ---- rendering -------------------------------------------------------------------------------------------
def _write(path: Path, data: bytes) -> None:
    """Replace `path` atomically: a drawing the user already has is never left half-written."""
    write_atomically(str(path), lambda file: file.write(data))


def render(graph: graphviz.Digraph, path: str | Path) -> Path:
    """Write `graph` to `path` in the format its suffix names (.svg, .png, .pdf or .dot); returns the path written.

    Without Graphviz's `dot` program the DOT source is written next to it (same name, .dot suffix) instead,
    with a one-line hint on stderr on how to install Graphviz.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_FORMATS:
        raise ValueError(f"render: unsupported file suffix {suffix or '(none)'!r} in {str(path)!r}; "
                         f"supported: {', '.join(SUPPORTED_FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".dot":
        _write(path, graph.source.encode())
        return path
    if shutil.which("dot") is not None:
        try:
            _write(path, graph.pipe(format=suffix[1:]))
            return path
        except _graphviz().ExecutableNotFound:
            pass
    fallback = path.with_suffix(".dot")
    _write(fallback, graph.source.encode())
    print(f"render: Graphviz's `dot` program was not found, so {path} was not drawn; wrote the DOT source to "
          f"{fallback} instead: {INSTALL_HINT}, then run `dot -T{suffix[1:]} {fallback} -o {path}`", file=sys.stderr)
    return fallback
