"""Shared test helpers: well-conditioned float64 inputs for finite differences, and a graph walk."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_cnn import Context, Function, Tensor, grad


class Inputs:
    """Float64 test arrays drawn from one seeded generator, so no two inputs share values by accident
    (equal operands would hide e.g. a VJP of a * b that swapped a and b)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def randn(self, *shape: int) -> np.ndarray:
        return self.rng.standard_normal(shape)

    def positive(self, *shape: int) -> np.ndarray:
        """Values in [0.5, 2]: safe for log, division and fractional powers."""
        return self.rng.uniform(0.5, 2.0, shape)

    def away_from_zero(self, *shape: int) -> np.ndarray:
        """|values| in [0.3, 1.5] with random signs: relu's kink and division's pole stay far beyond eps."""
        return self.rng.choice([-1.0, 1.0], shape) * self.rng.uniform(0.3, 1.5, shape)

    def distinct(self, *shape: int) -> np.ndarray:
        """A shuffled arange spaced 0.1 apart: no ties, so max and max-pool are differentiable there and a
        finite-difference step cannot change which element wins."""
        size = int(np.prod(shape))
        return (self.rng.permutation(size) - size / 2).reshape(shape) * 0.1


def leaves(*arrays: np.ndarray) -> list[Tensor]:
    return [Tensor(a.copy(), requires_grad=True) for a in arrays]


def graph_contexts(*roots: Tensor) -> list[Context]:
    """Every op node recorded in the graphs that produced `roots`, each once."""
    found: list[Context] = []
    seen: set[int] = set()
    stack = [t for t in roots if t._ctx is not None]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        found.append(t._ctx)
        stack.extend(p for p in t._ctx.inputs if isinstance(p, Tensor) and p._ctx is not None)
    return found


def graph_functions(*roots: Tensor) -> set[type[Function]]:
    return {ctx.fn for ctx in graph_contexts(*roots)}


def assert_matches_torch(ours: Callable[..., Tensor], theirs: Callable[..., Any], arrays: list[np.ndarray],
                         seed: int = 0, tol: float = 1e-10) -> None:
    """Compare with PyTorch, float64: the forward value, the gradients g_i = J_i^T v with respect to every
    array for a random upstream gradient v, and the second derivatives: the gradient of sum_i <g_i, u_i>
    (random u_i) with respect to every array and to v."""
    import torch  # only the tests that need PyTorch call this, after importorskip

    close = {"rtol": tol, "atol": tol}
    rng = np.random.default_rng(seed)
    xs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    with np.errstate(divide="ignore", invalid="ignore"):  # a mean over an empty batch is 0/0 = nan, as in torch
        y, y_torch = ours(*xs), theirs(*ts)
        assert y.shape == tuple(y_torch.shape)
        np.testing.assert_allclose(y.data, y_torch.detach().numpy(), **close, err_msg="forward")
        v = rng.standard_normal(y.shape)
        v_ours, v_torch = Tensor(v, requires_grad=True), torch.tensor(v, requires_grad=True)
        grads = grad(y, xs, grad_outputs=v_ours, create_graph=True)
        grads_torch = torch.autograd.grad(y_torch, ts, grad_outputs=v_torch, create_graph=True)
        for i, (g, g_torch) in enumerate(zip(grads, grads_torch)):
            np.testing.assert_allclose(g.data, g_torch.detach().numpy(), **close, err_msg=f"gradient of input {i}")
        us = [rng.standard_normal(a.shape) for a in arrays]
        total = sum((g * u).sum() for g, u in zip(grads, us))
        total_torch = sum((g * torch.tensor(u)).sum() for g, u in zip(grads_torch, us))
        second = grad(total, [*xs, v_ours], allow_unused=True)
    second_torch = torch.autograd.grad(total_torch, [*ts, v_torch], allow_unused=True, materialize_grads=True)
    for i, (gg, gg_torch) in enumerate(zip(second, second_torch)):
        which = "the upstream gradient" if i == len(xs) else f"input {i}"
        np.testing.assert_allclose(0.0 if gg is None else gg.data, gg_torch.detach().numpy(force=True), **close,
                                   err_msg=f"second derivative with respect to {which}")
