"""Tests for tinygrad_cnn.models.lenet5: gradients (finite differences and PyTorch), init, state_dict, repr."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from helpers import Inputs

from tinygrad_cnn import Tensor, gradcheck, nn, no_grad, rng
from tinygrad_cnn import functional as F
from tinygrad_cnn.models import lenet5

NAMES = ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias",
         "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]


@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


def torch_lenet(torch: Any, num_classes: int = 10) -> Any:
    """LeNet-5 (max pooling, then ReLU) for 1x28x28 inputs, written independently in PyTorch with the same names."""
    tnn = torch.nn
    return tnn.Sequential(OrderedDict([
        ("conv1", tnn.Conv2d(1, 6, 5)), ("pool1", tnn.MaxPool2d(2)), ("relu1", tnn.ReLU()),
        ("conv2", tnn.Conv2d(6, 16, 5)), ("pool2", tnn.MaxPool2d(2)), ("relu2", tnn.ReLU()),
        ("flatten", tnn.Flatten()),
        ("fc1", tnn.Linear(16 * 4 * 4, 120)), ("relu3", tnn.ReLU()),
        ("fc2", tnn.Linear(120, 84)), ("relu4", tnn.ReLU()),
        ("fc3", tnn.Linear(84, num_classes)),
    ]))


def seeded_lenet(seed: int = 0, num_classes: int = 10) -> Any:
    rng.manual_seed(seed)
    return lenet5(num_classes)


def images(n: int, dtype: Any = np.float64, seed: int = 0) -> np.ndarray:
    return Inputs(seed).randn(n, 1, 28, 28).astype(dtype)


# ---- structure ------------------------------------------------------------------------------------

def test_shapes_and_parameter_names(torch: Any) -> None:
    model, theirs = seeded_lenet(), torch_lenet(torch)
    assert [n for n, _ in model.named_parameters()] == NAMES == [n for n, _ in theirs.named_parameters()]
    assert [p.shape for p in model.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    assert [(n, type(m).__name__) for n, m in model.named_modules()] == [
        (n, type(m).__name__) for n, m in theirs.named_modules()]
    assert model(Tensor(images(3)).float()).shape == (3, 10)
    seven = seeded_lenet(num_classes=7)
    assert seven(Tensor(images(2)).float()).shape == (2, 7) and seven.fc3.weight.shape == (7, 84)


def test_repr_like_torch(torch: Any) -> None:
    """Same lines and indentation; where PyTorch prints more arguments (MaxPool2d's dilation and ceil_mode,
    Flatten's dims) ours must be a prefix of PyTorch's argument list."""
    ours, theirs = repr(seeded_lenet()).splitlines(), repr(torch_lenet(torch)).splitlines()
    assert len(ours) == len(theirs)
    for mine, expected in zip(ours, theirs):
        assert mine == expected or (mine.endswith(")") and expected.startswith(mine[:-1])), (mine, expected)
    assert "  (conv1): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))" in ours
    assert "  (pool2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)" in ours
    assert "  (fc3): Linear(in_features=84, out_features=10, bias=True)" in ours


def test_init_within_torch_fan_in_bounds(torch: Any) -> None:
    model, theirs = seeded_lenet(), torch_lenet(torch)
    weights = dict(theirs.named_parameters())
    for name, p in model.named_parameters():
        assert p.dtype == np.float32
        fan_in = torch.nn.init._calculate_fan_in_and_fan_out(weights[name.replace("bias", "weight")])[0]
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(p.data).max() <= bound, name
        if p.numel() >= 100:  # enough draws to come close to the bound
            assert np.abs(p.data).max() > 0.9 * bound, name


def test_manual_seed_reproducible() -> None:
    first, again, other = seeded_lenet(5).state_dict(), seeded_lenet(5).state_dict(), seeded_lenet(6).state_dict()
    assert list(first) == list(again) == list(other) == NAMES
    for name in NAMES:
        np.testing.assert_array_equal(first[name], again[name])
        assert not np.array_equal(first[name], other[name])


def test_state_dict_round_trip_through_torch(torch: Any) -> None:
    model, theirs = seeded_lenet(1), torch_lenet(torch)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    restored = seeded_lenet(2)
    x = Tensor(images(2, np.float32))
    assert not np.array_equal(restored(x).data, model(x).data)
    assert restored.load_state_dict(theirs.state_dict()) == ([], [])
    np.testing.assert_array_equal(restored(x).data, model(x).data)


# ---- gradients: PyTorch --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_forward_loss_and_gradients_match_torch(dtype: Any, rtol: float, torch: Any) -> None:
    model, theirs = seeded_lenet(3), torch_lenet(torch)
    if dtype == np.float64:
        model.double()
        theirs.double()
    state = model.state_dict()
    assert set(state) == set(theirs.state_dict())
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})

    def close(ours: np.ndarray, expected: Any, what: str) -> None:
        # relative to the largest entry: summation order may differ, so tiny entries get the same absolute slack
        expected = expected.detach().numpy()
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, expected, rtol=rtol, atol=rtol * np.abs(expected).max(), err_msg=what)

    x_np, target = images(8, dtype), np.arange(8) % 10
    x, tx = Tensor(x_np.copy(), requires_grad=True), torch.from_numpy(x_np.copy()).requires_grad_()
    logits, tlogits = model(x), theirs(tx)
    close(logits.data, tlogits, "logits")
    loss, tloss = F.cross_entropy(logits, target), torch.nn.functional.cross_entropy(tlogits, torch.from_numpy(target))
    close(loss.data, tloss, "loss")
    loss.backward()
    tloss.backward()
    close(x.grad.data, tx.grad, "input gradient")
    ours = dict(model.named_parameters())
    for name, p in theirs.named_parameters():
        close(ours[name].grad.data, p.grad, name)


def test_relu_after_pooling_is_the_textbook_order_exactly() -> None:
    """lenet5 pools before its ReLUs; conv -> ReLU -> pool must give bit-identical outputs and gradients,
    also where windows tie (here: many exact zeros and repeated values after the first conv)."""
    model = seeded_lenet(5)
    textbook = nn.Sequential(model.conv1, nn.ReLU(), nn.MaxPool2d(2), model.conv2, nn.ReLU(), nn.MaxPool2d(2),
                             *list(model.children())[6:])
    assert [type(m).__name__ for m in model.children()][:6] == ["Conv2d", "MaxPool2d", "ReLU"] * 2
    model.double()
    x = np.round(images(6), 0)  # integer pixels and weights: conv1's outputs tie, many at exactly 0
    model.conv1.weight.data[:] = np.round(model.conv1.weight.data * 4)
    model.conv1.bias.data[:] = 0.0
    results = []
    for net in (model, textbook):
        net.zero_grad()
        xt = Tensor(x.copy(), requires_grad=True)
        loss = F.cross_entropy(net(xt), np.arange(6) % 10)
        loss.backward()
        results.append([loss.data, xt.grad.data] + [p.grad.data.copy() for p in net.parameters()])
    conv1 = F.conv2d(Tensor(x), model.conv1.weight).data
    assert (conv1 == 0).mean() > 0.05 and len(np.unique(conv1)) < conv1.size / 100, "the input must produce ties"
    for ours, expected in zip(*results):
        np.testing.assert_array_equal(ours, expected)


# ---- gradients: finite differences -----------------------------------------------------------------

def assert_directional_derivatives(value: Callable[[], float], param: Tensor, analytic: np.ndarray,
                                   directions: int = 3, eps: float = 1e-6, rtol: float = 1e-8, seed: int = 0) -> None:
    """Check a gradient too big to finite-difference element by element: along random unit directions d,
    <analytic, d> must equal the central difference (value(p + eps d) - value(p - eps d)) / (2 eps).

    A random d weights every element, so any error in `analytic` shows up in <analytic, d> (almost surely).
    The tolerance is relative to |analytic|, the largest a directional derivative can be.
    """
    directions_rng = np.random.default_rng(seed)
    original = param.data.copy()
    scale = float(np.linalg.norm(analytic))
    try:
        for k in range(directions):
            d = directions_rng.standard_normal(param.shape)
            d /= np.linalg.norm(d)
            with no_grad():
                param.data[...] = original + eps * d
                plus = value()
                param.data[...] = original - eps * d
                minus = value()
            numeric, expected = (plus - minus) / (2 * eps), float(np.vdot(analytic, d))
            assert abs(numeric - expected) <= rtol * scale, (
                f"direction {k}: analytic {expected:.12g} vs numeric {numeric:.12g} (|gradient| {scale:.3g})")
    finally:
        param.data[...] = original


def weighted_output(model: Any, x: Tensor) -> tuple[Callable[[], float], np.ndarray]:
    """s = <v, model(x)> for a fixed random v: its gradient is one backward with grad=v."""
    v = Inputs(7).randn(x.shape[0], 10)
    return lambda: float(np.vdot(v, model(x).data)), v


@pytest.fixture(scope="module")
def lenet64() -> tuple[Any, Tensor]:
    return seeded_lenet(4).double(), Tensor(images(2), requires_grad=True)


def test_gradcheck_input_and_small_parameters(lenet64: tuple[Any, Tensor]) -> None:
    model, x = lenet64
    small = [model.conv1.weight, model.conv1.bias, model.conv2.bias, model.fc1.bias, model.fc2.bias,
             model.fc3.weight, model.fc3.bias]
    assert gradcheck(lambda x, *params: model(x), [x, *small])


@pytest.mark.parametrize("name", ["conv2.weight", "fc1.weight", "fc2.weight"])
def test_big_weights_directional_derivatives(name: str, lenet64: tuple[Any, Tensor]) -> None:
    model, x = lenet64
    param = dict(model.named_parameters())[name]
    value, v = weighted_output(model, x)
    model.zero_grad()
    model(x).backward(v)
    assert_directional_derivatives(value, param, param.grad.data)


@pytest.mark.parametrize("corrupt", [
    lambda g: g * 1.001,
    lambda g: np.where(np.arange(g.size).reshape(g.shape) == np.argmax(np.abs(g)), 0.0, g),  # one element lost
    lambda g: Inputs(1).rng.permutation(g.ravel()).reshape(g.shape),
], ids=["scaled", "largest-entry-zeroed", "shuffled"])
def test_directional_derivative_check_detects_wrong_gradients(corrupt: Callable[[np.ndarray], np.ndarray],
                                                              lenet64: tuple[Any, Tensor]) -> None:
    model, x = lenet64
    value, v = weighted_output(model, x)
    model.zero_grad()
    model(x).backward(v)
    with pytest.raises(AssertionError, match="analytic"):
        assert_directional_derivatives(value, model.conv2.weight, corrupt(model.conv2.weight.grad.data))
