"""Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay (torch.optim.SGD)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from ..autograd import Tensor
from .optimizer import Optimizer, check_flag, check_implementation_flags, check_real


class SGD(Optimizer):
    """SGD with PyTorch's update, per parameter p with gradient grad (negated when maximize):

        g = grad + weight_decay * p
        buf = g on the first step, else momentum * buf + (1 - dampening) * g     (when momentum > 0)
        g = g + momentum * buf if nesterov else buf                              (when momentum > 0)
        p = p - lr * g
    """

    n_scratch: ClassVar[int] = 2

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None, differentiable: bool = False,
                 fused: bool | None = None) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize,
                                  "foreach": foreach, "differentiable": differentiable, "fused": fused})

    @classmethod
    def check_hyperparams(cls, hyperparams: dict[str, Any]) -> dict[str, Any]:
        name = cls.__name__
        checked = {key: check_real(name, key, hyperparams[key]) for key in ("lr", "momentum")}
        checked["dampening"] = check_real(name, "dampening", hyperparams["dampening"], high=1.0)
        checked["weight_decay"] = check_real(name, "weight_decay", hyperparams["weight_decay"])
        nesterov = check_flag(name, "nesterov", hyperparams["nesterov"])
        if nesterov and (checked["momentum"] == 0 or checked["dampening"] != 0):
            raise ValueError(f"{name}: nesterov=True requires momentum > 0 and dampening = 0, got "
                             f"momentum={hyperparams['momentum']!r} and dampening={hyperparams['dampening']!r}")
        checked["nesterov"] = nesterov
        checked["maximize"] = check_flag(name, "maximize", hyperparams["maximize"])
        return {**checked, **check_implementation_flags(name, hyperparams)}

    def state_keys(self, group: dict[str, Any]) -> dict[str, type]:
        return {"momentum_buffer": np.ndarray} if group["momentum"] != 0 else {}

    def update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], scratch: tuple[np.ndarray, ...],
               group: dict[str, Any]) -> None:
        a, b = scratch
        if group["maximize"]:
            g = np.negative(g, out=a)
        if group["weight_decay"] != 0:
            g = np.add(g, np.multiply(p, group["weight_decay"], out=b), out=a)
        momentum = group["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= momentum
                buf += g if group["dampening"] == 0 else np.multiply(g, 1 - group["dampening"], out=b)
            if group["nesterov"]:
                g = np.add(g, np.multiply(buf, momentum, out=b), out=a)
            else:
                g = buf
        p -= np.multiply(g, group["lr"], out=b)
