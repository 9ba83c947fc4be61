"""Graph drawing: the DOT source is parsed back into nodes and edges and checked against the recorded graph
(walked here, independently of the drawing code) and against LeNet-5's definition."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import graphviz
import numpy as np
import pytest

import tinygrad_cnn
import tinygrad_cnn.functional as F
from tinygrad_cnn import Function, Observer, Tensor, nn, observe
from tinygrad_cnn.cli import main
from tinygrad_cnn.data import resolve_data_dir
from tinygrad_cnn.models import lenet5
from tinygrad_cnn.ops import PRIMITIVES
from tinygrad_cnn.rng import manual_seed
from tinygrad_cnn.tools import record as recorded_sites
from tinygrad_cnn.tools.record import module_of
from tinygrad_cnn.viz import draw_graph, record, render
from tinygrad_cnn.viz import graph as viz

PRIMITIVE_NAMES = {p.__name__ for p in PRIMITIVES}
# named_parameters() order of lenet5(): its layers in definition order, weight before bias
LENET_PARAMS = ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias",
                "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]
# The primitives one LeNet-5 step records, from the definitions: F.conv2d = Conv2d + bias.reshape + Add;
# F.linear = weight.T (Permute) + MatMul + Add; Flatten = Reshape; cross_entropy = log_softmax
# (x - max: Sub, exp, sum, log, Sub) then nll_loss (Getitem, Neg, mean = Sum, Div).
LENET_OPS = Counter({"Conv2d": 2, "MaxPool2d": 2, "Relu": 4, "MatMul": 3, "Permute": 3, "Reshape": 1,
                     "Add": 3, "Sub": 2, "Exp": 1, "Log": 1, "Sum": 1 + 1, "Getitem": 1, "Neg": 1, "Div": 1})
LENET_MODULES = ["conv1", "pool1", "relu1", "conv2", "pool2", "relu2", "flatten", "fc1", "relu3", "fc2", "relu4",
                 "fc3"]
LOSS_OPS = 5 + 4  # log_softmax and nll_loss run outside any module


# ---- reading the DOT source back ---------------------------------------------------------------------------
_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|<.*>|[^\s\]]+)')
_NODE = re.compile(r"^\s*(\w+) \[(.*)\]$")
_EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?$")


def _attrs(text: str | None) -> dict[str, str]:
    found = {}
    for key, value in _ATTR.findall(text or ""):
        found[key] = value[1:-1].replace('\\"', '"') if value.startswith('"') else value
    return found


@dataclass
class Dot:
    nodes: dict[str, dict[str, str]]
    edges: list[tuple[str, str, dict[str, str]]]
    graph_label: str

    @classmethod
    def parse(cls, source: str) -> Dot:
        nodes, edges, graph_label = {}, [], ""
        for line in source.splitlines():
            if m := _EDGE.match(line):
                edges.append((m[1], m[2], _attrs(m[3])))
            elif m := _NODE.match(line):
                if m[1] == "graph":
                    graph_label = _attrs(m[2]).get("label", "")
                elif m[1] not in ("node", "edge"):
                    nodes[m[1]] = _attrs(m[2])
        for src, dst, _ in edges:
            assert src in nodes and dst in nodes, f"edge {src} -> {dst} between undeclared nodes"
        return cls(nodes, edges, graph_label)

    def lines(self, node: str) -> list[str]:
        return self.nodes[node]["label"].split("\\n")

    def named(self, first_line: str) -> str:
        found = [n for n in self.nodes if n != "legend" and self.lines(n)[0] == first_line]
        assert len(found) == 1, f"expected one node labelled {first_line!r}, found {found}"
        return found[0]

    def op_counts(self) -> Counter[str]:
        return Counter(self.lines(n)[0] for n in self.nodes if n != "legend" and self.lines(n)[0] in PRIMITIVE_NAMES)

    def successors(self, node: str) -> list[str]:
        return [dst for src, dst, _ in self.edges if src == node]

    def reachable(self, start: str) -> set[str]:
        seen, stack = {start}, [start]
        while stack:
            for nxt in self.successors(stack.pop()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen


def recorded_ops(root: Tensor) -> Counter[str]:
    """Op names in the graph under `root`, by a walk of `_ctx.inputs` (each recorded op counted once)."""
    counts: Counter[str] = Counter()
    seen, stack = set(), [root]
    while stack:
        t = stack.pop()
        if t._ctx is None or id(t) in seen:
            continue
        seen.add(id(t))
        counts[t._ctx.name] += 1
        stack.extend(a for a in t._ctx.inputs if isinstance(a, Tensor))
    return counts


def lenet_step(batch: int = 2, backward: bool = True) -> tuple[nn.Module, Tensor, Tensor]:
    manual_seed(0)
    model = lenet5()
    x = Tensor(np.random.default_rng(1).standard_normal((batch, 1, 28, 28)).astype(np.float32))
    with record():  # modules and gradient norms, for the drawing
        loss = F.cross_entropy(model(x), np.arange(batch) % 10)
        if backward:
            loss.backward()
    return model, x, loss


# ---- forward -------------------------------------------------------------------------------------------------
def test_forward_has_one_node_per_recorded_primitive_and_names_every_parameter() -> None:
    model, x, loss = lenet_step(backward=False)
    source = draw_graph(loss, params=model).source
    dot = Dot.parse(source)
    assert recorded_ops(loss) == LENET_OPS
    assert dot.op_counts() == LENET_OPS
    assert [name for name, _ in model.named_parameters()] == LENET_PARAMS
    for name, p in model.named_parameters():
        assert dot.lines(dot.named(name))[1] == f"{p.shape} float32"
    assert not any(str(id(t)) in source for t in [x, loss, *model.parameters()])  # stable ids, not id()


def test_forward_edges_run_from_inputs_through_ops_to_the_output() -> None:
    model, x, loss = lenet_step(batch=2, backward=False)
    dot = Dot.parse(draw_graph(loss, params=model, names={"images": x, "loss": loss}).source)
    w, images, out = dot.named("conv1.weight"), dot.named("images"), dot.named("loss")
    (conv,) = dot.successors(w)
    assert dot.lines(conv)[0] == "Conv2d" and dot.successors(images) == [conv]
    (conv_out,) = dot.successors(conv)
    assert dot.lines(conv_out) == ["(2, 6, 24, 24) float32"]  # 28 - 5 + 1 = 24
    for name in LENET_PARAMS + ["images"]:
        assert out in dot.reachable(dot.named(name))
    assert dot.successors(out) == [] and dot.reachable(out) == {out}


def test_op_nodes_show_their_attributes_but_not_arrays_or_private_ones() -> None:
    x = Tensor(np.ones((1, 2, 6, 6)), requires_grad=True)
    w = Tensor(np.ones((3, 2, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, stride=2, padding=1)
    dot = Dot.parse(draw_graph(y).source)
    (conv,) = [n for n in dot.nodes if dot.lines(n)[0] == "Conv2d"]
    text = " ".join(dot.lines(conv)[1:])
    assert "stride=(2, 2)" in text and "padding=(1, 1)" in text and "groups=1" in text
    # Conv2dWeightGrad's attributes are its geometry alone (no cached arrays).
    (dw,) = tinygrad_cnn.grad(y.sum(), [w], create_graph=True)
    dot = Dot.parse(draw_graph(dw).source)
    (wgrad,) = [n for n in dot.nodes if dot.lines(n)[0] == "Conv2dWeightGrad"]
    assert "kernel_hw=(3, 3)" in dot.nodes[wgrad]["label"] and "stride=(2, 2)" in dot.nodes[wgrad]["label"]


def test_unnamed_leaves_get_generic_labels_in_order_of_first_appearance() -> None:
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.arange(3.0))
    y = ((a * b) + 2.0).sum()
    for params, expected in [({"a": a}, ["a", "const #1", "const #2 = 2"]),  # b and 2.0 are not named
                             (None, ["const #1", "const #2 = 2", "leaf #1"])]:
        dot = Dot.parse(draw_graph(y, params=params).source)
        sources = [n for n in dot.nodes if not any(e[1] == n for e in dot.edges)]
        assert sorted(dot.lines(n)[0] for n in sources) == expected
        # Numbered by first appearance: b (shape (3,)) is consumed by Mul, before Add consumes 2.0.
        assert dot.lines(dot.named("const #1"))[1] == "(3,) float64"


def test_drawing_is_deterministic() -> None:
    sources = []
    for _ in range(2):
        model, _, loss = lenet_step()
        sources.append([draw_graph(loss, params=model, backward=b, show_grads=True).source for b in (False, True)])
    assert sources[0] == sources[1]


def test_show_shapes_false_leaves_out_shapes_and_dtypes() -> None:
    model, _, loss = lenet_step()
    for backward in (False, True):
        source = draw_graph(loss, params=model, backward=backward, show_shapes=False).source
        assert "float32" not in source and "(6, 1, 5, 5)" not in source and "conv1.weight" in source


def test_a_leaf_output_draws() -> None:
    a = Tensor(np.ones((2, 2)), requires_grad=True)
    (a * 3.0).sum().backward()
    forward = Dot.parse(draw_graph(a, params={"a": a}).source)
    assert [forward.lines(n)[0] for n in forward.nodes] == ["output: a"]
    back = Dot.parse(draw_graph(a, params={"a": a}, backward=True).source)
    assert back.reachable(back.named("seed: gradient of a")) >= {back.named("a.grad")}


def test_bad_arguments_raise_clear_errors() -> None:
    model, _, loss = lenet_step(backward=False)
    with pytest.raises(TypeError, match="draw_graph: output must be a Tensor, got ndarray"):
        draw_graph(np.ones(3))
    with pytest.raises(TypeError, match="draw_graph: params must be a Module or a mapping"):
        draw_graph(loss, params=[1, 2])
    with pytest.raises(TypeError, match=r"\['w'\] map to \['int'\]"):
        draw_graph(loss, params={"w": 3})
    with pytest.raises(TypeError, match="draw_graph: names must be a mapping of name -> Tensor, got Sequential"):
        draw_graph(loss, names=model)


# ---- backward ------------------------------------------------------------------------------------------------
def vjp_nodes(dot: Dot) -> dict[int, str]:
    """VJP number -> node, from labels 'k. Name VJP'."""
    found = {}
    for n in dot.nodes:
        if m := re.fullmatch(r"(\d+)\. (\w+) VJP", dot.lines(n)[0]):
            found[int(m[1])] = n
    return found


def test_backward_reaches_every_parameter_gradient_from_the_seed() -> None:
    model, _, loss = lenet_step()
    assert all(t._ctx.saved == () for t in loss._topo())  # drawn from what survives backward()
    dot = Dot.parse(draw_graph(loss, params=model, backward=True).source)
    vjps = vjp_nodes(dot)
    assert sorted(vjps) == list(range(1, sum(LENET_OPS.values()) + 1))
    assert Counter(dot.lines(n)[0].split()[1] for n in vjps.values()) == LENET_OPS
    seed = dot.named("seed: gradient of output")
    reached = dot.reachable(seed)
    for name, p in model.named_parameters():
        grad = dot.named(f"{name}.grad")
        assert grad in reached and dot.successors(grad) == []
        (incoming,) = [e for e in dot.edges if e[1] == grad]
        assert incoming[2]["label"] == str(p.shape)  # the gradient has its parameter's shape
    assert set(vjps.values()) <= reached
    (seed_edge,) = [e for e in dot.edges if e[0] == seed]
    assert seed_edge[1] == vjps[1] and seed_edge[2]["label"] == "()"


def test_only_inputs_that_need_a_gradient_get_gradient_edges() -> None:
    model, x, loss = lenet_step()
    dot = Dot.parse(draw_graph(loss, params=model, names={"images": x}, backward=True).source)
    labels = {dot.lines(n)[0] for n in dot.nodes}
    assert "images.grad" not in labels and not any(label.startswith("const") for label in labels)
    assert sum(1 for label in labels if label.endswith(".grad")) == len(LENET_PARAMS)


def test_vjp_numbers_follow_the_order_reverse_mode_runs_them(monkeypatch: pytest.MonkeyPatch) -> None:
    model, _, loss = lenet_step(backward=False)
    ran: list[object] = []  # contexts in the order their VJPs produce gradients

    class Order(Observer):
        def backward(self, ctx: object, grad: Tensor, input_grads: tuple) -> None:
            ran.append(ctx)

    with observe(Order()):
        loss.backward()
    dot = Dot.parse(draw_graph(loss, params=model, backward=True).source)
    vjps = vjp_nodes(dot)
    module_names = {id(m): name for name, m in model.named_modules()}
    drawn = [dot.lines(vjps[k]) for k in sorted(vjps)]
    expected = [[f"{i + 1}. {ctx.name} VJP"] + ([f"[{module_names[id(module_of(ctx))]}]"] if module_of(ctx) else [])
                for i, ctx in enumerate(ran)]
    assert drawn == expected
    number = {node: k for k, node in vjps.items()}
    for src, dst, _ in dot.edges:  # a gradient flows from a VJP to one that runs later
        if src in number and dst in number:
            assert number[src] < number[dst]


class Poison(Function):
    """Identity forward; its VJP multiplies the gradient by `bad` (NaN or Inf)."""

    @staticmethod
    def forward(ctx, x: np.ndarray, bad: float) -> np.ndarray:
        return x.copy()

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad * ctx.attrs["bad"]


@pytest.mark.parametrize(("bad", "text"), [(float("nan"), "NaN"), (float("inf"), "Inf")])
def test_nan_and_inf_gradients_are_pure_red_and_say_so(bad: float, text: str) -> None:
    x = Tensor(np.full(3, 2.0))
    w1, w2 = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    loss = (Poison.apply(x * w1, bad=bad) * w2).sum()
    with record():
        loss.backward()
    assert not np.isfinite(w1.grad.data).any() and np.isfinite(w2.grad.data).all()
    dot = Dot.parse(draw_graph(loss, params={"w1": w1, "w2": w2}, backward=True, show_grads=True).source)
    bad_grad, good_grad = dot.nodes[dot.named("w1.grad")], dot.nodes[dot.named("w2.grad")]
    assert bad_grad["fillcolor"] == viz.NAN_COLOR == "#ff0000" and f"|grad| = {text}" in bad_grad["label"]
    assert "Bold" in bad_grad["fontname"]
    assert good_grad["fillcolor"] != "#ff0000" and "NaN" not in good_grad["label"]
    # The poisoned VJP (number 3: Sum, Mul, Poison) passes the bad gradient on: that edge is red.
    vjps = vjp_nodes(dot)
    assert dot.lines(vjps[3])[0] == "3. Poison VJP"
    (edge,) = [e for e in dot.edges if e[0] == vjps[3]]
    assert edge[1] == vjps[4] and edge[2]["color"] == "#ff0000" and text in edge[2]["label"]
    assert dot.nodes[vjps[4]]["fillcolor"] == "#ff0000" and dot.nodes[vjps[3]]["fillcolor"] != "#ff0000"
    forward = Dot.parse(draw_graph(loss, params={"w1": w1, "w2": w2}, show_grads=True).source)
    assert forward.nodes[forward.named("w1")]["fillcolor"] == "#ff0000"


def test_gradient_norms_are_shown_and_coloured_on_a_log_scale() -> None:
    a, b = Tensor(np.ones(4), requires_grad=True), Tensor(np.ones(4), requires_grad=True)
    loss = (a * 1e-9).sum() + (b * 1e6).sum()
    with record():
        loss.backward()
    dot = Dot.parse(draw_graph(loss, params={"a": a, "b": b}, backward=True, show_grads=True).source)
    tiny, huge = dot.nodes[dot.named("a.grad")], dot.nodes[dot.named("b.grad")]
    assert f"|grad| = {2e-9:.2e}" in tiny["label"] and f"|grad| = {2e6:.2e}" in huge["label"]  # sqrt(4) * scale
    red, blue = int(tiny["fillcolor"][1:3], 16), int(tiny["fillcolor"][5:7], 16)
    assert blue > red  # vanishing: the blue end
    red, blue = int(huge["fillcolor"][1:3], 16), int(huge["fillcolor"][5:7], 16)
    assert red > blue and huge["fillcolor"] != "#ff0000"  # exploding: the orange end, not the NaN red
    decades = [viz.grad_color(10.0 ** e) for e in range(-8, 5)]
    assert len(set(decades)) == len(decades) and "#ff0000" not in decades
    assert "legend" in dot.nodes and "NaN/Inf" in dot.nodes["legend"]["label"]


def test_lenet_gradient_norms_match_the_parameters_gradients() -> None:
    model, _, loss = lenet_step()
    dot = Dot.parse(draw_graph(loss, params=model, backward=True, show_grads=True).source)
    for name, p in model.named_parameters():
        node = dot.named(f"{name}.grad")
        assert dot.lines(node)[-1] == f"|grad| = {np.linalg.norm(p.grad.data.astype(np.float64)):.2e}"
        (incoming,) = [e for e in dot.edges if e[1] == node]
        assert incoming[2]["color"] == dot.nodes[node]["fillcolor"]
    # The seed edge carries d loss / d loss = 1 for a scalar loss.
    (seed_edge,) = [e for e in dot.edges if e[0] == dot.named("seed: gradient of output")]
    assert seed_edge[2]["label"].split("\\n")[1] == "|g| = 1.00e+00"


def test_show_grads_before_backward_says_so_instead_of_failing() -> None:
    model, _, loss = lenet_step(backward=False)
    for backward in (False, True):
        dot = Dot.parse(draw_graph(loss, params=model, backward=backward, show_grads=True).source)
        assert "no recorded backward() has run" in dot.graph_label and "viz.record()" in dot.graph_label
    with record():
        loss.backward()
    assert "no recorded backward() has run" not in draw_graph(loss, params=model, show_grads=True).source


# ---- collapsed modules ---------------------------------------------------------------------------------------
def test_collapse_draws_one_node_per_module_call() -> None:
    model, _, loss = lenet_step()
    for backward in (False, True):
        full = Dot.parse(draw_graph(loss, params=model, backward=backward).source)
        dot = Dot.parse(draw_graph(loss, params=model, backward=backward, collapse_modules=True).source)
        assert len(dot.nodes) < len(full.nodes)
        suffix = " backward" if backward else ""
        module_classes = {name: type(m).__name__ for name, m in model.named_modules()}
        for name in LENET_MODULES:
            dot.named(f"{name}: {module_classes[name]}{suffix}")
        # Only the loss's ops, recorded outside any module, stay primitive.
        primitive = sum(dot.op_counts().values()) if not backward else len(vjp_nodes(dot))
        assert primitive == LOSS_OPS
        edges = {(src, dst) for src, dst, _ in dot.edges}
        for name in LENET_PARAMS:  # a parameter flows into its module's node; its gradient comes out of it
            layer = name.split(".")[0]
            module_node = dot.named(f"{layer}: {module_classes[layer]}{suffix}")
            if backward:
                assert (module_node, dot.named(f"{name}.grad")) in edges
            else:
                assert (dot.named(name), module_node) in edges


def test_collapse_without_names_and_with_a_module_called_twice() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            self.fc = nn.Linear(3, 3)

        def forward(self, x: Tensor) -> Tensor:
            return self.fc(self.fc(x).relu())

    manual_seed(0)
    net = Twice()
    with record():
        y = net(Tensor(np.ones((2, 3), dtype=np.float32))).sum()
    unnamed = Dot.parse(draw_graph(y, collapse_modules=True).source)
    assert {unnamed.lines(n)[0] for n in unnamed.nodes} >= {"Linear #1", "Linear #1 (call 2)"}
    named = Dot.parse(draw_graph(y, params=net, collapse_modules=True).source)
    first, second = named.named("fc: Linear"), named.named("fc: Linear (call 2)")
    assert second in named.reachable(first) and first not in named.reachable(second)  # no loop back
    assert named.op_counts() == Counter({"Relu": 1, "Sum": 1})  # recorded by Twice itself


# ---- create_graph --------------------------------------------------------------------------------------------
def test_a_graph_recorded_by_create_graph_draws() -> None:
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((1, 1, 6, 6)), requires_grad=True)
    w = Tensor(rng.standard_normal((2, 1, 3, 3)), requires_grad=True)
    loss = (F.max_pool2d(F.conv2d(x, w).relu(), 2) ** 2).sum()
    (g,) = tinygrad_cnn.grad(loss, [x], create_graph=True)
    ops = recorded_ops(g)
    assert ops["Conv2dInputGrad"] == 1  # conv2d's VJP with respect to its input, a recorded op here
    dot = Dot.parse(draw_graph(g, params={"x": x, "w": w}).source)
    assert dot.op_counts() == ops
    assert dot.named("x") and dot.named("w")
    with record():
        g.sum().backward()  # second order: differentiate the drawn gradient graph itself
    back = Dot.parse(draw_graph(g, params={"x": x, "w": w}, backward=True, show_grads=True).source)
    assert len(vjp_nodes(back)) == sum(ops.values()) and "no recorded backward() has run" not in back.graph_label
    assert back.named("w.grad") in back.reachable(back.named("seed: gradient of output"))


# ---- render --------------------------------------------------------------------------------------------------
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")


@needs_dot
def test_render_svg_with_dot_is_valid_xml_naming_every_parameter(tmp_path: Path) -> None:
    model, _, loss = lenet_step()
    for backward in (False, True):
        path = render(draw_graph(loss, params=model, backward=backward, show_grads=True), tmp_path / "g.svg")
        assert path == tmp_path / "g.svg"
        texts = {el.text for el in ET.parse(path).iter() if el.tag.endswith("text")}
        for name in LENET_PARAMS:
            assert (f"{name}.grad" if backward else name) in texts


@needs_dot
@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".dot", b"digraph")])
def test_render_picks_the_format_from_the_suffix(tmp_path: Path, suffix: str, magic: bytes) -> None:
    _, _, loss = lenet_step()
    path = render(draw_graph(loss), tmp_path / f"sub/g{suffix.upper()}")
    assert path.read_bytes().startswith(magic)


def test_render_without_dot_writes_the_source_and_says_how_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, loss = lenet_step()
    graph = draw_graph(loss)
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    path = render(graph, tmp_path / "g.svg")
    assert path == tmp_path / "g.dot" and path.read_text() == graph.source and not (tmp_path / "g.svg").exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apt-get install graphviz" in err and "brew install graphviz" in err


def test_render_when_the_dot_executable_fails_to_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    graph = draw_graph(Tensor(np.ones(2), requires_grad=True).sum())

    def missing(*args: object, **kwargs: object) -> bytes:
        raise graphviz.ExecutableNotFound(["dot"])

    monkeypatch.setattr(viz.shutil, "which", lambda name: "/usr/bin/dot")
    monkeypatch.setattr(graph, "pipe", missing)
    assert render(graph, tmp_path / "g.png") == tmp_path / "g.dot"
    assert "install graphviz" in capsys.readouterr().err


def test_render_rejects_unsupported_suffixes(tmp_path: Path) -> None:
    graph = draw_graph(Tensor(np.ones(2), requires_grad=True).sum())
    with pytest.raises(ValueError, match=r"'\.jpg'.*supported: \.svg, \.png, \.pdf, \.dot"):
        render(graph, tmp_path / "g.jpg")
    with pytest.raises(ValueError, match="'\\(none\\)'"):
        render(graph, tmp_path / "g")
    assert list(tmp_path.iterdir()) == []


# ---- command line --------------------------------------------------------------------------------------------
def test_cli_draws_a_lenet_step_on_random_data_without_mnist(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "g.dot"
    assert main(["graph", "--backward", "--show-grads", "--batch-size", "2", "--data-dir", str(tmp_path / "none"),
                 "-o", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "random" in stdout and str(out) in stdout
    dot = Dot.parse(out.read_text())
    assert all(dot.named(f"{name}.grad") for name in LENET_PARAMS)
    assert len(vjp_nodes(dot)) == sum(LENET_OPS.values()) and "has not run" not in dot.graph_label


def test_cli_uses_mnist_when_it_is_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = resolve_data_dir()
    if not (data / "train-images-idx3-ubyte.gz").exists() and not (data / "train-images-idx3-ubyte").exists():
        pytest.skip(f"MNIST is not in {data} (set TINYGRAD_CNN_DATA)")
    out = tmp_path / "g.dot"
    assert main(["graph", "--collapse", "--batch-size", "3", "-o", str(out)]) == 0
    assert "MNIST" in capsys.readouterr().out
    dot = Dot.parse(out.read_text())
    assert dot.lines(dot.named("images")) == ["images", "(3, 1, 28, 28) float32"]
    assert dot.lines(dot.named("conv1: Conv2d")) == ["conv1: Conv2d", "Conv2d"]


def test_cli_rejects_an_unsupported_output_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["graph", "-o", str(tmp_path / "g.jpg")])
    assert exit_info.value.code == 2 and "unsupported file suffix '.jpg'" in capsys.readouterr().err


@needs_dot
def test_quotes_and_backslashes_in_names_and_sites_survive_dot(tmp_path: Path) -> None:
    a = Tensor(np.ones(2), requires_grad=True)
    y = (a * 2.0).sum()
    recorded_sites._SITES[y._ctx] = 'model.py:3 in "forward"'
    name = 'the "a" \\ tensor'
    path = render(draw_graph(y, params={name: a}), tmp_path / "g.svg")
    root = ET.parse(path).getroot()
    assert name in {el.text for el in root.iter() if el.tag.endswith("text")}
    assert 'model.py:3 in "forward"' in {el.get("{http://www.w3.org/1999/xlink}title") for el in root.iter()}
