"""The engine's hook interface: how tools watch it without the engine knowing them.

The engine calls every attached observer after each op's forward and after each VJP; `nn.Module.__call__`
calls it around each module's forward. With none attached the engine pays one empty-tuple test per op.
The gradient doctor, anomaly detection and the graph drawing's recorder are observers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from .autograd import Config, Context, Tensor, using_config


class Observer:
    """Watches the engine (the doctor, anomaly detection and graph drawing are observers): override what
    you need and attach with `with observe(obs):`, per thread. Never modify the objects it is given."""

    def forward(self, ctx: Context, output: np.ndarray) -> None:
        """After each op's forward, recorded or not (`ctx.recorded` tells which)."""

    def backward(self, ctx: Context, grad: Tensor, input_grads: tuple[Tensor | None, ...]) -> None:
        """After each VJP: `grad` reached the op's output, `input_grads` are what the VJP returned."""

    def enter_module(self, module: Any) -> None:
        """Before an `nn.Module`'s forward runs (modules are nested: enter/exit come in pairs)."""

    def exit_module(self, module: Any) -> None:
        """After the module's forward returned or raised."""


@contextlib.contextmanager
def observe(*observers: Observer) -> Iterator[None]:
    """Attach observers to the engine for the duration of a `with` block, in this thread."""
    with using_config(observers=Config.observers + observers):
        yield
