"""Adam and AdamW (torch.optim.Adam, torch.optim.AdamW): amsgrad, maximize, L2 or decoupled weight decay."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from ..autograd import Tensor
from .optimizer import Optimizer, check_flag, check_implementation_flags, check_real


class Adam(Optimizer):
    """Adam with PyTorch's update, per parameter p with gradient grad (negated when maximize) and step count t
    (1 on the first step):

        g = grad + weight_decay * p        (Adam; AdamW instead first sets p = p * (1 - lr * weight_decay))
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)              (amsgrad, which then uses v_max in place of v below)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    """

    n_scratch: ClassVar[int] = 2

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, *, foreach: bool | None = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False, fused: bool | None = None,
                 decoupled_weight_decay: bool = False) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "amsgrad": amsgrad, "maximize": maximize, "foreach": foreach,
                                  "capturable": capturable, "differentiable": differentiable, "fused": fused,
                                  "decoupled_weight_decay": decoupled_weight_decay})

    @classmethod
    def check_hyperparams(cls, hyperparams: dict[str, Any]) -> dict[str, Any]:
        name = cls.__name__
        betas = hyperparams["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        return {"lr": check_real(name, "lr", hyperparams["lr"]),
                "betas": tuple(check_real(name, f"betas[{i}]", beta, high=1.0, high_open=True)
                               for i, beta in enumerate(betas)),
                "eps": check_real(name, "eps", hyperparams["eps"]),
                "weight_decay": check_real(name, "weight_decay", hyperparams["weight_decay"]),
                **{key: check_flag(name, key, hyperparams[key])
                   for key in ("amsgrad", "maximize", "decoupled_weight_decay")},
                **check_implementation_flags(name, hyperparams)}

    def state_keys(self, group: dict[str, Any]) -> dict[str, type]:
        keys = {"step": int, "exp_avg": np.ndarray, "exp_avg_sq": np.ndarray}
        return {**keys, "max_exp_avg_sq": np.ndarray} if group["amsgrad"] else keys

    def update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], scratch: tuple[np.ndarray, ...],
               group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        a, b = scratch
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(p), exp_avg_sq=np.zeros_like(p))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p)
        state["step"] += 1
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        if group["maximize"]:
            g = np.negative(g, out=a)
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                p *= 1 - lr * weight_decay
            else:
                g = np.add(g, np.multiply(p, weight_decay, out=b), out=a)
        m *= beta1
        m += np.multiply(g, 1 - beta1, out=b)
        v *= beta2
        v += np.multiply(np.multiply(g, 1 - beta2, out=b), g, out=b)
        if group["amsgrad"]:
            v = np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        denom = np.sqrt(v, out=a)  # g (possibly in a) is no longer needed
        denom /= (1 - beta2**t) ** 0.5
        denom += eps
        p -= np.divide(np.multiply(m, lr / (1 - beta1**t), out=b), denom, out=b)


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.01): p = p * (1 - lr * weight_decay) before the Adam step."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, *, maximize: bool = False, foreach: bool | None = None,
                 capturable: bool = False, differentiable: bool = False, fused: bool | None = None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
