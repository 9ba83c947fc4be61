"""Tests for tinygrad_cnn.optim: updates against PyTorch and the textbook equations, state_dict resume,
argument checks, dtype, in-place updates and version bumps."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor, optim
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
    for state in opt.state.values():
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
    expected = cls(make_params(initial_params()), **settings).param_groups[0]
    assert {k: v for k, v in fresh.param_groups[0].items() if k != "params"} == \
        {k: v for k, v in expected.items() if k != "params"}
    run_steps(fresh, resumed, grads[3:])
    for p, q in zip(resumed, straight):
        assert p.data.dtype == q.data.dtype
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_has_torch_layout_with_str_keys_and_holds_copies(tmp_path: Path) -> None:
    params = make_params(initial_params())
    opt = Adam(params, betas=(0.8, 0.9))
    run_steps(opt, params, gradient_sequence(1))
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert isinstance(sd["param_groups"], list) and len(sd["param_groups"]) == 1
    group = sd["param_groups"][0]
    assert group["params"] == [0, 1, 2]
    assert {k: group[k] for k in ("lr", "betas", "eps", "weight_decay", "amsgrad")} == \
        {"lr": 1e-3, "betas": (0.8, 0.9), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False}
    assert set(sd["state"]) == {"0", "1", "2"}
    assert sd["state"]["0"]["step"] == 1 and type(sd["state"]["0"]["step"]) is int
    assert sd["state"]["0"]["exp_avg"] is not opt.state[0]["exp_avg"]
    loaded = Adam(make_params(initial_params()))
    loaded.load_state_dict(sd)
    sd["state"]["0"]["exp_avg"][...] = 7.0  # the optimizer holds its own copy
    assert not np.any(loaded.state[0]["exp_avg"] == 7.0)
    assert loaded.param_groups[0]["betas"] == (0.8, 0.9)
    tg.save({"optimizer": opt.state_dict()}, tmp_path / "opt.pt")  # a checkpoint holds it as it is
    again = Adam(make_params(initial_params()))
    again.load_state_dict(tg.load(tmp_path / "opt.pt")["optimizer"])
    assert again.param_groups[0]["betas"] == (0.8, 0.9)
    np.testing.assert_array_equal(again.state[2]["exp_avg_sq"], opt.state[2]["exp_avg_sq"])


def _adam_state() -> dict[str, Any]:
    params = make_params(initial_params())
    opt = Adam(params)
    run_steps(opt, params, gradient_sequence(1))
    return opt.state_dict()


def _old_layout() -> dict[str, Any]:
    """The state_dict layout of the library's first release, as its checkpoints hold it."""
    sd = _adam_state()
    hyper = {k: list(v) if isinstance(v, tuple) else v for k, v in sd["param_groups"][0].items()
             if k in ("lr", "betas", "eps", "weight_decay")}
    return {"optimizer": "Adam", "hyperparams": hyper, "param_shapes": [list(s) for s in SHAPES],
            "state": sd["state"]}


@pytest.mark.parametrize(("change", "message"), [
    (lambda sd: sd["param_groups"].append(dict(sd["param_groups"][0])), r"the state has 2 parameter groups, this "
                                                                         r"optimizer has 1"),
    (lambda sd: sd["param_groups"][0].update(params=[0, 1]), r"param group 0 of the state has 2 parameters, this "
                                                             r"optimizer's has 3"),
    (lambda sd: sd["param_groups"][0].pop("eps"), r"param group 0 of the state lacks hyperparameters \['eps'\]"),
    (lambda sd: sd["param_groups"][0].update(lr=-0.5), r"Adam: lr must be a finite number >= 0.0, got -0.5"),
    (lambda sd: sd.update(param_groups=5), r"param_groups must be a list of dicts, got int"),
    (lambda sd: sd["state"]["1"].update(exp_avg=np.zeros(4)), r"\['exp_avg'\]: got an array of shape \(4,\)"),
    (lambda sd: sd["state"]["1"].pop("exp_avg_sq"), r"state\['1'\] \(params\[1\]\): got \['exp_avg', "
                                                    r"'step'\], expected"),
    (lambda sd: sd["state"]["1"].update(step=-1), r"\['step'\]: got -1, expected an integer >= 0"),
    (lambda sd: sd["state"].update({3: {}}), r"state key 3 is not a parameter index of the state's param_groups"),
    (lambda sd: sd["state"].update({"x": {}}), r"state key 'x' is not a parameter index"),
    (lambda sd: sd.pop("state"), r"expected a dict with keys \['param_groups', 'state'\]"),
], ids=["groups", "count", "hyperparam-missing", "hyperparam-value", "groups-type", "array-shape", "state-keys",
        "step", "index", "key", "layout"])
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
    assert after["param_groups"] == before["param_groups"]
    for i, state in before["state"].items():
        assert after["state"][i]["step"] == state["step"]
        np.testing.assert_array_equal(after["state"][i]["exp_avg"], state["exp_avg"])


def test_the_first_releases_layout_still_loads() -> None:
    old = _old_layout()
    fresh = Adam(make_params(initial_params()), lr=0.5)
    fresh.load_state_dict(old)
    reference = _adam_state()
    assert fresh.param_groups[0]["lr"] == 1e-3
    for i, state in reference["state"].items():
        assert fresh.state[int(i)]["step"] == state["step"]
        np.testing.assert_array_equal(fresh.state[int(i)]["exp_avg_sq"], state["exp_avg_sq"])


@pytest.mark.parametrize(("change", "message"), [
    (lambda sd: sd.update(optimizer="SGD"), r"from a 'SGD' optimizer, expected 'Adam'"),
    (lambda sd: sd["param_shapes"].pop(), r"the state is for 2 parameters, this optimizer has 3"),
    (lambda sd: sd["param_shapes"].__setitem__(1, [4]), r"params\[1\] has shape \(5,\), the state is for shape "
                                                        r"\(4,\)"),
    (lambda sd: sd["hyperparams"].pop("eps"), r"hyperparameters \['betas', 'lr', 'weight_decay'\], expected"),
], ids=["optimizer", "count", "shape", "hyperparams"])
def test_the_first_releases_layout_is_checked(change: Callable[[dict[str, Any]], Any], message: str) -> None:
    old = _old_layout()
    change(old)
    with pytest.raises(ValueError, match=message):
        Adam(make_params(initial_params())).load_state_dict(old)


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
    (5, TypeError, r"SGD: params must be an iterable of Tensors or dicts, got int"),
    ([Tensor(np.zeros(2), requires_grad=True), np.zeros(2)], TypeError, r"SGD: params\[1\] is a ndarray, expected "
                                                                         r"a Tensor"),
    ([("w", _shared), _shared], TypeError, r"params\[0\] is a tuple, expected a Tensor \(mixing \(name, "
                                            r"Tensor\) pairs with Tensors\?\)"),
    ([_int_tensor()], TypeError, r"SGD: params\[0\] has dtype int64, expected a floating-point Tensor"),
    ([_shared * 2], ValueError, r"SGD: params\[0\] \(shape \(2,\)\) was computed by op Mul; expected a leaf"),
    ([_shared, Tensor(np.zeros(1), requires_grad=True), _shared], ValueError,
     r"SGD: params\[2\] is the same Tensor as params\[0\]"),
], ids=["empty", "empty-iterator", "single-tensor", "not-iterable", "ndarray", "named", "int",
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
    assert len(opt.state) == 0 or all(not s for s in opt.state.values())


# ---- every optimizer against torch.optim, param groups, frozen parameters ------------------------
ALL_CASES = [
    ("SGD", {"lr": 0.05}), ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "dampening": 0.3, "maximize": True}),
    ("Adam", {"lr": 0.01}), ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-3, "maximize": True}),
    ("AdamW", {}), ("AdamW", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.3}),
    ("RMSprop", {}), ("RMSprop", {"momentum": 0.9, "weight_decay": 0.01}), ("RMSprop", {"centered": True}),
    ("RMSprop", {"alpha": 0.3, "centered": True, "momentum": 0.5, "maximize": True, "eps": 1e-4}),
    ("Adadelta", {}), ("Adadelta", {"lr": 0.5, "rho": 0.5, "eps": 1e-3, "weight_decay": 0.1, "maximize": True}),
]
ALL_IDS = [f"{name}-{settings}" for name, settings in ALL_CASES]


def _run_both(torch: Any, name: str, settings: dict[str, Any], steps: int, groups: Callable | None = None,
              dtype: Any = np.float64) -> tuple[list[Tensor], list[Any], Any, Any]:
    grads = gradient_sequence(steps, dtype)
    ours_p = make_params(initial_params(dtype))
    theirs_p = [torch.tensor(a, requires_grad=True) for a in initial_params(dtype)]
    ours = getattr(optim, name)(groups(ours_p) if groups else ours_p, **settings)
    theirs = getattr(torch.optim, name)(groups(theirs_p) if groups else theirs_p, **settings)
    for step_grads in grads:
        for p, tp, g in zip(ours_p, theirs_p, step_grads):
            p.grad = None if g is None else Tensor(g.copy())
            tp.grad = None if g is None else torch.tensor(g)
        ours.step()
        theirs.step()
    return ours_p, theirs_p, ours, theirs


@pytest.mark.parametrize(("name", "settings"), ALL_CASES, ids=ALL_IDS)
def test_every_optimizer_matches_torch_over_50_steps(name: str, settings: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    ours_p, theirs_p, ours, theirs = _run_both(torch, name, settings, 50)
    for p, tp in zip(ours_p, theirs_p):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10, atol=1e-12)
    for i, tp in enumerate(theirs_p):
        assert set(ours.state[i]) == set(theirs.state[tp])
        for key, value in theirs.state[tp].items():
            np.testing.assert_allclose(ours.state[i][key], value.numpy(), rtol=1e-10, atol=1e-12)
    ours_group = {k: v for k, v in ours.param_groups[0].items() if k != "params"}
    theirs_group = {k: v for k, v in theirs.param_groups[0].items() if k != "params"}
    assert ours_group == theirs_group


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("settings", [{}, {"lr": 0.5, "rho": 0.5, "eps": 1e-3, "weight_decay": 0.1, "maximize": True}])
def test_blocked_updates_match_torch_block_by_block_and_on_threads(monkeypatch: pytest.MonkeyPatch,
                                                                    settings: dict[str, Any], threads: int) -> None:
    """Adadelta updates big parameters in blocks of rows spread over the threads: with 64-element blocks, a
    (5, 29) parameter is 3 blocks (the last one partial), a transposed one is not contiguous (its blocks must
    still be views, or the update would be lost) and a 1-d one of 130 is 3 blocks. Every element must
    still get PyTorch's update."""
    torch = pytest.importorskip("torch")
    from tinygrad_cnn import parallel
    from tinygrad_cnn.optim import optimizer as optimizer_module

    monkeypatch.setattr(optimizer_module, "BLOCK", 64)
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((5, 29)), rng.standard_normal((29, 5)).T, rng.standard_normal(130),
              rng.standard_normal(7)]
    ours_p = [Tensor(np.array(a, order="K"), requires_grad=True) for a in arrays]  # "K": the layout kept
    assert not ours_p[1].data.flags.c_contiguous
    theirs_p = [torch.tensor(a, requires_grad=True) for a in arrays]
    ours, theirs = optim.Adadelta(ours_p, **settings), torch.optim.Adadelta(theirs_p, **settings)
    parallel.set_num_threads(threads)
    try:
        for _ in range(10):
            for p, tp in zip(ours_p, theirs_p):
                g = rng.standard_normal(p.shape)
                p.grad, tp.grad = Tensor(g), torch.tensor(g)
            ours.step()
            theirs.step()
    finally:
        parallel.set_num_threads(1)
    for p, tp in zip(ours_p, theirs_p):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("name", "settings"), ALL_CASES[::2], ids=ALL_IDS[::2])
def test_float32_matches_torch(name: str, settings: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    ours_p, theirs_p, _, _ = _run_both(torch, name, settings, 20, dtype=np.float32)
    for p, tp in zip(ours_p, theirs_p):
        assert p.dtype == np.float32
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adadelta"])
def test_param_groups_with_their_own_options_match_torch(name: str) -> None:
    torch = pytest.importorskip("torch")
    extra = {"SGD": {"momentum": 0.9}, "Adam": {"betas": (0.5, 0.9)}, "AdamW": {"weight_decay": 0.5},
             "RMSprop": {"centered": True}, "Adadelta": {"rho": 0.5}}[name]

    def groups(ps: list[Any]) -> list[dict[str, Any]]:
        return [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.2, **extra}]

    ours_p, theirs_p, ours, theirs = _run_both(torch, name, {"lr": 0.03}, 30, groups)
    for p, tp in zip(ours_p, theirs_p):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10, atol=1e-12)
    for g, tgroup in zip(ours.param_groups, theirs.param_groups):
        assert {k: v for k, v in g.items() if k != "params"} == {k: v for k, v in tgroup.items() if k != "params"}


def test_add_param_group_takes_the_defaults_and_checks_first() -> None:
    a, b, c = make_params(initial_params())
    opt = SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert opt.param_groups[1]["params"] == [b] and opt.param_groups[1]["lr"] == 0.01
    assert opt.param_groups[1]["momentum"] == 0.9
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": [c, a]})
    with pytest.raises(ValueError, match=r"SGD.add_param_group: lr must be a finite number >= 0.0, got -1"):
        opt.add_param_group({"params": [c], "lr": -1})
    with pytest.raises(TypeError, match="param_group must be a dict, got list"):
        opt.add_param_group([c])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a set"):
        opt.add_param_group({"params": {c}})
    assert len(opt.param_groups) == 2 and opt.params == [a, b]


def test_a_model_with_a_frozen_layer_is_accepted_and_the_frozen_layer_skipped() -> None:
    from tinygrad_cnn import nn
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    frozen = [p.data.copy() for p in model[0].parameters()]
    opt = SGD(model.parameters(), lr=0.5, momentum=0.9)
    for _ in range(2):
        opt.zero_grad()
        (model(Tensor(np.ones((5, 3), np.float32))) ** 2).sum().backward()
        opt.step()
    for p, before in zip(model[0].parameters(), frozen):
        assert p.grad is None
        np.testing.assert_array_equal(p.data, before)
    assert all(not opt.state[p] for p in model[0].parameters())
    assert all("momentum_buffer" in opt.state[p] for p in model[2].parameters())


def test_named_parameters_are_accepted_with_their_names_as_torch() -> None:
    from tinygrad_cnn import nn
    model = nn.Linear(3, 2)
    opt = Adam(model.named_parameters())
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]


def test_zero_grad_set_to_none_false_zeroes_in_place() -> None:
    params = make_params(initial_params())
    opt = SGD(params, lr=0.1)
    for p in params:
        p.grad = Tensor(np.ones(p.shape))
    held = params[0].grad
    opt.zero_grad(set_to_none=False)
    assert params[0].grad is held and not np.any(held.data)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_step_with_a_closure_returns_its_loss() -> None:
    p = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    opt = SGD([p], lr=0.1)

    def closure() -> Tensor:
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 5.0
    np.testing.assert_allclose(p.data, [0.8, -1.6])


def test_a_scheduler_changes_the_rate_the_optimizer_uses() -> None:
    p = Tensor(np.zeros(1), requires_grad=True)
    opt = SGD([p], lr=1.0)
    opt.param_groups[0]["lr"] = 0.25
    p.grad = Tensor(np.ones(1))
    opt.step()
    np.testing.assert_array_equal(p.data, [-0.25])
    opt.lr = 0.5  # the first release's attribute: every group
    assert opt.param_groups[0]["lr"] == 0.5 and opt.lr == 0.5


@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda p: optim.AdamW(p, betas=(0.9, 1.0)), ValueError, r"AdamW: betas\[1\] must be a finite number in "
                                                            r"\[0.0, 1.0\), got 1.0"),
    (lambda p: optim.RMSprop(p, alpha=-0.1), ValueError, r"RMSprop: alpha must be a finite number >= 0.0, got -0.1"),
    (lambda p: optim.RMSprop(p, centered=1), TypeError, r"RMSprop: centered must be a bool, got int 1"),
    (lambda p: optim.Adadelta(p, rho=1.5), ValueError, r"Adadelta: rho must be a finite number in \[0.0, 1.0\], "
                                                       r"got 1.5"),
    (lambda p: optim.Adadelta(p, lr=-1), ValueError, r"Adadelta: lr must be a finite number >= 0.0, got -1"),
    (lambda p: SGD(p, maximize="no"), TypeError, r"SGD: maximize must be a bool, got str 'no'"),
    (lambda p: Adam(p, differentiable=True), ValueError, r"Adam: differentiable=True is not supported"),
    (lambda p: SGD([{"params": p[:1]}, {"params": p[1:], "momentum": -1}]), ValueError,
     r"SGD: param group 1: momentum must be a finite number >= 0.0, got -1"),
])
def test_more_hyperparameter_checks(make: Callable, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make(make_params(initial_params()))


@pytest.mark.parametrize(("name", "settings"), ALL_CASES[1::3], ids=ALL_IDS[1::3])
def test_state_dicts_cross_between_torch_and_us(name: str, settings: dict[str, Any]) -> None:
    """A torch.optim state dict (tensors as arrays) resumes here, and ours resumes in torch, bit for bit."""
    torch = pytest.importorskip("torch")
    ours_p, theirs_p, ours, theirs = _run_both(torch, name, settings, 5)
    grads = gradient_sequence(4, seed=7)

    def to_numpy(sd: dict[str, Any]) -> dict[str, Any]:
        return {"state": {k: {n: v.numpy() if hasattr(v, "numpy") else v for n, v in s.items()}
                          for k, s in sd["state"].items()},
                "param_groups": sd["param_groups"]}

    def to_torch(sd: dict[str, Any]) -> dict[str, Any]:  # int keys and a list of groups, as torch's
        return {"state": {int(k): {n: torch.tensor(float(v)) if n == "step" else torch.from_numpy(v.copy())
                                   for n, v in s.items()} for k, s in sd["state"].items()},
                "param_groups": sd["param_groups"]}

    resumed_here = make_params([tp.detach().numpy().copy() for tp in theirs_p])
    here = getattr(optim, name)(resumed_here)
    here.load_state_dict(to_numpy(theirs.state_dict()))
    resumed_there = [torch.tensor(p.data.copy(), requires_grad=True) for p in ours_p]
    there = getattr(torch.optim, name)(resumed_there)
    there.load_state_dict(to_torch(ours.state_dict()))
    for step_grads in grads:
        for params, opt in ((resumed_here, here), (ours_p, ours)):
            for p, g in zip(params, step_grads):
                p.grad = None if g is None else Tensor(g.copy())
            opt.step()
        for tps, opt in ((resumed_there, there), (theirs_p, theirs)):
            for tp, g in zip(tps, step_grads):
                tp.grad = None if g is None else torch.tensor(g)
            opt.step()
    for a, b, ta, tb in zip(resumed_here, ours_p, resumed_there, theirs_p):
        np.testing.assert_allclose(a.data, tb.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ta.detach().numpy(), b.data, rtol=1e-10, atol=1e-12)


def test_a_users_own_optimizer_written_as_for_torch() -> None:
    class SignSGD(Optimizer):
        def __init__(self, params: Any, lr: float = 0.1) -> None:
            super().__init__(params, {"lr": lr})

        def step(self, closure: Any = None) -> None:
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    state["count"] = state.get("count", 0) + 1
                    state["last"] = np.sign(p.grad.data)
                    p.data -= group["lr"] * state["last"]

    params = make_params(initial_params())
    opt = SignSGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.5}])
    before = [p.data.copy() for p in params]
    run_steps(opt, params, gradient_sequence(2))
    assert opt.param_groups[1]["lr"] == 0.5 and opt.state[params[0]]["count"] == 2
    np.testing.assert_allclose(params[0].data, before[0] - 0.1 * np.sign(gradient_sequence(2)[0][0])
                               - 0.1 * np.sign(gradient_sequence(2)[1][0]))
    others = make_params(initial_params())
    fresh = SignSGD(others[:1])
    fresh.add_param_group({"params": others[1:]})
    fresh.load_state_dict(opt.state_dict())
    assert fresh.state[0]["count"] == 2 and fresh.param_groups[1]["lr"] == 0.5


def test_a_deep_copy_of_an_optimizer_keeps_its_state_with_the_copied_parameters() -> None:
    import copy
    params = make_params(initial_params())
    opt = SGD(params, lr=0.1, momentum=0.9)
    run_steps(opt, params, gradient_sequence(2))
    twin = copy.deepcopy(opt)
    assert twin.params[0] is not params[0]
    np.testing.assert_array_equal(twin.state[twin.params[0]]["momentum_buffer"], opt.state[0]["momentum_buffer"])
    run_steps(twin, twin.params, gradient_sequence(3)[2:])
    run_steps(opt, params, gradient_sequence(3)[2:])
    for a, b in zip(twin.params, params):
        np.testing.assert_array_equal(a.data, b.data)
