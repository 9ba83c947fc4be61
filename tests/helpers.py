"""Shared test helpers: well-conditioned float64 inputs for finite differences, and a graph walk."""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import Context, Function, Tensor


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
