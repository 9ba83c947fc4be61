"""Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay (torch.optim.SGD)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from ..autograd import Tensor
from .optimizer import Optimizer, check_real


class SGD(Optimizer):
    """SGD with PyTorch's update, per parameter p with gradient grad:

        g = grad + weight_decay * p
        buf = g on the first step, else momentum * buf + (1 - dampening) * g     (when momentum > 0)
        g = g + momentum * buf if nesterov else buf                              (when momentum > 0)
        p = p - lr * g
    """

    state_spec: ClassVar[dict[str, type]] = {"momentum_buffer": np.ndarray}
    n_scratch: ClassVar[int] = 2

    def __init__(self, params: Iterable[Tensor], lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, dampening: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                                  "nesterov": nesterov, "dampening": dampening})

    @classmethod
    def check_hyperparams(cls, hyperparams: dict[str, Any]) -> dict[str, Any]:
        name = cls.__name__
        checked = {key: check_real(name, key, hyperparams[key]) for key in ("lr", "momentum", "weight_decay")}
        checked["dampening"] = check_real(name, "dampening", hyperparams["dampening"], high=1.0)
        nesterov = hyperparams["nesterov"]
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"{name}: nesterov must be a bool, got {type(nesterov).__name__} {nesterov!r}")
        if nesterov and (checked["momentum"] == 0 or checked["dampening"] != 0):
            raise ValueError(f"{name}: nesterov=True requires momentum > 0 and dampening = 0, got "
                             f"momentum={hyperparams['momentum']!r} and dampening={hyperparams['dampening']!r}")
        checked["nesterov"] = bool(nesterov)
        return checked

    def update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], scratch: tuple[np.ndarray, ...]) -> None:
        h = self.defaults
        a, b = scratch
        if h["weight_decay"] != 0:
            g = np.add(g, np.multiply(p, h["weight_decay"], out=a), out=a)
        if h["momentum"] != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= h["momentum"]
                buf += g if h["dampening"] == 0 else np.multiply(g, 1 - h["dampening"], out=b)
            if h["nesterov"]:
                g = np.add(g, np.multiply(buf, h["momentum"], out=b), out=a)
            else:
                g = buf
        p -= np.multiply(g, h["lr"], out=b)
