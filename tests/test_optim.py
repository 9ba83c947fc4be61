"""Tests for tinygrad_cnn.optim: updates against PyTorch and the textbook equations, state_dict resume,
argument checks, dtype, in-place updates and version bumps."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tinygrad_cnn import Tensor
from tinygrad_cnn.optim import SGD, Adam, Optimizer

SHAPES = [(3, 4), (5,), ()]  # a 0-d parameter too: the update must work on it in place

SGD_SETTINGS = [
    {"lr": 0.1},
    {"lr": 0.1, "weight_decay": 0.05},
    {"lr": 0.05, "momentum": 0.9},
    {"lr": 0.05, "momentum": 0.9, "dampening": 0.3},
    {"lr": 0.05, "momentum": 0.8, "nesterov": True},
    {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01, "dampening": 0.5},
    {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01, "nesterov": True},
]
ADAM_SETTINGS = [
    {},
    {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-3},
    {"lr": 0.02, "weight_decay": 0.1},
    {"lr": 0.02, "betas": (0.0, 0.99), "weight_decay": 0.01},
]
CASES = [(SGD, s) for s in SGD_SETTINGS] + [(Adam, s) for s in ADAM_SETTINGS]
CASE_IDS = [f"{cls.__name__}-{settings}" for cls, settings in CASES]


def initial_params(dtype: Any = np.float64, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def gradient_sequence(steps: int, dtype: Any = np.float64, seed: int = 1) -> list[list[np.ndarray | None]]:
    """Random gradients per step; parameter 1 has none on step 2, which every optimizer must skip."""
    rng = np.random.default_rng(seed)
    grads: list[list[np.ndarray | None]] = [[rng.standard_normal(s).astype(dtype) for s in SHAPES]
                                            for _ in range(steps)]
    if steps > 2:
        grads[2][1] = None
    return grads


def make_params(arrays: list[np.ndarray]) -> list[Tensor]:
    return [Tensor(a.copy(), requires_grad=True) for a in arrays]


def run_steps(opt: Optimizer, params: list[Tensor], grads: list[list[np.ndarray | None]]) -> None:
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = None if g is None else Tensor(g.copy())
        opt.step()


# ---- the update equations ------------------------------------------------------------------------
@pytest.mark.parametrize(("cls", "settings"), CASES, ids=CASE_IDS)
def test_matches_torch_optim(cls: type[Optimizer], settings: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    grads = gradient_sequence(6)
    params = make_params(initial_params())
    ours = cls(params, **settings)
    theirs_params = [torch.tensor(a, requires_grad=True) for a in initial_params()]
    theirs = getattr(torch.optim, cls.__name__)(theirs_params, **settings)
    for step_grads in grads:
        for p, tp, g in zip(params, theirs_params, step_grads):
            p.grad = None if g is None else Tensor(g.copy())
            tp.grad = None if g is None else torch.tensor(g)
        ours.step()
        theirs.step()
        for p, tp in zip(params, theirs_params):
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=0, atol=1e-12)
    for i, tp in enumerate(theirs_params):
        for key, value in theirs.state[tp].items():
            expected = value.item() if key == "step" else value.numpy()
            np.testing.assert_allclose(ours.state[i][key], expected, rtol=0, atol=1e-12)


def test_sgd_follows_its_equations_without_torch() -> None:
    lr, momentum, wd = 0.1, 0.9, 0.01
    p0 = initial_params()[0]
    g1, g2 = (step[0] for step in gradient_sequence(2))
    p = Tensor(p0.copy(), requires_grad=True)
    opt = SGD([p], lr=lr, momentum=momentum, weight_decay=wd, nesterov=True)
    p.grad = Tensor(g1.copy())
    opt.step()
    d1 = g1 + wd * p0  # first step: the buffer is the (decayed) gradient itself
    p1 = p0 - lr * (d1 + momentum * d1)
    np.testing.assert_allclose(p.data, p1, rtol=1e-15, atol=1e-15)
    p.grad = Tensor(g2.copy())
    opt.step()
    d2 = g2 + wd * p1
    buf = momentum * d1 + d2
    np.testing.assert_allclose(p.data, p1 - lr * (d2 + momentum * buf), rtol=1e-15, atol=1e-15)


def test_adam_first_steps_follow_the_bias_corrected_equations() -> None:
    lr, (b1, b2), eps = 0.01, (0.8, 0.95), 1e-6
    p0 = initial_params()[0]
    g1, g2 = (step[0] for step in gradient_sequence(2))
    p = Tensor(p0.copy(), requires_grad=True)
    opt = Adam([p], lr=lr, betas=(b1, b2), eps=eps)
    p.grad = Tensor(g1.copy())
    opt.step()
    # after one step the bias-corrected moments are g and g**2: the step is lr * g / (|g| + eps)
    p1 = p0 - lr * g1 / (np.abs(g1) + eps)
    np.testing.assert_allclose(p.data, p1, rtol=1e-14, atol=1e-15)
    p.grad = Tensor(g2.copy())
    opt.step()
    m = b1 * (1 - b1) * g1 + (1 - b1) * g2
    v = b2 * (1 - b2) * g1**2 + (1 - b2) * g2**2
    p2 = p1 - lr * (m / (1 - b1**2)) / (np.sqrt(v / (1 - b2**2)) + eps)
    np.testing.assert_allclose(p.data, p2, rtol=1e-14, atol=1e-15)
    assert opt.state[0]["step"] == 2


@pytest.mark.parametrize(("cls", "settings"), CASES, ids=CASE_IDS)
def test_float32_stays_float32_and_updates_in_place(cls: type[Optimizer], settings: dict[str, Any]) -> None:
    params = make_params(initial_params(np.float32))
    arrays = [p.data for p in params]
    opt = cls(params, **settings)
    run_steps(opt, params, gradient_sequence(4, np.float32))
    for p, a in zip(params, arrays):
        assert p.data is a and p.dtype == np.float32
    for state in opt.state:
        for value in state.values():
            assert not isinstance(value, np.ndarray) or value.dtype == np.float32
    # the float32 result equals the float64 run to float32 precision: nothing was computed in a lower precision
    reference = make_params(initial_params())
    run_steps(cls(reference, **settings), reference, gradient_sequence(4))
    for p, r in zip(params, reference):
        np.testing.assert_allclose(p.data, r.data, rtol=2e-5, atol=2e-6)


def test_params_without_grad_are_skipped_and_keep_their_version() -> None:
    a, b = make_params(initial_params()[:2])
    before = b.data.copy()
    opt = Adam([a, b])
    a.grad = Tensor(np.ones(a.shape))
    opt.step()
    np.testing.assert_array_equal(b.data, before)
    assert (a._version, b._version) == (1, 0)
    assert opt.state[1] == {}


def test_zero_grad_sets_every_grad_to_none_and_a_later_step_changes_nothing() -> None:
    params = make_params(initial_params())
    opt = SGD(params, lr=0.1, momentum=0.9)
    run_steps(opt, params, gradient_sequence(2))
    opt.zero_grad()
    assert all(p.grad is None for p in params)
    values = [p.data.copy() for p in params]
    opt.step()
    for p, v in zip(params, values):
        np.testing.assert_array_equal(p.data, v)


def test_step_bumps_the_version_so_a_stale_backward_refuses_to_run() -> None:
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    (x * x).sum().backward()
    y = (x * x).sum()  # Mul saves x for backward
    SGD([x], lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


def test_lr_can_be_changed_between_steps_and_is_checked() -> None:
    p = Tensor(np.zeros(2), requires_grad=True)
    opt = SGD([p], lr=0.1)
    opt.lr = 0.5
    p.grad = Tensor(np.array([1.0, -2.0]))
    opt.step()
    np.testing.assert_array_equal(p.data, [-0.5, 1.0])
    with pytest.raises(ValueError, match=r"SGD: lr must be a finite number >= 0.0, got -1"):
        opt.lr = -1
    assert opt.lr == 0.5


# ---- state_dict ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("cls", "settings"), CASES, ids=CASE_IDS)
def test_state_dict_resume_is_bit_identical(cls: type[Optimizer], settings: dict[str, Any]) -> None:
    grads = gradient_sequence(7)
    straight = make_params(initial_params())
    run_steps(cls(straight, **settings), straight, grads)

    first = make_params(initial_params())
    opt = cls(first, **settings)
    run_steps(opt, first, grads[:3])
    saved = opt.state_dict()
    checkpointed = [p.data.copy() for p in first]
    run_steps(opt, first, grads[3:4])  # the original keeps stepping: that must not leak into the saved state
    resumed = make_params(checkpointed)
    fresh = cls(resumed, lr=123.0)  # loading must bring back the hyperparameters too
    fresh.load_state_dict(saved)
    assert fresh.defaults == cls(make_params(initial_params()), **settings).defaults
    run_steps(fresh, resumed, grads[3:])
    for p, q in zip(resumed, straight):
        assert p.data.dtype == q.data.dtype
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_holds_plain_data_and_copies() -> None:
    params = make_params(initial_params())
    opt = Adam(params, betas=(0.8, 0.9))
    run_steps(opt, params, gradient_sequence(1))
    sd = opt.state_dict()
    assert sd["optimizer"] == "Adam"
    assert sd["hyperparams"] == {"lr": 1e-3, "betas": [0.8, 0.9], "eps": 1e-8, "weight_decay": 0.0}
    assert sd["param_shapes"] == [list(s) for s in SHAPES]
    assert set(sd["state"]) == {"0", "1", "2"}
    assert sd["state"]["0"]["step"] == 1 and type(sd["state"]["0"]["step"]) is int
    assert sd["state"]["0"]["exp_avg"] is not opt.state[0]["exp_avg"]
    loaded = Adam(make_params(initial_params()))
    loaded.load_state_dict(sd)
    sd["state"]["0"]["exp_avg"][...] = 7.0  # the optimizer holds its own copy
    assert not np.any(loaded.state[0]["exp_avg"] == 7.0)
    assert loaded.defaults["betas"] == (0.8, 0.9)


def _adam_state() -> dict[str, Any]:
    params = make_params(initial_params())
    opt = Adam(params)
    run_steps(opt, params, gradient_sequence(1))
    return opt.state_dict()


@pytest.mark.parametrize(("change", "message"), [
    (lambda sd: sd.update(optimizer="SGD"), r"from a 'SGD' optimizer, expected 'Adam'"),
    (lambda sd: sd["param_shapes"].pop(), r"the state is for 2 parameters, this optimizer has 3"),
    (lambda sd: sd["param_shapes"].__setitem__(1, [4]), r"params\[1\] has shape \(5,\), the state is for shape \(4,\)"),
    (lambda sd: sd["hyperparams"].pop("eps"), r"hyperparameters \['betas', 'lr', 'weight_decay'\], expected"),
    (lambda sd: sd["hyperparams"].update(lr=-0.5), r"Adam: lr must be a finite number >= 0.0, got -0.5"),
    (lambda sd: sd["state"]["1"].update(exp_avg=np.zeros(4)), r"\['exp_avg'\]: got an array of shape \(4,\)"),
    (lambda sd: sd["state"]["1"].pop("exp_avg_sq"), r"state\['1'\]: got \['exp_avg', 'step'\], expected"),
    (lambda sd: sd["state"]["1"].update(step=-1), r"\['step'\]: got -1, expected an integer >= 0"),
    (lambda sd: sd["state"].update({"3": {}}), r"state key '3' is not a parameter index in \[0, 3\)"),
    (lambda sd: sd.pop("state"), r"expected a dict with keys"),
], ids=["optimizer", "count", "shape", "hyperparam-missing", "hyperparam-value", "array-shape", "state-keys",
        "step", "index", "layout"])
def test_load_state_dict_rejects_mismatches_before_changing_anything(change: Callable[[dict[str, Any]], Any],
                                                                     message: str) -> None:
    state_dict = _adam_state()
    change(state_dict)
    params = make_params(initial_params())
    opt = Adam(params, lr=0.5)
    run_steps(opt, params, gradient_sequence(2))
    before = opt.state_dict()
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(state_dict)
    after = opt.state_dict()
    assert after["hyperparams"] == before["hyperparams"]
    for i, state in before["state"].items():
        assert after["state"][i]["step"] == state["step"]
        np.testing.assert_array_equal(after["state"][i]["exp_avg"], state["exp_avg"])


# ---- argument checks -----------------------------------------------------------------------------
@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda p: SGD(p, lr=-0.1), ValueError, r"SGD: lr must be a finite number >= 0.0, got -0.1"),
    (lambda p: SGD(p, lr=math.nan), ValueError, r"SGD: lr must be a finite number >= 0.0, got nan"),
    (lambda p: SGD(p, lr="0.1"), TypeError, r"SGD: lr must be a real number, got str '0.1'"),
    (lambda p: SGD(p, lr=0.1, momentum=-0.5), ValueError, r"SGD: momentum must be .* got -0.5"),
    (lambda p: SGD(p, lr=0.1, weight_decay=-1e-4), ValueError, r"SGD: weight_decay must be .* got -0.0001"),
    (lambda p: SGD(p, lr=0.1, dampening=1.5), ValueError, r"SGD: dampening must be a finite number in \[0.0, 1.0\], "
                                                          r"got 1.5"),
    (lambda p: SGD(p, lr=0.1, nesterov=True), ValueError, r"nesterov=True requires momentum > 0 and dampening = 0, "
                                                          r"got momentum=0.0 and dampening=0.0"),
    (lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True, dampening=0.1), ValueError,
     r"nesterov=True requires .* got momentum=0.9 and dampening=0.1"),
    (lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov="yes"), TypeError, r"SGD: nesterov must be a bool, got str"),
    (lambda p: Adam(p, lr=-1.0), ValueError, r"Adam: lr must be a finite number >= 0.0, got -1.0"),
    (lambda p: Adam(p, betas=(1.0, 0.999)), ValueError, r"Adam: betas\[0\] must be a finite number in \[0.0, 1.0\), "
                                                       r"got 1.0"),
    (lambda p: Adam(p, betas=(0.9, -0.1)), ValueError, r"Adam: betas\[1\] must be .* got -0.1"),
    (lambda p: Adam(p, betas=0.9), TypeError, r"Adam: betas must be a pair \(beta1, beta2\), got 0.9"),
    (lambda p: Adam(p, eps=-1e-8), ValueError, r"Adam: eps must be .* got -1e-08"),
    (lambda p: Adam(p, weight_decay=math.inf), ValueError, r"Adam: weight_decay must be .* got inf"),
])
def test_hyperparameter_checks(make: Callable, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make(make_params(initial_params()))


def _int_tensor() -> Tensor:
    t = Tensor(np.arange(3))
    t.requires_grad = True  # forced: the constructor refuses requires_grad on integers
    return t


_shared = Tensor(np.zeros(2), requires_grad=True)


@pytest.mark.parametrize(("params", "error", "message"), [
    ([], ValueError, r"SGD: got an empty parameter list"),
    (iter([]), ValueError, r"SGD: got an empty parameter list"),
    (Tensor(np.zeros(2), requires_grad=True), TypeError, r"got a single Tensor of shape \(2,\); wrap it in a list"),
    (5, TypeError, r"SGD: params must be an iterable of Tensors, got int"),
    ([Tensor(np.zeros(2), requires_grad=True), np.zeros(2)], TypeError, r"SGD: params\[1\] is a ndarray, expected "
                                                                         r"a Tensor"),
    ([("w", _shared)], TypeError, r"params\[0\] is a tuple, expected a Tensor \(pass model.parameters\(\)"),
    ([_int_tensor()], TypeError, r"SGD: params\[0\] has dtype int64, expected a floating-point Tensor"),
    ([Tensor(np.zeros((2, 3)))], ValueError, r"SGD: params\[0\] \(shape \(2, 3\)\) does not require grad"),
    ([_shared * 2], ValueError, r"SGD: params\[0\] \(shape \(2,\)\) was computed by op Mul; expected a leaf"),
    ([_shared, Tensor(np.zeros(1), requires_grad=True), _shared], ValueError,
     r"SGD: params\[2\] is the same Tensor as params\[0\]"),
], ids=["empty", "empty-iterator", "single-tensor", "not-iterable", "ndarray", "named", "int", "no-grad",
        "non-leaf", "duplicate"])
def test_parameter_checks(params: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        SGD(params, lr=0.1)


def test_a_generator_of_parameters_is_materialised() -> None:
    params = make_params(initial_params())
    opt = SGD((p for p in params), lr=0.1)
    assert opt.params == params


@pytest.mark.parametrize(("bad_grad", "message"), [
    (Tensor(np.zeros(4)), r"SGD.step: params\[1\] has shape \(5,\) and dtype float64 but its grad has shape \(4,\)"),
    (Tensor(np.zeros(5, np.float32)), r"its grad has shape \(5,\) and dtype float32; expected the same"),
    (np.zeros(5), r"SGD.step: params\[1\].grad is a ndarray, expected a Tensor or None"),
])
def test_a_bad_grad_is_reported_before_any_parameter_changes(bad_grad: Any, message: str) -> None:
    params = make_params(initial_params())
    opt = SGD(params, lr=0.1, momentum=0.9)
    for p in params:
        p.grad = Tensor(np.ones(p.shape))
    params[1].grad = bad_grad
    with pytest.raises((TypeError, ValueError), match=message):
        opt.step()
    for p, a in zip(params, initial_params()):
        np.testing.assert_array_equal(p.data, a)
        assert p._version == 0
    assert opt.state == [{}, {}, {}]
