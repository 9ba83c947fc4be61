"""Regression tests for the silent wrong answers of issue 14 (items 1-10), each against PyTorch where a
number exists. Every test here failed on the code before the fix."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.optim import SGD

torch = pytest.importorskip("torch")


def both(values, dtype=np.float64, requires_grad=True):
    """The same leaf in both frameworks."""
    a = np.asarray(values, dtype=dtype)
    return Tensor(a.copy(), requires_grad=requires_grad), torch.tensor(a.copy(), requires_grad=requires_grad)


# ---- 1: grad() gives total derivatives for any input, leaf or intermediate ---------------------------------

def test_grad_of_an_intermediate_and_its_leaf_is_total() -> None:
    x, tx = both([1.0, 2.0])
    h, th = x * 2, tx * 2
    ours = tg.grad((h * x).sum(), [h, x])
    theirs = torch.autograd.grad((th * tx).sum(), [th, tx])
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.data, b.numpy())


def test_grad_of_an_input_downstream_of_another_input() -> None:
    x, tx = both([0.5, -1.0])
    h, th = x * 2, tx * 2
    e, te = h.exp(), th.exp()
    ours = tg.grad(e.sum(), [h, e])
    theirs = torch.autograd.grad(te.sum(), [th, te])
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-15)


def test_grad_of_features_and_parameters_together() -> None:
    tg.manual_seed(0)
    layer = nn.Linear(3, 2).double()
    x = Tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True)
    features = x * 3
    loss = (layer(features) ** 2).sum()
    g_features, g_weight, _ = tg.grad(loss, [features, layer.weight, layer.bias])
    tl = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        tl.weight.copy_(torch.tensor(layer.weight.data))
        tl.bias.copy_(torch.tensor(layer.bias.data))
    tx = torch.tensor(x.data, requires_grad=True)
    tf = tx * 3
    tg_features, tg_weight = torch.autograd.grad((tl(tf) ** 2).sum(), [tf, tl.weight])
    np.testing.assert_allclose(g_features.data, tg_features.numpy(), rtol=1e-12)
    np.testing.assert_allclose(g_weight.data, tg_weight.numpy(), rtol=1e-12)


def test_grad_accepts_a_bare_tensor_and_several_outputs() -> None:
    x, tx = both([1.0, 3.0])
    (g,) = tg.grad((x * x).sum(), x)
    np.testing.assert_array_equal(g.data, 2 * x.data)
    y1, y2 = x * x, x.exp()
    ours = tg.grad([y1, y2], [x], grad_outputs=[Tensor(np.ones(2)), Tensor(np.full(2, 2.0))])
    ty1, ty2 = tx * tx, tx.exp()
    theirs = torch.autograd.grad([ty1, ty2], [tx], grad_outputs=[torch.ones(2, dtype=torch.float64),
                                                                  torch.full((2,), 2.0, dtype=torch.float64)])
    np.testing.assert_allclose(ours[0].data, theirs[0].numpy(), rtol=1e-15)
    with pytest.raises(ValueError, match="2 outputs but 1 grad_outputs"):
        tg.grad([x * x, x.exp()], [x], grad_outputs=[Tensor(np.ones(2))])


# ---- 2: detach shares the version counter ----------------------------------------------------------------

def test_an_update_of_a_detached_parameter_after_forward_is_refused() -> None:
    p = nn.Parameter(np.array([1.0, 2.0]))
    x = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    loss = (x * p.detach()).sum()
    p.grad = Tensor(np.ones(2))
    SGD([p], lr=1).step()
    with pytest.raises(RuntimeError, match="modified in place after the forward pass"):
        loss.backward()


# ---- 3, 4: retain_graph defaults to create_graph; a second backward needs a freed buffer to fail ------------

def test_backward_with_create_graph_keeps_the_graph() -> None:
    x, tx = both([0.3, -0.7])
    x.exp().sum().backward(create_graph=True)
    (x.grad * x.grad).sum().backward()
    tx.exp().sum().backward(create_graph=True)
    (tx.grad * tx.grad).sum().backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.detach().numpy(), rtol=1e-14)


def test_a_second_backward_through_ops_that_saved_nothing_works() -> None:
    x, tx = both([1.0, 2.0])
    y, ty = x + 1, tx + 1
    y.sum().backward()
    (y * 2).sum().backward()
    ty.sum().backward()
    (ty * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.data, tx.grad.numpy())


def test_a_second_backward_that_needs_a_freed_buffer_still_fails() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x.exp()
    y.sum().backward()
    with pytest.raises(RuntimeError, match="second time.*'Exp'"):
        y.sum().backward()


# ---- 5: powers -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("exponent", [np.int64(2), np.int32(3), np.float64(2.0), 2])
def test_numpy_number_exponents_of_negative_bases(exponent) -> None:
    x, tx = both([-2.0, 0.0, 1.5])
    (x ** exponent).sum().backward()
    (tx ** (exponent.item() if isinstance(exponent, np.generic) else exponent)).sum().backward()
    np.testing.assert_allclose((x ** exponent).data, (tx ** 2 if exponent == 2 else tx ** 3).detach().numpy())
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy())


def test_the_gradient_of_x_to_the_zero_is_zero_at_zero() -> None:
    x, tx = both([0.0, 2.0])
    (x ** 0).sum().backward()
    (tx ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, tx.grad.numpy())


@pytest.mark.parametrize("base", [0.0, 2.0, -1.5])
def test_a_number_to_a_tensor_power(base: float) -> None:
    y, ty = both([0.0, 1.0, 2.0])
    out, tout = base ** y, base ** ty
    np.testing.assert_allclose(out.data, tout.detach().numpy())
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(y.grad.data, ty.grad.numpy(), equal_nan=True)


def test_a_tensor_to_a_tensor_power_at_zero() -> None:
    x, tx = both([0.0, 0.0, 2.0, 3.0])
    y, ty = both([0.0, 2.0, 0.5, -1.0])
    (x ** y).sum().backward()
    (tx ** ty).sum().backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy())
    np.testing.assert_allclose(y.grad.data, ty.grad.numpy())


def test_tensor_power_double_backward_matches_torch() -> None:
    x, tx = both([0.5, 1.5, 2.0])
    y, ty = both([1.5, 2.0, 3.0])
    (gx, gy) = tg.grad((x ** y).sum(), [x, y], create_graph=True)
    (tgx, tgy) = torch.autograd.grad((tx ** ty).sum(), [tx, ty], create_graph=True)
    ours = tg.grad((gx * gy).sum(), [x, y])
    theirs = torch.autograd.grad((tgx * tgy).sum(), [tx, ty])
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-12)


# ---- 6: division's denominator gradient in float32 -------------------------------------------------------------

@pytest.mark.parametrize("value", [1e20, 1e-30, 3e38, 1e-38])
def test_division_gradient_does_not_overflow_or_underflow(value: float) -> None:
    a, ta = both([value], np.float32)
    b, tb = both([value], np.float32)
    (a / b).sum().backward()
    (ta / tb).sum().backward()
    np.testing.assert_allclose(b.grad.data, tb.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(a.grad.data, ta.grad.numpy(), rtol=1e-6)


# ---- 7: NaN routing ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("values", [[1.0, np.nan, 3.0], [np.nan, 2.0, np.nan], [3.0, 3.0, 1.0]])
def test_max_sends_the_gradient_where_torch_does(values) -> None:
    x, tx = both(values)
    x.max().backward()
    tx.max().backward()
    np.testing.assert_array_equal(x.grad.data, tx.grad.numpy())


# ---- 8: dtypes ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("dtype", "scalar"), [(np.int64, 0.5), (np.int32, 2.5), (np.uint8, 1.5), (np.bool_, 2.0),
                                                 (np.bool_, 3), (np.int64, 3), (np.float16, 2.0)])
def test_tensor_times_a_python_number_has_torch_dtype(dtype, scalar) -> None:
    a = np.array([1, 0, 1]).astype(dtype)
    ours = Tensor(a) * scalar
    theirs = torch.tensor(a) * scalar
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_allclose(ours.data.astype(np.float64), theirs.numpy().astype(np.float64))


@pytest.mark.parametrize(("a", "b"), [(np.int64, np.float32), (np.float16, np.int64), (np.uint8, np.int8),
                                      (np.float32, np.float64), (np.bool_, np.int32)])
def test_tensor_tensor_promotion_matches_torch(a, b) -> None:
    x, y = np.array([1, 2]).astype(a), np.array([3, 1]).astype(b)
    assert str((Tensor(x) + Tensor(y)).dtype) == str((torch.tensor(x) + torch.tensor(y)).dtype).replace("torch.", "")


def test_integer_division_is_true_division_in_float32() -> None:
    out = Tensor(np.array([1, 2])) / Tensor(np.array([2, 4]))
    assert out.dtype == np.float32 and out.data.tolist() == [0.5, 0.5]


def test_a_float64_input_into_a_float32_model_is_a_clear_error() -> None:
    tg.manual_seed(0)
    layer = nn.Linear(4, 2)
    with pytest.raises(TypeError, match="matmul: .* different dtypes float64 and float32"):
        layer(Tensor(np.ones((1, 4))))


# ---- 9: the Tensor protocol -----------------------------------------------------------------------------------------

def test_equality_is_elementwise_so_accuracy_counts_correctly() -> None:
    pred, target = Tensor(np.array([1, 2, 3])), Tensor(np.array([1, 0, 3]))
    assert (pred == target).sum().item() == 2
    assert (pred == target).dtype == np.bool_
    assert (pred != target).data.tolist() == [False, True, False]
    assert (pred < 2).data.tolist() == [True, False, False] and (pred >= 2).data.tolist() == [False, True, True]


def test_numpy_conversion_gives_the_data() -> None:
    t = Tensor(np.array([1.5, 2.5], dtype=np.float32))
    a = np.asarray(t)
    assert a.dtype == np.float32 and a.tolist() == [1.5, 2.5]


def test_truth_value_follows_torch() -> None:
    assert bool(Tensor([0.0])) is False and bool(Tensor(1.0)) is True and bool(Tensor(0.0)) is False
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(Tensor([1.0, 2.0]))
    assert {Tensor(1.0): 1} and len({Tensor(1.0), Tensor(1.0)}) == 2  # hashed by identity, as in torch


# ---- 10: in-place updates ------------------------------------------------------------------------------------------

def test_manual_sgd_with_in_place_operators_updates_the_parameter() -> None:
    tg.manual_seed(0)
    layer = nn.Linear(3, 1)
    x = Tensor(np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32))
    losses = []
    for _ in range(5):
        loss = (layer(x) ** 2).mean()
        losses.append(loss.item())
        for p in layer.parameters():
            p.grad = None
        loss.backward()
        with tg.no_grad():
            for p in layer.parameters():
                p -= 0.1 * p.grad
    assert losses[-1] < losses[0] * 0.9
    assert isinstance(layer.weight, nn.Parameter) and layer.weight._version == 5


def test_in_place_update_of_a_leaf_that_requires_grad_is_refused_outside_no_grad() -> None:
    p = nn.Parameter(np.ones(2, dtype=np.float32))
    with pytest.raises(RuntimeError, match=r"-=: cannot update a leaf tensor that requires grad"):
        p -= 1.0
    assert p.data.tolist() == [1.0, 1.0] and p._version == 0


def test_in_place_update_after_forward_is_caught_by_backward() -> None:
    p = nn.Parameter(np.ones(2))
    loss = (p * p).sum()
    with tg.no_grad():
        p *= 2
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_micrograd_style_data_update_keeps_an_array() -> None:
    p = nn.Parameter(np.array([1.0, 2.0], dtype=np.float32))
    p.grad = Tensor(np.array([1.0, 1.0], dtype=np.float32))
    p.data += -0.5 * p.grad
    assert isinstance(p.data, np.ndarray) and p.data.tolist() == [0.5, 1.5]
    p.data = Tensor(np.array([3.0, 4.0], dtype=np.float32))
    assert isinstance(p.data, np.ndarray) and (p.T.data == p.data).all()


def test_in_place_with_an_incompatible_dtype_is_refused() -> None:
    t = Tensor(np.array([1, 2]))
    with pytest.raises(TypeError, match=r"\+=: cannot update a int64 tensor"):
        t += 0.5
    assert t.data.tolist() == [1, 2]
