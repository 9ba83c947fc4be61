"""Tests for the Module API beyond layers: buffers, registration, traversal, apply, requires_grad_, zero_grad,
to()/dtype conversion, tied weights in state dicts, containers (Sequential, ModuleList, ModuleDict, Identity),
nn.init and nn.utils gradient clipping, each against PyTorch where a number or a name exists."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.nn import init
from tinygrad_cnn.nn.utils import clip_grad_norm_, clip_grad_value_


def _torch() -> Any:
    return pytest.importorskip("torch")


class Stats(nn.Module):
    """A module with a parameter, a persistent and a non-persistent buffer, built the same in either library."""

    def __init__(self, lib: Any, make: Callable[[np.ndarray], Any]) -> None:
        super().__init__()
        self.scale = lib.Parameter(make(np.ones(3, np.float32)))
        self.register_buffer("running", make(np.zeros(3, np.float32)))
        self.register_buffer("count", make(np.zeros((), np.int64)))
        self.register_buffer("scratch", make(np.zeros(2, np.float32)), persistent=False)
        self.register_buffer("empty", None)


def _ours_and_theirs() -> tuple[nn.Module, Any]:
    torch = _torch()

    class TorchStats(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(3))
            self.register_buffer("running", torch.zeros(3))
            self.register_buffer("count", torch.zeros((), dtype=torch.int64))
            self.register_buffer("scratch", torch.zeros(2), persistent=False)
            self.register_buffer("empty", None)

    def build(lib: Any, stats: Callable[[], Any]) -> Any:
        net = lib.Sequential(lib.Linear(3, 3), stats(), lib.ReLU())
        net.add_module("tail", lib.Sequential(lib.Identity(), stats()))
        return net

    ours = build(nn, lambda: Stats(nn, Tensor))
    theirs = build(torch.nn, TorchStats)
    return ours, theirs


def test_buffers_and_names_match_torch() -> None:
    ours, theirs = _ours_and_theirs()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    kinds = [type(m).__name__ for m in ours.modules()]
    assert kinds == [type(m).__name__.replace("Torch", "") for m in theirs.modules()]
    assert [n for n, _ in ours[1].named_parameters(prefix="x", recurse=False)] == ["x.scale"]


def test_a_torch_state_dict_with_buffers_loads_strictly_and_back() -> None:
    ours, theirs = _ours_and_theirs()
    with_values = {k: np.asarray(v.detach().numpy() + (2 if v.dtype.is_floating_point else 5))
                   for k, v in theirs.state_dict().items()}
    theirs.load_state_dict({k: _torch().from_numpy(v) for k, v in with_values.items()})
    result = ours.load_state_dict(theirs.state_dict())
    assert result == ([], [])
    for name, value in ours.state_dict().items():
        np.testing.assert_array_equal(value, with_values[name])
    assert ours[1].count.dtype == np.int64 and ours[1].count.item() == 5
    assert not np.any(ours[1].scratch.data)  # not persistent: not loaded


def test_buffers_move_with_dtype_conversion_but_integer_buffers_stay() -> None:
    ours, theirs = _ours_and_theirs()
    assert ours.double() is ours
    theirs.double()
    for (name, b), (_, tb) in zip(ours.named_buffers(), theirs.named_buffers()):
        assert str(b.dtype) == str(tb.dtype).replace("torch.", ""), name
    assert ours.to(tg.float32) is ours and ours[1].running.dtype == np.float32
    assert ours[1].count.dtype == np.int64
    assert ours.type(np.float64)[1].count.dtype == np.float64  # type() converts everything, as torch


def test_register_buffer_errors_as_torch() -> None:
    m = nn.Module()
    m.w = nn.Parameter(np.zeros(2, np.float32))
    with pytest.raises(KeyError, match="cannot contain a dot"):
        m.register_buffer("a.b", Tensor(np.zeros(1)))
    with pytest.raises(KeyError, match="cannot be the empty string"):
        m.register_buffer("", Tensor(np.zeros(1)))
    with pytest.raises(KeyError, match="attribute 'w' already exists"):
        m.register_buffer("w", Tensor(np.zeros(1)))
    with pytest.raises(TypeError, match="cannot assign a ndarray to buffer 'b'"):
        m.register_buffer("b", np.zeros(1))
    with pytest.raises(TypeError, match="name should be a string, got int"):
        m.register_buffer(3, Tensor(np.zeros(1)))  # type: ignore[arg-type]
    m.register_buffer("b", Tensor(np.zeros(1)))
    with pytest.raises(TypeError, match="cannot assign a list to buffer 'b'"):
        m.b = [1.0]
    m.b = Tensor(np.ones(1))  # a new Tensor replaces the buffer, still registered
    assert [n for n, _ in m.named_buffers()] == ["b"]
    with pytest.raises(TypeError, match="cannot assign a Tensor to parameter 'w'"):
        m.w = Tensor(np.zeros(2))
    with pytest.raises(TypeError, match="cannot assign a Tensor to parameter 'v'"):
        m.register_parameter("v", Tensor(np.zeros(2)))
    m.register_parameter("v", None)
    assert [n for n, _ in m.named_parameters()] == ["w"]
    del m.b
    assert list(m.named_buffers()) == []


def test_tied_weights_keep_every_name_in_the_state_dict_as_torch() -> None:
    torch = _torch()

    def tied(lib: Any) -> Any:
        net = lib.Sequential(lib.Linear(4, 4), lib.ReLU(), lib.Linear(4, 4))
        net[2].weight = net[0].weight
        return net

    ours, theirs = tied(nn), tied(torch.nn)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_parameters(remove_duplicate=False)] == \
        [n for n, _ in theirs.named_parameters(remove_duplicate=False)]
    assert ours.load_state_dict(theirs.state_dict()) == ([], [])
    np.testing.assert_array_equal(ours[0].weight.data, theirs[0].weight.detach().numpy())
    assert ours[2].weight is ours[0].weight
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})


def test_shared_modules_listed_once_unless_asked_as_torch() -> None:
    torch = _torch()

    def shared(lib: Any) -> Any:
        block = lib.Linear(2, 2)
        return lib.Sequential(block, lib.ReLU(), block)

    ours, theirs = shared(nn), shared(torch.nn)
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_modules(remove_duplicate=False)] == \
        [n for n, _ in theirs.named_modules(remove_duplicate=False)]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_apply_visits_children_first_and_returns_self() -> None:
    torch = _torch()
    order: dict[str, list[str]] = {"ours": [], "theirs": []}
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.Identity()))
    tnet = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Identity()))
    assert net.apply(lambda m: order["ours"].append(type(m).__name__)) is net
    tnet.apply(lambda m: order["theirs"].append(type(m).__name__))
    assert order["ours"] == order["theirs"]


def test_apply_with_init_reinitialises_as_a_torch_script_does() -> None:
    tg.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))

    def init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            init.xavier_uniform_(m.weight)
            init.zeros_(m.bias)

    net.apply(init_weights)
    assert all(not np.any(m.bias.data) for m in net if isinstance(m, nn.Linear))
    assert net[0].weight._version == 1


def test_requires_grad_freezes_and_zero_grad_modes() -> None:
    net = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    assert net[0].requires_grad_(False) is net[0]
    assert [p.requires_grad for p in net.parameters()] == [False, False, True, True]
    net(Tensor(np.ones((4, 3), np.float32))).sum().backward()
    assert net[0].weight.grad is None and net[2].weight.grad is not None
    held = net[2].weight.grad
    net.zero_grad(set_to_none=False)
    assert net[2].weight.grad is held and not np.any(held.data)
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_train_eval_return_self_and_check_the_mode() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    assert net.eval() is net and not net[1].training
    assert net.train() is net and net[1].training
    with pytest.raises(ValueError, match="training mode is expected to be boolean, got str"):
        net.train("no")  # type: ignore[arg-type]


@pytest.mark.parametrize("device", ["cpu", "cpu:0", tg.device("cpu")], ids=["str", "indexed", "object"])
def test_to_cpu_returns_the_module(device: Any) -> None:
    net = nn.Linear(2, 2)
    assert net.to(device) is net and net.cpu() is net
    assert net.to(device, tg.float64) is net and net.weight.dtype == np.float64
    assert net.to(Tensor(np.zeros(1, np.float32))).weight.dtype == np.float32
    assert net.to(dtype=tg.float64, device=device).bias.dtype == np.float64


@pytest.mark.parametrize(("args", "error", "message"), [
    (("cuda",), RuntimeError, r"Linear.to: device 'cuda' is not available: tinygrad_cnn runs on the CPU only"),
    (("mps",), RuntimeError, r"device 'mps' is not available"),
    ((0,), RuntimeError, r"device 'cuda:0' is not available"),
    ((np.int64,), TypeError, r"Linear.to: only floating-point dtypes are accepted, got int64"),
    ((), None, None),
])
def test_to_refuses_other_devices_and_integer_dtypes(args: tuple, error: type[Exception] | None,
                                                      message: str | None) -> None:
    net = nn.Linear(2, 2)
    if error is None:
        assert net.to(*args) is net
        return
    with pytest.raises(error, match=message):
        net.to(*args)
    assert net.weight.dtype == np.float32
    with pytest.raises(RuntimeError, match="device .cuda. is not available"):
        net.cuda()


def test_a_grad_is_converted_with_its_parameter() -> None:
    net = nn.Linear(2, 1)
    net(Tensor(np.ones((1, 2), np.float32))).sum().backward()
    net.double()
    assert net.weight.grad.dtype == np.float64


def test_get_submodule_parameter_and_buffer() -> None:
    ours, _ = _ours_and_theirs()
    assert ours.get_submodule("tail.1") is ours.tail[1]
    assert ours.get_parameter("0.weight") is ours[0].weight
    assert ours.get_buffer("tail.1.running") is ours.tail[1].running
    with pytest.raises(AttributeError, match="no submodule 'nope'"):
        ours.get_submodule("tail.nope")


def test_load_state_dict_error_is_both_value_and_runtime_error() -> None:
    net = nn.Linear(2, 2)
    for kind in (ValueError, RuntimeError):
        with pytest.raises(kind, match=r"missing keys: \['bias'\]"):
            net.load_state_dict({"weight": np.zeros((2, 2), np.float32)})


# ---- containers --------------------------------------------------------------------------------------------------
def _three(lib: Any) -> list[Any]:
    return [lib.Linear(2, 3), lib.ReLU(), lib.Linear(3, 1)]


def _names(module: Any) -> list[str]:
    return list(module.state_dict())


def test_sequential_indexing_slicing_and_editing_match_torch() -> None:
    torch = _torch()
    ours, theirs = nn.Sequential(*_three(nn)), torch.nn.Sequential(*_three(torch.nn))
    assert len(ours) == 3 and type(ours[-1]).__name__ == "Linear"
    part, tpart = ours[1:], theirs[1:]
    assert isinstance(part, nn.Sequential) and _names(part) == _names(tpart) == ["2.weight", "2.bias"]
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs]
    for seq, lib in ((ours, nn), (theirs, torch.nn)):
        assert seq.append(lib.ReLU()) is seq
        assert seq.insert(1, lib.Identity()) is seq
        del seq[0]
        seq[0] = lib.Linear(2, 3)
        seq.extend([lib.Identity()])
    assert _names(ours) == _names(theirs)
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs]
    assert type(ours.pop(0)).__name__ == type(theirs.pop(0)).__name__ == "Linear"
    assert _names(ours) == _names(theirs)
    with pytest.raises(IndexError, match="index 9 is out of range for length"):
        ours[9]
    with pytest.raises(TypeError, match="Sequential indices must be integers or slices, not str"):
        ours["0"]


def test_sequential_from_an_ordered_dict_keeps_its_names() -> None:
    torch = _torch()
    ours = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 2, 3)), ("act", nn.ReLU())]))
    theirs = torch.nn.Sequential(OrderedDict([("conv", torch.nn.Conv2d(1, 2, 3)), ("act", torch.nn.ReLU())]))
    assert _names(ours) == _names(theirs) == ["conv.weight", "conv.bias"]
    assert _names(ours[:1]) == _names(theirs[:1])
    assert ours.conv is ours[0]
    assert _names(ours + nn.Sequential(nn.Linear(1, 1))) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_module_list_matches_torch() -> None:
    torch = _torch()

    def build(lib: Any) -> Any:
        net = lib.Sequential()
        net.blocks = lib.ModuleList([lib.Linear(2, 2) for _ in range(3)])
        net.blocks.append(lib.Linear(2, 1))
        return net

    ours, theirs = build(nn), build(torch.nn)
    assert _names(ours) == _names(theirs)
    assert len(ours.blocks) == 4 and isinstance(ours.blocks[1:3], nn.ModuleList)
    assert _names(ours.blocks[1:3]) == _names(theirs.blocks[1:3])
    del ours.blocks[1]
    del theirs.blocks[1]
    assert _names(ours) == _names(theirs)
    ours.blocks += [nn.Identity()]
    ours.blocks.insert(0, nn.Linear(2, 2))
    theirs.blocks += [torch.nn.Identity()]
    theirs.blocks.insert(0, torch.nn.Linear(2, 2))
    assert _names(ours) == _names(theirs)
    x = Tensor(np.ones((1, 2), np.float32))
    for block in ours.blocks:
        x = block(x)
    with pytest.raises(NotImplementedError):
        ours.blocks(Tensor(np.zeros(2)))
    with pytest.raises(TypeError, match="ModuleList: the appended value is a int, expected a Module"):
        ours.blocks.append(3)


def test_module_dict_matches_torch() -> None:
    torch = _torch()
    ours = nn.ModuleDict({"encoder": nn.Linear(2, 3), "act": nn.ReLU()})
    theirs = torch.nn.ModuleDict({"encoder": torch.nn.Linear(2, 3), "act": torch.nn.ReLU()})
    ours["decoder"] = nn.Linear(3, 2)
    theirs["decoder"] = torch.nn.Linear(3, 2)
    ours.update([("extra", nn.Identity())])
    theirs.update([("extra", torch.nn.Identity())])
    assert _names(ours) == _names(theirs)
    assert list(ours) == list(theirs) and list(ours.keys()) == list(theirs.keys())
    assert "act" in ours and "nope" not in ours and len(ours) == 4
    assert type(ours.pop("act")).__name__ == "ReLU"
    assert list(ours) == ["encoder", "decoder", "extra"]
    with pytest.raises(KeyError, match="attribute 'update' already exists"):
        ours["update"] = nn.ReLU()
    with pytest.raises(KeyError, match="cannot contain a dot"):
        ours["a.b"] = nn.ReLU()
    with pytest.raises(KeyError):
        ours["missing"]
    ours.clear()
    assert len(ours) == 0


def test_identity_accepts_and_ignores_arguments() -> None:
    torch = _torch()
    x = Tensor(np.arange(3.0))
    assert nn.Identity(54, unused="x")(x) is x
    torch.nn.Identity(54, unused="x")


# ---- nn.init -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("nonlinearity", "param"), [
    ("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
    ("leaky_relu", 0.2), ("leaky_relu", 1), ("selu", None), ("conv_transpose2d", None),
])
def test_calculate_gain_equals_torch(nonlinearity: str, param: float | None) -> None:
    torch = _torch()
    assert init.calculate_gain(nonlinearity, param) == torch.nn.init.calculate_gain(nonlinearity, param)


@pytest.mark.parametrize(("fn", "shape", "kwargs"), [
    ("kaiming_uniform_", (256, 64, 3, 3), {}),
    ("kaiming_uniform_", (256, 64, 3, 3), {"a": math.sqrt(5)}),
    ("kaiming_uniform_", (128, 300), {"mode": "fan_out", "nonlinearity": "relu"}),
    ("kaiming_normal_", (256, 64, 3, 3), {"mode": "fan_out", "nonlinearity": "relu"}),
    ("kaiming_normal_", (300, 128), {"a": 0.1}),
    ("xavier_uniform_", (200, 300), {}),
    ("xavier_uniform_", (64, 32, 5, 5), {"gain": 2.0}),
    ("xavier_normal_", (200, 300), {"gain": 0.5}),
    ("uniform_", (500, 200), {"a": -0.3, "b": 0.7}),
    ("normal_", (500, 200), {"mean": 1.0, "std": 0.2}),
    ("trunc_normal_", (500, 200), {"std": 0.5, "a": -0.6, "b": 0.6}),
])
def test_init_distributions_match_torch(fn: str, shape: tuple[int, ...], kwargs: dict[str, Any]) -> None:
    torch = _torch()
    tg.manual_seed(0)
    ours = Tensor(np.zeros(shape, np.float32), requires_grad=True)
    assert getattr(init, fn)(ours, **kwargs) is ours
    assert ours._version == 1 and ours.dtype == np.float32
    torch.manual_seed(0)
    theirs = getattr(torch.nn.init, fn)(torch.empty(shape), **kwargs).numpy()
    values = ours.data.astype(np.float64)
    spread = theirs.std()
    assert abs(values.mean() - theirs.mean()) < 0.02 * spread + 3 * spread / math.sqrt(values.size)
    assert abs(values.std() / theirs.std() - 1) < 0.02
    if fn.endswith("uniform_") or fn == "trunc_normal_":  # the same support
        assert abs(values.max() - theirs.max()) < 0.01 * theirs.std() and \
            abs(values.min() - theirs.min()) < 0.01 * theirs.std()


def test_init_is_driven_by_manual_seed_and_keeps_the_array() -> None:
    t = Tensor(np.zeros((4, 5), np.float32))
    array = t.data
    tg.manual_seed(3)
    first = init.kaiming_normal_(t).data.copy()
    tg.manual_seed(3)
    assert t.data is array
    np.testing.assert_array_equal(init.kaiming_normal_(t).data, first)
    gen = np.random.default_rng(1)
    init.uniform_(t, generator=gen)
    np.testing.assert_array_equal(t.data, np.random.default_rng(1).uniform(0, 1, (4, 5)).astype(np.float32))


def test_constant_ones_zeros_eye() -> None:
    t = Tensor(np.zeros((2, 3)))
    np.testing.assert_array_equal(init.constant_(t, 2.5).data, np.full((2, 3), 2.5))
    np.testing.assert_array_equal(init.ones_(t).data, np.ones((2, 3)))
    np.testing.assert_array_equal(init.zeros_(t).data, np.zeros((2, 3)))
    np.testing.assert_array_equal(init.eye_(t).data, np.eye(2, 3))
    assert t._version == 4


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: init.kaiming_uniform_(Tensor(np.zeros(3))), ValueError, r"kaiming_uniform_: fan in and fan out can not "
                                                                      r"be computed for a tensor with fewer than 2"),
    (lambda: init.xavier_normal_(Tensor(np.zeros(3))), ValueError, r"xavier_normal_: fan in and fan out"),
    (lambda: init.kaiming_normal_(Tensor(np.zeros((2, 2))), mode="fan_avg"), ValueError,
     r"mode 'fan_avg' is not supported, please use one of 'fan_in', 'fan_out'"),
    (lambda: init.calculate_gain("swish"), ValueError, r"unsupported nonlinearity 'swish'"),
    (lambda: init.calculate_gain("leaky_relu", "0.1"), ValueError, r"negative_slope '0.1' is not a valid number"),
    (lambda: init.zeros_(np.zeros(3)), TypeError, r"zeros_: expected a Tensor .* got ndarray"),
    (lambda: init.ones_(Tensor(np.zeros(3, np.int64))), TypeError, r"ones_: expected a floating-point Tensor"),
    (lambda: init.normal_(Tensor(np.zeros(3)), std=-1.0), ValueError, r"normal_: std must be >= 0, got -1.0"),
])
def test_init_errors(call: Callable[[], Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()


# ---- nn.utils.clip_grad_* -------------------------------------------------------------------------------------------
def _grads(dtype: Any, scale: float = 1.0) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [np.asarray(rng.standard_normal(s) * scale, dtype) for s in ((3, 4), (5,), ())]


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, math.inf, 0.5])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_grad_norm_equals_torch(norm_type: float, max_norm: float, dtype: Any) -> None:
    torch = _torch()
    grads = _grads(dtype)
    ours = [Tensor(np.zeros(g.shape, dtype), requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype, requires_grad=True) for g in grads]
    for p, tp, g in zip(ours, theirs, grads):
        p.grad, tp.grad = Tensor(g.copy()), torch.from_numpy(g.copy())
    total = clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert isinstance(total, Tensor) and total.dtype == dtype and total.shape == ()
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(total.item(), expected.item(), rtol=rtol)
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=rtol, atol=1e-30)
        assert p.grad.dtype == dtype


def test_clip_grad_norm_skips_missing_grads_accepts_one_tensor_and_a_generator() -> None:
    torch = _torch()
    net, tnet = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    tnet.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})
    x = np.ones((4, 3), np.float32)
    (net(Tensor(x)) ** 2).sum().backward()
    (tnet(torch.from_numpy(x)) ** 2).sum().backward()
    net.bias.grad, tnet.bias.grad = None, None
    total = clip_grad_norm_(net.parameters(), 1.0)
    np.testing.assert_allclose(total.item(), torch.nn.utils.clip_grad_norm_(tnet.parameters(), 1.0).item(), rtol=1e-6)
    np.testing.assert_allclose(net.weight.grad.data, tnet.weight.grad.numpy(), rtol=1e-6)
    single = Tensor(np.zeros(2), requires_grad=True)
    single.grad = Tensor(np.array([3.0, 4.0]))
    assert clip_grad_norm_(single, 1.0).item() == 5.0
    np.testing.assert_allclose(single.grad.data, [3 / (5 + 1e-6), 4 / (5 + 1e-6)])
    assert clip_grad_norm_([Tensor(np.zeros(2), requires_grad=True)], 1.0).item() == 0.0


def test_clip_grad_norm_nonfinite() -> None:
    p = Tensor(np.zeros(2), requires_grad=True)
    p.grad = Tensor(np.array([np.inf, 1.0]))
    with pytest.raises(RuntimeError, match="total norm of order 2.0 for gradients from `parameters` is non-finite"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(p.grad.data, [np.inf, 1.0])  # checked before anything changes
    assert math.isinf(clip_grad_norm_([p], 1.0).item())


def test_clip_grad_norm_scales_a_gradient_shared_by_two_parameters_once() -> None:
    a, b = Tensor(np.zeros(2), requires_grad=True), Tensor(np.zeros(2), requires_grad=True)
    a.grad = b.grad = Tensor(np.array([3.0, 4.0]))
    total = clip_grad_norm_([a, b], 1.0)
    np.testing.assert_allclose(total.item(), math.sqrt(50))
    np.testing.assert_allclose(a.grad.data, np.array([3.0, 4.0]) / (math.sqrt(50) + 1e-6))


def test_clip_grad_value_equals_torch() -> None:
    torch = _torch()
    grads = _grads(np.float32, 2.0)
    ours = [Tensor(np.zeros(g.shape, np.float32), requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for p, tp, g in zip(ours, theirs, grads):
        p.grad, tp.grad = Tensor(g.copy()), torch.from_numpy(g.copy())
    assert clip_grad_value_(ours, 0.7) is None
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for p, tp in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.data, tp.grad.numpy())


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: clip_grad_norm_(5, 1.0), TypeError, r"clip_grad_norm_: parameters must be a Tensor or an iterable"),
    (lambda: clip_grad_norm_([np.zeros(2)], 1.0), TypeError, r"parameters\[0\] is a ndarray, expected a Tensor"),
    (lambda: clip_grad_norm_([], "1"), TypeError, r"clip_grad_norm_: max_norm must be a real number, got str"),
    (lambda: clip_grad_value_([], None), TypeError, r"clip_grad_value_: clip_value must be a real number"),
])
def test_clip_errors(call: Callable[[], Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_nn_utils_import_paths() -> None:
    import tinygrad_cnn.nn.utils as utils
    from tinygrad_cnn.nn.utils import clip_grad_norm_ as imported
    assert nn.utils.clip_grad_norm_ is imported is utils.clip_grad_norm_


def test_parameter_list_and_dict_match_torch() -> None:
    torch = _torch()

    def build(lib: Any, tensor: Callable[[np.ndarray], Any]) -> Any:
        net = lib.Sequential(lib.Linear(2, 2))
        net.scales = lib.ParameterList([tensor(np.zeros(2, np.float32)), lib.Parameter(tensor(np.ones(3, np.float32)))])
        net.scales.append(tensor(np.ones(1, np.float32)))
        net.extra = lib.ParameterDict({"a": tensor(np.zeros(1, np.float32))})
        net.extra["b"] = lib.Parameter(tensor(np.ones(2, np.float32)))
        return net

    ours, theirs = build(nn, Tensor), build(torch.nn, torch.from_numpy)
    assert _names(ours) == _names(theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert isinstance(ours.scales[0], nn.Parameter) and ours.scales[0].requires_grad
    assert len(ours.scales) == 3 and ours.scales[-1].shape == (1,)
    assert list(ours.extra) == ["a", "b"] and "b" in ours.extra and ours.extra.pop("a").shape == (1,)
    assert ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()}, strict=False).missing_keys \
        == []
    with pytest.raises(TypeError, match=r"ParameterList.append: expected a Parameter or Tensor, got list"):
        ours.scales.append([1.0])


def test_repr_as_torch() -> None:
    torch = _torch()
    for lib in (nn, torch.nn):
        net = lib.Sequential(lib.Conv2d(1, 2, 3, stride=2), lib.ReLU(), lib.Sequential(lib.Linear(4, 2)))
        text = repr(net)
        if lib is nn:
            ours = text
    assert ours == text


def test_clip_grad_norm_of_a_large_float32_gradient_is_correctly_rounded() -> None:
    g = np.random.default_rng(0).standard_normal(3_000_000).astype(np.float32) * 3
    p = Tensor(np.zeros(g.size, np.float32), requires_grad=True)
    p.grad = Tensor(g.copy())
    exact = np.float32(np.sqrt(np.sum(g.astype(np.float64) ** 2)))
    assert clip_grad_norm_([p], 1.0).item() == exact  # torch's float32 reduction is ~5e-5 off here


@pytest.mark.parametrize("shape", [(6, 4), (3, 8), (4, 2, 3, 3)])
def test_orthogonal_gives_orthonormal_rows_or_columns(shape: tuple[int, ...]) -> None:
    t = Tensor(np.zeros(shape, np.float64))
    assert init.orthogonal_(t, gain=2.0) is t and t._version == 1
    m = t.data.reshape(shape[0], -1) / 2.0
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    np.testing.assert_allclose(gram, np.eye(gram.shape[0]), atol=1e-12)
    with pytest.raises(ValueError, match="orthogonal_: only tensors with 2 or more dimensions"):
        init.orthogonal_(Tensor(np.zeros(3)))


def test_parameters_to_vector_and_back_as_torch() -> None:
    torch = _torch()
    from tinygrad_cnn.nn.utils import parameters_to_vector, vector_to_parameters
    ours, theirs = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    vec = parameters_to_vector(ours.parameters())
    np.testing.assert_array_equal(vec.data, torch.nn.utils.parameters_to_vector(theirs.parameters()).detach().numpy())
    (vec * vec).sum().backward()
    np.testing.assert_allclose(ours.weight.grad.data, 2 * ours.weight.data)
    vector_to_parameters(Tensor(np.arange(8, dtype=np.float32)), ours.parameters())
    np.testing.assert_array_equal(ours.bias.data, [6.0, 7.0])
    with pytest.raises(ValueError, match="the parameters hold 8 numbers, got a vector of shape \\(7,\\)"):
        vector_to_parameters(Tensor(np.zeros(7, np.float32)), ours.parameters())
    np.testing.assert_array_equal(ours.bias.data, [6.0, 7.0])
