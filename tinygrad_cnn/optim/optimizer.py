"""`Optimizer`: the parameters, their per-parameter state and the hyperparameters. Subclasses add the update.

Updates are numpy in-place operations on `p.data`: nothing is recorded in a graph, float32 parameters stay
float32 (hyperparameters are Python floats, which numpy does not let widen an array), and the arrays other
code holds (views, a module's attributes) see the new values.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np

from ..autograd import Tensor

_STATE_DICT_KEYS = {"optimizer", "hyperparams", "param_shapes", "state"}


def check_real(owner: str, name: str, value: Any, low: float = 0.0, high: float = math.inf,
               high_open: bool = False) -> float:
    """`value` as a Python float, checked to be a finite number in [low, high] (or [low, high))."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {type(value).__name__} {value!r}")
    number = float(value)
    inside = low <= number < high if high_open else low <= number <= high
    if not (math.isfinite(number) and inside):
        bound = f">= {low}" if high == math.inf else f"in [{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{owner}: {name} must be a finite number {bound}, got {value!r}")
    return number


def _check_params(params: Iterable[Tensor], owner: str) -> list[Tensor]:
    if isinstance(params, Tensor):  # a Tensor is iterable (over its rows): never what was meant
        raise TypeError(f"{owner}: params must be an iterable of Tensors such as model.parameters(), got a single "
                        f"Tensor of shape {params.shape}; wrap it in a list")
    try:
        found = list(params)
    except TypeError:
        raise TypeError(f"{owner}: params must be an iterable of Tensors, got {type(params).__name__}") from None
    if not found:
        raise ValueError(f"{owner}: got an empty parameter list; expected at least one Tensor with requires_grad=True")
    first_index: dict[int, int] = {}
    for i, p in enumerate(found):
        if not isinstance(p, Tensor):
            raise TypeError(f"{owner}: params[{i}] is a {type(p).__name__}, expected a Tensor"
                            + (" (pass model.parameters(), not named_parameters())" if isinstance(p, tuple) else ""))
        if p.dtype.kind != "f":
            raise TypeError(f"{owner}: params[{i}] has dtype {p.dtype}, expected a floating-point Tensor")
        if not p.requires_grad:
            raise ValueError(f"{owner}: params[{i}] (shape {p.shape}) does not require grad; expected a Tensor "
                             "with requires_grad=True")
        if not p.is_leaf:
            raise ValueError(f"{owner}: params[{i}] (shape {p.shape}) was computed by op {p.grad_fn.name}; expected "
                             "a leaf Tensor (only leaves can be updated in place)")
        if id(p) in first_index:
            raise ValueError(f"{owner}: params[{i}] is the same Tensor as params[{first_index[id(p)]}]; each "
                             "parameter may appear only once")
        first_index[id(p)] = i
    return found


class Optimizer:
    """Base class of the optimizers: `step()` updates every parameter that has a `.grad`, in place.

    A subclass defines
      `check_hyperparams(h)`: validate a dict of hyperparameters, return it normalised (Python floats);
      `update(p, g, state, scratch)`: the update of one parameter array `p` given its gradient `g`, its state
        dict and `scratch`, `n_scratch` work arrays shaped and typed like `p`;
      `state_spec`: the keys of a parameter's state once it has any: `np.ndarray` (shaped like the
        parameter) or `int`.
    """

    state_spec: ClassVar[dict[str, type]] = {}
    n_scratch: ClassVar[int] = 0

    def __init__(self, params: Iterable[Tensor], defaults: Mapping[str, Any]) -> None:
        self.defaults = self.check_hyperparams(dict(defaults))
        self.params = _check_params(params, type(self).__name__)
        self.state: list[dict[str, Any]] = [{} for _ in self.params]
        self._scratch: list[tuple[np.ndarray, ...]] = [()] * len(self.params)

    @classmethod
    def check_hyperparams(cls, hyperparams: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], scratch: tuple[np.ndarray, ...]) -> None:
        raise NotImplementedError

    @property
    def lr(self) -> float:
        return self.defaults["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self.defaults = self.check_hyperparams({**self.defaults, "lr": value})

    def zero_grad(self) -> None:
        """Drop every parameter's gradient (`.grad = None`, PyTorch's default `set_to_none=True`)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update each parameter whose `.grad` is not None; each update bumps the parameter's version."""
        todo = [(i, p) for i, p in enumerate(self.params) if p.grad is not None]
        for i, p in todo:  # every gradient is checked before any parameter changes
            self._check_grad(i, p)
        for i, p in todo:
            self.update(p.data, p.grad.data, self.state[i], self._scratch_for(i, p.data))
            p._bump_version()

    def _check_grad(self, i: int, p: Tensor) -> None:
        g = p.grad
        owner = f"{type(self).__name__}.step"
        if not isinstance(g, Tensor):
            raise TypeError(f"{owner}: params[{i}].grad is a {type(g).__name__}, expected a Tensor or None")
        if g.shape != p.shape or g.dtype != p.dtype:
            raise ValueError(f"{owner}: params[{i}] has shape {p.shape} and dtype {p.dtype} but its grad has shape "
                             f"{g.shape} and dtype {g.dtype}; expected the same shape and dtype")
        if not p.data.flags.writeable:
            raise ValueError(f"{owner}: params[{i}].data (shape {p.shape}) is a read-only array; it cannot be "
                             "updated in place")

    def _scratch_for(self, i: int, p: np.ndarray) -> tuple[np.ndarray, ...]:
        # kept between steps: allocating parameter-sized temporaries every step costs page faults
        scratch = self._scratch[i]
        if not scratch or scratch[0].shape != p.shape or scratch[0].dtype != p.dtype:
            scratch = self._scratch[i] = tuple(np.empty_like(p) for _ in range(self.n_scratch))
        return scratch

    # ---- checkpointing ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A copy of everything `step()` depends on, as plain data (str keys; numpy arrays, numbers,
        strings, bools, lists), so `tinygrad_cnn.save` stores it without pickle:
        {"optimizer": class name, "hyperparams": {...}, "param_shapes": [[...], ...],
         "state": {"<param index>": {...}} for the parameters that have state}."""
        return {
            "optimizer": type(self).__name__,
            "hyperparams": {k: list(v) if isinstance(v, tuple) else v for k, v in self.defaults.items()},
            "param_shapes": [list(p.shape) for p in self.params],
            "state": {str(i): {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in s.items()}
                      for i, s in enumerate(self.state) if s},
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a `state_dict()` (hyperparameters included) so that training resumes exactly.

        Everything is checked before anything changes; arrays are copied (and cast to the parameter's dtype).
        """
        name = type(self).__name__
        where = f"{name}.load_state_dict"
        if not isinstance(state_dict, Mapping) or set(state_dict) != _STATE_DICT_KEYS:
            found = sorted(map(str, state_dict)) if isinstance(state_dict, Mapping) else type(state_dict).__name__
            raise ValueError(f"{where}: expected a dict with keys {sorted(_STATE_DICT_KEYS)}, got {found}")
        if state_dict["optimizer"] != name:
            raise ValueError(f"{where}: the state is from a {state_dict['optimizer']!r} optimizer, expected {name!r}")
        shapes = [tuple(s) for s in state_dict["param_shapes"]]
        if len(shapes) != len(self.params):
            raise ValueError(f"{where}: the state is for {len(shapes)} parameters, this optimizer has "
                             f"{len(self.params)}")
        for i, (shape, p) in enumerate(zip(shapes, self.params)):
            if shape != p.shape:
                raise ValueError(f"{where}: params[{i}] has shape {p.shape}, the state is for shape {shape}")
        given = state_dict["hyperparams"]
        if set(given) != set(self.defaults):
            raise ValueError(f"{where}: hyperparameters {sorted(given)}, expected {sorted(self.defaults)}")
        hyperparams = self.check_hyperparams(dict(given))
        state: list[dict[str, Any]] = [{} for _ in self.params]
        for key, entry in state_dict["state"].items():
            i = _param_index(key, len(self.params), where)
            state[i] = self._copy_param_state(entry, self.params[i], f"{where}: state[{key!r}]")
        self.defaults, self.state = hyperparams, state

    def _copy_param_state(self, entry: Any, p: Tensor, where: str) -> dict[str, Any]:
        if not isinstance(entry, Mapping) or (entry and set(entry) != set(self.state_spec)):
            found = sorted(entry) if isinstance(entry, Mapping) else type(entry).__name__
            raise ValueError(f"{where}: got {found}, expected a dict with keys {sorted(self.state_spec)} (or empty)")
        copied: dict[str, Any] = {}
        for key, value in entry.items():
            if self.state_spec[key] is np.ndarray:
                if not isinstance(value, np.ndarray) or value.dtype.kind != "f" or value.shape != p.shape:
                    found = (f"an array of shape {value.shape} and dtype {value.dtype}"
                             if isinstance(value, np.ndarray) else f"a {type(value).__name__}")
                    raise ValueError(f"{where}[{key!r}]: got {found}, expected a floating-point array of shape "
                                     f"{p.shape}")
                copied[key] = value.astype(p.dtype, copy=True)
            else:
                if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                    raise ValueError(f"{where}[{key!r}]: got {value!r}, expected an integer >= 0")
                copied[key] = int(value)
        return copied


def _param_index(key: Any, count: int, where: str) -> int:
    index = int(key) if isinstance(key, str) and key.isdecimal() else key
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        raise ValueError(f"{where}: state key {key!r} is not a parameter index in [0, {count})")
    return index
