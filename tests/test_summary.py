"""Tests for tinygrad_cnn.tools.summary (count_parameters, summary, receptive_field) and `tinygrad-cnn summary`."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn, rng
from tinygrad_cnn.cli import main
from tinygrad_cnn.models import lenet5
from tinygrad_cnn.tools.summary import count_parameters, receptive_field, summary


def conv_params(c_in: int, c_out: int, k: int) -> int:
    return k * k * c_in * c_out + c_out


def linear_params(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


# LeNet-5 by hand: 28 -conv5-> 24 -pool2-> 12 -conv5-> 8 -pool2-> 4, and 16 * 4 * 4 = 256 features.
LENET_SHAPES = {"conv1": (1, 6, 24, 24), "pool1": (1, 6, 12, 12), "relu1": (1, 6, 12, 12),
                "conv2": (1, 16, 8, 8), "pool2": (1, 16, 4, 4), "relu2": (1, 16, 4, 4), "flatten": (1, 256),
                "fc1": (1, 120), "relu3": (1, 120), "fc2": (1, 84), "relu4": (1, 84), "fc3": (1, 10)}
LENET_PARAMS = {"conv1": conv_params(1, 6, 5), "conv2": conv_params(6, 16, 5), "fc1": linear_params(256, 120),
                "fc2": linear_params(120, 84), "fc3": linear_params(84, 10)}
# One multiply-add per weight per output position: C_out * H * W * (C_in * k * k) for a conv, in * out for a linear.
LENET_MACS = {"conv1": 6 * 24 * 24 * (1 * 5 * 5), "conv2": 16 * 8 * 8 * (6 * 5 * 5),
              "fc1": 256 * 120, "fc2": 120 * 84, "fc3": 84 * 10}


def test_count_parameters() -> None:
    model = lenet5()
    assert count_parameters(model) == sum(LENET_PARAMS.values()) == 44_426
    model.fc3.weight.requires_grad = False
    assert count_parameters(model, trainable_only=True) == 44_426 - 84 * 10
    assert count_parameters(model) == 44_426


def test_lenet_summary_shapes_params_and_macs() -> None:
    s = summary(lenet5(), (1, 28, 28))
    assert [r.name for r in s.rows] == list(LENET_SHAPES)
    assert {r.name: r.output_shape for r in s.rows} == LENET_SHAPES
    assert {r.name: r.params for r in s.rows if r.params} == LENET_PARAMS
    assert {r.name: r.macs for r in s.rows if r.macs} == LENET_MACS
    assert s.total_macs == sum(LENET_MACS.values()) == 281_640  # the figure in PERFORMANCE_NOTES.md
    assert s.total_params == s.trainable_params == sum(r.params for r in s.rows) == count_parameters(lenet5())
    assert s.input_shape == (1, 1, 28, 28) and s.input_bytes == 28 * 28 * 4
    assert s.param_bytes == 44_426 * 4
    assert s.activation_bytes == 4 * sum(int(np.prod(shape)) for shape in LENET_SHAPES.values())
    assert [r.type for r in s.rows][:3] == ["Conv2d", "MaxPool2d", "ReLU"]


def test_summary_of_the_notebook_layers() -> None:
    for (size, c_in, c_out, stride), out in {(144, 3, 6, 1): 142, (60, 24, 48, 1): 58, (20, 10, 20, 2): 9}.items():
        s = summary(nn.Conv2d(c_in, c_out, 3, stride), (c_in, size, size))
        (row,) = s.rows
        assert row.output_shape == (1, c_out, out, out)
        assert row.params == s.total_params == conv_params(c_in, c_out, 3)
        assert row.macs == c_out * out * out * c_in * 9


def test_summary_table_text() -> None:
    text = str(summary(lenet5(), (1, 28, 28)))
    lines = text.splitlines()
    conv1 = next(line for line in lines if line.startswith("conv1 (Conv2d)"))
    assert conv1.split() == ["conv1", "(Conv2d)", "[1,", "6,", "24,", "24]", "156", "86,400"]
    relu1 = next(line for line in lines if line.startswith("relu1 (ReLU)"))
    assert relu1.split()[-2:] == ["--", "--"]
    for expected in ("Total params: 44,426", "Trainable params: 44,426", "Non-trainable params: 0",
                     "Total mult-adds: 281,640 (0.28 M)", f"Params size (MB): {44_426 * 4 / 1e6:.2f}"):
        assert expected in lines


def test_summary_counts_trainable_and_dtype() -> None:
    model = lenet5()
    model.conv1.weight.requires_grad = False
    s = summary(model.double(), (1, 28, 28), dtype=np.float64)
    assert s.trainable_params == 44_426 - 6 * 25 and s.total_params == 44_426
    assert s.activation_bytes == 8 * sum(int(np.prod(shape)) for shape in LENET_SHAPES.values())
    assert "Non-trainable params: 150" in str(s)


class Twice(nn.Module):
    """A shared layer used twice, a layer never called, and a parameter owned by a container."""

    def __init__(self) -> None:
        self.scale = nn.Parameter(np.ones(3, dtype=np.float32))
        self.fc = nn.Linear(3, 3)
        self.unused = nn.Linear(3, 5)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.fc(x * self.scale))


def test_summary_shared_uncalled_and_container_parameters() -> None:
    s = summary(Twice(), (3,))
    assert [(r.name, r.output_shape) for r in s.rows] == [("fc", (1, 3)), ("fc", (1, 3)), ("", (1, 3)),
                                                          ("unused", None)]
    assert [r.params for r in s.rows] == [12, 0, 3, 20]  # the shared weights count once
    assert [r.macs for r in s.rows] == [9, 9, 0, 0]       # but run twice
    assert s.total_params == sum(r.params for r in s.rows) == count_parameters(Twice())


def test_summary_leaves_the_model_as_it_was() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    model.train()
    model[2].training = False
    state = rng.get_rng_state()
    summary(model, (4,))
    assert rng.get_rng_state() == state  # ran in eval mode: dropout drew no random numbers
    assert [m.training for m in model.modules()] == [True, True, True, False]
    assert all("forward" not in vars(m) for m in model.modules())
    with pytest.raises(RuntimeError):
        summary(model, (5,))
    assert all("forward" not in vars(m) for m in model.modules())  # restored after an error too
    assert [m.training for m in model.modules()] == [True, True, True, False]


def test_summary_names_the_failing_layer() -> None:
    with pytest.raises(RuntimeError, match=r"summary: running Sequential on a zero input of shape \(1, 3, 28, 28\) "
                                           r"failed in layer 'conv1' \(Conv2d\) with ValueError: conv2d: input has 3 "
                                           r"channels"):
        summary(lenet5(), (3, 28, 28))
    with pytest.raises(RuntimeError, match=r"failed in layer 'pool2' \(MaxPool2d\)"):
        summary(lenet5(), (1, 14, 14))  # 14 -> 10 -> 5 -> 1: too small for the second pool


@pytest.mark.parametrize("shape", [(), (1, 0, 28), (1, 28.0, 28), "1x28x28"])
def test_summary_rejects_bad_input_shapes(shape: object) -> None:
    with pytest.raises(ValueError, match=r"summary: input_shape must be a non-empty sequence of positive ints"):
        summary(lenet5(), shape)


# ---- receptive field ----------------------------------------------------------------------------------

def conv_stack(*kernels: int, channels: int = 4, bias: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k in kernels:
        layers += [nn.Conv2d(channels, channels, k, bias=bias), nn.ReLU()]
    return nn.Sequential(*layers)


def test_three_3x3_convs_see_as_much_as_one_7x7_with_fewer_parameters() -> None:
    stack, single = conv_stack(3, 3, 3), conv_stack(7)
    assert receptive_field(stack).rows[-1].receptive_field == (7, 7)
    assert [r.receptive_field for r in receptive_field(stack).rows] == [(3, 3), (5, 5), (7, 7)]
    assert receptive_field(single).rows[-1].receptive_field == (7, 7)
    c = 64
    assert count_parameters(conv_stack(3, 3, 3, channels=c, bias=False)) == 27 * c * c
    assert count_parameters(conv_stack(7, channels=c, bias=False)) == 49 * c * c
    # and at the same output size (padding 1 per 3x3, 3 for the 7x7) the multiply-adds are in the same ratio
    padded_stack = nn.Sequential(*[nn.Conv2d(c, c, 3, padding=1, bias=False) for _ in range(3)])
    ratio = summary(padded_stack, (c, 16, 16)).total_macs / summary(nn.Conv2d(c, c, 7, padding=3, bias=False),
                                                                      (c, 16, 16)).total_macs
    assert ratio == pytest.approx(27 / 49)


def test_lenet_receptive_field_by_hand() -> None:
    # r grows by (k - 1) * jump, jump multiplies by the stride:
    # conv1 5x5: r = 1 + 4 * 1 = 5, j = 1; pool1 2/2: r = 5 + 1 * 1 = 6, j = 2;
    # conv2 5x5: r = 6 + 4 * 2 = 14, j = 2; pool2 2/2: r = 14 + 1 * 2 = 16, j = 4.
    table = receptive_field(lenet5(), 28)
    assert [(r.name, r.receptive_field[0], r.jump[0], r.output_size) for r in table.rows] == [
        ("conv1", 5, 1, (24, 24)), ("pool1", 6, 2, (12, 12)), ("conv2", 14, 2, (8, 8)), ("pool2", 16, 4, (4, 4))]
    assert "pool2 (MaxPool2d)   4x4           16x16             4x4" in str(table)


def test_receptive_field_matches_the_gradient_footprint() -> None:
    """The input pixels that can change one output element: with positive weights and average pooling every
    path is active, so they are exactly where d(output)/d(input) is non-zero."""
    model = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 2, 3, stride=2)), ("pool", nn.AvgPool2d(3, stride=2, padding=1)),
        ("conv2", nn.Conv2d(2, 2, (3, 2), dilation=(2, 1))), ("relu", nn.ReLU()), ("pool2", nn.AvgPool2d(2)),
    ]))
    for p in model.parameters():
        p.data[...] = 1.0
    x = Tensor(np.ones((1, 1, 64, 64)), requires_grad=True)
    model.double()
    y = model(x)
    y[0, 0, 1, 1].backward()
    rows, cols = np.nonzero(x.grad.data[0, 0])
    footprint = (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
    table = receptive_field(model, 64)
    assert table.rows[-1].receptive_field == footprint
    assert table.rows[-1].output_size == y.shape[2:]
    assert table.rows[-1].jump == (2 * 2 * 2, 2 * 2 * 2)


def test_receptive_field_dilation_and_adaptive_pool() -> None:
    assert receptive_field(nn.Conv2d(1, 1, 3, dilation=2)).rows[0].receptive_field == (5, 5)
    model = nn.Sequential(nn.Conv2d(1, 1, 3), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4, 1))
    table = receptive_field(model, 10)  # 10 -> 8, then adaptive 8 -> 2 is a 4x4 pool at stride 4
    assert [(r.type, r.receptive_field, r.jump, r.output_size) for r in table.rows] == [
        ("Conv2d", (3, 3), (1, 1), (8, 8)), ("AdaptiveAvgPool2d", (6, 6), (4, 4), (2, 2))]
    with pytest.raises(ValueError, match=r"layer '1' \(AdaptiveAvgPool2d to \(2, 2\)\).*got input size None"):
        receptive_field(model)
    with pytest.raises(ValueError, match=r"got input size \(7, 7\)"):
        receptive_field(model, 9)


def test_receptive_field_rejects_unknown_layers() -> None:
    with pytest.raises(ValueError, match=r"receptive_field: don't know how layer '0' \(LogSoftmax\) maps"):
        receptive_field(nn.Sequential(nn.LogSoftmax(1), nn.Conv2d(1, 1, 3)))


# ---- CLI ------------------------------------------------------------------------------------------------

def test_cli_summary_lenet(capsys: pytest.CaptureFixture) -> None:
    assert main(["summary", "lenet5", "--receptive-field"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lenet5, input [1, 1, 28, 28]")
    for expected in ("Total params: 44,426", "Total mult-adds: 281,640 (0.28 M)", "pool2 (MaxPool2d)   4x4"):
        assert expected in out
    assert main(["summary", "lenet5", "--input", "1X28x28"]) == 0
    table_only = out.split("Receptive field of one output element")[0]
    assert capsys.readouterr().out == table_only


def test_cli_summary_errors(capsys: pytest.CaptureFixture) -> None:
    assert main(["summary", "lenet5", "--input", "3x28x28"]) == 2
    assert "tinygrad-cnn summary: error: summary: running Sequential" in capsys.readouterr().err
    assert main(["summary", "lenet5", "--input", "1x32x32"]) == 2  # 32 -> 28 -> 14 -> 10 -> 5: 400 features
    assert "failed in layer 'fc1' (Linear) with ValueError: linear: input of shape (1, 400)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["summary", "lenet5", "--input", "28x28"])
    assert "expected CxHxW with three positive ints" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["summary", "resnet50"])
