"""The PyTorch-compatible layers, losses and functional forms against PyTorch itself: the same weights give
the same outputs, input and parameter gradients (float32 and float64), second derivatives (float64),
running statistics, state_dict keys and errors. Finite-difference checks of the same functions are cases of
the op catalogue (tinygrad_cnn/tools/opsuite.py, run by test_ops_gradcheck.py)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import helpers
import numpy as np
import pytest
import tinygrad_cnn.nn.functional as F
from helpers import Inputs

import tinygrad_cnn
from tinygrad_cnn import Tensor, gradcheck, gradgradcheck, nn, rng

torch = pytest.importorskip("torch")
TF = torch.nn.functional
TOL = {np.float32: {"rtol": 1e-5, "atol": 1e-6}, np.float64: {"rtol": 1e-10, "atol": 1e-12}}


def test_nn_functional_is_the_functional_module() -> None:
    import tinygrad_cnn.nn.functional as nnf

    import tinygrad_cnn.functional
    from tinygrad_cnn.nn import functional
    assert nnf is tinygrad_cnn.functional is functional is tinygrad_cnn.nn.functional


# ---- layers: same weights, same outputs and gradients ----------------------------------------------------
# id -> (class name, args, kwargs, input shape); the same constructor call builds both libraries' layer.
LAYERS = {
    "conv-same-even-kernel": ("Conv2d", (3, 4, (2, 4)), dict(padding="same"), (2, 3, 5, 6)),
    "conv-same-dilated": ("Conv2d", (3, 4, 3), dict(padding="same", dilation=2, bias=False), (2, 3, 6, 5)),
    "conv-valid": ("Conv2d", (3, 2, 3), dict(padding="valid"), (1, 3, 5, 5)),
    "conv-reflect": ("Conv2d", (2, 3, 3), dict(padding=1, padding_mode="reflect"), (2, 2, 4, 5)),
    "conv-replicate-same": ("Conv2d", (2, 3, 4), dict(padding="same", padding_mode="replicate"), (1, 2, 5, 5)),
    "conv-circular": ("Conv2d", (2, 2, 3), dict(padding=(1, 2), padding_mode="circular"), (1, 2, 4, 5)),
    "convT": ("ConvTranspose2d", (4, 3, 3), {}, (2, 4, 3, 4)),
    "convT-stride-pad-outpad": ("ConvTranspose2d", (4, 6, (3, 2)), dict(stride=(2, 3), padding=1,
                                                                       output_padding=(1, 2)), (2, 4, 3, 3)),
    "convT-groups-dilation-no-bias": ("ConvTranspose2d", (4, 6, 3), dict(stride=2, groups=2, dilation=2,
                                                                        output_padding=1, bias=False), (1, 4, 3, 2)),
    "batchnorm2d": ("BatchNorm2d", (3,), {}, (4, 3, 2, 3)),
    "batchnorm2d-no-affine": ("BatchNorm2d", (3,), dict(affine=False, momentum=None), (2, 3, 2, 2)),
    "batchnorm2d-no-running-stats": ("BatchNorm2d", (3,), dict(track_running_stats=False, eps=1e-3), (2, 3, 2, 2)),
    "batchnorm1d-2d": ("BatchNorm1d", (5,), {}, (6, 5)),
    "batchnorm1d-3d": ("BatchNorm1d", (4,), dict(momentum=0.3), (3, 4, 5)),
    "maxpool-ceil": ("MaxPool2d", (3, 2), dict(ceil_mode=True), (2, 3, 6, 6)),
    "maxpool-ceil-pad": ("MaxPool2d", (3, 2, 1), dict(ceil_mode=True), (1, 2, 6, 5)),
    "avgpool-ceil": ("AvgPool2d", (3, 2), dict(ceil_mode=True), (2, 3, 6, 6)),
    "avgpool-ceil-pad-exclude": ("AvgPool2d", (3, 2, 1), dict(ceil_mode=True, count_include_pad=False), (1, 2, 6, 5)),
    "avgpool-divisor": ("AvgPool2d", (2,), dict(divisor_override=3), (1, 2, 4, 5)),
    "adaptive-avgpool": ("AdaptiveAvgPool2d", ((2, 3),), {}, (2, 3, 5, 7)),
    "relu": ("ReLU", (), dict(inplace=False), (3, 4)),
    "leaky-relu": ("LeakyReLU", (0.1,), {}, (3, 4)),
    "sigmoid": ("Sigmoid", (), {}, (3, 4)),
    "tanh": ("Tanh", (), {}, (3, 4)),
    "gelu": ("GELU", (), {}, (3, 4)),
    "gelu-tanh": ("GELU", (), dict(approximate="tanh"), (3, 4)),
    "hardtanh": ("Hardtanh", (-2, 3), {}, (3, 4)),
    "relu6": ("ReLU6", (), {}, (3, 4)),
    "zero-pad": ("ZeroPad2d", (1,), {}, (1, 2, 3, 4)),
    "constant-pad": ("ConstantPad2d", ((1, 2, 0, 1), 0.5), {}, (1, 2, 3, 4)),
    "reflection-pad": ("ReflectionPad2d", ((2, 1, 1, 2),), {}, (1, 2, 3, 4)),
    "replication-pad": ("ReplicationPad2d", (2,), {}, (1, 2, 3, 4)),
    "circular-pad": ("CircularPad2d", ((1, 0, 2, 1),), {}, (1, 2, 3, 4)),
    "silu": ("SiLU", (), {}, (3, 4)),
    "elu": ("ELU", (0.7,), {}, (3, 4)),
    "softplus": ("Softplus", (2.0, 3.0), {}, (3, 4)),
    "upsample-scale": ("Upsample", (), dict(scale_factor=2), (1, 2, 3, 4)),
    "upsample-size": ("Upsample", ((5, 3),), {}, (1, 2, 3, 4)),
    "softmax": ("Softmax", (), dict(dim=1), (2, 3, 4)),
    "log-softmax": ("LogSoftmax", (), dict(dim=-1), (2, 3, 4)),
    "flatten-middle": ("Flatten", (1, 2), {}, (2, 3, 4, 5)),
    "unflatten": ("Unflatten", (1, (2, -1)), {}, (3, 8)),
    "identity": ("Identity", (), {}, (3, 4)),
    "dropout-eval-or-p0": ("Dropout", (0.0,), {}, (3, 4)),
}


def pair(case_id: str, dtype: type) -> tuple[Any, Any, Tensor, Any]:
    """Our layer and torch's, with our (seeded) parameters loaded into torch's, and one input for both."""
    name, args, kwargs, shape = LAYERS[case_id]
    rng.manual_seed(0)
    ours = getattr(nn, name)(*args, **kwargs).to(dtype)
    theirs = getattr(torch.nn, name)(*args, **kwargs).to(torch.float64 if dtype == np.float64 else torch.float32)
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})
    x = Inputs(1).randn(*shape).astype(dtype) * 2
    return ours, theirs, Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case_id", LAYERS)
def test_layer_matches_torch(case_id: str, dtype: type) -> None:
    ours, theirs, x, tx = pair(case_id, dtype)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    for step in range(2):  # twice: BatchNorm's running statistics move, and must move the same way
        out, tout = ours(x), theirs(tx)
        assert out.dtype == dtype and out.shape == tuple(tout.shape)
        np.testing.assert_allclose(out.data, tout.detach().numpy(), **TOL[dtype], err_msg="forward")
        upstream = Inputs(2 + step).randn(*out.shape).astype(dtype)
        x.grad, tx.grad = None, None
        out.backward(upstream)
        tout.backward(torch.from_numpy(upstream))
        np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), **TOL[dtype], err_msg="input gradient")
        ours_params = dict(ours.named_parameters())
        for name, p in theirs.named_parameters():
            np.testing.assert_allclose(ours_params[name].grad.data, p.grad.numpy(), **TOL[dtype], err_msg=name)
            ours_params[name].grad, p.grad = None, None
    for name, buffer in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[name], buffer.numpy(), **TOL[dtype], err_msg=name)


@pytest.mark.parametrize("case_id", [c for c in LAYERS if LAYERS[c][0] in ("ConvTranspose2d", "BatchNorm2d")
                                     or "padding_mode" in LAYERS[c][2]])
def test_layer_gradcheck_and_gradgradcheck_wrt_input_and_parameters(case_id: str) -> None:
    ours, _, x, _ = pair(case_id, np.float64)
    ours.train()

    def f(x: Tensor, *params: Tensor) -> Tensor:
        return ours(x)

    assert gradcheck(f, [x, *ours.parameters()])
    assert gradgradcheck(f, [x, *ours.parameters()])


def test_conv_transpose2d_output_size_picks_output_padding() -> None:
    rng.manual_seed(0)
    ours = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    theirs = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = Inputs(0).randn(1, 2, 4, 4).astype(np.float32)
    for size in ([7, 7], [8, 7], [1, 3, 8, 8]):
        out, tout = ours(Tensor(x), output_size=size), theirs(torch.from_numpy(x), output_size=size)
        np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"requested an output size of \[9, 7\], but valid sizes range from "
                                         r"\[7, 7\] to \[8, 8\]"):
        ours(Tensor(x), output_size=[9, 7])


# ---- second derivatives against torch (float64) ------------------------------------------------------------
I = Inputs(seed=5)  # noqa: E741
WEIGHT = I.positive(5)
PROBS = I.rng.dirichlet(np.ones(5), 4)
TARGETS = np.array([2, -100, 4, 2])
SECOND_ORDER = {
    "batch_norm-train": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                         lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True),
                         [I.randn(3, 2, 2, 3), I.randn(2), I.randn(2)]),
    "batch_norm-train-1d": (lambda x: F.batch_norm(x, None, None, training=True, eps=0.1),
                            lambda x: TF.batch_norm(x, None, None, training=True, eps=0.1), [I.randn(5, 3)]),
    "sigmoid": (F.sigmoid, torch.sigmoid, [I.randn(3, 4) * 4]),
    "tanh": (F.tanh, torch.tanh, [I.randn(3, 4) * 2]),
    "gelu": (F.gelu, TF.gelu, [I.randn(3, 4) * 2]),
    "gelu-tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh"),
                  [I.randn(3, 4) * 2]),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.3), lambda x: TF.leaky_relu(x, 0.3), [I.away_from_zero(3, 4)]),
    "log_softmax-dim1": (lambda x: F.log_softmax(x, dim=1), lambda x: TF.log_softmax(x, dim=1), [I.randn(2, 3, 4)]),
    "softmax-dim0": (lambda x: F.softmax(x, 0), lambda x: TF.softmax(x, 0), [I.randn(3, 4)]),
    "cross_entropy-all-options": (
        lambda x: F.cross_entropy(x, TARGETS, weight=Tensor(WEIGHT), label_smoothing=0.25),
        lambda x: TF.cross_entropy(x, torch.tensor(TARGETS), weight=torch.tensor(WEIGHT), label_smoothing=0.25),
        [I.randn(4, 5)]),
    "cross_entropy-probabilities": (
        lambda x: F.cross_entropy(x, PROBS, weight=Tensor(WEIGHT), label_smoothing=0.1),
        lambda x: TF.cross_entropy(x, torch.tensor(PROBS), weight=torch.tensor(WEIGHT), label_smoothing=0.1),
        [I.randn(4, 5)]),
    "cross_entropy-4d-none": (
        lambda x: F.cross_entropy(x, TARGETS.reshape(2, 1, 2), reduction="none", label_smoothing=0.1),
        lambda x: TF.cross_entropy(x, torch.tensor(TARGETS.reshape(2, 1, 2)), reduction="none", label_smoothing=0.1),
        [I.randn(2, 5, 1, 2)]),
    "nll_loss-weight-sum": (lambda x: F.nll_loss(x, TARGETS, weight=Tensor(WEIGHT), reduction="sum"),
                            lambda x: TF.nll_loss(x, torch.tensor(TARGETS), weight=torch.tensor(WEIGHT),
                                                  reduction="sum"), [I.randn(4, 5)]),
    "hardtanh-at-the-limits": (lambda x: F.hardtanh(x, -1.0, 2.0), lambda x: TF.hardtanh(x, -1.0, 2.0),
                               [np.array([-3.0, -1.0, -0.5, 0.0, 1.5, 2.0, 4.0])]),
    "relu6-at-0-and-6": (F.relu6, TF.relu6, [np.array([-1.0, 0.0, 3.0, 6.0, 7.0])]),
    "silu": (F.silu, TF.silu, [I.randn(3, 4) * 3]),
    "elu": (lambda x: F.elu(x, 0.5), lambda x: TF.elu(x, 0.5), [I.away_from_zero(3, 4)]),
    "softplus-at-0-and-threshold": (lambda x: F.softplus(x, 2.0, 4.0), lambda x: TF.softplus(x, 2.0, 4.0),
                                    [np.array([-30.0, -1.0, 0.0, 0.5, 1.5, 2.5, 40.0])]),
    "binary_cross_entropy-weight": (lambda p, t: F.binary_cross_entropy(p, t, weight=Tensor(WEIGHT)),
                                    lambda p, t: TF.binary_cross_entropy(p, t, weight=torch.tensor(WEIGHT)),
                                    [I.rng.uniform(0.05, 0.95, (3, 5)), I.rng.uniform(0, 1, (3, 5))]),
    "binary_cross_entropy_with_logits-pos_weight": (
        lambda x, t: F.binary_cross_entropy_with_logits(x, t, weight=Tensor(WEIGHT), pos_weight=Tensor(WEIGHT[::-1])),
        lambda x, t: TF.binary_cross_entropy_with_logits(x, t, weight=torch.tensor(WEIGHT),
                                                         pos_weight=torch.tensor(WEIGHT[::-1].copy())),
        [np.concatenate([[0.0], I.randn(9) * 4]).reshape(2, 5), I.rng.uniform(0, 1, (2, 5))]),
    "smooth_l1_loss": (lambda x, y: F.smooth_l1_loss(x, y, beta=0.5), lambda x, y: TF.smooth_l1_loss(x, y, beta=0.5),
                       [I.randn(3, 4), I.randn(3, 4)]),
    "mse_loss": (F.mse_loss, TF.mse_loss, [I.randn(3, 4), I.randn(3, 4)]),
    "mse_loss-weight": (lambda x, y: F.mse_loss(x, y, weight=Tensor(WEIGHT[:4])),
                        lambda x, y: TF.mse_loss(x, y, weight=torch.tensor(WEIGHT[:4])), [I.randn(4), I.randn(4)]),
    "pad-reflect": (lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect"),
                    lambda x: TF.pad(x, (2, 1, 1, 2), mode="reflect"), [I.randn(2, 2, 3, 4)]),
    "pad-replicate": (lambda x: F.pad(x, (0, 3, 2, 0), mode="replicate"),
                      lambda x: TF.pad(x, (0, 3, 2, 0), mode="replicate"), [I.randn(1, 2, 3, 4)]),
    "pad-circular-3d": (lambda x: F.pad(x, (2, 1), mode="circular"), lambda x: TF.pad(x, (2, 1), mode="circular"),
                        [I.randn(2, 3, 4)]),
    "pad-constant-crop": (lambda x: F.pad(x, (1, -1, -2, 1), value=0.5), lambda x: TF.pad(x, (1, -1, -2, 1), value=0.5),
                          [I.randn(2, 3, 4)]),
    "interpolate-scale": (lambda x: F.interpolate(x, scale_factor=1.7), lambda x: TF.interpolate(x, scale_factor=1.7),
                          [I.randn(1, 2, 3, 4)]),
    "interpolate-size-3d": (lambda x: F.interpolate(x, size=7), lambda x: TF.interpolate(x, size=7),
                            [I.randn(1, 2, 3)]),
    "interpolate-exact-down": (lambda x: F.interpolate(x, size=(2, 3), mode="nearest-exact"),
                               lambda x: TF.interpolate(x, size=(2, 3), mode="nearest-exact"), [I.randn(1, 2, 5, 7)]),
    "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1, 2, 1),
                         lambda x, w, b: TF.conv_transpose2d(x, w, b, 2, 1, 1, 2, 1),
                         [I.randn(2, 4, 3, 3), I.randn(4, 3, 3, 2), I.randn(6)]),
    "conv2d-same": (lambda x, w: F.conv2d(x, w, padding="same"), lambda x, w: TF.conv2d(x, w, padding="same"),
                    [I.randn(1, 2, 4, 5), I.randn(3, 2, 2, 3)]),
    "max_pool2d-ceil": (lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
                        lambda x: TF.max_pool2d(x, 3, 2, 1, ceil_mode=True), [I.distinct(1, 2, 6, 5)]),
    "avg_pool2d-ceil-divisor": (lambda x: F.avg_pool2d(x, 3, 2, 1, True, False, 5),
                                lambda x: TF.avg_pool2d(x, 3, 2, 1, True, False, 5), [I.randn(1, 2, 6, 5)]),
    "adaptive_avg_pool2d-none": (lambda x: F.adaptive_avg_pool2d(x, (None, 2)),
                                 lambda x: TF.adaptive_avg_pool2d(x, (None, 2)), [I.randn(2, 3, 5)]),
}


@pytest.mark.parametrize("case_id", SECOND_ORDER)
def test_function_matches_torch_to_second_order(case_id: str) -> None:
    ours, theirs, arrays = SECOND_ORDER[case_id]
    helpers.assert_matches_torch(ours, theirs, arrays, tol=1e-10)


# ---- BatchNorm: running statistics, buffers, modes -------------------------------------------------------
@pytest.mark.parametrize("momentum", [0.1, None, 0.5])
def test_batchnorm_running_stats_over_training_steps_then_eval(momentum: float | None) -> None:
    rng.manual_seed(0)
    ours = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3, momentum=momentum), nn.ReLU())
    theirs = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3, momentum=momentum),
                                 torch.nn.ReLU())
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    opt, topt = tinygrad_cnn.optim.SGD(ours.parameters(), lr=0.1), torch.optim.SGD(theirs.parameters(), lr=0.1)
    data = Inputs(3)
    for _ in range(4):
        x = data.randn(4, 2, 5, 5).astype(np.float32)
        loss, tloss = (ours(Tensor(x)) ** 2).mean(), (theirs(torch.from_numpy(x)) ** 2).mean()
        opt.zero_grad()
        topt.zero_grad()
        loss.backward()
        tloss.backward()
        opt.step()
        topt.step()
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
    state, tstate = ours.state_dict(), theirs.state_dict()
    assert list(state) == list(tstate) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                           "1.running_var", "1.num_batches_tracked"]
    assert state["1.num_batches_tracked"].dtype == np.int64 and state["1.num_batches_tracked"] == 4
    for name in state:
        np.testing.assert_allclose(state[name], tstate[name].numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    x = data.randn(2, 2, 5, 5).astype(np.float32)
    ours.eval()
    theirs.eval()
    np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    assert ours.state_dict()["1.num_batches_tracked"] == 4  # eval does not count


def test_batchnorm_buffers_are_buffers() -> None:
    bn = nn.BatchNorm2d(4)
    assert [name for name, _ in bn.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
    assert [name for name, _ in bn.named_parameters()] == ["weight", "bias"]
    bn.double()
    assert bn.running_mean.dtype == bn.running_var.dtype == bn.weight.dtype == np.float64
    assert bn.num_batches_tracked.dtype == np.int64
    untracked = nn.BatchNorm1d(4, affine=False, track_running_stats=False)
    assert untracked.state_dict() == {} and untracked.running_mean is None and untracked.weight is None
    x = Inputs(0).randn(5, 4)
    out = untracked.eval()(Tensor(x))  # no running statistics: the batch's, even in eval mode
    np.testing.assert_allclose(out.data, TF.batch_norm(torch.tensor(x), None, None, training=True).numpy(), atol=1e-12)


def test_batchnorm_loads_a_torch_state_dict_and_resets() -> None:
    theirs = torch.nn.BatchNorm2d(3)
    theirs(torch.randn(4, 3, 2, 2) * 3 + 1)
    ours = nn.BatchNorm2d(3)
    ours.load_state_dict(theirs.state_dict())
    np.testing.assert_array_equal(ours.running_mean.data, theirs.running_mean.numpy())
    assert ours.num_batches_tracked.item() == 1
    ours.reset_running_stats()
    np.testing.assert_array_equal(ours.running_var.data, np.ones(3, np.float32))
    assert ours.num_batches_tracked.item() == 0


@pytest.mark.parametrize("make, shape, error, match", [
    (lambda: nn.BatchNorm2d(3), (2, 3, 4), ValueError, r"BatchNorm2d: expected 4D input \(got 3D input\)"),
    (lambda: nn.BatchNorm1d(3), (2, 3, 4, 4), ValueError, r"BatchNorm1d: expected 2D or 3D input \(got 4D input\)"),
    (lambda: nn.BatchNorm2d(3), (1, 3, 1, 1), ValueError, r"more than 1 value per channel when training"),
    (lambda: nn.BatchNorm2d(4), (2, 3, 2, 2), RuntimeError, r"running_mean should contain 3 elements.*not 4"),
    (lambda: nn.BatchNorm1d(0), None, ValueError, r"BatchNorm1d: num_features must be a positive int"),
], ids=["2d-needs-4d", "1d-needs-2d-or-3d", "one-value-per-channel", "channel-mismatch", "no-features"])
def test_batchnorm_errors(make: Callable[[], Any], shape: tuple[int, ...] | None, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make()(Tensor(np.ones(shape, np.float32)))


def test_batch_norm_eval_needs_running_stats() -> None:
    with pytest.raises(ValueError, match="running_mean and running_var must be given"):
        F.batch_norm(Tensor(np.ones((2, 3))), None, None)


# ---- Dropout -----------------------------------------------------------------------------------------------
def test_dropout_p1_zeroes_everything_and_its_gradient() -> None:
    x = Tensor(np.ones((3, 4), np.float32), requires_grad=True)
    y = nn.Dropout(1.0)(x)
    assert y.dtype == np.float32 and not y.data.any() and not np.isnan(y.data).any()
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.zeros((3, 4)))
    assert F.dropout(x, 1.0, training=False) is x


@pytest.mark.parametrize("p", [-0.1, 1.5, True, "0.5"])
def test_dropout_probability_outside_0_1_is_an_error(p: Any) -> None:
    for fn in (nn.Dropout, nn.Dropout2d, lambda p: F.dropout(Tensor(np.ones(2)), p)):
        with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
            fn(p)


def test_dropout2d_zeroes_whole_channels() -> None:
    x = Tensor(np.ones((50, 40, 3, 3), np.float32), requires_grad=True)
    y = nn.Dropout2d(0.3)(x).data
    per_channel = y.reshape(50, 40, 9)
    assert ((per_channel == 0).all(axis=2) | (per_channel == np.float32(1 / 0.7)).all(axis=2)).all()
    assert abs((per_channel[:, :, 0] == 0).mean() - 0.3) < 0.05  # 2000 channels: standard error 0.01
    assert nn.Dropout2d(0.3).eval()(x) is x
    assert repr(nn.Dropout2d(0.3)) == repr(torch.nn.Dropout2d(0.3))
    with pytest.warns(UserWarning, match="3D input"):
        assert F.dropout2d(Tensor(np.ones((2, 3, 4))), 0.5).shape == (2, 3, 4)


# ---- losses: modules against torch, targets as Tensors or arrays, errors ------------------------------------
LOSSES = {
    "cross-entropy": ("CrossEntropyLoss", {}, "classes"),
    "cross-entropy-all-options": ("CrossEntropyLoss", dict(weight=WEIGHT, ignore_index=1, label_smoothing=0.3,
                                                            reduction="sum"), "classes"),
    "cross-entropy-probabilities": ("CrossEntropyLoss", dict(label_smoothing=0.2), "probabilities"),
    "cross-entropy-none": ("CrossEntropyLoss", dict(reduction="none"), "classes"),
    "nll": ("NLLLoss", dict(weight=WEIGHT, ignore_index=4), "classes"),
    "mse": ("MSELoss", {}, "values"),
    "l1-sum": ("L1Loss", dict(reduction="sum"), "values"),
}


@pytest.mark.parametrize("as_tensor", [True, False], ids=["tensor-target", "array-target"])
@pytest.mark.parametrize("case_id", LOSSES)
def test_loss_module_matches_torch(case_id: str, as_tensor: bool) -> None:
    name, kwargs, kind = LOSSES[case_id]
    data = Inputs(7)
    x = data.randn(6, 5).astype(np.float32)
    target = {"classes": np.array([0, 1, 4, 4, 2, 1]), "probabilities": data.rng.dirichlet(np.ones(5), 6),
              "values": data.randn(6, 5)}[kind].astype(np.float32 if kind != "classes" else np.int64)
    ours = getattr(nn, name)(**{k: (Tensor(v.astype(np.float32)) if k == "weight" else v) for k, v in kwargs.items()})
    theirs = getattr(torch.nn, name)(**{k: (torch.tensor(v, dtype=torch.float32) if k == "weight" else v)
                                        for k, v in kwargs.items()})
    assert repr(ours) == repr(theirs)
    tx = Tensor(x, requires_grad=True)
    out = ours(tx, Tensor(target) if as_tensor else target)
    ttx = torch.tensor(x, requires_grad=True)
    tout = theirs(ttx, torch.tensor(target))
    assert out.dtype == np.float32 and out.shape == tuple(tout.shape)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(tx.grad.data, ttx.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, kwargs", [("BCELoss", dict(weight=WEIGHT)), ("BCELoss", dict(reduction="sum")),
                                          ("BCEWithLogitsLoss", dict(pos_weight=WEIGHT)),
                                          ("BCEWithLogitsLoss", dict(weight=WEIGHT, reduction="none"))])
def test_binary_losses_match_torch(name: str, kwargs: dict[str, Any]) -> None:
    data = Inputs(8)
    logits, target = data.randn(6, 5).astype(np.float32), data.rng.uniform(0, 1, (6, 5)).astype(np.float32)
    x = 1 / (1 + np.exp(-logits)) if name == "BCELoss" else logits
    ours = getattr(nn, name)(**{k: Tensor(v.astype(np.float32)) if k.endswith("weight") else v
                                for k, v in kwargs.items()})
    theirs = getattr(torch.nn, name)(**{k: torch.tensor(v, dtype=torch.float32) if k.endswith("weight") else v
                                        for k, v in kwargs.items()})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    tx, ttx = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = ours(tx, target), theirs(ttx, torch.tensor(target))
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(tx.grad.data, ttx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_binary_cross_entropy_clamps_its_logs_at_minus_100_as_torch() -> None:
    p, t = np.array([0.0, 1.0, 0.5, 1.0]), np.array([1.0, 0.0, 0.5, 1.0])
    for reduction in ("none", "sum"):
        np.testing.assert_allclose(F.binary_cross_entropy(Tensor(p), t, reduction=reduction).data,
                                   TF.binary_cross_entropy(torch.tensor(p), torch.tensor(t), reduction=reduction))


def test_one_hot_as_torch() -> None:
    labels = np.array([[0, 3], [2, 2]])
    np.testing.assert_array_equal(F.one_hot(Tensor(labels)).data, TF.one_hot(torch.tensor(labels)).numpy())
    assert F.one_hot(labels, 6).shape == (2, 2, 6) and F.one_hot(labels, 6).dtype == np.int64
    with pytest.raises(RuntimeError, match=r"class values must be in \[0, 3\)"):
        F.one_hot(labels, 3)


def test_cross_entropy_with_every_target_ignored_is_nan_as_torch() -> None:
    x, t = np.zeros((2, 3)), np.array([-100, -100])
    assert np.isnan(F.cross_entropy(Tensor(x), t).item()) and np.isnan(TF.cross_entropy(torch.tensor(x),
                                                                                         torch.tensor(t)).item())
    assert F.cross_entropy(Tensor(x), t, reduction="sum").item() == 0


def test_loss_weight_is_a_buffer() -> None:
    loss = nn.CrossEntropyLoss(weight=Tensor(np.ones(3, np.float32)))
    assert list(loss.state_dict()) == list(torch.nn.CrossEntropyLoss(weight=torch.ones(3)).state_dict()) == ["weight"]


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 3])), IndexError, r"Target 3 is out of bounds"),
    (lambda: F.nll_loss(Tensor(np.zeros((2, 3))), np.array([-1, 0])), IndexError, r"Target -1 is out of bounds"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 1, 2])), ValueError, r"needs a target of shape"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.zeros((2, 2))), TypeError,
     r"integer class indices \(or, for cross_entropy, probabilities shaped like the input \(2, 3\)\)"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.zeros((2, 3)), ignore_index=0), ValueError,
     r"ignore_index is not supported for floating point target"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 1]), reduction="avg"), ValueError,
     r"reduction must be 'mean', 'sum' or 'none'"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 1]), weight=Tensor(np.ones(2))), RuntimeError,
     r"weight tensor should be defined either for all 3 classes"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 1]), label_smoothing=1.5), ValueError,
     r"label_smoothing must be between 0.0 and 1.0"),
    (lambda: nn.MSELoss(reduction="average"), ValueError, r"MSELoss: reduction must be"),
    (lambda: F.mse_loss(Tensor(np.zeros(3)), Tensor(np.zeros(3)), weight=Tensor(np.ones(2))), ValueError,
     r"Weights and input must have the same size"),
    (lambda: F.l1_loss(Tensor(np.zeros(3)), Tensor(np.zeros(4))), RuntimeError, r"do not broadcast"),
    (lambda: F.binary_cross_entropy(Tensor(np.array([0.5, 1.5])), np.ones(2)), RuntimeError,
     r"all elements of input should be between 0 and 1"),
    (lambda: F.binary_cross_entropy_with_logits(Tensor(np.zeros((2, 3))), np.ones(3)), ValueError,
     r"target size \(\(3,\)\) that is different to the input size \(\(2, 3\)\)"),
    (lambda: F.smooth_l1_loss(Tensor(np.zeros(3)), Tensor(np.zeros(3)), beta=-1.0), RuntimeError,
     r"beta must be non-negative"),
], ids=["class-out-of-range", "negative-class", "target-shape", "probabilities-shape", "ignore-with-probabilities",
        "reduction", "weight-size", "label-smoothing", "module-reduction", "pointwise-weight", "pointwise-broadcast",
        "bce-range", "bce-logits-shape", "smooth-l1-beta"])
def test_loss_errors(call: Callable[[], Any], error: type, match: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the broadcast warning before the error
        with pytest.raises(error, match=match):
            call()


def test_an_out_of_range_target_is_torchs_index_error_and_our_old_value_error() -> None:
    for error in (IndexError, ValueError):
        with pytest.raises(error, match="Target 7 is out of bounds"):
            F.nll_loss(Tensor(np.zeros((1, 3))), np.array([7]))


def test_array_targets_take_a_float_inputs_dtype() -> None:
    x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    for loss in (F.mse_loss(x, np.zeros((2, 3))), F.l1_loss(x, [[0.5] * 3] * 2)):
        loss.backward()
        assert loss.dtype == x.grad.dtype == np.float32


def test_mse_loss_warns_when_target_broadcasts_as_torch() -> None:
    with pytest.warns(UserWarning, match="different to the input size"):
        F.mse_loss(Tensor(np.zeros((3, 1))), Tensor(np.zeros(3)))


def test_legacy_size_average_and_reduce() -> None:
    x, y = Tensor(np.arange(4.0)), Tensor(np.zeros(4))
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        assert F.l1_loss(x, y, size_average=False).item() == 6.0
    with pytest.warns(UserWarning):
        assert F.mse_loss(x, y, reduce=False).shape == (4,)


# ---- activations and softmax: arguments as torch ----------------------------------------------------------
def test_softmax_dim_keywords_and_dtype() -> None:
    x = Inputs(0).randn(2, 3, 4).astype(np.float32)
    expected = TF.log_softmax(torch.from_numpy(x), dim=1).numpy()
    np.testing.assert_allclose(F.log_softmax(Tensor(x), dim=1).data, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(F.log_softmax(Tensor(x), 1, 3).data, expected, rtol=1e-6, atol=1e-6)  # _stacklevel
    np.testing.assert_allclose(F.log_softmax(Tensor(x), axis=1).data, expected, rtol=1e-6, atol=1e-6)
    assert F.softmax(Tensor(x), dim=-1, dtype=np.float64).dtype == np.float64
    with pytest.raises(TypeError, match="both dim and axis"):
        F.softmax(Tensor(x), dim=1, axis=1)


@pytest.mark.parametrize("ndim, implicit", [(1, 0), (2, 1), (3, 0), (4, 1)])
def test_softmax_without_dim_warns_and_picks_torchs_dimension(ndim: int, implicit: int) -> None:
    x = Inputs(0).randn(*(2, 3, 4, 5)[:ndim])
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        y = nn.Softmax()(Tensor(x))
    np.testing.assert_allclose(y.data, TF.softmax(torch.tensor(x), dim=implicit).numpy(), atol=1e-12)


def test_sigmoid_and_tanh_are_stable_far_from_zero() -> None:
    x = Tensor(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=np.float32), requires_grad=True)
    for ours, theirs in ((F.sigmoid, torch.sigmoid), (F.tanh, torch.tanh)):
        x.grad = None
        y = ours(x)
        y.sum().backward()
        tx = torch.tensor(x.data, requires_grad=True)
        theirs(tx).sum().backward()
        np.testing.assert_allclose(y.data, theirs(torch.from_numpy(x.data)).numpy(), atol=1e-7)
        np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), atol=1e-7)


def test_activation_arguments() -> None:
    with pytest.raises(ValueError, match="approximate argument must be either 'none' or 'tanh'"):
        nn.GELU("fast")
    with pytest.raises(TypeError, match="sigmoid: input must be floating point"):
        F.sigmoid(Tensor(np.arange(3)))
    x = Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    F.leaky_relu(x, 0.5).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.5, 0.5, 1.0])  # torch: the slope at 0


# ---- padding, resizing, conv padding, pools: errors as torch -----------------------------------------------
@pytest.mark.parametrize("call, error, match", [
    (lambda x: F.pad(x, (1, 2, 3)), ValueError, r"divisible by 2"),
    (lambda x: F.pad(x, (1,) * 10), ValueError, r"too large"),
    (lambda x: F.pad(x, (5, 5, 0, 0), mode="reflect"), RuntimeError, r"reflect.*smaller than the input's size 4"),
    (lambda x: F.pad(x, (1, 1), mode="reflect"), NotImplementedError, r"pads the last 1, 2 or 3 dimensions"),
    (lambda x: F.pad(x, (1, 1), mode="wrap"), NotImplementedError, r"mode 'wrap' is not supported"),
    (lambda x: F.pad(x, (1, 1, 1, 1), mode="replicate", value=2.0), RuntimeError, r"doesn't take in a value"),
    (lambda x: F.pad(x, (1.5, 1)), TypeError, r"pad must be a tuple of ints"),
    (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), NotImplementedError, r"mode 'bilinear'"),
    (lambda x: F.interpolate(x, size=4, scale_factor=2), ValueError, r"only one of size or scale_factor"),
    (lambda x: F.interpolate(x), ValueError, r"either size or scale_factor"),
    (lambda x: F.interpolate(x, size=4, align_corners=True), ValueError, r"align_corners option"),
    (lambda x: F.conv2d(x, Tensor(np.ones((2, 2, 3, 3))), stride=2, padding="same"), ValueError,
     r"padding='same' is not supported for strided convolutions"),
    (lambda x: F.conv2d(x, Tensor(np.ones((2, 2, 3, 3))), padding="full"), ValueError, r"invalid padding string"),
    (lambda x: F.max_pool2d(x, 2, dilation=2), NotImplementedError, r"dilation"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=0), ValueError, r"divisor_override must be a positive int"),
    (lambda x: F.conv_transpose2d(x, Tensor(np.ones((2, 2, 3, 3))), stride=2, output_padding=2), ValueError,
     r"output_padding .* must be smaller than either stride"),
    (lambda x: F.conv_transpose2d(x, Tensor(np.ones((3, 2, 3, 3)))), ValueError, r"input has 2 channels"),
], ids=["pad-odd", "pad-too-long", "reflect-too-wide", "reflect-4d-needs-2-or-3-dims", "pad-mode",
        "pad-value-with-mode", "pad-float", "interp-mode", "interp-both", "interp-neither", "interp-align-corners",
        "same-strided", "padding-string",
        "maxpool-dilation", "divisor-override", "output-padding", "convT-channels"])
def test_functional_errors(call: Callable[[Tensor], Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call(Tensor(np.ones((1, 2, 4, 4))))


def test_conv2d_layer_arguments() -> None:
    with pytest.raises(ValueError, match="padding='same' is not supported for strided convolutions"):
        nn.Conv2d(1, 2, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match=r"padding_mode must be one of \['zeros', 'reflect', 'replicate', "):
        nn.Conv2d(1, 2, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match='only "zeros" padding mode'):
        nn.ConvTranspose2d(1, 2, 3, padding_mode="reflect")
    assert repr(nn.Conv2d(1, 2, 3, padding="same")) == repr(torch.nn.Conv2d(1, 2, 3, padding="same"))


def test_pool_and_flatten_layers_keep_working_in_sequential_models() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding="same"), nn.BatchNorm2d(2), nn.LeakyReLU(),
                          nn.MaxPool2d(2, ceil_mode=True), nn.Dropout2d(0.1), nn.Flatten(), nn.Linear(2 * 4 * 4, 3),
                          nn.LogSoftmax(dim=1))
    out = model(Tensor(np.ones((2, 1, 7, 7), np.float32)))
    assert out.shape == (2, 3)
    F.nll_loss(out, Tensor(np.array([0, 2]))).backward()
    assert all(p.grad is not None for p in model.parameters())
