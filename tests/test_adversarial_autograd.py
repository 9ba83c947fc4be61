"""Adversarial autograd cases against PyTorch: backward/grad variants (accumulation, retain_graph,
grad_outputs, allow_unused, several outputs), higher-order derivatives (up to third order, Hessian-vector
products, gradient penalties), in-place updates between forward and backward (refused exactly where
PyTorch refuses them: when the op saved the changed tensor), and gradient dtypes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cnn as tg
import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def pair(values, dtype=np.float64, requires_grad=True):
    a = np.asarray(values, dtype=dtype)
    return Tensor(a.copy(), requires_grad=requires_grad), torch.tensor(a.copy(), requires_grad=requires_grad)


def close(ours, theirs, rtol=1e-12, atol=1e-300):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    ours = ours.data if isinstance(ours, Tensor) else np.asarray(ours)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, equal_nan=True)


# ---- backward / grad variants --------------------------------------------------------------------------------

def test_two_backwards_with_retain_graph_accumulate() -> None:
    (x, tx) = pair([1.0, -2.0, 3.0])
    for v in (x, tx):
        y = (v * v * v).sum()
        y.backward(retain_graph=True)
        y.backward()
    close(x.grad, tx.grad)


def test_backward_accumulates_into_an_existing_grad() -> None:
    (x, tx) = pair([0.5, 1.5])
    x.grad, tx.grad = Tensor(np.array([10.0, 20.0])), torch.tensor([10.0, 20.0], dtype=torch.float64)
    x.exp().sum().backward()
    tx.exp().sum().backward()
    close(x.grad, tx.grad)


def test_backward_of_a_non_scalar_with_a_gradient() -> None:
    (x, tx) = pair([[1.0, 2.0], [3.0, 4.0]])
    g = np.array([[1.0, -1.0], [0.5, 2.0]])
    (x * x).backward(Tensor(g))
    (tx * tx).backward(torch.tensor(g))
    close(x.grad, tx.grad)


def test_backward_of_a_non_scalar_without_a_gradient_raises_like_pytorch() -> None:
    (x, tx) = pair([1.0, 2.0])
    with pytest.raises(RuntimeError):
        (tx * 2).backward()
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2).backward()


def test_grad_with_several_outputs_and_grad_outputs() -> None:
    (x, tx) = pair([0.3, -0.7])
    outs = [x.exp(), (x * x).sum()]
    touts = [tx.exp(), (tx * tx).sum()]
    gos = [np.array([1.0, 2.0]), np.array(3.0)]
    ours = tg.grad(outs, [x], [Tensor(g) for g in gos])
    theirs = torch.autograd.grad(touts, [tx], [torch.tensor(g) for g in gos])
    close(ours[0], theirs[0])


def test_grad_allow_unused_returns_none_like_pytorch() -> None:
    (x, tx), (z, tz) = pair([1.0]), pair([2.0])
    ours = tg.grad((x * 3).sum(), [x, z], allow_unused=True)
    theirs = torch.autograd.grad((tx * 3).sum(), [tx, tz], allow_unused=True)
    assert ours[1] is None and theirs[1] is None
    close(ours[0], theirs[0])
    with pytest.raises(RuntimeError):
        tg.grad((x * 3).sum(), [x, z])


def test_grad_leaves_dot_grad_untouched() -> None:
    (x, _) = pair([1.0, 2.0])
    tg.grad((x * x).sum(), [x])
    assert x.grad is None


def test_create_graph_backward_then_backward_of_the_gradient_accumulates() -> None:
    (x, tx) = pair([1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns of the reference cycle this pattern makes
        for v in (x, tx):
            (v * v * v).sum().backward(create_graph=True)
            g = v.grad
            (g * g).sum().backward()
    close(x.grad, tx.grad)


def test_backward_twice_through_freed_buffers_raises_and_through_bufferless_ops_works() -> None:
    (x, tx) = pair([1.0, 2.0])
    y, ty = x.exp().sum(), tx.exp().sum()
    y.backward()
    ty.backward()
    with pytest.raises(RuntimeError):
        ty.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    (a, ta) = pair([1.0, 2.0])
    h, th = a + 1, ta + 1
    h.sum().backward()
    th.sum().backward()
    (h * 2).sum().backward()
    (th * 2).sum().backward()
    close(a.grad, ta.grad)


def test_no_grad_results_do_not_require_grad_and_enable_grad_inside_records() -> None:
    (x, _) = pair([1.0])
    with tg.no_grad():
        y = x * 2
        with tg.enable_grad():
            z = x * 2
    assert not y.requires_grad and z.requires_grad
    with pytest.raises(RuntimeError):
        y.backward()


def test_requires_grad_on_an_integer_tensor_is_refused_like_pytorch() -> None:
    with pytest.raises(RuntimeError):
        torch.tensor([1, 2], requires_grad=True)
    with pytest.raises((TypeError, RuntimeError)):
        Tensor(np.array([1, 2]), requires_grad=True)


# ---- higher order ---------------------------------------------------------------------------------------------

HIGHER = {
    "x^4": (lambda v: v ** 4, lambda v: v ** 4),
    "exp": (lambda v: v.exp(), lambda v: v.exp()),
    "log": (lambda v: v.log(), lambda v: v.log()),
    "tanh": (lambda v: v.tanh(), lambda v: v.tanh()),
    "sigmoid": (lambda v: v.sigmoid(), lambda v: v.sigmoid()),
    "sqrt": (lambda v: v.sqrt(), lambda v: v.sqrt()),
    "rsqrt": (lambda v: v.rsqrt(), lambda v: v.rsqrt()),
    "reciprocal": (lambda v: 1.0 / v, lambda v: 1.0 / v),
    "x*exp(x)": (lambda v: v * v.exp(), lambda v: v * v.exp()),
    "gelu": (F.gelu, TF.gelu),
    "softplus-like": (lambda v: (v.exp() + 1.0).log(), lambda v: (v.exp() + 1.0).log()),
    "log_softmax": (lambda v: v.log_softmax(0) * Tensor(np.arange(1.0, 4.0)),
                    lambda v: v.log_softmax(0) * torch.arange(1.0, 4.0, dtype=torch.float64)),
    "std": (lambda v: v.std() * v, lambda v: v.std() * v),
    "var": (lambda v: v.var() * v, lambda v: v.var() * v),
    "x^x": (lambda v: v ** v, lambda v: v ** v),
}


@pytest.mark.parametrize("name", list(HIGHER))
def test_third_derivatives_match_pytorch(name: str) -> None:
    ours_fn, theirs_fn = HIGHER[name]
    (x, tx) = pair([0.3, 1.1, 2.5])
    o1 = tg.grad(ours_fn(x).sum(), [x], create_graph=True)[0]
    o2 = tg.grad(o1.sum(), [x], create_graph=True)[0]
    o3 = tg.grad(o2.sum(), [x])[0]
    t1 = torch.autograd.grad(theirs_fn(tx).sum(), tx, create_graph=True)[0]
    t2 = torch.autograd.grad(t1.sum(), tx, create_graph=True)[0]
    t3 = torch.autograd.grad(t2.sum(), tx)[0]
    for o, t in ((o1, t1), (o2, t2), (o3, t3)):
        close(o, t, rtol=1e-10, atol=1e-13)


def test_hessian_vector_product_of_a_small_network_matches_pytorch() -> None:
    rng = np.random.default_rng(0)
    x, w1, w2, v1, v2 = (rng.normal(size=s) for s in ((4, 3), (5, 3), (2, 5), (5, 3), (2, 5)))
    y = np.array([0, 1, 1, 0])
    (ow1, tw1), (ow2, tw2) = pair(w1), pair(w2)
    loss = F.cross_entropy(F.linear(F.linear(Tensor(x), ow1).tanh(), ow2), y)
    tloss = TF.cross_entropy(TF.linear(TF.linear(torch.tensor(x), tw1).tanh(), tw2), torch.tensor(y))
    g = tg.grad(loss, [ow1, ow2], create_graph=True)
    tgr = torch.autograd.grad(tloss, [tw1, tw2], create_graph=True)
    hv = tg.grad((g[0] * Tensor(v1)).sum() + (g[1] * Tensor(v2)).sum(), [ow1, ow2])
    thv = torch.autograd.grad((tgr[0] * torch.tensor(v1)).sum() + (tgr[1] * torch.tensor(v2)).sum(), [tw1, tw2])
    for o, t in zip(hv, thv):
        close(o, t, rtol=1e-10)


def test_gradient_penalty_through_pooling_and_conv_matches_pytorch() -> None:
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(2, 1, 6, 6)), rng.normal(size=(2, 1, 3, 3))
    (ox, tx), (ow, tw) = pair(x), pair(w)
    out = F.avg_pool2d(F.max_pool2d(F.conv2d(ox, ow, padding=1).relu(), 2), 3).sum()
    tout = TF.avg_pool2d(TF.max_pool2d(TF.conv2d(tx, tw, padding=1).relu(), 2), 3).sum()
    (gx,) = tg.grad(out, [ox], create_graph=True)
    (tgx,) = torch.autograd.grad(tout, tx, create_graph=True)
    close(gx, tgx)
    (gw,) = tg.grad((gx * gx).sum(), [ow])
    (tgw,) = torch.autograd.grad((tgx * tgx).sum(), tw)
    close(gw, tgw, rtol=1e-10)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.lists(st.floats(-3, 3, allow_nan=False), min_size=2, max_size=5),
       st.sampled_from(["exp", "tanh", "sigmoid", "x^4", "x*exp(x)", "log_softmax"]))
def test_second_derivatives_at_random_points_match_pytorch(values, name) -> None:
    ours_fn, theirs_fn = HIGHER[name]
    if name == "log_softmax":
        values = (values + [0.0, 0.0, 0.0])[:3]
    (x, tx) = pair(values)
    (g,) = tg.grad(ours_fn(x).sum(), [x], create_graph=True)
    (tgrad,) = torch.autograd.grad(theirs_fn(tx).sum(), tx, create_graph=True)
    (h,) = tg.grad((g * g).sum(), [x])
    (th,) = torch.autograd.grad((tgrad * tgrad).sum(), tx)
    close(h, th, rtol=1e-9)


# ---- in-place updates between forward and backward --------------------------------------------------------------

INPLACE_OPS = {
    # name: (ours, PyTorch's); whether PyTorch refuses depends on whether the op saved x
    "add": (lambda v: v + 1.0, lambda v: v + 1.0),
    "sub": (lambda v: 1.0 - v, lambda v: 1.0 - v),
    "neg": (lambda v: -v, lambda v: -v),
    "mul-const": (lambda v: v * 3.0, lambda v: v * 3.0),
    "mul-self": (lambda v: v * v, lambda v: v * v),
    "div-by": (lambda v: 1.0 / v, lambda v: 1.0 / v),
    "pow": (lambda v: v ** 3, lambda v: v ** 3),
    "exp": (lambda v: v.exp(), lambda v: v.exp()),
    "log": (lambda v: v.log(), lambda v: v.log()),
    "sum": (lambda v: v.sum(), lambda v: v.sum()),
    "reshape": (lambda v: v.reshape(2, 2), lambda v: v.reshape(2, 2)),
    "transpose": (lambda v: v.reshape(2, 2).T, lambda v: v.reshape(2, 2).T),
    "matmul": (lambda v: v.reshape(2, 2) @ v.reshape(2, 2), lambda v: v.reshape(2, 2) @ v.reshape(2, 2)),
    "sigmoid": (lambda v: v.sigmoid(), lambda v: v.sigmoid()),
    "tanh": (lambda v: v.tanh(), lambda v: v.tanh()),
    "relu": (lambda v: v.relu(), lambda v: v.relu()),
    "max_pool": (lambda v: F.max_pool2d(v.reshape(1, 1, 2, 2), 2), lambda v: TF.max_pool2d(v.reshape(1, 1, 2, 2), 2)),
    "conv": (lambda v: F.conv2d(v.reshape(1, 1, 2, 2), Tensor(np.ones((1, 1, 2, 2)))),
             lambda v: TF.conv2d(v.reshape(1, 1, 2, 2), torch.ones(1, 1, 2, 2, dtype=torch.float64))),
    "detach-mul": (lambda v: v.detach() * Tensor(np.ones(4), requires_grad=True),
                   lambda v: v.detach() * torch.ones(4, dtype=torch.float64, requires_grad=True)),
}


@pytest.mark.parametrize("name", list(INPLACE_OPS))
def test_an_in_place_update_after_the_forward_never_gives_a_silently_wrong_gradient(name: str) -> None:
    """Where PyTorch computes a gradient after the update, ours refuses or equals it. Where PyTorch refuses
    (the op saved the updated tensor), ours refuses, or gives the gradient at the values of the forward pass
    (max pooling saves its winners, not its input)."""
    ours_fn, theirs_fn = INPLACE_OPS[name]
    values = [0.5, 1.5, 2.0, 3.0]
    (x, tx), (_, fresh) = pair(values), pair(values)
    y, ty = ours_fn(x), theirs_fn(tx)
    with tg.no_grad():
        x += 1.0
    with torch.no_grad():
        tx += 1.0
    try:
        ty.sum().backward()
        expected = tx.grad
    except RuntimeError:
        theirs_fn(fresh).sum().backward()  # the gradient at the forward pass's values
        expected = fresh.grad
    try:
        y.sum().backward()
    except RuntimeError as e:
        assert "modified in place" in str(e)
        assert x.grad is None
        return
    if expected is not None:
        close(x.grad, expected)


def test_an_optimizer_step_between_forward_and_backward_is_refused() -> None:
    p = tg.nn.Parameter(np.array([1.0, 2.0]))
    loss = (p * p).sum()
    p.grad = Tensor(np.array([1.0, 1.0]))
    tg.optim.SGD([p], lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_in_place_update_through_a_view_is_seen() -> None:
    p = tg.nn.Parameter(np.array([[1.0, 2.0], [3.0, 4.0]]))
    loss = (Tensor(np.ones((2, 2))) @ p.T).sum()
    with tg.no_grad():
        p -= 1.0
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_in_place_operators_on_a_parameter_under_no_grad_update_it_and_bump_the_version() -> None:
    model = tg.nn.Linear(2, 1)
    before = model.weight.data.copy()
    version = model.weight._version
    with tg.no_grad():
        for p in model.parameters():
            p -= 0.5 * Tensor(np.ones(p.shape, p.dtype))
    np.testing.assert_array_equal(model.weight.data, before - 0.5)
    assert model.weight._version > version


# ---- gradient dtypes ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_a_leaf_gets_a_gradient_of_its_own_dtype_like_pytorch(dtype) -> None:
    (x, tx) = pair([0.5, 1.0, 2.0], dtype=dtype)
    (x * x).sum().backward()
    (tx * tx).sum().backward()
    assert x.grad.dtype == tx.grad.numpy().dtype == dtype
    close(x.grad, tx.grad)


def test_a_float32_leaf_through_a_float64_computation_gets_a_float32_gradient() -> None:
    (x, tx) = pair([0.5, 1.0], dtype=np.float32)
    (x.double() * 3.0).sum().backward()
    (tx.double() * 3.0).sum().backward()
    assert x.grad.dtype == np.float32 == tx.grad.numpy().dtype
    close(x.grad, tx.grad)


def test_a_float16_graph_gives_pytorchs_float16_gradients() -> None:
    rng = np.random.default_rng(2)
    x, w = rng.normal(size=(4, 8)).astype(np.float16), rng.normal(size=(3, 8)).astype(np.float16)
    (ox, tx), (ow, tw) = pair(x, np.float16), pair(w, np.float16)
    F.cross_entropy(F.linear(ox, ow), np.array([0, 1, 2, 0])).backward()
    TF.cross_entropy(TF.linear(tx, tw), torch.tensor([0, 1, 2, 0])).backward()
    assert ow.grad.dtype == np.float16
    np.testing.assert_allclose(ow.grad.data.astype(np.float64), tw.grad.numpy().astype(np.float64), rtol=2e-2,
                               atol=2e-3)


ZERO_D = [name for name in HIGHER if name not in ("log_softmax", "std", "var")]


@pytest.mark.parametrize("name", ZERO_D)
def test_0d_inputs_have_pytorchs_second_derivatives(name: str) -> None:
    """A 0-d tensor is where numpy returns scalars instead of arrays (gelu's erf crashed on one)."""
    ours_fn, theirs_fn = HIGHER[name]
    (x, tx) = pair(0.7)
    (g,) = tg.grad(ours_fn(x), [x], create_graph=True)
    (h,) = tg.grad(g, [x])
    (tgr,) = torch.autograd.grad(theirs_fn(tx), tx, create_graph=True)
    (th,) = torch.autograd.grad(tgr, tx)
    assert g.shape == h.shape == ()
    close(g, tgr, rtol=1e-10)
    close(h, th, rtol=1e-10)
