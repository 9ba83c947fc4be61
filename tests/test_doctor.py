"""The gradient doctor: check_graph (every node's VJP in place) and detect_anomaly (NaN/Inf at its source)."""

from __future__ import annotations

import importlib.util
import inspect
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tinygrad_cnn import (
    Config,
    Function,
    GradcheckError,
    Tensor,
    check_graph,
    detect_anomaly,
    manual_seed,
    models,
    nn,
    no_grad,
    ops,
)
from tinygrad_cnn.hooks import Observer, observe
from tinygrad_cnn.tools.doctor import AnomalyError, record_sites
from tinygrad_cnn.tools.record import record, site_of


def lenet_loss(model: nn.Module, batch: int = 4, seed: int = 0) -> Tensor:
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
    return F.cross_entropy(model(x), rng.integers(0, 10, batch))


def lenet(seed: int = 0) -> nn.Sequential:
    manual_seed(seed)
    return models.lenet5()


def source_line(fn: Callable, text: str) -> int:
    """The line number of the (only) line of fn's source containing `text`."""
    lines, start = inspect.getsourcelines(fn)
    (offset,) = [i for i, line in enumerate(lines) if text in line]
    return start + offset


# ---- check_graph on correct graphs ------------------------------------------------------------------------

def test_lenet_float32_passes_after_backward() -> None:
    model = lenet()
    with record():  # the module of each node
        loss = lenet_loss(model)
    loss.backward()  # frees the saved buffers: the check needs only the inputs and attributes, which stay
    report = check_graph(loss)
    assert report.ok, str(report)
    assert report.first_failure is None
    assert [n.op for n in report.nodes] == [t._ctx.name for t in loss._topo()]
    assert {"Conv2d", "MaxPool2d", "Relu", "MatMul", "Log", "Getitem"} <= {n.op for n in report.nodes}
    conv1 = report.nodes[[n.op for n in report.nodes].index("Conv2d")]
    assert conv1.input_shapes == ((4, 1, 28, 28), (6, 1, 5, 5), (6,)) and conv1.module == "Conv2d"
    assert all(n.status == "PASS" for n in report.nodes)


def test_check_graph_leaves_the_graph_and_gradients_untouched() -> None:
    reference = lenet()
    lenet_loss(reference).backward()
    model = lenet()
    loss = lenet_loss(model)
    check_graph(loss)
    assert all(p.grad is None for p in model.parameters())
    loss.backward()
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_array_equal(p.grad.data, q.grad.data)


class DynamicNet(nn.Module):
    """Define-by-run: the data decides how many times the hidden layer is applied and which head runs."""

    def __init__(self) -> None:
        self.embed, self.hidden = nn.Linear(3, 6), nn.Linear(6, 6)
        self.head_a, self.head_b = nn.Linear(6, 4), nn.Linear(6, 4)

    def forward(self, x: Tensor) -> Tensor:
        h = self.embed(x).relu()
        for _ in range(1 + int(np.abs(x.data).sum()) % 3):
            h = h + self.hidden(h).relu()
        if h.data.mean() > 0.5:
            return self.head_a(h).log_softmax()
        return self.head_b(h).relu() ** 3


def test_dynamic_model_passes_on_both_branches() -> None:
    manual_seed(0)
    net = DynamicNet()
    heads = set()
    for scale in (0.1, 3.0):  # small inputs take head_b, large ones head_a (checked below)
        x = Tensor((scale * np.random.default_rng(1).standard_normal((5, 3))).astype(np.float32), requires_grad=True)
        loss = net(x).sum()
        report = check_graph(loss)
        assert report.ok, str(report)
        heads.add("Pow" in [n.op for n in report.nodes])  # only head_b has one
    assert heads == {True, False}, "both branches should have been recorded and checked"


LAYERS = {
    "conv-stride-pad-groups": (nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), "Conv2d"),
    "conv-dilation-no-bias": (nn.Conv2d(4, 3, (3, 2), dilation=2, bias=False), "Conv2d"),
    "linear": (nn.Linear(6, 5), "MatMul"),
    "maxpool-overlapping-padded": (nn.MaxPool2d(3, 2, 1), "MaxPool2d"),
    "maxpool": (nn.MaxPool2d(2), "MaxPool2d"),
    "avgpool-exclude-pad": (nn.AvgPool2d(3, 2, 1, count_include_pad=False), "AvgPool2d"),
    "relu": (nn.ReLU(), "Relu"),
    "flatten": (nn.Flatten(), "Reshape"),
    "log_softmax": (nn.LogSoftmax(dim=1), "Log"),
    "dropout": (nn.Dropout(0.5), "Mul"),
    "adaptive-avgpool": (nn.AdaptiveAvgPool2d((2, 4)), "MatMul"),
    "sequential": (nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2)), "AvgPool2d"),
}


@pytest.mark.parametrize("name", LAYERS)
def test_every_layer_type_passes(name: str) -> None:
    manual_seed(0)
    layer, op = LAYERS[name]
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 4, 7, 6)).astype(np.float32), requires_grad=True)
    y = layer(x)
    loss = (y * Tensor(rng.standard_normal(y.shape).astype(np.float32))).sum()
    report = check_graph(loss)
    assert report.ok, str(report)
    assert op in [n.op for n in report.nodes]


# ---- check_graph finds a wrong VJP ---------------------------------------------------------------------------

class ScaledRelu(Function):
    """scale * relu(x), with a planted bug: the VJP forgets the scale."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        return np.maximum(x, 0) * np.asarray(scale, dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * Tensor._make((x.data > 0).astype(x.dtype))


class FixedScaledRelu(ScaledRelu):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * Tensor._make((x.data > 0) * np.asarray(ctx.attrs["scale"], dtype=x.dtype))


class ScaledReluLayer(nn.Module):
    def __init__(self, fn: type[Function]) -> None:
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn.apply(x, scale=2.0)


def lenet_with(fn: type[Function]) -> nn.Sequential:
    model = lenet()
    model.relu2 = ScaledReluLayer(fn)  # between pool2 and flatten
    return model


def test_finds_the_planted_wrong_vjp_and_its_line() -> None:
    with record_sites():
        loss = lenet_loss(lenet_with(ScaledRelu))
    report = check_graph(loss)
    assert not report.ok
    bad = report.first_failure
    assert bad.op == "ScaledRelu" and bad.module == "ScaledReluLayer" and bad.status == "FAIL"
    line = source_line(ScaledReluLayer.forward, ".apply(")
    assert bad.site.startswith(f"{__file__}:{line}: return self.fn.apply(x, scale=2.0)")
    i = [n.op for n in report.nodes].index("ScaledRelu")  # buried in the middle: pool2 before, flatten after
    assert report.nodes[i - 1].module == "MaxPool2d" and report.nodes[i + 1].module == "Flatten"
    assert [n.op for n in report.nodes if not n.passed] == ["ScaledRelu"]
    # The VJP is half the true one (scale 2 forgotten), so numeric = 2 * analytic: relative error 1/2.
    assert bad.max_rel_err == pytest.approx(0.5, rel=1e-6)
    text = str(report)
    assert text.splitlines()[0].split() == ["#", "op", "module", "input", "shapes", "max", "abs", "err", "max",
                                            "rel", "err", "result", "site"]
    row = next(r for r in text.splitlines() if " ScaledRelu " in r)
    assert "FAIL" in row and f"test_doctor.py:{line}" in row and "4x16x4x4" in row
    assert f"{len(report.nodes)} nodes" in text and "1 failed" in text and "first failure" in text


def test_the_fixed_vjp_passes_in_the_same_place() -> None:
    report = check_graph(lenet_loss(lenet_with(FixedScaledRelu)))
    assert report.ok, str(report)
    assert "FixedScaledRelu" in [n.op for n in report.nodes]


def test_without_recorded_sites_the_report_says_how_to_get_them() -> None:
    report = check_graph(lenet_loss(lenet_with(ScaledRelu)))
    assert report.first_failure.op == "ScaledRelu" and report.first_failure.site is None
    assert "record_sites()" in str(report) and "detect_anomaly()" in str(report)


@pytest.mark.parametrize("primitive", [ops.Exp, ops.MaxPool2d, ops.Conv2d])
def test_finds_a_wrong_builtin_vjp(monkeypatch: pytest.MonkeyPatch, primitive: type[Function]) -> None:
    right = primitive.backward

    def wrong(ctx, grad):  # 1% too large
        found = right(ctx, grad)
        return tuple(g if g is None else g * 1.01 for g in found) if isinstance(found, tuple) else found * 1.01

    monkeypatch.setattr(primitive, "backward", staticmethod(wrong))
    report = check_graph(lenet_loss(lenet()))
    assert report.first_failure.op == primitive.__name__


# ---- kinks: relu at 0, tied maxima -----------------------------------------------------------------------

def relu_loss(x: np.ndarray) -> Tensor:
    w = np.random.default_rng(0).standard_normal(x.shape)
    return (Tensor(x, requires_grad=True).relu() * Tensor(w)).sum()


def test_relu_inputs_at_the_kink_are_held_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.array([[-1.0, 0.0, 2.0], [0.0, 3.0, -2.0]])
    relu = check_graph(relu_loss(x)).nodes[0]
    assert relu.op == "Relu" and relu.status == "PASS" and relu.note == "2 kink elements held fixed"
    monkeypatch.setattr(ops.Relu, "kinks", None)  # finite differences across the kink average the two slopes
    assert check_graph(relu_loss(x)).nodes[0].status == "FAIL"


def test_an_input_entirely_at_kinks_is_skipped() -> None:
    report = check_graph(relu_loss(np.zeros((2, 3))))
    relu = report.nodes[0]
    assert relu.status == "SKIP" and relu.passed and report.ok
    assert "SKIP (kink, skipped: all elements at a kink)" in str(report)


REDUCTIONS = {"max_pool2d": lambda t: F.max_pool2d(t, 2), "max_pool2d-overlapping-padded": lambda t: F.max_pool2d(
    t, 3, 2, 1), "max": lambda t: t.max(axis=3)}


@pytest.mark.parametrize("reduce", REDUCTIONS)
def test_tied_maxima_are_held_fixed(monkeypatch: pytest.MonkeyPatch, reduce: str) -> None:
    x = np.repeat(np.arange(8.0), 4).reshape(1, 2, 4, 4)  # each row holds a 4-way tie

    def loss() -> Tensor:
        t = Tensor(x.copy(), requires_grad=True)
        y = REDUCTIONS[reduce](t)
        return (y * Tensor(np.random.default_rng(0).standard_normal(y.shape))).sum()

    node = check_graph(loss()).nodes[0]
    assert node.status != "FAIL" and "kink" in node.note
    for op in (ops.MaxPool2d, ops.Max):
        monkeypatch.setattr(op, "kinks", None)
    assert check_graph(loss()).nodes[0].status == "FAIL"


# ---- cost -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("directions", [1, 3])
def test_cost_is_a_fixed_number_of_op_evaluations_per_node(op_log: list[str], directions: int) -> None:
    """Per node: one recorded re-run, one VJP, and two evaluations per direction, so the work is
    linear in the number of nodes."""
    totals = []
    for n in (4, 8, 12):
        y = Tensor(np.random.default_rng(0).uniform(1, 2, (3, 5)), requires_grad=True)
        for _ in range(n):
            y = y.relu()  # positive inputs: no kinks
        loss = y.sum()
        op_log.clear()
        report = check_graph(loss, directions=directions)
        assert report.ok and len(report.nodes) == n + 1
        assert op_log.count("Relu") == n * (1 + 2 * directions)
        totals.append(len(op_log))
    assert totals[2] - totals[1] == totals[1] - totals[0] > 0


class WrongShape(Function):
    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, grad):
        return grad.sum(axis=0)  # forgot to keep the shape


def test_a_vjp_that_raises_is_a_failure_with_the_error() -> None:
    x = Tensor(np.ones((3, 2)), requires_grad=True)
    report = check_graph(WrongShape.apply(x).exp().sum())
    assert report.first_failure.op == "WrongShape"
    assert "RuntimeError: backward of WrongShape returned a gradient of shape (2,)" in report.first_failure.note
    assert [n.passed for n in report.nodes] == [False, True, True]
    assert "#0 WrongShape: RuntimeError" in str(report)  # a long note goes below the table


def test_casts_inside_a_float32_graph_are_checked_in_float64() -> None:
    x = Tensor(np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    loss = ((x.double() * 3.0).exp().float() * x).sum()
    report = check_graph(loss)
    assert report.ok, str(report)
    assert [n.op for n in report.nodes].count("Cast") == 2


def test_check_graph_refuses_a_leaf() -> None:
    with pytest.raises(ValueError, match="check_graph: expected a Tensor with a recorded graph"):
        check_graph(Tensor(np.ones(3), requires_grad=True))


# ---- detect_anomaly -------------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_forward_nan_names_the_op_and_the_line() -> None:
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    with pytest.raises(AnomalyError) as caught, detect_anomaly():
        line = inspect.currentframe().f_lineno + 1
        (x - 10).log()
    e = caught.value
    assert (e.op, e.phase, e.input_shapes) == ("Log", "forward", [(3,)])
    assert e.site.startswith(f"{__file__}:{line}: (x - 10).log()")
    assert "Log produced NaN in its forward output" in str(e) and f"test_doctor.py:{line}" in str(e)
    assert "3 of 3 elements" in str(e)
    assert Config.observers == ()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_backward_only_inf_names_pow_and_the_line_of_the_forward() -> None:
    x = Tensor(np.array([0.0, 1.0, 4.0]), requires_grad=True)
    with detect_anomaly():
        line = inspect.currentframe().f_lineno + 1
        y = x ** 0.5
        assert np.isfinite(y.data).all()  # the forward is fine: sqrt(0) = 0
        with pytest.raises(AnomalyError) as caught:
            y.sum().backward()
    e = caught.value
    assert (e.op, e.phase) == ("Pow", "backward")
    assert e.site.startswith(f"{__file__}:{line}: y = x ** 0.5")
    assert "Pow produced Inf in a gradient of shape (3,) returned by its backward" in str(e)
    assert x.grad is None


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_forward_nan_under_no_grad_is_caught_too() -> None:
    x = Tensor(np.array([-1.0, 4.0]))
    with pytest.raises(AnomalyError) as caught, detect_anomaly(), no_grad():
        line = inspect.currentframe().f_lineno + 1
        x.log()
    assert caught.value.op == "Log" and caught.value.site.startswith(f"{__file__}:{line}:")


def test_nan_already_in_the_inputs_is_said_to_come_from_them() -> None:
    x = Tensor(np.array([np.nan, 1.0]), requires_grad=True)
    with pytest.raises(AnomalyError, match="Mul produced NaN.*inputs already held NaN/Inf"), detect_anomaly():
        x * 2.0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_backward_of_a_graph_recorded_outside_says_the_site_is_unknown() -> None:
    x = Tensor(np.array([0.0, 1.0]), requires_grad=True)
    loss = (x ** 0.5).sum()
    with pytest.raises(AnomalyError, match=r"created at unknown \(the forward ran outside detect_anomaly"), \
            detect_anomaly():
        loss.backward()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_the_previous_observers_come_back_even_after_an_error() -> None:
    previous = Observer()
    with observe(previous):
        with pytest.raises(AnomalyError), detect_anomaly():
            Tensor(np.array([-1.0])).log()
        assert Config.observers == (previous,)
        with record_sites():
            assert len(Config.observers) == 2 and Config.observers[0] is previous
        assert Config.observers == (previous,)
    assert Config.observers == ()


def test_no_hook_and_no_sites_outside_the_context() -> None:
    model = lenet()
    with detect_anomaly():
        inside = lenet_loss(model)
    assert all(site_of(t._ctx).startswith(__file__) for t in inside._topo())
    assert Config.observers == ()  # the engine calls no observer at all
    outside = lenet_loss(model)
    outside.backward()
    assert all(site_of(t._ctx) is None for t in outside._topo())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_record_sites_records_without_checking_values() -> None:
    x = Tensor(np.array([-1.0, 4.0]), requires_grad=True)
    with record_sites():
        line = inspect.currentframe().f_lineno + 1
        y = x.log()
    assert np.isnan(y.data[0]) and site_of(y._ctx).startswith(f"{__file__}:{line}: y = x.log()")


# ---- the worked example in docs/gradcheck.md ------------------------------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs" / "gradcheck.md"


def doc_block(name: str) -> str:
    """The fenced block right after the `<!-- tested: name -->` marker in docs/gradcheck.md."""
    found = re.search(rf"<!-- tested: {name} -->\n```\w*\n(.*?)```", DOCS.read_text(), re.S)
    assert found, f"docs/gradcheck.md has no block marked 'tested: {name}'"
    return found[1]


def run_doc_blocks(*names: str) -> dict:
    namespace: dict = {}
    for name in names:
        exec(compile(doc_block(name), f"{DOCS}:{name}", "exec"), namespace)
    return namespace


def test_the_custom_op_example_in_the_docs_is_right() -> None:
    softplus = run_doc_blocks("softplus")["Softplus"]  # the block itself asserts gradcheck and gradgradcheck
    x = np.linspace(-30, 30, 13)
    t = Tensor(x.copy(), requires_grad=True)
    y = softplus.apply(t)
    np.testing.assert_allclose(y.data, np.log1p(np.exp(x)), rtol=1e-14)  # the definition
    y.sum().backward()
    np.testing.assert_allclose(t.grad.data, 1 / (1 + np.exp(-x)), rtol=1e-14)  # its derivative, the sigmoid


def test_the_gradcheck_error_shown_in_the_docs_is_the_real_one() -> None:
    with pytest.raises(GradcheckError) as caught:
        run_doc_blocks("softplus", "broken-softplus")
    assert str(caught.value) == doc_block("broken-softplus-message").strip()


def test_the_demo_script_shows_what_the_docs_say() -> None:
    path = DOCS.parent.parent / "examples" / "check_graph_demo.py"
    spec = importlib.util.spec_from_file_location("check_graph_demo", path)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    assert check_graph(demo.lenet_batch(demo.lenet())).ok
    bad = check_graph(demo.lenet_batch(demo.lenet(planted_bug=True))).first_failure
    line = source_line(demo.ScaledReluLayer.forward, "ScaledRelu.apply(")
    assert bad.op == "ScaledRelu" and bad.site.startswith(f"{path}:{line}:")
    # float32 central differences at eps = 1e-6 are far outside rtol = 1e-3; float64 ones far inside
    assert demo.finite_difference_errors(np.float32, 1e-6) > 1e-2
    assert demo.finite_difference_errors(np.float64, 1e-6) < 1e-8
