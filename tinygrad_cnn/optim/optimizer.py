"""`Optimizer`: parameter groups with their hyperparameters, per-parameter state, and PyTorch's state_dict.

Updates are numpy in-place operations on `p.data`: nothing is recorded in a graph, float32 parameters stay
float32 (hyperparameters are Python floats, which numpy does not let widen an array), and the arrays other
code holds (views, a module's attributes) see the new values.

As in torch.optim, `param_groups` is a list of dicts, each with its "params" and its own hyperparameters
(the constructor's values where a group does not set them), and a learning-rate scheduler changes
`group["lr"]`. Parameters whose `.grad` is None (frozen ones included) are skipped by `step()`.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any, ClassVar

import numpy as np

from ..autograd import Tensor, enable_grad
from ..kernels import parallel
from ..nn.module import _zero_grad

# An update's chain of elementwise passes runs over blocks of this many elements, so that its temporaries
# stay in a core's cache instead of streaming parameter-sized arrays through memory (docs/performance.md).
BLOCK = 1 << 16

# Hyperparameters torch.optim added over its versions: a saved group without them takes this optimizer's value.
_LATE_KEYS = {"maximize", "foreach", "capturable", "differentiable", "fused", "amsgrad", "decoupled_weight_decay"}
_OLD_LAYOUT_KEYS = {"optimizer", "hyperparams", "param_shapes", "state"}  # this library's first state_dict


def check_real(owner: str, name: str, value: Any, low: float = 0.0, high: float = math.inf,
               high_open: bool = False) -> float:
    """`value` as a Python float, checked to be a finite number in [low, high] (or [low, high))."""
    if isinstance(value, Tensor) and value.data.size == 1:
        value = value.data.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {type(value).__name__} {value!r}")
    number = float(value)
    inside = low <= number < high if high_open else low <= number <= high
    if not (math.isfinite(number) and inside):
        bound = f">= {low}" if high == math.inf else f"in [{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{owner}: {name} must be a finite number {bound}, got {value!r}")
    return number


def check_flag(owner: str, name: str, value: Any, allow_none: bool = False) -> bool | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be a bool{' or None' if allow_none else ''}, got "
                        f"{type(value).__name__} {value!r}")
    return bool(value)


def check_implementation_flags(owner: str, h: dict[str, Any]) -> dict[str, Any]:
    """PyTorch's implementation switches (foreach, fused, capturable): accepted, with the same arithmetic;
    differentiable=True (recording the update in the graph) is not supported."""
    checked: dict[str, Any] = {}
    for key in ("foreach", "fused"):
        if key in h:
            checked[key] = check_flag(owner, key, h[key], allow_none=True)
    if "capturable" in h:
        checked["capturable"] = check_flag(owner, "capturable", h["capturable"])
    if "differentiable" in h:
        if check_flag(owner, "differentiable", h["differentiable"]):
            raise ValueError(f"{owner}: differentiable=True is not supported: updates are not recorded in the graph")
        checked["differentiable"] = False
    return checked


def _describe(p: Any) -> str:
    return f"a {type(p).__name__}" if not isinstance(p, Tensor) else f"a Tensor of shape {p.shape}"


class _State(MutableMapping):
    """Per-parameter state, keyed by the parameter Tensor (by identity) as `torch.optim.Optimizer.state`;
    an int key is the parameter's position in `param_groups` (this library's first API). A parameter's state
    is created (empty) when first looked up."""

    def __init__(self, optimizer: Optimizer) -> None:
        self._optimizer = optimizer
        self._by_id: dict[int, tuple[Tensor, dict[str, Any]]] = {}

    def _param(self, key: Any) -> Tensor:
        if isinstance(key, Tensor):
            return key
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            params = self._optimizer.params
            if not -len(params) <= key < len(params):
                raise KeyError(key)
            return params[key]
        raise KeyError(key)

    def __getitem__(self, key: Any) -> dict[str, Any]:
        p = self._param(key)
        entry = self._by_id.get(id(p))
        if entry is None:
            entry = self._by_id[id(p)] = (p, {})
        return entry[1]

    def __setitem__(self, key: Any, value: dict[str, Any]) -> None:
        p = self._param(key)
        self._by_id[id(p)] = (p, value)

    def __delitem__(self, key: Any) -> None:
        del self._by_id[id(self._param(key))]

    def __iter__(self) -> Iterator[Tensor]:
        return iter([p for p, _ in self._by_id.values()])

    def __len__(self) -> int:
        return len(self._by_id)

    def __repr__(self) -> str:
        return f"{{{', '.join(f'<param {tuple(p.shape)}>: {sorted(s)}' for p, s in self._by_id.values())}}}"

    def __deepcopy__(self, memo: dict[int, Any]) -> _State:
        # keyed by id: the copy must be keyed by the ids of the copied parameters
        copied = _State(copy.deepcopy(self._optimizer, memo))
        for p, state in self._by_id.values():
            new_p = copy.deepcopy(p, memo)
            copied._by_id[id(new_p)] = (new_p, copy.deepcopy(state, memo))
        return copied


def for_each_block(update: Callable[..., None], *arrays: np.ndarray) -> None:
    """update(*views) on blocks of about BLOCK elements of the arrays (all of one shape), cut along the first
    axis (a view whatever the layout, so every write lands in the array), spread over the kernel threads."""
    rows = arrays[0].shape[0] if arrays[0].ndim else 1
    step = max(1, BLOCK * rows // max(1, arrays[0].size))  # rows per block
    if step >= rows:
        update(*arrays)
        return
    parallel.map_parts(lambda part: update(*(a[part] for a in arrays)),
                       [slice(start, start + step) for start in range(0, rows, step)])


class Optimizer:
    """Base class of the optimizers: `step()` updates every parameter that has a `.grad`, in place.

    A subclass passes its defaults to `__init__` and defines
      `check_hyperparams(h)`: validate a group's hyperparameters, return them normalised (Python floats);
      `update(p, g, state, scratch, group)`: the update of one parameter array `p` given its gradient `g`, its
        state dict, `n_scratch` work arrays shaped and typed like `p`, and its group's hyperparameters;
      `state_keys(group)`: the keys of a parameter's state once it has any, each `np.ndarray` (shaped like the
        parameter) or `int`.
    """

    n_scratch: ClassVar[int] = 0

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], defaults: Mapping[str, Any]) -> None:
        owner = type(self).__name__
        self.defaults: dict[str, Any] = self.check_hyperparams(dict(defaults))
        self.param_groups: list[dict[str, Any]] = []
        self.state = _State(self)
        self._scratch: dict[int, tuple[np.ndarray, ...]] = {}
        if isinstance(params, Tensor):  # a Tensor is iterable (over its rows): never what was meant
            raise TypeError(f"{owner}: params must be an iterable of Tensors such as model.parameters(), got a "
                            f"single Tensor of shape {params.shape}; wrap it in a list")
        try:
            groups = list(params)
        except TypeError:
            raise TypeError(f"{owner}: params must be an iterable of Tensors or dicts, got "
                            f"{type(params).__name__}") from None
        if not groups:
            raise ValueError(f"{owner}: got an empty parameter list; expected model.parameters() or a list of "
                             "Tensors or of parameter-group dicts")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for i, group in enumerate(groups):
            self.add_param_group(group, _where=f"{owner}: param group {i}" if len(groups) > 1 else owner)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key != "params"]
        return "\n".join(lines) + "\n)"

    # ---- to define in subclasses -----------------------------------------------------------------
    @classmethod
    def check_hyperparams(cls, hyperparams: dict[str, Any]) -> dict[str, Any]:
        """Validate a group's hyperparameters; the base class (a user's own optimizer) takes them as they are."""
        return hyperparams

    def update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], scratch: tuple[np.ndarray, ...],
               group: dict[str, Any]) -> None:
        raise NotImplementedError

    def state_keys(self, group: dict[str, Any]) -> dict[str, type] | None:
        """The keys of a parameter's state: None (a user's own optimizer) takes any state as it is."""
        return None

    # ---- parameter groups ------------------------------------------------------------------------
    @property
    def params(self) -> list[Tensor]:
        """Every parameter, group after group (the order of the state_dict's indices)."""
        return [p for group in self.param_groups for p in group["params"]]

    def add_param_group(self, param_group: dict[str, Any], _where: str | None = None) -> None:
        """Add a group of parameters with its own hyperparameters (the optimizer's defaults for those not given),
        e.g. a layer to unfreeze during fine-tuning. Everything is checked before the group is added."""
        owner = _where or f"{type(self).__name__}.add_param_group"
        if not isinstance(param_group, dict):
            raise TypeError(f"{owner}: param_group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{owner}: the group has no 'params' entry")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{owner}: parameters must be in an ordered collection (a list), not a set: the order "
                            "of a set changes between runs")
        else:
            try:
                params = list(params)
            except TypeError:
                raise TypeError(f"{owner}: params must be an iterable of Tensors, got "
                                f"{type(params).__name__}") from None
        names: list[str] | None = None
        if params and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in params):
            names, params = [n for n, _ in params], [p for _, p in params]  # model.named_parameters()
        first: dict[int, int] = {}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                hint = " (mixing (name, Tensor) pairs with Tensors?)" if isinstance(p, tuple) else ""
                raise TypeError(f"{owner}: params[{i}] is {_describe(p)}, expected a Tensor{hint}")
            if p.dtype.kind != "f":
                raise TypeError(f"{owner}: params[{i}] has dtype {p.dtype}, expected a floating-point Tensor")
            if not p.is_leaf:
                raise ValueError(f"{owner}: params[{i}] (shape {p.shape}) was computed by op {p.grad_fn.name}; "
                                 "expected a leaf Tensor (only leaves can be updated in place)")
            if id(p) in first:
                raise ValueError(f"{owner}: params[{i}] is the same Tensor as params[{first[id(p)]}]; each "
                                 "parameter may appear only once")
            first[id(p)] = i
        existing = {id(p) for p in self.params}
        if any(id(p) in existing for p in params):
            raise ValueError(f"{owner}: some parameters appear in more than one parameter group")
        if self.param_groups and (names is None) != ("param_names" not in self.param_groups[0]):
            raise ValueError(f"{owner}: all optimizer params should be with or without names (named_parameters() "
                             "in one group, parameters() in another)")
        options = {k: v for k, v in param_group.items() if k not in ("params", "param_names")}
        try:
            checked = self.check_hyperparams({**self.defaults, **{k: v for k, v in options.items()
                                                                  if k in self.defaults}})
        except (TypeError, ValueError) as e:  # say which group (or add_param_group) the bad value came from
            name = type(self).__name__
            if owner == name or not str(e).startswith(f"{name}: "):
                raise
            raise type(e)(f"{owner}: {str(e)[len(name) + 2:]}") from None
        group: dict[str, Any] = {"params": params, **options, **checked}
        if names is not None:
            group["param_names"] = names
        self.param_groups.append(group)

    @property
    def lr(self) -> float:
        """The learning rate of the first group (this library's first API; PyTorch uses param_groups)."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        """Set the learning rate of every group."""
        lr = check_real(type(self).__name__, "lr", value)
        for group in self.param_groups:
            group["lr"] = lr

    # ---- stepping --------------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient (`.grad = None`), or with `set_to_none=False` fill it with zeros."""
        for p in self.params:
            _zero_grad(p, set_to_none)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update each parameter whose `.grad` is not None; each update bumps the parameter's version.
        With `closure` (a function recomputing the loss), it is called first and its loss returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        todo = [(i, p, group) for i, (p, group) in enumerate(
            (p, group) for group in self.param_groups for p in group["params"]) if p.grad is not None]
        for i, p, _ in todo:  # every gradient is checked before any parameter changes
            self._check_grad(i, p)
        for _, p, group in todo:
            self.update(p.data, p.grad.data, self.state[p], self._scratch_for(p), group)
            p._bump_version()
        self._opt_called = True  # for the scheduler's "step() before optimizer.step()" warning
        return loss

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
        state = self.state._by_id.get(id(p), (p, {}))[1]
        for key, value in state.items():
            if isinstance(value, np.ndarray) and (value.shape != p.shape or value.dtype != p.dtype):
                raise ValueError(f"{owner}: params[{i}] has shape {p.shape} and dtype {p.dtype} but its state "
                                 f"{key!r} has shape {value.shape} and dtype {value.dtype} (was the model converted "
                                 "with .double()/.to() after the optimizer stepped?)")

    def _scratch_for(self, p: Tensor) -> tuple[np.ndarray, ...]:
        # kept between steps: allocating parameter-sized temporaries every step costs page faults
        if not self.n_scratch:
            return ()
        scratch = self._scratch.get(id(p))
        if scratch is None or scratch[0].shape != p.shape or scratch[0].dtype != p.dtype:
            scratch = self._scratch[id(p)] = tuple(np.empty_like(p.data) for _ in range(self.n_scratch))
        return scratch

    # ---- checkpointing ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """PyTorch's layout, as plain data (copies of the arrays) that `tinygrad_cnn.save` stores as it is:
        {"state": {"<index>": {"step": int, "exp_avg": ndarray, ...}} for the parameters that have state,
         "param_groups": [{hyperparameters..., "params": [index, ...]}, ...]},
        indices counting the parameters group after group. One difference from torch.optim, because checkpoints
        hold str-keyed dicts: the keys of "state" are the indices as strings ("0", not 0). `load_state_dict`
        takes either, so torch.optim's own state dicts (with arrays for tensors) load here."""
        index = {id(p): i for i, p in enumerate(self.params)}
        groups = [{**{k: v for k, v in group.items() if k != "params"},
                   "params": [index[id(p)] for p in group["params"]]} for group in self.param_groups]
        state = {index[id(p)]: {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in s.items()}
                 for p, s in self.state._by_id.values() if s and id(p) in index}
        return {"state": {str(i): s for i, s in sorted(state.items())}, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a `state_dict()` (hyperparameters included) so that training resumes exactly: ours, one read
        back by `tinygrad_cnn.load` (string indices), one of torch.optim with its tensors turned into arrays, or
        this library's first layout. Everything is checked before anything changes; arrays are copied (and cast
        to the parameter's dtype)."""
        name = type(self).__name__
        where = f"{name}.load_state_dict"
        if isinstance(state_dict, Mapping) and set(state_dict) == _OLD_LAYOUT_KEYS:
            state_dict = self._from_old_layout(state_dict, where)
        if not isinstance(state_dict, Mapping) or set(state_dict) != {"state", "param_groups"}:
            found = sorted(map(str, state_dict)) if isinstance(state_dict, Mapping) else type(state_dict).__name__
            raise ValueError(f"{where}: expected a dict with keys ['param_groups', 'state'], got {found}")
        saved_groups = state_dict["param_groups"]
        if isinstance(saved_groups, Mapping):  # groups stored as {"0": ..., "1": ...} (this library, briefly)
            saved_groups = [saved_groups[k] for k in sorted(saved_groups, key=int)]
        if not isinstance(saved_groups, (list, tuple)) or not all(isinstance(g, Mapping) for g in saved_groups):
            raise ValueError(f"{where}: param_groups must be a list of dicts, got {type(saved_groups).__name__}")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{where}: the state has {len(saved_groups)} parameter groups, this optimizer has "
                             f"{len(self.param_groups)}")
        new_groups: list[dict[str, Any]] = []
        index_to_param: dict[int, Tensor] = {}
        for gi, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            ids = saved.get("params")
            if not isinstance(ids, (list, tuple)) or len(ids) != len(group["params"]):
                count = len(ids) if isinstance(ids, (list, tuple)) else type(ids).__name__
                raise ValueError(f"{where}: param group {gi} of the state has {count} parameters, this optimizer's "
                                 f"has {len(group['params'])}")
            for saved_id, p in zip(ids, group["params"]):
                index_to_param[_param_index(saved_id, where)] = p
            missing = sorted(k for k in self.defaults if k not in saved and k not in _LATE_KEYS)
            if missing:
                raise ValueError(f"{where}: param group {gi} of the state lacks hyperparameters {missing}")
            options = {k: v for k, v in saved.items() if k != "params"}
            hyper = {**{k: group[k] for k in self.defaults}, **{k: v for k, v in options.items() if k in self.defaults}}
            if "betas" in hyper and isinstance(hyper["betas"], list):
                hyper["betas"] = tuple(hyper["betas"])
            checked = self.check_hyperparams(hyper)
            new_groups.append({"params": group["params"], **options, **checked})
        positions = {id(p): i for i, p in enumerate(self.params)}
        saved_state = state_dict["state"]
        if not isinstance(saved_state, Mapping):
            raise ValueError(f"{where}: state must be a dict, got {type(saved_state).__name__}")
        new_state: dict[int, tuple[Tensor, dict[str, Any]]] = {}
        for key, entry in saved_state.items():
            index = _param_index(key, where)
            if index not in index_to_param:
                raise ValueError(f"{where}: state key {key!r} is not a parameter index of the state's param_groups "
                                 f"{sorted(index_to_param)}")
            p = index_to_param[index]
            group = new_groups[next(i for i, g in enumerate(self.param_groups) if any(q is p for q in g["params"]))]
            new_state[id(p)] = (p, self._copy_param_state(entry, p, group,
                                                          f"{where}: state[{key!r}] (params[{positions[id(p)]}])"))
        self.param_groups = new_groups
        self.state._by_id = new_state

    def _from_old_layout(self, old: Mapping[str, Any], where: str) -> dict[str, Any]:
        """{"optimizer", "hyperparams", "param_shapes", "state"} (checkpoints of this library's first release)
        -> PyTorch's layout, checked against this optimizer first."""
        name = type(self).__name__
        if old["optimizer"] != name:
            raise ValueError(f"{where}: the state is from a {old['optimizer']!r} optimizer, expected {name!r}")
        shapes = [tuple(s) for s in old["param_shapes"]]
        params = self.params
        if len(shapes) != len(params):
            raise ValueError(f"{where}: the state is for {len(shapes)} parameters, this optimizer has {len(params)}")
        for i, (shape, p) in enumerate(zip(shapes, params)):
            if shape != p.shape:
                raise ValueError(f"{where}: params[{i}] has shape {p.shape}, the state is for shape {shape}")
        if len(self.param_groups) != 1:
            raise ValueError(f"{where}: a state of the first layout has one parameter group, this optimizer has "
                             f"{len(self.param_groups)}")
        given = dict(old["hyperparams"])
        missing = sorted(k for k in self.defaults if k not in given and k not in _LATE_KEYS)
        if missing:
            raise ValueError(f"{where}: hyperparameters {sorted(given)}, expected {sorted(self.defaults)}")
        return {"state": old["state"], "param_groups": [{**given, "params": list(range(len(params)))}]}

    def _copy_param_state(self, entry: Any, p: Tensor, group: dict[str, Any], where: str) -> dict[str, Any]:
        spec = self.state_keys(group)
        if spec is None and isinstance(entry, Mapping):  # a user's optimizer: its state as it is (arrays copied)
            return {k: v.data.copy() if isinstance(v, Tensor) else v.copy() if isinstance(v, np.ndarray) else v
                    for k, v in entry.items()}
        if not isinstance(entry, Mapping) or (entry and set(entry) != set(spec or {})):
            found = sorted(entry) if isinstance(entry, Mapping) else type(entry).__name__
            raise ValueError(f"{where}: got {found}, expected a dict with keys {sorted(spec)} (or empty)")
        copied: dict[str, Any] = {}
        for key, value in entry.items():
            if isinstance(value, Tensor):
                value = value.data
            if spec[key] is np.ndarray:
                value = np.asarray(value) if isinstance(value, np.ndarray) else value
                if not isinstance(value, np.ndarray) or value.dtype.kind != "f" or value.shape != p.shape:
                    found = (f"an array of shape {value.shape} and dtype {value.dtype}"
                             if isinstance(value, np.ndarray) else f"a {type(value).__name__}")
                    raise ValueError(f"{where}[{key!r}]: got {found}, expected a floating-point array of shape "
                                     f"{p.shape}")
                copied[key] = value.astype(p.dtype, copy=True)
            else:
                copied[key] = _step_count(value, f"{where}[{key!r}]")
        return copied


def _step_count(value: Any, where: str) -> int:
    """An integer >= 0 given as an int, an integral float, or a 0-d array (torch.optim keeps step as a tensor)."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{where}: got {value!r}, expected an integer >= 0")
    return int(value)


def _param_index(key: Any, where: str) -> int:
    index = int(key) if isinstance(key, str) and key.isdecimal() else key
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"{where}: state key {key!r} is not a parameter index (an int >= 0)")
    return int(index)
