"""`Module`, `Parameter` and `Sequential`, with PyTorch's names and behaviour.

A module's parameters and submodules are simply its attributes, found in assignment order, so
`named_parameters()` yields PyTorch's dotted names ("conv1.weight") and a state_dict maps one-to-one
onto a PyTorch model with the same structure.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from ..autograd import Config, Tensor


class Parameter(Tensor):
    """A Tensor that is a trainable weight of a Module: requires_grad defaults to True."""

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None) -> None:
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of layers and models: subclasses set attributes in `__init__` and define `forward`."""

    training: bool = True

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

    # ---- traversal --------------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        for prefix, module in self.named_modules():
            for name, value in vars(module).items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{prefix}.{name}" if prefix else name), value

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    # ---- modes and gradients ----------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def astype(self, dtype: Any) -> Module:
        """Convert every parameter in place to `dtype` (e.g. np.float64 for gradcheck)."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p._bump_version()
        return self

    def double(self) -> Module:
        return self.astype(np.float64)

    def float(self) -> Module:
        return self.astype(np.float32)

    # ---- state ------------------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """name -> a copy of the parameter's array (a snapshot: later training does not change it)."""
        return OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays (or Tensors) into the parameters, after checking every key and shape first."""
        params = dict(self.named_parameters())
        arrays = {k: v.data if isinstance(v, Tensor) else np.asarray(v) for k, v in state_dict.items()}
        missing = [k for k in params if k not in arrays]
        unexpected = [k for k in arrays if k not in params]
        misshaped = [f"{k}: checkpoint {arrays[k].shape} vs model {params[k].shape}"
                     for k in params if k in arrays and arrays[k].shape != params[k].shape]
        uncastable = [f"{k}: checkpoint {arrays[k].dtype} vs model {params[k].dtype}" for k in params
                      if k in arrays and not np.can_cast(arrays[k].dtype, params[k].dtype, casting="same_kind")]
        problems = ([f"missing keys: {missing}"] if strict and missing else []) + (
            [f"unexpected keys: {unexpected}"] if strict and unexpected else []) + (
            [f"shape mismatches: {misshaped}"] if misshaped else []) + (
            [f"dtypes that cannot be cast: {uncastable}"] if uncastable else [])
        if problems:
            raise ValueError(f"load_state_dict for {type(self).__name__}: " + "; ".join(problems))
        for name, p in params.items():
            if name in arrays:
                np.copyto(p.data, arrays[name], casting="same_kind")
                p._bump_version()
        return IncompatibleKeys(missing, unexpected)

    # ---- printing ---------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = [f"({name}): " + repr(child).replace("\n", "\n  ") for name, child in self.named_children()]
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(children) + "\n)"


class Sequential(Module):
    """Modules applied in order; built from modules (named "0", "1", ...) or from an OrderedDict of names."""

    def __init__(self, *modules: Module | OrderedDict[str, Module]) -> None:
        named = modules[0].items() if len(modules) == 1 and isinstance(modules[0], OrderedDict) else (
            (str(i), m) for i, m in enumerate(modules))
        for name, module in named:
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: element {name!r} is a {type(module).__name__}, expected a Module")
            setattr(self, name, module)

    def forward(self, x: Any) -> Any:
        for module in self.children():
            x = module(x)
        return x

    def __getitem__(self, index: int) -> Module:
        return list(self.children())[index]

    def __len__(self) -> int:
        return sum(1 for _ in self.children())
