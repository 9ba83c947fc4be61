"""`Module` and `Parameter`, with PyTorch's names and behaviour.

A module's parameters and submodules are simply its attributes, found in assignment order, so
`named_parameters()` yields PyTorch's dotted names ("conv1.weight") and a state_dict maps one-to-one
onto a PyTorch model with the same structure. Buffers (running statistics and other state that is not
trained) are attributes registered with `register_buffer`; persistent ones are in the state_dict too.
The containers (`Sequential`, `ModuleList`, `ModuleDict`, `Identity`) are in `containers.py`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from .. import devices, factories
from ..autograd import Config, Tensor


class Parameter(Tensor):
    """A Tensor that is a trainable weight of a Module: requires_grad defaults to True."""

    def __init__(self, data: Any = None, requires_grad: bool = True, dtype: Any = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(np.empty(0, np.float32) if data is None else data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class StateDictError(ValueError, RuntimeError):
    """A state_dict that does not fit the module (PyTorch raises RuntimeError, earlier versions of this library
    ValueError: both catch it)."""


_BUFFERS = "_buffer_persistence"  # the instance attribute naming a module's buffers: {name: persistent}


def _check_name(module: Module, kind: str, name: Any) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{type(module).__name__}: {kind} name should be a string, got {type(name).__name__} {name!r}")
    if not name:
        raise KeyError(f"{type(module).__name__}: {kind} name cannot be the empty string")
    if "." in name:
        raise KeyError(f"{type(module).__name__}: {kind} name cannot contain a dot, got {name!r}")


class Module:
    """Base class of layers and models: subclasses set attributes in `__init__` and define `forward`."""

    training: bool = True

    def __init__(self) -> None:
        self.training = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        observers = Config.observers
        if not observers:
            return self.forward(*args, **kwargs)
        for observer in observers:  # e.g. a graph recorder that groups ops by module
            observer.enter_module(self)
        try:
            return self.forward(*args, **kwargs)
        finally:
            for observer in reversed(observers):
                observer.exit_module(self)

    # ---- attributes -------------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        buffers = self.__dict__.get(_BUFFERS)
        if buffers and name in buffers and value is not None and not isinstance(value, Tensor):
            raise TypeError(f"{type(self).__name__}: cannot assign a {type(value).__name__} to buffer {name!r} "
                            "(a Tensor or None is required)")
        if isinstance(self.__dict__.get(name), Parameter) and isinstance(value, Tensor) and \
                not isinstance(value, Parameter):
            raise TypeError(f"{type(self).__name__}: cannot assign a Tensor to parameter {name!r} (a Parameter or "
                            "None is required; assign to .data to change its values)")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        object.__delattr__(self, name)
        self.__dict__.get(_BUFFERS, {}).pop(name, None)

    def _buffer_names(self) -> dict[str, bool]:
        return self.__dict__.get(_BUFFERS, {})

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a buffer: a Tensor that is part of the module's state but not a parameter (e.g. BatchNorm's
        running mean). Persistent buffers are in `state_dict()`; `.to()`/`.double()` convert them too."""
        _check_name(self, "buffer", name)
        if name in self.__dict__ and name not in self._buffer_names():
            raise KeyError(f"{type(self).__name__}: attribute {name!r} already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"{type(self).__name__}: cannot assign a {type(tensor).__name__} to buffer {name!r} "
                            "(a Tensor or None is required)")
        if _BUFFERS not in self.__dict__:
            object.__setattr__(self, _BUFFERS, {})
        self.__dict__[_BUFFERS][name] = bool(persistent)
        object.__setattr__(self, name, tensor)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or None, a placeholder such as a missing bias) under `name`."""
        _check_name(self, "parameter", name)
        if name in self.__dict__ and not isinstance(self.__dict__[name], Parameter) and \
                not (self.__dict__[name] is None and name not in self._buffer_names()):
            raise KeyError(f"{type(self).__name__}: attribute {name!r} already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{type(self).__name__}: cannot assign a {type(param).__name__} to parameter {name!r} "
                            "(a Parameter or None is required)")
        object.__setattr__(self, name, param)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a submodule under `name` (as `setattr`, with PyTorch's checks)."""
        _check_name(self, "module", name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: {type(module).__name__} is not a Module subclass")
        if name in self.__dict__ and not isinstance(self.__dict__[name], Module) or \
                name not in self.__dict__ and hasattr(self, name):
            raise KeyError(f"{type(self).__name__}: attribute {name!r} already exists")
        object.__setattr__(self, name, module)

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        module: Module = self
        for atom in target.split(".") if target else []:
            child = module.__dict__.get(atom)
            if not isinstance(child, Module):
                raise AttributeError(f"{type(module).__name__} has no submodule {atom!r} (looking up {target!r})")
            module = child
        return module

    def get_parameter(self, target: str) -> Parameter:
        prefix, _, name = target.rpartition(".")
        value = self.get_submodule(prefix).__dict__.get(name)
        if not isinstance(value, Parameter):
            raise AttributeError(f"{type(self).__name__}: {target!r} is not a parameter")
        return value

    def get_buffer(self, target: str) -> Tensor:
        prefix, _, name = target.rpartition(".")
        module = self.get_submodule(prefix)
        if name not in module._buffer_names():
            raise AttributeError(f"{type(self).__name__}: {target!r} is not a buffer")
        return module.__dict__[name]

    # ---- traversal --------------------------------------------------------------------------------
    def _own_parameters(self) -> Iterator[tuple[str, Parameter]]:
        buffers = self._buffer_names()
        for name, value in vars(self).items():
            if isinstance(value, Parameter) and name not in buffers:
                yield name, value

    def _own_buffers(self, persistent_only: bool = False) -> Iterator[tuple[str, Tensor]]:
        for name, persistent in self._buffer_names().items():
            value = self.__dict__.get(name)
            if value is not None and (persistent or not persistent_only):
                yield name, value

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, value in vars(self).items():
            if isinstance(value, Module) and id(value) not in seen:
                seen.add(id(value))
                yield name, value

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, memo: set[int] | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module ("" or `prefix`) and every submodule, depth first. A module
        reachable under two names comes once (the first), unless `remove_duplicate=False`."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in vars(self).items():
            if isinstance(child, Module):
                yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def _named_members(self, members: Callable[[Module], Iterator[tuple[str, Tensor]]], prefix: str,
                       recurse: bool, remove_duplicate: bool) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else \
            iter([(prefix, self)])
        for module_prefix, module in modules:
            for name, value in members(module):
                if remove_duplicate:
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) in PyTorch's order; a parameter shared by two layers comes once (under its
        first name) unless `remove_duplicate=False`."""
        return self._named_members(Module._own_parameters, prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members(Module._own_buffers, prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call `fn` on every submodule (children first) and then on this module; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients ----------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        if not isinstance(mode, (bool, np.bool_)):
            raise ValueError(f"{type(self).__name__}.train: training mode is expected to be boolean, got "
                             f"{type(mode).__name__} {mode!r}")
        self.training = bool(mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set `requires_grad` on every parameter (False freezes them: no .grad, optimizers skip them)."""
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient (`.grad = None`), or with `set_to_none=False` fill it with zeros."""
        for p in self.parameters():
            _zero_grad(p, set_to_none)

    # ---- devices and dtypes -----------------------------------------------------------------------
    def _cast(self, dtype: Any, floating_only: bool = True) -> Module:
        dtype = np.dtype(dtype)
        tensors = {id(t): t for _, t in self._named_members(
            lambda m: iter([*m._own_parameters(), *m._own_buffers()]), "", True, True)}
        for t in tensors.values():
            if (t.dtype.kind == "f" or not floating_only) and t.dtype != dtype:
                t.data = t.data.astype(dtype)
                t._bump_version()
                if t.grad is not None and t.grad.dtype != dtype:
                    t.grad = Tensor(t.grad.data.astype(dtype))
        return self

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """`to(device)`, `to(dtype)`, `to(device, dtype)` or `to(tensor)`, as PyTorch: returns the module,
        converted in place. Only the CPU exists here: any other device is an error. A dtype converts the
        floating-point parameters and buffers (integer buffers such as counters are left as they are)."""
        owner = f"{type(self).__name__}.to"
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        kwargs.pop("memory_format", None)
        if kwargs:
            raise TypeError(f"{owner}: unexpected keyword arguments {sorted(kwargs)}")
        if len(args) > 3:
            raise TypeError(f"{owner}: expected at most (device, dtype, non_blocking), got {len(args)} arguments")
        for arg in args:
            if isinstance(arg, bool):
                continue  # non_blocking
            if isinstance(arg, Tensor):
                dtype = arg.dtype
            elif isinstance(arg, (str, int, np.integer)) or isinstance(getattr(arg, "type", None), str):
                device = arg
            else:
                dtype = arg
        devices.resolve(device, owner)
        dtype = factories.as_dtype(dtype, owner)
        if dtype is not None:
            if dtype.kind != "f":
                raise TypeError(f"{owner}: only floating-point dtypes are accepted, got {dtype}")
            self._cast(dtype)
        return self

    def cpu(self) -> Module:
        return self

    def cuda(self, device: Any = None) -> Module:
        devices.resolve("cuda" if device is None else device, f"{type(self).__name__}.cuda")
        return self

    def type(self, dst_type: Any) -> Module:
        """Convert every parameter and buffer (integer ones included) to `dst_type`."""
        return self._cast(dst_type, floating_only=False)

    def astype(self, dtype: Any) -> Module:
        """Convert every floating-point parameter and buffer in place to `dtype` (e.g. np.float64 for gradcheck)."""
        return self._cast(dtype)

    def double(self) -> Module:
        return self._cast(np.float64)

    def float(self) -> Module:
        return self._cast(np.float32)

    def half(self) -> Module:
        return self._cast(np.float16)

    # ---- state ------------------------------------------------------------------------------------
    def _state_tensors(self) -> Iterator[tuple[str, Tensor]]:
        """Every name of the state dict and its tensor: parameters then persistent buffers of each module, a
        tensor (or module) shared under two names once per name, as PyTorch."""
        return self._named_members(lambda m: iter([*m._own_parameters(), *m._own_buffers(persistent_only=True)]),
                                   "", True, False)

    def state_dict(self, *, destination: dict[str, Any] | None = None, prefix: str = "",
                   keep_vars: bool = False) -> OrderedDict[str, Any]:
        """name -> a copy of each parameter's and persistent buffer's array (a snapshot: later training does not
        change it), or the Tensors themselves with `keep_vars=True`. Tied weights appear under every name."""
        result: Any = OrderedDict() if destination is None else destination
        for name, t in self._state_tensors():
            result[prefix + name] = t if keep_vars else t.data.copy()
        return result

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True,
                        assign: bool = False) -> IncompatibleKeys:
        """Copy arrays (or Tensors) into the parameters and buffers, after checking every key and shape first."""
        targets = dict(self._state_tensors())
        arrays = {k: v.data if isinstance(v, Tensor) else np.asarray(v) for k, v in state_dict.items()}
        missing = [k for k in targets if k not in arrays]
        unexpected = [k for k in arrays if k not in targets]
        misshaped = [f"{k}: checkpoint {arrays[k].shape} vs model {targets[k].shape}"
                     for k in targets if k in arrays and arrays[k].shape != targets[k].shape]
        uncastable = [f"{k}: checkpoint {arrays[k].dtype} vs model {targets[k].dtype}" for k in targets
                      if k in arrays and not np.can_cast(arrays[k].dtype, targets[k].dtype, casting="same_kind")]
        problems = ([f"missing keys: {missing}"] if strict and missing else []) + (
            [f"unexpected keys: {unexpected}"] if strict and unexpected else []) + (
            [f"shape mismatches: {misshaped}"] if misshaped else []) + (
            [f"dtypes that cannot be cast: {uncastable}"] if uncastable else [])
        if problems:
            raise StateDictError(f"load_state_dict for {type(self).__name__}: " + "; ".join(problems))
        for name, t in targets.items():
            if name in arrays:
                np.copyto(t.data, arrays[name], casting="same_kind")
                t._bump_version()
        return IncompatibleKeys(missing, unexpected)

    # ---- printing ---------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        children = [f"({name}): " + repr(child).replace("\n", "\n  ") for name, child in self.named_children()]
        if len(extra_lines) == 1 and not children:
            return f"{type(self).__name__}({extra_lines[0]})"
        lines = extra_lines + children
        return f"{type(self).__name__}(" + ("\n  " + "\n  ".join(lines) + "\n" if lines else "") + ")"


def _zero_grad(p: Tensor, set_to_none: bool) -> None:
    if p.grad is None:
        return
    if set_to_none:
        p.grad = None
    elif p.grad.data.flags.writeable and p.grad.grad_fn is None:
        p.grad.data[...] = 0
        p.grad._bump_version()
    else:
        p.grad = Tensor(np.zeros_like(p.grad.data))
