"""Tests for tinygrad_cnn.nn: layers (gradients, PyTorch parity, default init, argument checks) and the
Module API (traversal, modes, state_dict, repr, user-defined modules)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from helpers import Inputs, graph_contexts

from tinygrad_cnn import Config, Tensor, gradcheck, gradgradcheck, nn, ops, rng
from tinygrad_cnn import functional as F
from tinygrad_cnn.tools.record import module_of, record


@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


def build(lib: Any, spec: tuple) -> Any:
    """The same layer from either library: `lib` is `tinygrad_cnn.nn` or `torch.nn`; a Sequential's
    args are the specs of its elements."""
    name, args, kwargs = spec
    if name == "Sequential":
        return lib.Sequential(*(build(lib, s) for s in args))
    return getattr(lib, name)(*args, **kwargs)


# id -> (layer spec, input shape, input kind). input kinds are `helpers.Inputs` methods: "distinct" keeps
# max-pool windows tie-free and "away_from_zero" keeps ReLU's kink out of finite-difference reach.
LAYERS = {
    "conv": (("Conv2d", (3, 4, 3), {}), (2, 3, 6, 6), "randn"),
    "conv-stride-pad-dilation-groups": (("Conv2d", (4, 6, (3, 2)), dict(stride=(2, 1), padding=(1, 2),
                                                                         dilation=(2, 1), groups=2)),
                                        (2, 4, 7, 6), "randn"),
    "conv-no-bias": (("Conv2d", (2, 3, 3), dict(padding=1, bias=False)), (1, 2, 5, 5), "randn"),
    "conv-depthwise": (("Conv2d", (4, 4, 3), dict(stride=2, groups=4)), (2, 4, 5, 5), "randn"),
    "linear": (("Linear", (5, 3), {}), (4, 5), "randn"),
    "linear-no-bias-batched": (("Linear", (5, 3), dict(bias=False)), (2, 3, 5), "randn"),
    "maxpool": (("MaxPool2d", (2,), {}), (2, 3, 4, 4), "distinct"),
    "maxpool-overlap-pad": (("MaxPool2d", (3,), dict(stride=2, padding=1)), (1, 2, 5, 5), "distinct"),
    "avgpool": (("AvgPool2d", (2,), {}), (2, 3, 4, 4), "randn"),
    "avgpool-pad-exclude": (("AvgPool2d", (3,), dict(stride=2, padding=1, count_include_pad=False)),
                            (1, 2, 5, 5), "randn"),
    "relu": (("ReLU", (), {}), (3, 4), "away_from_zero"),
    "flatten": (("Flatten", (), {}), (2, 3, 2, 2), "randn"),
    "flatten-start2": (("Flatten", (), dict(start_dim=2)), (2, 3, 2, 2), "randn"),
    "logsoftmax": (("LogSoftmax", (), dict(dim=1)), (3, 5), "randn"),
    "logsoftmax-dim0": (("LogSoftmax", (), dict(dim=0)), (3, 5), "randn"),
    "dropout-eval": (("Dropout", (0.5,), {}), (3, 4), "randn"),
    "sequential": (("Sequential", (("Conv2d", (2, 3, 3), dict(padding=1)), ("ReLU", (), {}),
                                   ("MaxPool2d", (2,), {}), ("Flatten", (), {}), ("Linear", (12, 4), {}),
                                   ("LogSoftmax", (), dict(dim=1))), {}),
                   (2, 2, 4, 4), "randn"),
}


def float64_case(case_id: str) -> tuple[nn.Module, Tensor]:
    """The layer in float64 and eval mode (only Dropout cares; its train mode is tested separately)."""
    spec, shape, kind = LAYERS[case_id]
    rng.manual_seed(0)
    module = build(nn, spec).double().eval()
    return module, Tensor(getattr(Inputs(0), kind)(*shape), requires_grad=True)


@pytest.mark.parametrize("case_id", LAYERS)
def test_layer_gradcheck_wrt_input_and_parameters(case_id: str) -> None:
    module, x = float64_case(case_id)
    assert gradcheck(lambda x, *params: module(x), [x, *module.parameters()])


@pytest.mark.parametrize("case_id", LAYERS)
def test_layer_gradgradcheck_wrt_input_and_parameters(case_id: str) -> None:
    module, x = float64_case(case_id)
    assert gradgradcheck(lambda x, *params: module(x), [x, *module.parameters()])


@pytest.mark.parametrize("case_id", LAYERS)
def test_layer_matches_torch(case_id: str, torch: Any) -> None:
    module, x = float64_case(case_id)
    theirs = build(torch.nn, LAYERS[case_id][0]).double().eval()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in module.state_dict().items()})
    tx = torch.from_numpy(x.data.copy()).requires_grad_()
    out, tout = module(x), theirs(tx)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    weight = Inputs(1).randn(*out.shape)
    out.backward(weight)
    tout.backward(torch.from_numpy(weight))
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(dict(module.named_parameters())[name].grad.data, p.grad.numpy(),
                                   rtol=1e-10, atol=1e-12, err_msg=name)


def test_dropout_train_gradcheck_with_a_fixed_mask() -> None:
    dropout = nn.Dropout(0.4)
    x = Tensor(Inputs(0).randn(4, 5), requires_grad=True)

    def reseeded(x: Tensor) -> Tensor:
        rng.manual_seed(3)  # the same mask on every finite-difference evaluation
        return dropout(x)

    assert gradcheck(reseeded, [x])
    assert gradgradcheck(reseeded, [x])


# ---- Dropout behaviour --------------------------------------------------------------------------------

def test_dropout_modes() -> None:
    p = 0.3
    dropout = nn.Dropout(p)
    x = Tensor(np.ones((200, 500), dtype=np.float32), requires_grad=True)
    y = dropout(x)
    assert y.dtype == np.float32
    zeros = y.data == 0
    assert abs(zeros.mean() - p) < 0.01  # 100k Bernoulli(0.3) draws: standard error 0.0015
    np.testing.assert_allclose(y.data[~zeros], np.float32(1 / (1 - p)), rtol=1e-7)
    y.backward(np.ones(y.shape, dtype=np.float32))
    np.testing.assert_array_equal(x.grad.data, y.data)  # d(x * mask)/dx = mask, and x = 1
    assert not np.array_equal(dropout(x).data, y.data), "each call must draw a new mask"

    assert dropout.eval() is dropout
    assert dropout(x) is x
    assert nn.Dropout(0.0)(x) is x
    x64 = Tensor(np.ones((3, 4)))
    assert nn.Dropout(0.5)(x64).dtype == np.float64


def test_dropout_mask_reproducible_with_manual_seed() -> None:
    x = Tensor(np.ones((10, 10), dtype=np.float32))
    rng.manual_seed(11)
    first = nn.Dropout(0.5)(x).data
    rng.manual_seed(11)
    np.testing.assert_array_equal(nn.Dropout(0.5)(x).data, first)


# ---- default initialisation ------------------------------------------------------------------------

def uniform_ks_statistic(values: np.ndarray, bound: float) -> float:
    """Kolmogorov-Smirnov distance between the empirical distribution of `values` and U(-bound, bound)."""
    u = np.sort((values.ravel().astype(np.float64) + bound) / (2 * bound))
    n = u.size
    return float(max((np.arange(1, n + 1) / n - u).max(), (u - np.arange(n) / n).max()))


@pytest.mark.parametrize("make, fan_in", [
    (lambda lib: lib.Linear(1000, 500), 1000),
    (lambda lib: lib.Conv2d(64, 128, (3, 5), groups=4), 64 // 4 * 3 * 5),
], ids=["linear", "conv-groups"])
def test_default_init_matches_torch_distribution(make: Callable[[Any], Any], fan_in: int, torch: Any) -> None:
    rng.manual_seed(0)
    layer = make(nn)
    torch.manual_seed(0)
    theirs = make(torch.nn)
    bound = 1 / np.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)): gain sqrt(1/3), so bound = sqrt(3) * gain / sqrt(fan_in)
    for name in ("weight", "bias"):
        w = getattr(layer, name)
        tw = getattr(theirs, name).detach().numpy()
        assert isinstance(w, nn.Parameter) and w.requires_grad and w.dtype == np.float32
        assert w.shape == tuple(tw.shape)
        assert np.abs(w.data).max() <= bound and np.abs(tw).max() <= bound
        assert np.abs(w.data).max() > 0.95 * bound  # the full range is used: fan_in is not overestimated
    w = layer.weight.data.astype(np.float64)
    n = w.size
    std = bound / np.sqrt(3)
    assert abs(w.std() / std - 1) < 0.02
    assert abs(w.mean()) < 6 * std / np.sqrt(n)
    assert abs(w.std() / theirs.weight.detach().double().std().item() - 1) < 0.02
    assert uniform_ks_statistic(w, bound) < 1.95 / np.sqrt(n)  # the 0.1% critical value


@pytest.mark.parametrize("make", [lambda: nn.Linear(7, 5), lambda: nn.Conv2d(6, 4, 3, groups=2)],
                         ids=["linear", "conv"])
def test_manual_seed_makes_construction_reproducible(make: Callable[[], nn.Module]) -> None:
    rng.manual_seed(42)
    first = make().state_dict()
    rng.manual_seed(42)
    again = make().state_dict()
    rng.manual_seed(43)
    other = make().state_dict()
    assert list(first) == list(again) == list(other) == ["weight", "bias"]
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
        assert (first[name] != other[name]).all()


# ---- layer construction errors -----------------------------------------------------------------------

@pytest.mark.parametrize("make, expected", [
    (lambda: nn.Conv2d(0, 6, 5), ("Conv2d", "in_channels", "0")),
    (lambda: nn.Conv2d(1, -3, 5), ("Conv2d", "out_channels", "-3")),
    (lambda: nn.Conv2d(1, 6, 0), ("Conv2d", "kernel_size", "0")),
    (lambda: nn.Conv2d(1, 6, (5, -1)), ("Conv2d", "kernel_size", "-1")),
    (lambda: nn.Conv2d(1, 6, 5, stride=0), ("Conv2d", "stride", "0")),
    (lambda: nn.Conv2d(1, 6, 5, dilation=(1, 0)), ("Conv2d", "dilation", "0")),
    (lambda: nn.Conv2d(1, 6, 5, groups=0), ("Conv2d", "groups", "0")),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ("Conv2d", "groups=4", "6")),
    (lambda: nn.Conv2d(3, 6, 3, groups=2), ("Conv2d", "groups=2", "3")),
    (lambda: nn.Conv2d(1, 6, 5, padding=-1), ("Conv2d", "padding", "-1")),
    (lambda: nn.Conv2d(1, 6, 5, padding=(0, -2)), ("Conv2d", "padding", "-2")),
    (lambda: nn.Linear(0, 3), ("Linear", "in_features", "0")),
    (lambda: nn.Linear(3, -1), ("Linear", "out_features", "-1")),
    (lambda: nn.MaxPool2d(0), ("MaxPool2d", "kernel_size", "0")),
    (lambda: nn.AvgPool2d(2, stride=0), ("AvgPool2d", "stride", "0")),
    (lambda: nn.MaxPool2d(2, padding=-1), ("MaxPool2d", "padding", "-1")),
    (lambda: nn.AvgPool2d(3, padding=(1, -1)), ("AvgPool2d", "padding", "-1")),
    (lambda: nn.Dropout(-0.1), ("Dropout", "p", "-0.1")),
    (lambda: nn.Dropout(1.5), ("Dropout", "p", "1.5")),
], ids=lambda v: "-".join(v) if isinstance(v, tuple) else "")
def test_layer_construction_errors(make: Callable[[], Any], expected: tuple[str, ...]) -> None:
    with pytest.raises(ValueError) as info:
        make()
    for fragment in expected:
        assert fragment in str(info.value)


@pytest.mark.parametrize("make", [lambda: nn.Conv2d(1, 2, 2.5), lambda: nn.Conv2d(1, 2, (5,)),
                                  lambda: nn.Conv2d(1, 2, (3, 3, 3)), lambda: nn.MaxPool2d((2, 2, 2))],
                         ids=["conv-float", "conv-1-tuple", "conv-3-tuple", "maxpool-3-tuple"])
def test_sizes_must_be_an_int_or_a_pair_of_ints(make: Callable[[], Any]) -> None:
    with pytest.raises((ValueError, TypeError), match=r"(Conv2d|MaxPool2d).*kernel_size"):
        make()


def test_sequential_rejects_non_modules() -> None:
    with pytest.raises(TypeError, match=r"Sequential.*'1'.*function"):
        nn.Sequential(nn.ReLU(), lambda x: x)


# ---- Module API ----------------------------------------------------------------------------------------

def make_net(lib: Any, parameter: Callable[[np.ndarray], Any]) -> Any:
    """A PyTorch-style user-defined module, written once for both libraries."""

    class Net(lib.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = parameter(np.full((1,), 2.0, dtype=np.float32))
            self.conv = lib.Conv2d(1, 2, 3)
            self.head = lib.Sequential(lib.Flatten(), lib.Linear(8, 3), lib.Dropout(0.5), lib.ReLU())

        def forward(self, x: Any) -> Any:
            return self.head(self.conv(x) * self.scale).sum(1)

    return Net()


def our_net() -> nn.Module:
    return make_net(nn, nn.Parameter)


def torch_net(torch: Any) -> Any:
    return make_net(torch.nn, lambda a: torch.nn.Parameter(torch.from_numpy(a)))


def test_user_module_traversal_matches_torch(torch: Any) -> None:
    ours, theirs = our_net(), torch_net(torch)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [
        (n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    assert [n for n, _ in ours.named_parameters()] == ["scale", "conv.weight", "conv.bias", "head.1.weight",
                                                       "head.1.bias"]
    assert [id(p) for p in ours.parameters()] == [id(p) for _, p in ours.named_parameters()]
    assert [(n, type(m).__name__) for n, m in ours.named_modules()] == [
        (n, type(m).__name__) for n, m in theirs.named_modules()]
    assert list(ours.children()) == [ours.conv, ours.head]
    assert list(ours.modules()) == [ours, ours.conv, ours.head, *ours.head.children()]
    assert len(ours.head) == 4
    assert ours.head[1] is list(ours.head.children())[1] and ours.head[-1] is list(ours.head.children())[-1]


def test_user_module_forward_and_gradients_match_torch(torch: Any) -> None:
    ours, theirs = our_net().double().eval(), torch_net(torch).double().eval()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = Inputs(0).randn(2, 1, 4, 4)
    out, tout = ours(Tensor(x)), theirs(torch.from_numpy(x))
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-12)
    out.sum().backward()
    tout.sum().backward()
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(dict(ours.named_parameters())[name].grad.data, p.grad.numpy(), rtol=1e-12,
                                   atol=1e-14, err_msg=name)


def test_shared_submodule_parameters_listed_once() -> None:
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]


def test_ops_record_the_innermost_module() -> None:
    net = our_net().eval()
    with record():
        out = net(Tensor(Inputs(0).randn(2, 1, 4, 4).astype(np.float32), requires_grad=True))
    assert Config.observers == ()

    nodes = graph_contexts(out)
    owner = {id(p): m for m in net.modules() for p in vars(m).values() if isinstance(p, nn.Parameter)}
    by_module: dict[int, set] = {}
    for ctx in nodes:
        by_module.setdefault(id(module_of(ctx)), set()).add(ctx.fn)
        for i in ctx.inputs:
            if isinstance(i, nn.Parameter):  # whoever consumes a parameter is the module owning it
                assert module_of(ctx) is owner[id(i)], (ctx.name, type(module_of(ctx)).__name__)

    flatten, linear, dropout, relu = net.head.children()
    assert module_of(out._ctx) is net and ops.Sum in by_module[id(net)] and ops.Mul in by_module[id(net)]
    assert ops.Conv2d in by_module[id(net.conv)]
    assert ops.MatMul in by_module[id(linear)]
    assert by_module[id(relu)] == {ops.Relu}
    assert by_module[id(flatten)] == {ops.Reshape}
    assert set(by_module) == {id(net), id(net.conv), id(flatten), id(linear), id(relu)}  # not head, not None


def test_current_module_restored_when_forward_raises() -> None:
    with record() as recorder, pytest.raises(ValueError, match="linear"):
        nn.Sequential(nn.Linear(3, 2))(Tensor(np.ones((1, 4), dtype=np.float32)))
    assert recorder._stack == []


def test_train_eval_recursive() -> None:
    net = our_net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    x = Tensor(Inputs(0).randn(3, 1, 4, 4).astype(np.float32))
    flatten, linear, _, relu = net.head.children()
    expected = relu(linear(flatten(net.conv(x) * net.scale))).sum(1)  # the net without its Dropout
    np.testing.assert_array_equal(net(x).data, expected.data)
    assert net.train() is net
    assert all(m.training for m in net.modules())
    net.head.train(False)
    assert net.training and net.conv.training and not any(m.training for m in net.head.modules())


def test_zero_grad() -> None:
    net = our_net().eval()
    x = Tensor(Inputs(0).randn(2, 1, 4, 4).astype(np.float32))
    net(x).sum().backward()
    first = {n: p.grad.data.copy() for n, p in net.named_parameters()}
    net(x).sum().backward()
    for n, p in net.named_parameters():
        np.testing.assert_allclose(p.grad.data, 2 * first[n], rtol=1e-6)  # accumulates until zeroed
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_double_and_float_convert_parameters_in_place() -> None:
    net = our_net()
    params = list(net.parameters())
    assert net.double() is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(p.dtype == np.float64 for p in params)
    assert net(Tensor(Inputs(0).randn(1, 1, 4, 4))).dtype == np.float64
    net.float()
    assert all(p.dtype == np.float32 for p in params)


def test_state_dict_is_a_snapshot() -> None:
    net = our_net()
    state = net.state_dict()
    assert list(state) == [n for n, _ in net.named_parameters()]
    before = {k: v.copy() for k, v in state.items()}
    for p in net.parameters():
        p.data += 1
    for k in state:
        np.testing.assert_array_equal(state[k], before[k])
    state["conv.weight"][...] = 0
    assert (net.conv.weight.data != 0).all()


def test_load_state_dict_round_trip_restores_outputs() -> None:
    rng.manual_seed(1)
    source = our_net().eval()
    rng.manual_seed(2)
    target = our_net().eval()
    x = Tensor(Inputs(0).randn(3, 1, 4, 4).astype(np.float32))
    assert not np.array_equal(source(x).data, target(x).data)
    state = source.state_dict()
    result = target.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(target(x).data, source(x).data)
    state["conv.bias"][...] = 7  # loading copies: the model does not alias the checkpoint
    assert (target.conv.bias.data != 7).all()
    assert all(p.dtype == np.float32 for p in target.parameters())


def test_load_state_dict_from_torch_keeps_dtype(torch: Any) -> None:
    theirs = torch_net(torch).double().eval()
    ours = our_net().eval()
    ours.load_state_dict(theirs.state_dict())
    for name, p in theirs.named_parameters():
        mine = dict(ours.named_parameters())[name]
        assert mine.dtype == np.float32
        np.testing.assert_array_equal(mine.data, p.detach().numpy().astype(np.float32))


def broken_state(net: nn.Module) -> dict[str, np.ndarray]:
    """Every key problem at once: one missing, one unexpected, one mis-shaped, the rest valid but different."""
    state = {k: v + 1 for k, v in net.state_dict().items()}
    del state["head.1.bias"]
    state["head.2.weight"] = np.zeros((3, 8), dtype=np.float32)
    state["conv.weight"] = np.zeros((2, 1, 2, 2), dtype=np.float32)
    return state


def test_load_state_dict_strict_reports_every_problem_and_changes_nothing() -> None:
    net = our_net()
    before = net.state_dict()
    with pytest.raises(ValueError) as info:
        net.load_state_dict(broken_state(net))
    message = str(info.value)
    for fragment in ("head.1.bias", "head.2.weight", "conv.weight", "(2, 1, 2, 2)", "(2, 1, 3, 3)"):
        assert fragment in message
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_load_state_dict_non_strict() -> None:
    net = our_net()
    before = net.state_dict()
    with pytest.raises(ValueError, match=r"conv\.weight"):  # a wrong shape is an error even when not strict
        net.load_state_dict(broken_state(net), strict=False)
    state = broken_state(net)
    state["conv.weight"] = before["conv.weight"] + 1
    result = net.load_state_dict(state, strict=False)
    assert result.missing_keys == ["head.1.bias"] and result.unexpected_keys == ["head.2.weight"]
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[name] + (name != "head.1.bias"))


def test_load_state_dict_uncastable_dtype_raises_before_any_change() -> None:
    net = our_net()
    before = net.state_dict()
    state = {k: v + 1 for k, v in before.items()}
    state["head.1.bias"] = state["head.1.bias"] + 1j  # the last key: every other one would load first
    with pytest.raises((TypeError, ValueError), match=r"load_state_dict.*head\.1\.bias"):
        net.load_state_dict(state)
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def assert_repr_like_torch(ours: str, theirs: str) -> None:
    """Same lines and indentation; where PyTorch prints more arguments (MaxPool2d's dilation, Flatten's
    dims), ours must be a prefix of PyTorch's argument list."""
    ours_lines, their_lines = ours.splitlines(), theirs.splitlines()
    assert len(ours_lines) == len(their_lines), (ours, theirs)
    for mine, expected in zip(ours_lines, their_lines):
        if mine != expected:
            assert mine.endswith(")") and expected.startswith(mine[:-1]), (mine, expected)
            assert mine.endswith("()") or expected[len(mine) - 1: len(mine) + 1] == ", ", (mine, expected)


def test_repr_nested_like_torch(torch: Any) -> None:
    assert_repr_like_torch(repr(our_net()), repr(torch_net(torch)))
    spec = ("Sequential", (("Conv2d", (4, 8, 3), dict(stride=2, padding=(1, 0), dilation=2, groups=4, bias=False)),
                           ("Sequential", (("Linear", (3, 2), dict(bias=False)), ("ReLU", (), {})), {}),
                           ("LogSoftmax", (), dict(dim=1))), {})
    ours = repr(build(nn, spec))
    assert ours == repr(build(torch.nn, spec))
    assert ours == (
        "Sequential(\n"
        "  (0): Conv2d(4, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 0), dilation=(2, 2), groups=4, "
        "bias=False)\n"
        "  (1): Sequential(\n"
        "    (0): Linear(in_features=3, out_features=2, bias=False)\n"
        "    (1): ReLU()\n"
        "  )\n"
        "  (2): LogSoftmax(dim=1)\n"
        ")")


def test_parameter_is_a_tensor_requiring_grad() -> None:
    p = nn.Parameter(np.zeros(3, dtype=np.float32))
    assert isinstance(p, Tensor) and p.requires_grad and p.is_leaf
    assert repr(p).startswith("Parameter containing:\nTensor(")
    y = F.linear(Tensor(np.ones((1, 3), dtype=np.float32)), nn.Parameter(np.ones((2, 3), dtype=np.float32)))
    assert y.requires_grad
