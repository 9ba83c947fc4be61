"""Adversarial cases for modules, losses, optimizers, schedulers and state dicts, against PyTorch:
every optimizer option over steps whose gradients span six orders of magnitude with a parameter that
sometimes has no gradient, schedulers, batch norm in every configuration through train and eval, gradient
clipping for every norm, losses with ignored/weighted/smoothed/probability targets (including a batch whose
every target is ignored), and state dicts moved between the two frameworks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinygrad_cnn as tg
import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, nn, optim
from tinygrad_cnn.nn import Parameter

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _steps(ours_opt, theirs_opt, ours_params, theirs_params, steps=6, scheduler=None, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(steps):
        for k, (p, tp) in enumerate(zip(ours_params, theirs_params)):
            if k == 1 and i % 3 == 0:  # a parameter that got no gradient this step is skipped
                p.grad, tp.grad = None, None
                continue
            g = rng.normal(size=p.shape) * 10.0 ** (i - 3)
            p.grad, tp.grad = Tensor(g.copy()), torch.tensor(g.copy())
        ours_opt.step()
        theirs_opt.step()
        if scheduler is not None:
            scheduler[0].step()
            scheduler[1].step()
            assert [g["lr"] for g in ours_opt.param_groups] == pytest.approx(
                [g["lr"] for g in theirs_opt.param_groups], rel=1e-12, abs=1e-15)
    for p, tp in zip(ours_params, theirs_params):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-11, atol=1e-14)


def _params(seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=(3, 4)), rng.normal(size=(4,))]
    return [Parameter(a.copy()) for a in arrays], [torch.nn.Parameter(torch.tensor(a.copy())) for a in arrays]


OPTIMIZERS = [
    ("SGD", dict(lr=0.1)), ("SGD", dict(lr=0.1, momentum=0.9)), ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.5)), ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.1, maximize=True)),
    ("Adam", dict(lr=0.01)), ("Adam", dict(lr=0.01, betas=(0.5, 0.6))), ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)), ("Adam", dict(lr=0.01, maximize=True)),
    ("Adam", dict(lr=0.01, eps=1e-3, amsgrad=True, weight_decay=0.01)),
    ("AdamW", dict(lr=0.01)), ("AdamW", dict(lr=0.01, weight_decay=0.5)), ("AdamW", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01, betas=(0.0, 0.99), maximize=True)),
    ("RMSprop", dict(lr=0.01)), ("RMSprop", dict(lr=0.01, alpha=0.5)), ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1)),
    ("Adadelta", dict(lr=1.0)), ("Adadelta", dict(lr=0.5, rho=0.5, weight_decay=0.1)),
    ("Adadelta", dict(lr=1.0, maximize=True)),
]


@pytest.mark.parametrize("name, kwargs", OPTIMIZERS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMIZERS)])
def test_optimizer_steps_match_pytorch(name: str, kwargs: dict) -> None:
    ours, theirs = _params()
    _steps(getattr(optim, name)(ours, **kwargs), getattr(torch.optim, name)(theirs, **kwargs), ours, theirs)


SCHEDULERS = [
    ("StepLR", dict(step_size=2, gamma=0.5)), ("MultiStepLR", dict(milestones=[1, 3], gamma=0.1)),
    ("ExponentialLR", dict(gamma=0.7)), ("CosineAnnealingLR", dict(T_max=3)),
    ("CosineAnnealingLR", dict(T_max=2, eta_min=0.01)), ("LinearLR", dict(start_factor=0.2, total_iters=3)),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=10)), ("CosineAnnealingWarmRestarts", dict(T_0=2, T_mult=2)),
    ("PolynomialLR", dict(total_iters=4, power=2.0)), ("ConstantLR", dict(factor=0.5, total_iters=2)),
]


@pytest.mark.parametrize("name, kwargs", SCHEDULERS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SCHEDULERS)])
def test_schedulers_drive_sgd_like_pytorch(name: str, kwargs: dict) -> None:
    ours, theirs = _params(1)
    o, t = optim.SGD(ours, lr=0.1, momentum=0.9), torch.optim.SGD(theirs, lr=0.1, momentum=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = (getattr(optim.lr_scheduler, name)(o, **kwargs),
                     getattr(torch.optim.lr_scheduler, name)(t, **kwargs))
        _steps(o, t, ours, theirs, steps=8, scheduler=scheduler)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_optimizer_state_dict_resumes_bit_identically_through_a_file(name: str, tmp_path) -> None:
    kwargs = dict(lr=0.05, momentum=0.9) if name != "Adam" else dict(lr=0.05, amsgrad=True)
    x = Tensor(np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32))
    y = np.array([0, 1, 0, 1, 1, 0])

    def make():
        tg.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
        return model, getattr(optim, name)(model.parameters(), **kwargs)

    def train(model, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()

    model, opt = make()
    train(model, opt, 3)
    tg.save({"model": model.state_dict(), "opt": opt.state_dict()}, tmp_path / "ckpt.pt")
    train(model, opt, 3)
    resumed, resumed_opt = make()
    ckpt = tg.load(tmp_path / "ckpt.pt")
    resumed.load_state_dict(ckpt["model"])
    resumed_opt.load_state_dict(ckpt["opt"])
    train(resumed, resumed_opt, 3)
    for a, b in zip(model.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


BATCH_NORMS = [(layer, shape, kwargs) for layer, shape in (("BatchNorm2d", (4, 3, 5, 5)), ("BatchNorm1d", (6, 3)),
                                                           ("BatchNorm1d", (6, 3, 4)))
               for kwargs in ({}, dict(momentum=None), dict(affine=False), dict(track_running_stats=False),
                              dict(momentum=0.5, eps=1e-2))]


@pytest.mark.parametrize("layer, shape, kwargs", BATCH_NORMS, ids=[f"{a}-{len(b)}d-{c}" for a, b, c in BATCH_NORMS])
def test_batch_norm_outputs_and_running_stats_follow_pytorch_through_train_and_eval(layer, shape, kwargs) -> None:
    rng = np.random.default_rng(0)
    ours, theirs = getattr(nn, layer)(3, **kwargs), getattr(torch.nn, layer)(3, **kwargs)
    if kwargs.get("affine", True):
        w, b = rng.normal(size=3).astype(np.float32), rng.normal(size=3).astype(np.float32)
        ours.load_state_dict({**ours.state_dict(), "weight": w, "bias": b})
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(w))
            theirs.bias.copy_(torch.tensor(b))
    for step in range(4):
        if step == 3:
            ours.eval()
            theirs.eval()
        x = (rng.normal(size=shape) * 3 + 2).astype(np.float32)
        ox, tx = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        oy, ty = ours(ox), theirs(tx)
        np.testing.assert_allclose(oy.data, ty.detach().numpy(), rtol=1e-4, atol=1e-5)
        g = rng.normal(size=shape).astype(np.float32)
        oy.backward(Tensor(g))
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(ox.grad.data, tx.grad.numpy(), rtol=1e-3, atol=1e-5)
        ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
        assert set(ours_sd) == set(theirs_sd)
        for k in theirs_sd:
            np.testing.assert_allclose(np.asarray(ours_sd[k]), theirs_sd[k].numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 0.5, 3])
def test_clip_grad_norm_matches_pytorch(norm_type) -> None:
    rng = np.random.default_rng(3)
    ours, theirs = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    grads = [rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=2).astype(np.float32)]
    for p, tp, g in zip(ours.parameters(), theirs.parameters(), grads):
        p.grad, tp.grad = Tensor(g), torch.tensor(g)
    n = nn.utils.clip_grad_norm_(ours.parameters(), 0.5, norm_type=norm_type)
    tn = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 0.5, norm_type=norm_type)
    assert float(n.item()) == pytest.approx(tn.item(), rel=1e-6)
    for p, tp in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-5)


def test_clip_grad_norm_with_an_infinite_gradient_matches_pytorch() -> None:
    ours, theirs = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    for p, tp in zip(ours.parameters(), theirs.parameters()):
        p.grad, tp.grad = Tensor(np.ones(p.shape, np.float32)), torch.ones(tuple(p.shape))
    ours.weight.grad.data[0, 0], theirs.weight.grad[0, 0] = np.inf, np.inf
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        n = nn.utils.clip_grad_norm_(ours.parameters(), 1.0)
    tn = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
    assert np.isinf(float(n.item())) and np.isinf(tn.item())
    np.testing.assert_array_equal(ours.bias.grad.data, theirs.bias.grad.numpy())


# ---- losses -----------------------------------------------------------------------------------------------------

_RNG = np.random.default_rng(7)
LOGITS, TARGETS = _RNG.normal(size=(5, 4)), np.array([0, 3, 1, 1, 2])
IGNORED = np.array([0, -100, 1, -100, 2])
ALL_IGNORED = np.full(5, -100)
WEIGHT = np.array([0.2, 1.0, 3.0, 0.5])
PROBS = _RNG.dirichlet(np.ones(4), 5)
LOSSES = {
    "plain": dict(target=TARGETS),
    "ignored": dict(target=IGNORED),
    "weighted": dict(target=TARGETS, weight=WEIGHT),
    "weighted-ignored": dict(target=IGNORED, weight=WEIGHT),
    "smoothing": dict(target=TARGETS, label_smoothing=0.2),
    "smoothing-weighted-ignored": dict(target=IGNORED, weight=WEIGHT, label_smoothing=0.3),
    "probabilities": dict(target=PROBS),
    "probabilities-smoothing-weighted": dict(target=PROBS, weight=WEIGHT, label_smoothing=0.1),
    "all-ignored": dict(target=ALL_IGNORED),
    "all-ignored-weighted": dict(target=ALL_IGNORED, weight=WEIGHT),
    "all-ignored-smoothing": dict(target=ALL_IGNORED, label_smoothing=0.1),
    "zero-weight-classes": dict(target=np.array([0, 0, 0, 0, 0]), weight=np.array([0.0, 1.0, 1.0, 1.0])),
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_cross_entropy_variants_match_pytorch(name: str, reduction: str) -> None:
    """Values and gradients; a batch whose every target is ignored has a NaN mean (0/0) but, as in PyTorch,
    a zero gradient: it used to be NaN, which one optimizer step would write into every weight."""
    case = LOSSES[name]
    kwargs = {k: v for k, v in case.items() if k not in ("target", "weight")}
    ox, tx = Tensor(LOGITS.copy(), requires_grad=True), torch.tensor(LOGITS.copy(), requires_grad=True)
    ow = Tensor(case["weight"]) if "weight" in case else None
    tw = torch.tensor(case["weight"]) if "weight" in case else None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        oy = F.cross_entropy(ox, case["target"], weight=ow, reduction=reduction, **kwargs)
        ty = TF.cross_entropy(tx, torch.tensor(case["target"]), weight=tw, reduction=reduction, **kwargs)
        oy.sum().backward()
        ty.sum().backward()
    np.testing.assert_allclose(oy.data, ty.detach().numpy(), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(ox.grad.data, tx.grad.numpy(), rtol=1e-12, atol=1e-16, equal_nan=True)


def test_a_batch_of_ignored_targets_leaves_the_model_unchanged_as_in_pytorch() -> None:
    tg.manual_seed(0)
    model = nn.Linear(4, 3)
    before = [p.data.copy() for p in model.parameters()]
    opt = optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        loss = F.cross_entropy(model(Tensor(np.ones((2, 4), np.float32))), np.array([-100, -100]))
        loss.backward()
    opt.step()
    assert np.isnan(loss.item())
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, b)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("loss", ["mse_loss", "l1_loss", "nll_loss"])
def test_other_losses_match_pytorch(loss: str, reduction: str) -> None:
    ox, tx = Tensor(LOGITS.copy(), requires_grad=True), torch.tensor(LOGITS.copy(), requires_grad=True)
    if loss == "nll_loss":
        target, ttarget = IGNORED, torch.tensor(IGNORED)
    else:
        target = np.roll(LOGITS, 1)
        ttarget = torch.tensor(target)
        target = Tensor(target)
    oy = getattr(F, loss)(ox, target, reduction=reduction)
    ty = getattr(TF, loss)(tx, ttarget, reduction=reduction)
    oy.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(oy.data, ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ox.grad.data, tx.grad.numpy(), rtol=1e-12, atol=1e-16)


# ---- modules and state dicts --------------------------------------------------------------------------------------

def test_a_lenet_state_dict_moves_to_pytorch_and_back_with_equal_outputs() -> None:
    tg.manual_seed(0)
    ours = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16 * 5 * 5, 10))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                 torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.AvgPool2d(2), torch.nn.Flatten(),
                                 torch.nn.Linear(16 * 5 * 5, 10))
    theirs.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(0).normal(size=(3, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
    back = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16 * 5 * 5, 10))
    back.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    np.testing.assert_array_equal(back(Tensor(x)).data, ours(Tensor(x)).data)


def test_dropout_is_the_identity_in_eval_and_scales_in_train() -> None:
    layer = nn.Dropout(0.25)
    x = Tensor(np.ones((200, 50), np.float32))
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, x.data)
    layer.train()
    y = layer(x).data
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert 0.2 < (y == 0).mean() < 0.3


def test_frozen_parameters_are_skipped_and_keep_no_gradient() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    model[0].requires_grad_(False)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = model[0].weight.data.copy()
    model(Tensor(np.ones((3, 2), np.float32))).sum().backward()
    opt.step()
    assert model[0].weight.grad is None
    np.testing.assert_array_equal(model[0].weight.data, before)


def test_a_misshaped_or_wrong_dtype_gradient_is_refused_by_the_optimizer() -> None:
    layer = nn.Linear(3, 2)
    opt = optim.SGD(layer.parameters(), lr=0.1)
    layer.weight.grad = Tensor(np.ones((1,), np.float32))  # would broadcast silently over the weight
    with pytest.raises(ValueError, match="shape"):
        opt.step()
    layer.weight.grad = Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="dtype"):
        opt.step()


ODD_ARRAYS = {
    "float16-specials": np.array([1.5, np.nan, -np.inf, -0.0, 65504.0], np.float16),
    "bool": np.array([True, False, True]),
    "int8-extremes": np.array([-128, 127], np.int8),
    "uint64-max": np.array([2**64 - 1], np.uint64),
    "0-d": np.array(3.5),
    "empty": np.zeros((0, 3), np.float32),
    "non-contiguous": np.arange(12.0).reshape(3, 4).T,
    "fortran-order": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    "big-endian": np.arange(3, dtype=">f8"),
    "float64-subnormal": np.array([5e-324, -5e-324, 1e308]),
}


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("name", list(ODD_ARRAYS))
def test_odd_arrays_round_trip_bit_exactly(name: str, suffix: str, tmp_path) -> None:
    """Values (bit for bit), shape and dtype (up to byte order) survive save/load in both formats."""
    array = ODD_ARRAYS[name]
    tg.save({"x": array}, tmp_path / f"odd{suffix}")
    back = np.asarray(tg.load(tmp_path / f"odd{suffix}")["x"])
    native = array.dtype.newbyteorder("=")
    assert back.shape == array.shape
    assert back.dtype.newbyteorder("=") == native
    assert back.astype(native).tobytes() == np.ascontiguousarray(array, dtype=native).tobytes()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("beta", [1.0, 0.5, 0.0])
def test_smooth_l1_loss_of_huge_and_infinite_errors_matches_pytorch(beta: float, dtype) -> None:
    """The quadratic branch was masked by multiplication: an infinite error, or 1e30 in float32 (squared to
    inf), times its 0 mask gave NaN where PyTorch gives the linear branch's value."""
    x = np.array([-np.inf, -1e30, -1.0, 0.0, 0.2, 1.0, 1e30, np.inf, np.nan], dtype)
    y = np.array([0.0, 1.0, 0.0, 1.0, 0.5, 1.0, 0.0, 1.0, 0.0], dtype)
    ox, tx = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        oy = F.smooth_l1_loss(ox, Tensor(y), reduction="none", beta=beta)
        ty = TF.smooth_l1_loss(tx, torch.tensor(y), reduction="none", beta=beta)
        oy.sum().backward()
        ty.sum().backward()
    np.testing.assert_allclose(oy.data, ty.detach().numpy(), rtol=1e-6, equal_nan=True)
    finite = ~np.isnan(x)  # at a NaN error the gradient is a convention (PyTorch NaN, ours |x|'s 0)
    np.testing.assert_allclose(ox.grad.data[finite], tx.grad.numpy()[finite], rtol=1e-6)
