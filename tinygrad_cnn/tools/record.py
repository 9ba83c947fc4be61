"""What tools want to know about a recorded graph that backward does not need: which module ran each
op, the user's line that created it, and the norm of the gradient that reached it.

`Recorder` is an engine `Observer`; what it learns goes into weak tables keyed by the op's `Context`,
so it lives exactly as long as the graph does. Nothing is recorded (and nothing is paid) unless a
recorder is attached:

    with record():                      # modules and gradient norms
        loss = model(x); loss.backward()
    draw_graph(loss, show_grads=True)
"""

from __future__ import annotations

import contextlib
import linecache
import math
import os
import sys
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..autograd import Context, Tensor
from ..hooks import Observer, observe

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

_MODULES: weakref.WeakKeyDictionary[Context, Any] = weakref.WeakKeyDictionary()
_SITES: weakref.WeakKeyDictionary[Context, str] = weakref.WeakKeyDictionary()
_GRAD_NORMS: weakref.WeakKeyDictionary[Context, Any] = weakref.WeakKeyDictionary()

_KEEP_GRAD_SIZE = 4096  # gradients up to this many elements are kept and measured only when asked


def module_of(ctx: Context) -> Any:
    """The innermost nn.Module whose forward recorded this op (None: outside any, or not recorded)."""
    return _MODULES.get(ctx)


def site_of(ctx: Context) -> str | None:
    """"path:line: code" of the user's line that created the op, if recorded with sites."""
    return _SITES.get(ctx)


def grad_norm_of(ctx: Context) -> float | None:
    """Norm of the gradient that reached the op's output in the last recorded backward (None before)."""
    norm = _GRAD_NORMS.get(ctx)
    if isinstance(norm, np.ndarray):
        norm = _GRAD_NORMS[ctx] = array_norm(norm)
    return norm


def array_norm(a: np.ndarray) -> float:
    """The 2-norm, finite even where the squares of float32 elements overflow."""
    flat = a.reshape(-1)
    norm = math.sqrt(np.dot(flat, flat))
    if math.isinf(norm) and np.isfinite(flat).all():
        norm = float(np.linalg.norm(flat.astype(np.float64)))
    return norm


def user_site() -> str | None:
    """"path:line: code" of the innermost stack frame outside the tinygrad_cnn package."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return None
    path, line = frame.f_code.co_filename, frame.f_lineno
    return f"{path}:{line}: {linecache.getline(path, line).strip()}"


class Recorder(Observer):
    """Records each recorded op's module and gradient norm, and its creation site if `sites`."""

    def __init__(self, sites: bool = False, modules: bool = True, grad_norms: bool = True) -> None:
        self.sites, self.modules, self.grad_norms = sites, modules, grad_norms
        self._stack: list[Any] = []

    def enter_module(self, module: Any) -> None:
        self._stack.append(module)

    def exit_module(self, module: Any) -> None:
        self._stack.pop()

    def forward(self, ctx: Context, output: np.ndarray) -> None:
        if not ctx.recorded:
            return
        if self.modules and self._stack:
            _MODULES[ctx] = self._stack[-1]
        if self.sites:
            _SITES[ctx] = user_site()

    def backward(self, ctx: Context, grad: Tensor, input_grads: tuple[Tensor | None, ...]) -> None:
        if self.grad_norms:
            g = grad.data
            _GRAD_NORMS[ctx] = g if g.size <= _KEEP_GRAD_SIZE else array_norm(g)


@contextlib.contextmanager
def record(sites: bool = False) -> Iterator[Recorder]:
    """Record modules and gradient norms (and creation sites if `sites`) of every op run inside."""
    recorder = Recorder(sites=sites)
    with observe(recorder):
        yield recorder
