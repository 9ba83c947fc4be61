"""Adversarial numerics against PyTorch: dtypes (float16, float32, float64, ints, promotion, mixed-dtype
layers), and values at the extremes (inf, nan, huge, tiny, subnormal, signed zeros) through every
elementwise op, reduction and loss, forward and gradient."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinygrad_cnn as tg
import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional

# ---- a float64 input into a float32 layer is refused, as PyTorch (issue 14.8) ---------------------------------

MIXED_LAYERS = {
    "conv2d": (lambda x, w: F.conv2d(x, w), lambda x, w: TF.conv2d(x, w), (1, 2, 5, 5), (3, 2, 3, 3)),
    "conv_transpose2d": (lambda x, w: F.conv_transpose2d(x, w), lambda x, w: TF.conv_transpose2d(x, w),
                         (1, 2, 5, 5), (2, 3, 3, 3)),
    "linear": (lambda x, w: F.linear(x, w), lambda x, w: TF.linear(x, w), (4, 3), (2, 3)),
    "matmul": (lambda x, w: x @ w, lambda x, w: x @ w, (4, 3), (3, 2)),
}


@pytest.mark.parametrize("x_dtype, w_dtype", [(np.float64, np.float32), (np.float32, np.float64),
                                              (np.float16, np.float32)])
@pytest.mark.parametrize("name", list(MIXED_LAYERS))
def test_mixed_dtypes_into_a_layer_raise_as_in_pytorch(name: str, x_dtype: type, w_dtype: type) -> None:
    ours, theirs, x_shape, w_shape = MIXED_LAYERS[name]
    x, w = np.ones(x_shape, dtype=x_dtype), np.ones(w_shape, dtype=w_dtype)
    with pytest.raises(RuntimeError):
        theirs(torch.tensor(x), torch.tensor(w))
    with pytest.raises(TypeError) as failure:
        ours(Tensor(x), Tensor(w, requires_grad=True))
    message = str(failure.value)
    assert np.dtype(x_dtype).name in message and np.dtype(w_dtype).name in message
    assert message.startswith(f"{name}: ")


def test_a_float64_batch_into_a_float32_conv_model_names_the_op_and_both_dtypes() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 3 * 3, 2))
    with pytest.raises(TypeError, match=r"conv2d: input dtype float64 and weight dtype float32"):
        model(Tensor(np.zeros((1, 1, 5, 5))))
    assert model(Tensor(np.zeros((1, 1, 5, 5), dtype=np.float32))).dtype == np.float32


# ---- float16 reductions accumulate in float32 (issue 14.8) -----------------------------------------------------

@pytest.mark.parametrize("n", [1, 2048, 2049, 70_000])
def test_float16_mean_of_ones_is_one(n: int) -> None:
    x = np.ones(n, dtype=np.float16)
    ours = Tensor(x).mean()
    theirs = torch.tensor(x).mean()
    assert ours.dtype == np.float16
    np.testing.assert_array_equal(ours.data, theirs.numpy())


def test_float16_mean_gradient_matches_pytorch() -> None:
    x = np.ones((70_000,), dtype=np.float16)
    ours, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours.mean().backward()
    theirs.mean().backward()
    assert ours.grad.dtype == np.float16
    np.testing.assert_array_equal(ours.grad.data, theirs.grad.numpy())


def test_warnings_are_quiet_module_import() -> None:
    """Sanity: the module imports with no warnings filter leaking (numerics tests rely on errstate)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tg.Tensor(np.float32(1.0)) + 1.0
