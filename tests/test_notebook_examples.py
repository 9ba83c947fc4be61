"""The seed notebook's worked examples as regression tests.

Every expected value is computed here from the definitions with explicit loops over output positions,
never taken from the code under test.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, gradcheck, gradgradcheck

X = np.arange(1, 17, dtype=np.float64).reshape(1, 1, 4, 4)
W = np.array([[[[0, 0, 0], [0, 1, 0], [0, -1, 0]]],      # pixel minus the one below it: -4 on this ramp
              [[[0, 0, 0], [0, -1, 1], [0, 0, 0]]]],     # right neighbour minus pixel: +1
             dtype=np.float64)                            # (2, 1, 3, 3)
B = np.zeros(2)
G_CONV = np.array([[[[-4, -4], [10, 11]], [[1, -7], [1, -11]]]], dtype=np.float64)  # (1, 2, 2, 2)
G_POOL = np.array([[[[1, 2], [3, 4]]]], dtype=np.float64)                            # (1, 1, 2, 2)


def conv_by_definition(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Y[o, i, j] = sum_{a, b} W[o, a, b] X[i + a, j + b] (one image, one input channel, stride 1)."""
    k = w.shape[-1]
    out = x.shape[-1] - k + 1
    y = np.zeros((w.shape[0], out, out))
    for o, i, j in np.ndindex(y.shape):
        y[o, i, j] = (w[o, 0] * x[0, 0, i:i + k, j:j + k]).sum()
    return y[None]


def conv_grads_by_definition(x: np.ndarray, w: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, ...]:
    """dX[i+a, j+b] += W[o, a, b] G[o, i, j];  dW[o, a, b] += G[o, i, j] X[i+a, j+b];  db[o] = sum G[o]."""
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    k = w.shape[-1]
    for o, i, j in np.ndindex(g.shape[1:]):
        for a, b in np.ndindex(k, k):
            dx[0, 0, i + a, j + b] += w[o, 0, a, b] * g[0, o, i, j]
            dw[o, 0, a, b] += g[0, o, i, j] * x[0, 0, i + a, j + b]
    return dx, dw, g.sum(axis=(0, 2, 3))


def pool_by_definition(x: np.ndarray, g: np.ndarray, reduce: str) -> tuple[np.ndarray, np.ndarray]:
    """2x2 windows, stride 2: forward, and the backward that routes (max) or spreads (mean) each G."""
    y, dx = np.zeros_like(g), np.zeros_like(x)
    for i, j in np.ndindex(g.shape[2:]):
        window = x[0, 0, 2 * i:2 * i + 2, 2 * j:2 * j + 2]
        if reduce == "max":
            y[0, 0, i, j] = window.max()
            a, b = np.unravel_index(window.argmax(), window.shape)
            dx[0, 0, 2 * i + a, 2 * j + b] += g[0, 0, i, j]
        else:
            y[0, 0, i, j] = window.mean()
            dx[0, 0, 2 * i:2 * i + 2, 2 * j:2 * j + 2] += g[0, 0, i, j] / 4
    return y, dx


def conv_with_grads() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    x, w, b = (Tensor(a.copy(), requires_grad=True) for a in (X, W, B))
    y = F.conv2d(x, w, b)
    y.backward(G_CONV)
    return y, x, w, b


def test_conv_forward() -> None:
    y, *_ = conv_with_grads()
    expected = conv_by_definition(X, W)
    assert (expected[0, 0] == -4).all() and (expected[0, 1] == 1).all()  # the notebook's stated result
    np.testing.assert_array_equal(y.data, expected)


def test_conv_backward() -> None:
    # The notebook's hand-computed "expected dX" is wrong; the loop over output positions above applies
    # the definition dX[i+a, j+b] += W[o, a, b] G[o, i, j] directly, and is the right value.
    _, x, w, b = conv_with_grads()
    dx, dw, db = conv_grads_by_definition(X, W, G_CONV)
    np.testing.assert_array_equal(x.grad.data, dx)
    np.testing.assert_array_equal(w.grad.data, dw)
    np.testing.assert_array_equal(b.grad.data, db)


def test_conv_backward_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    _, x, w, b = conv_with_grads()
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (X, W, B))
    torch.nn.functional.conv2d(xt, wt, bt).backward(torch.tensor(G_CONV))
    for ours, theirs in ((x, xt), (w, wt), (b, bt)):
        np.testing.assert_array_equal(ours.grad.data, theirs.grad.numpy())


def test_conv_gradcheck() -> None:
    inputs = [Tensor(a.copy(), requires_grad=True) for a in (X, W, B)]
    assert gradcheck(F.conv2d, inputs)
    assert gradgradcheck(F.conv2d, inputs)


@pytest.mark.parametrize("reduce, pool, expected_forward", [
    ("max", F.max_pool2d, [[6, 8], [14, 16]]),
    ("mean", F.avg_pool2d, [[3.5, 5.5], [11.5, 13.5]]),
])
def test_pool(reduce: str, pool: Callable[..., Tensor], expected_forward: list) -> None:
    y_def, dx_def = pool_by_definition(X, G_POOL, reduce)
    np.testing.assert_array_equal(y_def[0, 0], expected_forward)  # the notebook's stated values
    x = Tensor(X.copy(), requires_grad=True)
    y = pool(x, 2, 2)
    y.backward(G_POOL)
    np.testing.assert_array_equal(y.data, y_def)
    np.testing.assert_array_equal(x.grad.data, dx_def)
    assert gradcheck(lambda x: pool(x, 2, 2), [Tensor(X.copy(), requires_grad=True)])  # no ties in X
