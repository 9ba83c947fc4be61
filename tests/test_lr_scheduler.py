"""Tests for tinygrad_cnn.optim.lr_scheduler: learning-rate sequences equal to torch.optim.lr_scheduler's
(exactly: the same floats), momentum cycling, state_dict resume, checkpoints and argument checks."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor, optim
from tinygrad_cnn.optim import lr_scheduler

CASES: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    ("SGD", {"lr": 0.1}, "StepLR", {"step_size": 7, "gamma": 0.5}),
    ("SGD", {"lr": 0.1}, "StepLR", {"step_size": 1}),
    ("SGD", {"lr": 0.1}, "MultiStepLR", {"milestones": [5, 20, 20, 33], "gamma": 0.3}),
    ("SGD", {"lr": 0.1}, "ExponentialLR", {"gamma": 0.93}),
    ("SGD", {"lr": 0.1}, "CosineAnnealingLR", {"T_max": 13, "eta_min": 0.001}),
    ("Adam", {"lr": 0.1}, "CosineAnnealingLR", {"T_max": 50}),
    ("SGD", {"lr": 0.1}, "LambdaLR", {"lr_lambda": lambda e: 0.95**e / (1 + e)}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}, "OneCycleLR", {"max_lr": [0.5, 1.0], "total_steps": 61}),
    ("Adam", {"lr": 0.1}, "OneCycleLR", {"max_lr": 0.01, "epochs": 6, "steps_per_epoch": 11,
                                         "anneal_strategy": "linear", "three_phase": True}),
    ("RMSprop", {}, "OneCycleLR", {"max_lr": 0.05, "total_steps": 70, "pct_start": 0.25, "div_factor": 10.0}),
    ("SGD", {"lr": 0.1}, "LinearLR", {"start_factor": 0.1, "total_iters": 12}),
    ("SGD", {"lr": 0.1}, "LinearLR", {"start_factor": 1.0, "end_factor": 0.2, "total_iters": 30}),
    ("SGD", {"lr": 0.1}, "ConstantLR", {"factor": 0.25, "total_iters": 9}),
    ("SGD", {"lr": 0.1}, "PolynomialLR", {"total_iters": 40, "power": 2.0}),
    ("SGD", {"lr": 0.1}, "CosineAnnealingWarmRestarts", {"T_0": 5, "T_mult": 2, "eta_min": 0.01}),
    ("Adam", {"lr": 0.1}, "CosineAnnealingWarmRestarts", {"T_0": 7}),
]
IDS = [f"{s}-{k}" for _, _, s, k in CASES]
STEPS = 60


def _groups(lib: Any, opt_name: str, settings: dict[str, Any]) -> Any:
    """An optimizer with two groups (the second with its own lr) from either library."""
    if lib is optim:
        a, b = Tensor(np.zeros(2), requires_grad=True), Tensor(np.zeros(1), requires_grad=True)
    else:
        a, b = lib.zeros(2, requires_grad=True), lib.zeros(1, requires_grad=True)
    cls = getattr(optim if lib is optim else lib.optim, opt_name)
    return cls([{"params": [a]}, {"params": [b], "lr": 0.3}], **settings)


def _schedule(scheduler_module: Any, opt: Any, name: str, kwargs: dict[str, Any], steps: int,
              metric: Callable[[int], float] | None = None) -> tuple[list[list[float]], list[Any]]:
    scheduler = getattr(scheduler_module, name)(opt, **kwargs)
    lrs, momenta = [list(scheduler.get_last_lr())], []
    for i in range(steps):
        opt.step()
        scheduler.step(metric(i)) if metric else scheduler.step()
        lrs.append(list(scheduler.get_last_lr()))
        momenta.append([g.get("momentum", g.get("betas")) for g in opt.param_groups])
    return lrs, momenta


@pytest.mark.parametrize(("opt_name", "settings", "name", "kwargs"), CASES, ids=IDS)
def test_learning_rates_equal_torch_exactly(opt_name: str, settings: dict[str, Any], name: str,
                                            kwargs: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    steps = kwargs.get("total_steps", STEPS + 1) - 1 if name == "OneCycleLR" else STEPS
    ours = _schedule(lr_scheduler, _groups(optim, opt_name, settings), name, kwargs, steps)
    theirs = _schedule(torch.optim.lr_scheduler, _groups(torch, opt_name, settings), name, kwargs, steps)
    assert ours[0] == theirs[0]
    assert [[tuple(m) if isinstance(m, tuple) else m for m in row] for row in ours[1]] == theirs[1]


@pytest.mark.parametrize(("kwargs", "metric"), [
    ({"patience": 3, "factor": 0.5, "cooldown": 2, "threshold": 0.01}, lambda i: 1.0 / (1 + i // 10)),
    ({"mode": "max", "patience": 0, "min_lr": [0.01, 0.05], "threshold_mode": "abs"}, lambda i: float(i % 7)),
    ({"mode": "min", "patience": 2, "threshold_mode": "abs", "threshold": 0.1, "eps": 0.02}, lambda i: 5.0 - i / 30),
    ({}, lambda i: 1.0),
], ids=["rel-cooldown", "max-abs-min-lrs", "abs-eps", "defaults"])
def test_reduce_lr_on_plateau_equals_torch_exactly(kwargs: dict[str, Any], metric: Callable[[int], float]) -> None:
    torch = pytest.importorskip("torch")
    ours = _schedule(lr_scheduler, _groups(optim, "SGD", {"lr": 0.1}), "ReduceLROnPlateau", kwargs, STEPS, metric)
    theirs = _schedule(torch.optim.lr_scheduler, _groups(torch, "SGD", {"lr": 0.1}), "ReduceLROnPlateau", kwargs,
                       STEPS, metric)
    assert ours[0] == theirs[0]


def _warmup_then_cosine(sched: Any, opt: Any) -> Any:
    warmup = sched.LinearLR(opt, start_factor=0.1, total_iters=5)
    return sched.SequentialLR(opt, [warmup, sched.CosineAnnealingLR(opt, T_max=20), sched.ExponentialLR(opt, 0.9)],
                              milestones=[5, 25])


def test_sequential_lr_equals_torch_exactly_and_goes_through_a_checkpoint(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    runs = []
    for lib, sched in ((optim, lr_scheduler), (torch, torch.optim.lr_scheduler)):
        opt = _groups(lib, "SGD", {"lr": 0.1})
        scheduler = _warmup_then_cosine(sched, opt)
        lrs = [list(scheduler.get_last_lr())]
        for _ in range(45):
            opt.step()
            scheduler.step()
            lrs.append(list(scheduler.get_last_lr()))
        runs.append(lrs)
        if lib is optim:
            tg.save({"s": scheduler.state_dict(), "lrs": [g["lr"] for g in opt.param_groups]}, tmp_path / "s.pt")
    assert runs[0] == runs[1]
    saved = tg.load(tmp_path / "s.pt")
    opt = _groups(optim, "SGD", {"lr": 0.1})
    scheduler = _warmup_then_cosine(lr_scheduler, opt)
    scheduler.load_state_dict(saved["s"])
    assert scheduler.get_last_lr() == runs[0][-1]


def test_reduce_lr_on_plateau_takes_a_tensor_metric() -> None:
    opt = _groups(optim, "SGD", {"lr": 1.0})
    scheduler = lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    scheduler.step(Tensor(np.array(2.0)))
    scheduler.step(Tensor(np.array(3.0)))
    assert scheduler.get_last_lr() == [0.1, pytest.approx(0.03)]


def test_step_with_an_epoch_uses_the_closed_form_and_warns() -> None:
    torch = pytest.importorskip("torch")
    for lib, sched in ((optim, lr_scheduler), (torch, torch.optim.lr_scheduler)):
        opt = _groups(lib, "SGD", {"lr": 0.1})
        scheduler = sched.StepLR(opt, step_size=3, gamma=0.5)
        opt.step()
        with pytest.warns(UserWarning, match="epoch parameter"):
            scheduler.step(7)
        if lib is optim:
            ours = scheduler.get_last_lr()
        else:
            assert ours == scheduler.get_last_lr()


def test_stepping_the_scheduler_before_the_optimizer_warns_as_torch() -> None:
    opt = _groups(optim, "SGD", {"lr": 0.1})
    scheduler = lr_scheduler.StepLR(opt, step_size=2)
    with pytest.warns(UserWarning, match=r"lr_scheduler.step\(\)` before `optimizer.step\(\)"):
        scheduler.step()
    opt = _groups(optim, "SGD", {"lr": 0.1})
    scheduler = lr_scheduler.StepLR(opt, step_size=2)
    opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scheduler.step()


@pytest.mark.parametrize(("name", "kwargs"), [
    ("StepLR", {"step_size": 4, "gamma": 0.5}), ("MultiStepLR", {"milestones": [3, 9, 9]}),
    ("ExponentialLR", {"gamma": 0.9}), ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.01}),
    ("LambdaLR", {"lr_lambda": lambda e: 1 / (1 + e)}), ("OneCycleLR", {"max_lr": 0.5, "total_steps": 30}),
])
def test_resuming_from_a_checkpoint_continues_the_same_sequence(name: str, kwargs: dict[str, Any],
                                                               tmp_path: Path) -> None:
    straight = _schedule(lr_scheduler, _groups(optim, "SGD", {"lr": 0.1, "momentum": 0.9}), name, kwargs, 25)[0]
    opt = _groups(optim, "SGD", {"lr": 0.1, "momentum": 0.9})
    scheduler = getattr(lr_scheduler, name)(opt, **kwargs)
    for _ in range(10):
        opt.step()
        scheduler.step()
    tg.save({"scheduler": scheduler.state_dict(), "lrs": [g["lr"] for g in opt.param_groups],
             "initial": [g["initial_lr"] for g in opt.param_groups]}, tmp_path / "sched.pt")
    saved = tg.load(tmp_path / "sched.pt")
    fresh_opt = _groups(optim, "SGD", {"lr": 0.1, "momentum": 0.9})
    fresh = getattr(lr_scheduler, name)(fresh_opt, **kwargs)
    fresh.load_state_dict(saved["scheduler"])
    for group, lr, initial in zip(fresh_opt.param_groups, saved["lrs"], saved["initial"]):
        group["lr"], group["initial_lr"] = lr, initial  # what the optimizer's own state_dict carries
    lrs = [list(fresh.get_last_lr())]
    for _ in range(15):
        fresh_opt.step()
        fresh.step()
        lrs.append(list(fresh.get_last_lr()))
    assert lrs == straight[10:]


def test_lambda_lr_state_dict_leaves_functions_out_as_torch() -> None:
    opt = _groups(optim, "SGD", {"lr": 0.1})

    class Warmup:
        def __init__(self) -> None:
            self.steps = 5

        def __call__(self, epoch: int) -> float:
            return min(1.0, (epoch + 1) / self.steps)

    warmup = Warmup()
    scheduler = lr_scheduler.LambdaLR(opt, [lambda e: 0.5**e, warmup])
    state = scheduler.state_dict()
    assert state["lr_lambdas"] == [None, {"steps": 5}]
    state["lr_lambdas"][1]["steps"] = 9
    scheduler.load_state_dict(state)
    assert warmup.steps == 9 and callable(scheduler.lr_lambdas[0])


def test_multistep_lr_loads_torchs_counter() -> None:
    torch = pytest.importorskip("torch")
    theirs = torch.optim.lr_scheduler.MultiStepLR(_groups(torch, "SGD", {"lr": 0.1}), [2, 5, 5])
    ours = lr_scheduler.MultiStepLR(_groups(optim, "SGD", {"lr": 0.1}), [1])
    ours.load_state_dict(theirs.state_dict())
    assert ours.milestones == [2, 5, 5]


def test_one_cycle_lr_loads_torchs_state() -> None:
    torch = pytest.importorskip("torch")
    theirs = torch.optim.lr_scheduler.OneCycleLR(_groups(torch, "SGD", {"lr": 0.1}), 0.5, total_steps=40,
                                                 pct_start=0.4, three_phase=True)
    ours = lr_scheduler.OneCycleLR(_groups(optim, "SGD", {"lr": 0.1}), 0.5, total_steps=20)
    ours.load_state_dict(theirs.state_dict())
    assert (ours.total_steps, ours.pct_start, ours.three_phase) == (40, 0.4, True)


@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda o: lr_scheduler.StepLR(o, step_size=0), ValueError, r"StepLR: step_size must be an int >= 1, got 0"),
    (lambda o: lr_scheduler.StepLR(o, step_size=2.5), ValueError, r"StepLR: step_size must be an int >= 1, got 2.5"),
    (lambda o: lr_scheduler.StepLR("opt", 2), TypeError, r"StepLR: str is not an Optimizer"),
    (lambda o: lr_scheduler.MultiStepLR(o, 3), TypeError, r"MultiStepLR: milestones must be a list of epochs"),
    (lambda o: lr_scheduler.ExponentialLR(o, gamma=math.nan), ValueError, r"ExponentialLR: gamma must be a finite"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=0), ValueError, r"CosineAnnealingLR: T_max must be an int"),
    (lambda o: lr_scheduler.LambdaLR(o, [lambda e: 1.0]), ValueError, r"LambdaLR: expected 2 lr_lambdas, got 1"),
    (lambda o: lr_scheduler.LambdaLR(o, 0.5), TypeError, r"LambdaLR: lr_lambda\[0\] is a float, expected a function"),
    (lambda o: lr_scheduler.OneCycleLR(o, 0.1), ValueError, r"you must define either total_steps OR"),
    (lambda o: lr_scheduler.OneCycleLR(o, 0.1, total_steps=10, pct_start=1.5), ValueError, r"pct_start"),
    (lambda o: lr_scheduler.OneCycleLR(o, 0.1, total_steps=10, anneal_strategy="exp"), ValueError,
     r"anneal_strategy must be one of 'cos' or 'linear', got 'exp'"),
    (lambda o: lr_scheduler.OneCycleLR(o, [0.1], total_steps=10), ValueError, r"expected 2 values for max_lr, got 1"),
    (lambda o: lr_scheduler.OneCycleLR(o, 0.1, total_steps=10, max_momentum=[0.9]), ValueError,
     r"expected 2 values for max_momentum, got 1"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), ValueError, r"factor should be < 1.0, got 1.0"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="up"), ValueError, r"mode 'up' is unknown"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, threshold_mode="x"), ValueError, r"threshold mode 'x' is unknown"),
    (lambda o: lr_scheduler.StepLR(o, 2, last_epoch=3), KeyError, r"param 'initial_lr' is not specified"),
    (lambda o: lr_scheduler.LinearLR(o, start_factor=0), ValueError, r"LinearLR: start_factor must be in \(0, 1\]"),
    (lambda o: lr_scheduler.ConstantLR(o, factor=2), ValueError, r"ConstantLR: factor must be in \[0, 1\], got 2"),
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=0), ValueError, r"T_0 must be an int >= 1, got 0"),
    (lambda o: lr_scheduler.SequentialLR(o, [], []), ValueError, r"expects at least one scheduler"),
    (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.ReduceLROnPlateau(o)], []), ValueError,
     r"does not support ReduceLROnPlateau"),
])
def test_argument_checks(make: Callable[[Any], Any], error: type[Exception], message: str) -> None:
    opt = _groups(optim, "SGD", {"lr": 0.1})
    before = [dict(g) for g in opt.param_groups]
    with pytest.raises(error, match=message):
        make(opt)
    assert [dict(g) for g in opt.param_groups] == before


def test_one_cycle_lr_needs_momentum_and_changes_nothing_when_refused() -> None:
    opt = optim.Adadelta([Tensor(np.zeros(2), requires_grad=True)])
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        lr_scheduler.OneCycleLR(opt, 0.1, total_steps=10)
    assert "initial_lr" not in opt.param_groups[0]
    lr_scheduler.OneCycleLR(opt, 0.1, total_steps=10, cycle_momentum=False)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 / 25)


def test_one_cycle_lr_refuses_to_step_past_its_end() -> None:
    opt = _groups(optim, "SGD", {"lr": 0.1, "momentum": 0.9})
    scheduler = lr_scheduler.OneCycleLR(opt, 0.5, total_steps=3)
    for _ in range(3):
        opt.step()
        scheduler.step()
    with pytest.raises(ValueError, match="tried to step 4 times; the specified number of total steps is 3"):
        scheduler.step()


def test_load_state_dict_refuses_another_schedulers_state() -> None:
    opt = _groups(optim, "SGD", {"lr": 0.1})
    state = lr_scheduler.StepLR(opt, 3).state_dict()
    with pytest.raises(ValueError, match=r"ExponentialLR.load_state_dict: unexpected keys \['step_size'\]"):
        lr_scheduler.ExponentialLR(opt, 0.5).load_state_dict(state)


def test_reduce_lr_on_plateau_state_goes_through_a_checkpoint(tmp_path: Path) -> None:
    opt = _groups(optim, "SGD", {"lr": 0.1})
    scheduler = lr_scheduler.ReduceLROnPlateau(opt, mode="max", patience=1, cooldown=3)
    for metric in (1.0, 0.5, 0.5, 0.4):
        scheduler.step(metric)
    tg.save({"scheduler": scheduler.state_dict()}, tmp_path / "s.pt")
    fresh = lr_scheduler.ReduceLROnPlateau(_groups(optim, "SGD", {"lr": 0.1}))
    fresh.load_state_dict(tg.load(tmp_path / "s.pt")["scheduler"])
    assert fresh.state_dict() == scheduler.state_dict()
    assert (fresh.best, fresh.cooldown_counter, fresh.mode) == (1.0, 2, "max")
    assert fresh._is_better(2.0, fresh.best) and not fresh._is_better(0.9, fresh.best)
