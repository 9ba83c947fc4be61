"""Adam (torch.optim.Adam without amsgrad), with L2 weight decay added to the gradient."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from ..autograd import Tensor
from .optimizer import Optimizer, check_real


class Adam(Optimizer):
    """Adam with PyTorch's update, per parameter p with gradient grad and step count t (1 on the first step):

        g = grad + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    """

    state_spec: ClassVar[dict[str, type]] = {"step": int, "exp_avg": np.ndarray, "exp_avg_sq": np.ndarray}
    n_scratch: ClassVar[int] = 2

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

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
                "weight_decay": check_real(name, "weight_decay", hyperparams["weight_decay"])}

    def update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], scratch: tuple[np.ndarray, ...]) -> None:
        h = self.defaults
        beta1, beta2 = h["betas"]
        a, b = scratch
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(p), exp_avg_sq=np.zeros_like(p))
        state["step"] += 1
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        if h["weight_decay"] != 0:
            g = np.add(g, np.multiply(p, h["weight_decay"], out=a), out=a)
        m *= beta1
        m += np.multiply(g, 1 - beta1, out=b)
        v *= beta2
        v += np.multiply(np.multiply(g, 1 - beta2, out=b), g, out=b)
        denom = np.sqrt(v, out=a)  # g (possibly in a) is no longer needed
        denom /= math.sqrt(1 - beta2**t)
        denom += h["eps"]
        p -= np.divide(np.multiply(m, h["lr"] / (1 - beta1**t), out=b), denom, out=b)
