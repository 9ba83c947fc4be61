"""RMSprop and Adadelta (torch.optim.RMSprop, torch.optim.Adadelta), with PyTorch's arithmetic."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from ..autograd import Tensor
from .optimizer import Optimizer, check_flag, check_implementation_flags, check_real, for_each_block


def _lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """start += weight * (end - start) in place, rounded as torch.lerp_ (which switches formula at 0.5)."""
    if weight < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)


class RMSprop(Optimizer):
    """RMSprop with PyTorch's update, per parameter p with gradient grad (negated when maximize):

        g = grad + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        avg = sqrt(v - m * m) + eps with m = lerp(m, g, 1 - alpha) when centered, else sqrt(v) + eps
        buf = momentum * buf + g / avg; p = p - lr * buf     (when momentum > 0)
        p = p - lr * g / avg                                  (otherwise)
    """

    n_scratch: ClassVar[int] = 2

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 capturable: bool = False, foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps, "centered": centered,
                                  "weight_decay": weight_decay, "capturable": capturable, "foreach": foreach,
                                  "maximize": maximize, "differentiable": differentiable})

    @classmethod
    def check_hyperparams(cls, hyperparams: dict[str, Any]) -> dict[str, Any]:
        name = cls.__name__
        return {**{key: check_real(name, key, hyperparams[key])
                   for key in ("lr", "momentum", "alpha", "eps", "weight_decay")},
                **{key: check_flag(name, key, hyperparams[key]) for key in ("centered", "maximize")},
                **check_implementation_flags(name, hyperparams)}

    def state_keys(self, group: dict[str, Any]) -> dict[str, type]:
        keys: dict[str, type] = {"step": int, "square_avg": np.ndarray}
        if group["momentum"] > 0:
            keys["momentum_buffer"] = np.ndarray
        if group["centered"]:
            keys["grad_avg"] = np.ndarray
        return keys

    def update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], scratch: tuple[np.ndarray, ...],
               group: dict[str, Any]) -> None:
        a, b = scratch
        alpha, momentum = group["alpha"], group["momentum"]
        if not state:
            state.update(step=0, square_avg=np.zeros_like(p))
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p)
        state["step"] += 1
        if group["maximize"]:
            g = np.negative(g, out=a)
        if group["weight_decay"] != 0:
            g = np.add(g, np.multiply(p, group["weight_decay"], out=b), out=a)
        v = state["square_avg"]
        v *= alpha
        v += np.multiply(np.multiply(g, 1 - alpha, out=b), g, out=b)
        if group["centered"]:
            m = state["grad_avg"]
            _lerp_(m, g, 1 - alpha)
            avg = np.sqrt(np.subtract(v, np.multiply(m, m, out=b), out=b), out=b)
        else:
            avg = np.sqrt(v, out=b)
        avg += group["eps"]
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += np.divide(g, avg, out=b)
            p -= np.multiply(buf, group["lr"], out=b)
        else:
            p -= np.divide(np.multiply(g, group["lr"], out=a), avg, out=b)


class Adadelta(Optimizer):
    """Adadelta with PyTorch's update, per parameter p with gradient grad (negated when maximize):

        g = grad + weight_decay * p
        v = rho * v + (1 - rho) * g * g
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        p = p - lr * delta
    """

    n_scratch: ClassVar[int] = 3

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1.0, rho: float = 0.9,
                 eps: float = 1e-6, weight_decay: float = 0.0, foreach: bool | None = None, *,
                 capturable: bool = False, maximize: bool = False, differentiable: bool = False) -> None:
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                                  "maximize": maximize, "capturable": capturable, "foreach": foreach,
                                  "differentiable": differentiable})

    @classmethod
    def check_hyperparams(cls, hyperparams: dict[str, Any]) -> dict[str, Any]:
        name = cls.__name__
        return {"lr": check_real(name, "lr", hyperparams["lr"]),
                "rho": check_real(name, "rho", hyperparams["rho"], high=1.0),
                "eps": check_real(name, "eps", hyperparams["eps"]),
                "weight_decay": check_real(name, "weight_decay", hyperparams["weight_decay"]),
                "maximize": check_flag(name, "maximize", hyperparams["maximize"]),
                **check_implementation_flags(name, hyperparams)}

    def state_keys(self, group: dict[str, Any]) -> dict[str, type]:
        return {"step": int, "square_avg": np.ndarray, "acc_delta": np.ndarray}

    def update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], scratch: tuple[np.ndarray, ...],
               group: dict[str, Any]) -> None:
        lr, rho, eps, weight_decay, maximize = (group[k] for k in ("lr", "rho", "eps", "weight_decay", "maximize"))
        if not state:
            state.update(step=0, square_avg=np.zeros_like(p), acc_delta=np.zeros_like(p))
        state["step"] += 1

        def block(p: np.ndarray, g: np.ndarray, v: np.ndarray, u: np.ndarray, a: np.ndarray, b: np.ndarray,
                  delta: np.ndarray) -> None:
            if maximize:
                g = np.negative(g, out=a)
            if weight_decay != 0:
                g = np.add(g, np.multiply(p, weight_decay, out=b), out=a)
            v *= rho
            v += np.multiply(np.multiply(g, 1 - rho, out=b), g, out=b)
            std = np.sqrt(np.add(v, eps, out=b), out=b)
            np.sqrt(np.add(u, eps, out=delta), out=delta)
            delta /= std
            delta *= g
            u *= rho
            u += np.multiply(np.multiply(delta, 1 - rho, out=b), delta, out=b)
            p -= np.multiply(delta, lr, out=b)

        for_each_block(block, p, g, state["square_avg"], state["acc_delta"], *scratch)
