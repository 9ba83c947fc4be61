"""Bad input is refused with a clear message, before any op runs.

Each row calls a function with one bad argument and lists what the message must contain: the op's
name, the offending shapes or values, and what was expected. `op_log` (conftest.py) records every
`Function.apply`, so an empty log proves the error came before any work or graph recording.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor


def f64(*shape: int) -> Tensor:
    return Tensor(np.ones(shape), requires_grad=True)


def i64(*shape: int) -> Tensor:
    return Tensor(np.ones(shape, dtype=np.int64))


LOGITS = (3, 4)  # three samples, four classes

BAD_CALLS = [
    # conv2d
    pytest.param(lambda: F.conv2d(f64(2, 3, 5, 5), f64(4, 2, 3, 3)), ValueError,
                 ["conv2d", "3 channels", "(4, 2, 3, 3)", "expects 2"], id="conv2d-channel-mismatch"),
    pytest.param(lambda: F.conv2d(f64(1, 1, 4, 4), f64(1, 1, 5, 5)), ValueError,
                 ["conv2d", "kernel (5, 5)", "larger than the padded input (4, 4)"], id="conv2d-kernel-too-large"),
    pytest.param(lambda: F.conv2d(f64(1, 1, 4, 4), f64(1, 1, 3, 3), dilation=2), ValueError,
                 ["conv2d", "effective size (5, 5)", "padded input (4, 4)"], id="conv2d-dilated-kernel-too-large"),
    pytest.param(lambda: F.conv2d(f64(1, 1, 2, 2), f64(1, 1, 3, 3), padding=(1, 0)), ValueError,
                 ["conv2d", "padded input (4, 2)", "padding (1, 0)"], id="conv2d-kernel-too-large-after-padding"),
    pytest.param(lambda: F.conv2d(f64(3, 5, 5), f64(1, 3, 3, 3)), ValueError,
                 ["conv2d", "4-D input", "(N, C, H, W)", "(3, 5, 5)"], id="conv2d-3d-input"),
    pytest.param(lambda: F.conv2d(f64(1, 1, 5, 5), f64(3, 3, 3)), ValueError,
                 ["conv2d", "4-D weight", "(3, 3, 3)"], id="conv2d-3d-weight"),
    pytest.param(lambda: F.conv2d(f64(1, 1, 4, 4), f64(1, 1, 3, 3), stride=0), ValueError,
                 ["conv2d", "stride", ">= 1", "0"], id="conv2d-stride-0"),
    pytest.param(lambda: F.conv2d(f64(1, 1, 4, 4), f64(1, 1, 3, 3), dilation=(1, 0)), ValueError,
                 ["conv2d", "dilation", ">= 1", "(1, 0)"], id="conv2d-dilation-0"),
    pytest.param(lambda: F.conv2d(f64(1, 1, 4, 4), f64(1, 1, 3, 3), padding=-1), ValueError,
                 ["conv2d", "padding", ">= 0", "-1"], id="conv2d-negative-padding"),
    pytest.param(lambda: F.conv2d(f64(1, 4, 4, 4), f64(6, 2, 3, 3), groups=3), ValueError,
                 ["conv2d", "groups=3", "input channels (4)", "output channels (6)"], id="conv2d-groups-not-dividing"),
    pytest.param(lambda: F.conv2d(f64(1, 1, 4, 4), f64(2, 1, 3, 3), f64(3)), ValueError,
                 ["conv2d", "bias", "(2,)", "(3,)"], id="conv2d-bias-shape"),
    pytest.param(lambda: F.conv2d(i64(1, 1, 4, 4), f64(2, 1, 3, 3)), TypeError,
                 ["conv2d", "input", "floating point", "int64"], id="conv2d-int-input"),
    pytest.param(lambda: F.conv2d(f64(1, 1, 4, 4), i64(2, 1, 3, 3)), TypeError,
                 ["conv2d", "weight", "floating point", "int64"], id="conv2d-int-weight"),
    # pools
    pytest.param(lambda: F.max_pool2d(f64(1, 1, 6, 6), 3, padding=2), ValueError,
                 ["max_pool2d", "padding (2, 2)", "half the kernel size (3, 3)"], id="max_pool2d-padding-too-large"),
    pytest.param(lambda: F.avg_pool2d(f64(1, 1, 6, 6), 2, padding=(0, 2)), ValueError,
                 ["avg_pool2d", "padding (0, 2)", "half the kernel size (2, 2)"], id="avg_pool2d-padding-too-large"),
    pytest.param(lambda: F.max_pool2d(f64(1, 1, 2, 2), 3), ValueError,
                 ["max_pool2d", "kernel (3, 3)", "padded input (2, 2)"], id="max_pool2d-kernel-too-large"),
    pytest.param(lambda: F.avg_pool2d(i64(1, 1, 4, 4), 2), TypeError,
                 ["avg_pool2d", "floating point", "int64"], id="avg_pool2d-int-input"),
    pytest.param(lambda: F.max_pool2d(f64(4, 4), 2), ValueError,
                 ["max_pool2d", "4-D input", "(4, 4)"], id="max_pool2d-2d-input"),
    # matmul, linear, reshape
    pytest.param(lambda: f64(2, 3) @ f64(4, 5), ValueError,
                 ["matmul", "(2, 3)", "(4, 5)", "last dimension of the first (3)", "second-to-last", "(4)"],
                 id="matmul-inner-mismatch"),
    pytest.param(lambda: f64(3) @ f64(4), ValueError, ["matmul", "(3,)", "(4,)"], id="matmul-1d-mismatch"),
    pytest.param(lambda: f64(2, 3, 4) @ f64(3, 4, 5), ValueError,
                 ["matmul", "batch dimensions", "(2, 3, 4)", "(3, 4, 5)"], id="matmul-batch-mismatch"),
    pytest.param(lambda: F.linear(f64(2, 3), f64(4, 5)), ValueError,
                 ["linear", "(2, 3)", "(out_features, 3)", "(4, 5)"], id="linear-weight-shape"),
    pytest.param(lambda: F.linear(f64(2, 3), f64(4, 3), f64(3)), ValueError,
                 ["linear", "bias", "(4,)", "(3,)"], id="linear-bias-shape"),
    pytest.param(lambda: f64(2, 3).reshape(4, 2), ValueError,
                 ["reshape", "(2, 3)", "6 elements", "(4, 2)"], id="reshape-wrong-size"),
    pytest.param(lambda: f64(2, 3).reshape(-1, 4), ValueError,
                 ["reshape", "(2, 3)", "(-1, 4)"], id="reshape-wildcard-does-not-divide"),
    # losses
    pytest.param(lambda: F.nll_loss(f64(*LOGITS), np.array([0, 4, -1])), ValueError,
                 ["nll_loss", "[0, 4)", "[4, -1]"], id="nll_loss-target-out-of-range"),
    pytest.param(lambda: F.nll_loss(f64(*LOGITS), np.array([0.0, 1.0, 2.0])), TypeError,
                 ["nll_loss", "integer", "float64"], id="nll_loss-float-target"),
    pytest.param(lambda: F.nll_loss(f64(*LOGITS), np.array([[0], [1], [2]])), ValueError,
                 ["nll_loss", "(3,)", "(3, 1)"], id="nll_loss-target-shape"),
    pytest.param(lambda: F.nll_loss(f64(*LOGITS), np.array([0, 1, 2]), reduction="avg"), ValueError,
                 ["nll_loss", "'mean', 'sum' or 'none'", "'avg'"], id="nll_loss-unknown-reduction"),
    pytest.param(lambda: F.nll_loss(f64(12), np.array([0])), ValueError,
                 ["nll_loss", "(N, classes)", "(12,)"], id="nll_loss-1d-input"),
    # cross_entropy must check its target before computing log_softmax, and say it is cross_entropy
    pytest.param(lambda: F.cross_entropy(f64(*LOGITS), np.array([0, 4, 1])), ValueError,
                 ["cross_entropy", "[0, 4)", "[4]"], id="cross_entropy-target-out-of-range"),
    pytest.param(lambda: F.cross_entropy(f64(*LOGITS), np.array([0.0, 1.0, 2.0])), TypeError,
                 ["cross_entropy", "integer", "float64"], id="cross_entropy-float-target"),
    # Tensor construction
    pytest.param(lambda: Tensor(np.array([1, 2]), requires_grad=True), TypeError,
                 ["requires_grad", "floating-point", "int64"], id="requires_grad-on-int"),
    pytest.param(lambda: Tensor("abc"), TypeError, ["Tensor", "unsupported dtype", "str", "floating-point"],
                 id="tensor-from-string"),
    pytest.param(lambda: Tensor(["a", "b"]), TypeError, ["Tensor", "unsupported dtype", "floating-point"],
                 id="tensor-from-list-of-strings"),
    pytest.param(lambda: Tensor(np.array([1.0, None], dtype=object)), TypeError,
                 ["Tensor", "unsupported dtype object", "floating-point"], id="tensor-from-object-array"),
    pytest.param(lambda: Tensor([[1.0, 2.0], [3.0]]), ValueError,
                 ["Tensor", "list", "rectangular nested list"], id="tensor-from-ragged-list"),
]


@pytest.mark.parametrize("call, error, fragments", BAD_CALLS)
def test_bad_input_is_refused_before_any_op_runs(call: Callable[[], object], error: type[Exception],
                                                 fragments: list[str], op_log: list[str]) -> None:
    with pytest.raises(error) as failure:
        call()
    message = str(failure.value)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"the message {message!r} does not mention {missing}"
    assert op_log == [], f"ops ran before the error was raised: {op_log}"


# ---- backward ------------------------------------------------------------------------------------
def graph() -> tuple[Tensor, Tensor]:
    x = f64(2, 3)
    return x, x * 2.0


def test_backward_on_non_scalar_needs_grad_and_leaves_the_graph_usable(op_log: list[str]) -> None:
    x, y = graph()
    op_log.clear()
    with pytest.raises(RuntimeError) as failure:
        y.backward()
    message = str(failure.value)
    assert "backward" in message and "scalar" in message and "(2, 3)" in message and "grad=" in message
    assert op_log == [] and x.grad is None
    y.backward(np.ones((2, 3)))  # nothing was freed by the refused call
    np.testing.assert_array_equal(x.grad.data, np.full((2, 3), 2.0))


def test_backward_grad_of_the_wrong_shape(op_log: list[str]) -> None:
    x, y = graph()
    op_log.clear()
    with pytest.raises(ValueError, match=r"backward: grad has shape \(3,\) but the output has shape \(2, 3\)"):
        y.backward(np.ones(3))
    assert op_log == [] and x.grad is None


def test_backward_without_a_graph() -> None:
    with pytest.raises(RuntimeError, match=r"backward: the tensor does not require grad.*no_grad\(\)"):
        Tensor(np.ones(3)).sum().backward()
