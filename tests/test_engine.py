"""The engine: graph traversal, gradient accumulation, graph lifetime, grad mode, dtypes, custom Functions.

That float32 survives every op and its gradients is checked per op in test_ops_gradcheck.py
(test_float32_stays_float32); here are the construction rules and a float32 CNN step.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tinygrad_cnn import Function, Tensor, enable_grad, grad, is_grad_enabled, no_grad


def leaf(*values: float) -> Tensor:
    return Tensor(np.array(values, dtype=np.float64), requires_grad=True)


# ---- graph traversal and accumulation -----------------------------------------------------------
def test_long_chain_backpropagates_without_recursion() -> None:
    x = Tensor(np.array(1.5), requires_grad=True)
    y = x
    for _ in range(100_001):  # negation, the cheapest op: an odd count flips the sign
        y = -y
    y.backward()
    assert x.grad.item() == -1.0


def test_reused_node_gets_the_sum_of_its_gradients() -> None:
    a = leaf(2.0)
    b = a + a
    c = b + b
    c.backward(np.ones(1))
    assert a.grad.data.tolist() == [4.0]


def test_diamond_graph() -> None:
    a = leaf(1.5)
    h = a * 2.0                          # an intermediate node feeding two branches that meet again
    ((h + 1.0) * (h - 1.0)).backward(np.ones(1))  # h^2 - 1 = 4a^2 - 1
    assert a.grad.data.tolist() == [8 * 1.5]


def test_leaf_gradients_accumulate_across_backward_calls() -> None:
    x = leaf(1.0, -2.0)
    for _ in range(3):
        (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, 3 * 2 * x.data)


def test_leaf_gradients_are_independent_writable_arrays() -> None:
    """Optimizers update .grad in place (weight decay, clipping): a leaf's gradient must not be a read-only
    broadcast view, nor share memory with another leaf's gradient or the caller's upstream gradient."""
    a, b, x = leaf(1.0, 2.0), leaf(3.0, 4.0), leaf(1.0, 2.0, 3.0)
    upstream = np.ones(2)
    (a + b).backward(upstream)  # Add's VJP hands the same gradient to both inputs
    x.sum().backward()          # Sum's VJP is a broadcast (zero-stride) view
    assert all(t.grad.data.flags.writeable for t in (a, b, x))
    assert not np.shares_memory(a.grad.data, b.grad.data)
    assert not np.shares_memory(a.grad.data, upstream) and not np.shares_memory(b.grad.data, upstream)


def test_retain_graph_allows_a_second_backward_and_then_buffers_are_freed() -> None:
    x = leaf(1.0, -2.0)
    y = (x * x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.data, 2 * 3 * x.data ** 2)
    with pytest.raises(RuntimeError) as failure:
        y.backward()
    assert "second time" in str(failure.value) and "retain_graph" in str(failure.value)


def test_grad_function_leaves_dot_grad_alone() -> None:
    x = leaf(1.0, -2.0, 0.5)
    h = x * x          # an intermediate, gradient asked for directly
    y = (h * x).sum()  # x^3
    gx, gh = grad(y, [x, h], retain_graph=True)
    np.testing.assert_array_equal(gx.data, 3 * x.data ** 2)  # total, through h too (as torch.autograd.grad)
    np.testing.assert_array_equal(gh.data, x.data)
    (full,) = grad(y, [x])
    np.testing.assert_array_equal(full.data, 3 * x.data ** 2)
    assert x.grad is None and h.grad is None


def test_grad_with_create_graph_gives_higher_derivatives() -> None:
    x = leaf(0.5, -1.0)
    (g,) = grad((x ** 4).sum(), [x], create_graph=True)
    (gg,) = grad(g.sum(), [x])
    np.testing.assert_allclose(gg.data, 12 * x.data ** 2, rtol=1e-15)


# ---- grad mode and detach -----------------------------------------------------------------------
def assert_not_recorded(t: Tensor) -> None:
    assert t.grad_fn is None and not t.requires_grad


def test_no_grad_context_records_nothing() -> None:
    x = leaf(1.0, 2.0)
    with no_grad():
        assert not is_grad_enabled()
        y = (x * 3.0).exp().sum()
        with enable_grad():
            z = x * 2.0
    assert_not_recorded(y)
    assert z.grad_fn is not None
    assert is_grad_enabled()


def test_no_grad_decorator_records_nothing_on_every_call() -> None:
    @no_grad()
    def double(t: Tensor) -> Tensor:
        return t * 2.0

    x = leaf(1.0)
    for _ in range(2):  # a decorator context must be re-entrant across calls
        assert_not_recorded(double(x))
        assert is_grad_enabled()


def test_no_grad_restores_mode_after_an_exception() -> None:
    @no_grad()
    def fail() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        fail()
    assert is_grad_enabled()
    with pytest.raises(KeyError), no_grad():
        raise KeyError("boom")
    assert is_grad_enabled()


def test_grad_mode_is_per_thread() -> None:
    """A no_grad() block in another thread (say, a data loader's) must not stop this thread's recording,
    and that thread must see its own mode: each starts with grad mode on, as in PyTorch."""
    inside, release = threading.Event(), threading.Event()
    seen: list[bool] = []

    def loader() -> None:
        with no_grad():
            seen.append(is_grad_enabled())
            inside.set()
            release.wait(5)

    worker = threading.Thread(target=loader)
    worker.start()
    try:
        assert inside.wait(5)
        assert is_grad_enabled()
        y = leaf(1.0, 2.0) * 3.0
        assert y.grad_fn is not None
        with no_grad():
            fresh: list[bool] = []
            t = threading.Thread(target=lambda: fresh.append(is_grad_enabled()))
            t.start()
            t.join()
        assert fresh == [True]
    finally:
        release.set()
        worker.join()
    assert seen == [False]


def test_detach_shares_data_and_stops_gradients() -> None:
    x = leaf(1.0, 3.0)
    d = x.detach()
    assert d.data is x.data
    assert_not_recorded(d)
    (x * d).sum().backward()  # d is a constant: the gradient is x, not 2x
    np.testing.assert_array_equal(x.grad.data, x.data)


# ---- dtypes -------------------------------------------------------------------------------------
@pytest.mark.parametrize("data, dtype, expected", [
    (np.array([1.0, 2.0]), None, np.float64),
    (np.array([1, 2]), None, np.int64),
    (np.float64(2.0), None, np.float64),
    (np.array([1.0], dtype=np.float32), None, np.float32),
    (1.5, None, np.float32),
    ([1.0, 2.5], None, np.float32),
    ([[1.0], [2.0]], None, np.float32),
    (3, None, np.int64),
    ([1, 2], None, np.int64),
    (1.5, np.float64, np.float64),
    ([1, 2], np.float32, np.float32),
    (np.array([1.0, 2.0]), np.float32, np.float32),
], ids=["ndarray-float64", "ndarray-int64", "numpy-float64-scalar", "ndarray-float32", "python-float",
        "list-of-floats", "nested-list-of-floats", "python-int", "list-of-ints", "dtype-override-float",
        "dtype-override-list-of-ints", "dtype-override-ndarray"])
def test_construction_dtype(data: object, dtype: object, expected: type) -> None:
    assert Tensor(data, dtype=dtype).dtype == expected


def test_ndarray_is_wrapped_without_copy() -> None:
    labels = np.array([3, 1, 4])
    t = Tensor(labels)
    assert t.numpy() is labels and t.dtype == np.int64


def test_requires_grad_on_integer_tensor_is_refused() -> None:
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(np.array([1, 2]), requires_grad=True)


def test_integer_tensor_to_a_fractional_power_is_float() -> None:
    np.testing.assert_array_equal((Tensor([4, 9]) ** 0.5).data, [2.0, 3.0])


def test_float32_cnn_step_stays_float32() -> None:
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 1, 8, 8)).astype(np.float32))
    w = Tensor(rng.standard_normal((3, 1, 3, 3)).astype(np.float32), requires_grad=True)
    b = Tensor(np.zeros(3, dtype=np.float32), requires_grad=True)
    h = F.max_pool2d(F.conv2d(x, w, b, padding=1).relu(), 2)
    h = F.avg_pool2d(h * 2.0 - 1, 2, count_include_pad=False)
    loss = F.cross_entropy(h.reshape(2, -1) / 3.0, np.array([0, 5]))
    gw, gb = grad(loss, [w, b])  # grad() does not cast, unlike backward() into .grad
    assert {loss.dtype, gw.dtype, gb.dtype} == {np.dtype(np.float32)}


# ---- printing and conversion --------------------------------------------------------------------
def test_repr_shows_dtype_and_op() -> None:
    x = leaf(1.0, 2.0)
    assert "dtype=float64" in repr(x) and "requires_grad=True" in repr(x)
    text = repr(x * 2.0)
    assert "dtype=float64" in text and "grad_fn=<Mul>" in text and "2." in text


def test_item_and_numpy() -> None:
    value = Tensor(np.array([[2.5]])).item()
    assert value == 2.5 and type(value) is float
    assert Tensor(np.array(7)).item() == 7
    with pytest.raises(ValueError, match=r"one-element.*\(2,\)"):
        Tensor(np.array([1.0, 2.0])).item()
    arr = np.arange(3.0)
    assert Tensor(arr).numpy() is arr


# ---- custom Functions and graph safety ----------------------------------------------------------
class TwoInputsOneGradient(Function):
    @staticmethod
    def forward(ctx: object, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a * b

    @staticmethod
    def backward(ctx: object, grad: Tensor) -> Tensor:
        return grad  # forgot b's gradient


class WrongShapeGradient(Function):
    @staticmethod
    def forward(ctx: object, a: np.ndarray) -> np.ndarray:
        return a.sum()

    @staticmethod
    def backward(ctx: object, grad: Tensor) -> Tensor:
        return grad  # should be expanded back to a's shape


def test_custom_function_with_wrong_number_of_gradients() -> None:
    y = TwoInputsOneGradient.apply(leaf(1.0, 2.0), leaf(3.0, 4.0)).sum()
    with pytest.raises(RuntimeError, match=r"TwoInputsOneGradient returned 1 gradients, expected .*\(2\)"):
        y.backward()


def test_custom_function_with_wrong_gradient_shape() -> None:
    y = WrongShapeGradient.apply(leaf(1.0, 2.0))
    with pytest.raises(RuntimeError, match=r"WrongShapeGradient.*shape \(\).*shape \(2,\)"):
        y.backward()


def test_in_place_change_of_a_saved_tensor_is_caught() -> None:
    a, b = leaf(1.0, 2.0), leaf(3.0, 4.0)
    y = (a * b).sum()  # Mul saved a and b
    a.data += 1.0
    a._bump_version()
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


def test_unchanged_saved_tensors_pass_the_version_check() -> None:
    a, b = leaf(1.0, 2.0), leaf(3.0, 4.0)
    (a * b).sum().backward()
    np.testing.assert_array_equal(a.grad.data, b.data)
