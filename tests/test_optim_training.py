"""A model trained here and in PyTorch from the same weights on the same batches, with every optimizer, a
scheduler and gradient clipping, ends at the same parameters; and property-based checks of the optimizers
against torch.optim over random hyperparameters."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, nn, optim
from tinygrad_cnn.nn.utils import clip_grad_norm_
from tinygrad_cnn.optim import lr_scheduler

torch = pytest.importorskip("torch")

RUNS = [
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}, "StepLR", {"step_size": 10}),
    ("Adam", {"lr": 0.01, "amsgrad": True}, "CosineAnnealingLR", {"T_max": 20}),
    ("AdamW", {"lr": 0.01}, "OneCycleLR", {"max_lr": 0.02, "total_steps": 50}),
    ("RMSprop", {"lr": 0.005, "momentum": 0.5, "centered": True}, "ExponentialLR", {"gamma": 0.97}),
    ("Adadelta", {"lr": 1.0}, "MultiStepLR", {"milestones": [15, 30]}),
    ("SGD", {"lr": 0.1}, "LambdaLR", {"lr_lambda": lambda e: 1 / (1 + 0.1 * e)}),
]


def _model(lib: Any) -> Any:
    return lib.Sequential(lib.Conv2d(1, 3, 3), lib.ReLU(), lib.Flatten(), lib.Linear(3 * 4 * 4, 8), lib.ReLU(),
                          lib.Linear(8, 3))


@pytest.mark.parametrize(("opt_name", "opt_kwargs", "sched_name", "sched_kwargs"), RUNS,
                         ids=[f"{r[0]}-{r[2]}" for r in RUNS])
def test_fifty_training_steps_match_torch(opt_name: str, opt_kwargs: dict[str, Any], sched_name: str,
                                         sched_kwargs: dict[str, Any]) -> None:
    rng = np.random.default_rng(0)
    ours, theirs = _model(nn).double(), _model(torch.nn).double()
    ours[0].requires_grad_(False)  # a frozen layer: both skip it
    theirs[0].requires_grad_(False)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    opt = getattr(optim, opt_name)([{"params": ours[3].parameters()}, {"params": ours[5].parameters(), "lr": 0.02}]
                                   + [{"params": ours[0].parameters()}], **opt_kwargs)
    topt = getattr(torch.optim, opt_name)([{"params": theirs[3].parameters()},
                                           {"params": theirs[5].parameters(), "lr": 0.02},
                                           {"params": theirs[0].parameters()}], **opt_kwargs)
    sched = getattr(lr_scheduler, sched_name)(opt, **sched_kwargs)
    tsched = getattr(torch.optim.lr_scheduler, sched_name)(topt, **sched_kwargs)
    for _ in range(50):
        x = rng.standard_normal((8, 1, 6, 6))
        y = rng.integers(0, 3, 8)
        opt.zero_grad()
        F.cross_entropy(ours(Tensor(x)), y).backward()
        norm = clip_grad_norm_(ours.parameters(), 0.5)
        opt.step()
        sched.step()
        topt.zero_grad()
        torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        tnorm = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 0.5)
        topt.step()
        tsched.step()
        np.testing.assert_allclose(norm.item(), tnorm.item(), rtol=1e-9)
        assert sched.get_last_lr() == tsched.get_last_lr()
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(value, theirs.state_dict()[name].numpy(), rtol=1e-6, atol=1e-9, err_msg=name)


_unit = st.floats(0.0, 0.99)
_rate = st.floats(1e-4, 0.5)
OPTIMIZERS = st.one_of(
    st.tuples(st.just("SGD"), st.fixed_dictionaries({"lr": _rate, "momentum": _unit, "weight_decay": _unit,
                                                      "maximize": st.booleans()})),
    st.tuples(st.just("Adam"), st.fixed_dictionaries({"lr": _rate, "betas": st.tuples(_unit, _unit),
                                                       "eps": st.floats(1e-8, 1.0), "weight_decay": _unit,
                                                       "amsgrad": st.booleans()})),
    st.tuples(st.just("AdamW"), st.fixed_dictionaries({"lr": _rate, "weight_decay": _unit,
                                                        "amsgrad": st.booleans()})),
    st.tuples(st.just("RMSprop"), st.fixed_dictionaries({"lr": _rate, "alpha": _unit, "momentum": _unit,
                                                          "centered": st.booleans(), "eps": st.floats(1e-8, 1.0)})),
    st.tuples(st.just("Adadelta"), st.fixed_dictionaries({"lr": _rate, "rho": _unit, "weight_decay": _unit})),
)


@settings(max_examples=60, deadline=None)
@given(case=OPTIMIZERS, seed=st.integers(0, 2**16), scale=st.sampled_from([1e-6, 1.0, 1e4]))
def test_random_hyperparameters_match_torch(case: tuple[str, dict[str, Any]], seed: int, scale: float) -> None:
    name, kwargs = case
    rng = np.random.default_rng(seed)
    start = [rng.standard_normal(s) for s in ((4, 3), (2,))]
    ours_p = [Tensor(a.copy(), requires_grad=True) for a in start]
    theirs_p = [torch.tensor(a.copy(), requires_grad=True) for a in start]
    opt, topt = getattr(optim, name)(ours_p, **kwargs), getattr(torch.optim, name)(theirs_p, **kwargs)
    for _ in range(10):
        for p, tp in zip(ours_p, theirs_p):
            g = rng.standard_normal(p.shape) * scale
            p.grad, tp.grad = Tensor(g.copy()), torch.from_numpy(g.copy())
        opt.step()
        topt.step()
    # torch's centered RMSprop takes sqrt(v - m*m) with a fused multiply-add, which can round a zero variance to a
    # tiny negative number (NaN); ours stays finite there: compare where torch's result is a number
    assume(all(np.isfinite(tp.detach().numpy()).all() for tp in theirs_p))
    # Centered, v - m*m is ill-conditioned when alpha is near 0 (the two nearly cancel, and the step divides by
    # their difference): rounding alone, ours or torch's fused multiply-add, then moves the result by up to
    # 1e-16 * v / (v - m*m), 1e-5 relative at alpha = 1e-8. So centered RMSprop is compared at alpha >= 0.01 here
    # (test_optim.py's fixed cases use 0.3 and the default 0.99).
    assume(not (name == "RMSprop" and kwargs["centered"] and kwargs["alpha"] < 0.01))
    for p, tp in zip(ours_p, theirs_p):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-9, atol=1e-12)
