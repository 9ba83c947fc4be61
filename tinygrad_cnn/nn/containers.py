"""Containers with PyTorch's behaviour: `Sequential`, `ModuleList`, `ModuleDict`, `ParameterList`, `ParameterDict`
and `Identity`.

Their submodules are attributes named "0", "1", ... (or the given keys), so parameter names and state_dict
keys are PyTorch's ("features.0.weight"). Removing or inserting an element renumbers the rest, as PyTorch 2.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

from ..autograd import Tensor
from .module import Module, Parameter


class _Indexed(Module):
    """The list-like part of Sequential and ModuleList: the submodules in order, addressed by position."""

    def _items(self) -> list[tuple[str, Module]]:
        return [(name, value) for name, value in vars(self).items() if isinstance(value, Module)]

    def _set_items(self, modules: Iterable[Module]) -> None:
        for name, _ in self._items():
            object.__delattr__(self, name)
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def _index(self, idx: Any, size: int | None = None) -> int:
        owner = type(self).__name__
        try:
            i = operator.index(idx)
        except TypeError:
            raise TypeError(f"{owner} indices must be integers or slices, not {type(idx).__name__}") from None
        n = len(self) if size is None else size
        if not -n <= i < n:
            raise IndexError(f"{owner}: index {i} is out of range for length {n}")
        return i % n

    def _check_module(self, module: Any, what: str) -> Module:
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: {what} is a {type(module).__name__}, expected a Module")
        return module

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[Module]:
        return iter([module for _, module in self._items()])

    def __setitem__(self, idx: int, module: Module) -> None:
        name = self._items()[self._index(idx)][0]
        object.__setattr__(self, name, self._check_module(module, f"the value set at index {idx}"))

    def __delitem__(self, idx: int | slice) -> None:
        modules = [m for _, m in self._items()]
        if isinstance(idx, slice):
            del modules[idx]
        else:
            del modules[self._index(idx)]
        self._set_items(modules)

    def insert(self, index: int, module: Module) -> None:
        modules = [m for _, m in self._items()]
        self._check_module(module, "the inserted value")
        n = len(modules)
        i = operator.index(index)
        if not -n <= i <= n:
            raise IndexError(f"{type(self).__name__}.insert: index {i} is out of range for length {n}")
        modules.insert(i if i >= 0 else i + n, module)
        self._set_items(modules)

    def append(self, module: Module) -> Any:
        self.add_module(str(len(self)), self._check_module(module, "the appended value"))
        return self

    def extend(self, modules: Iterable[Module]) -> Any:
        if not isinstance(modules, Iterable):
            raise TypeError(f"{type(self).__name__}.extend should be called with an iterable, got "
                            f"{type(modules).__name__}")
        for module in list(modules):
            self.append(module)
        return self

    def pop(self, idx: int = -1) -> Module:
        module = self[idx]
        del self[idx]
        return module

    def __dir__(self) -> list[str]:
        return [key for key in super().__dir__() if not key.isdigit()]


class Sequential(_Indexed):
    """Modules applied in order; built from modules (named "0", "1", ...) or from an OrderedDict of names."""

    def __init__(self, *args: Module | OrderedDict[str, Module]) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, self._check_module(module, f"element {name!r}"))
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), self._check_module(module, f"element {str(i)!r}"))

    def forward(self, input: Any) -> Any:  # noqa: A002 - PyTorch's argument name
        for module in self:
            input = module(input)
        return input

    def insert(self, index: int, module: Module) -> Sequential:
        super().insert(index, module)
        return self

    def __getitem__(self, idx: int | slice) -> Any:
        items = self._items()
        if isinstance(idx, slice):
            return type(self)(OrderedDict(items[idx]))
        return items[self._index(idx, len(items))][1]

    def __add__(self, other: Sequential) -> Sequential:
        if not isinstance(other, Sequential):
            raise ValueError(f"Sequential: add operator supports only objects of Sequential class, but "
                             f"{type(other).__name__} is given")
        return Sequential(*self, *other)

    def __iadd__(self, other: Sequential) -> Sequential:
        if not isinstance(other, Sequential):
            raise ValueError(f"Sequential: add operator supports only objects of Sequential class, but "
                             f"{type(other).__name__} is given")
        return self.extend(list(other))


class ModuleList(_Indexed):
    """A list of submodules, registered so that their parameters belong to the parent module."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx: int | slice) -> Any:
        items = self._items()
        if isinstance(idx, slice):
            return type(self)([m for _, m in items[idx]])
        return items[self._index(idx, len(items))][1]

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList([*self, *other])

    def __iadd__(self, other: Iterable[Module]) -> ModuleList:
        return self.extend(other)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleList has no forward(): iterate over it in your module's forward")


class _Keyed(Module):
    """The dict-like part of ModuleDict and ParameterDict: the entries of type `_kind` in insertion order."""

    _kind: ClassVar[type] = Module

    def _items(self) -> list[tuple[str, Any]]:
        return [(name, value) for name, value in vars(self).items() if isinstance(value, self._kind)]

    def __getitem__(self, key: str) -> Any:
        value = self.__dict__.get(key) if isinstance(key, str) else None
        if not isinstance(value, self._kind):
            raise KeyError(key)
        return value

    def __delitem__(self, key: str) -> None:
        self[key]  # noqa: B018 - raises KeyError for a missing key
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and isinstance(self.__dict__.get(key), self._kind)

    def keys(self) -> list[str]:
        return [name for name, _ in self._items()]

    def values(self) -> list[Any]:
        return [value for _, value in self._items()]

    def items(self) -> list[tuple[str, Any]]:
        return self._items()

    def clear(self) -> None:
        for key in self.keys():
            delattr(self, key)

    def pop(self, key: str) -> Any:
        value = self[key]
        del self[key]
        return value

    def update(self, entries: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        owner = f"{type(self).__name__}.update"
        if isinstance(entries, (Mapping, _Keyed)):
            pairs = list(entries.items())
        else:
            if not isinstance(entries, Iterable):
                raise TypeError(f"{owner} should be called with an iterable of key/value pairs, got "
                                f"{type(entries).__name__}")
            pairs = list(entries)
        for j, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"{owner}: element #{j} should be a (key, value) pair, got {pair!r}")
        for key, value in pairs:
            self[key] = value

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward(): index it in your module's forward")


class ModuleDict(_Keyed):
    """An ordered dict of submodules, registered so that their parameters belong to the parent module."""

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)


class Identity(Module):
    """Returns its input; accepts (and ignores) any constructor arguments, as PyTorch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:  # noqa: A002 - PyTorch's argument name
        return input


def _as_parameter(owner: str, value: Any) -> Parameter:
    if isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor):  # as PyTorch: a plain Tensor becomes a Parameter sharing its data
        return Parameter(value.data)
    raise TypeError(f"{owner}: expected a Parameter or Tensor, got {type(value).__name__}")


class ParameterList(Module):
    """A list of Parameters registered on the module (named "0", "1", ...); Tensors given become Parameters."""

    def __init__(self, values: Iterable[Any] | None = None) -> None:
        super().__init__()
        if values is not None:
            self.extend(values)

    def _items(self) -> list[tuple[str, Parameter]]:
        return [(name, p) for name, p in vars(self).items() if isinstance(p, Parameter)]

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[Parameter]:
        return iter([p for _, p in self._items()])

    def __getitem__(self, idx: int | slice) -> Any:
        items = self._items()
        if isinstance(idx, slice):
            return ParameterList([p for _, p in items[idx]])
        n = len(items)
        i = operator.index(idx)
        if not -n <= i < n:
            raise IndexError(f"ParameterList: index {i} is out of range for length {n}")
        return items[i % n][1]

    def __setitem__(self, idx: int, value: Any) -> None:
        name = self._items()[operator.index(idx)][0]
        object.__setattr__(self, name, _as_parameter("ParameterList", value))

    def append(self, value: Any) -> ParameterList:
        self.register_parameter(str(len(self)), _as_parameter("ParameterList.append", value))
        return self

    def extend(self, values: Iterable[Any]) -> ParameterList:
        for value in list(values):
            self.append(value)
        return self

    def __iadd__(self, values: Iterable[Any]) -> ParameterList:
        return self.extend(values)

    def extra_repr(self) -> str:
        return "\n".join(f"({name}): Parameter containing: [{p.dtype} of size {tuple(p.shape)}]"
                         for name, p in self._items())

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ParameterList has no forward(): use its parameters in your module's forward")


class ParameterDict(_Keyed):
    """An ordered dict of Parameters registered on the module under their keys."""

    _kind = Parameter

    def __init__(self, parameters: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None) -> None:
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(key, str) and key not in self.__dict__ and hasattr(self, key):
            raise KeyError(f"ParameterDict: attribute {key!r} already exists")
        self.register_parameter(key, _as_parameter("ParameterDict", value))

    def extra_repr(self) -> str:
        return "\n".join(f"({name}): Parameter containing: [{p.dtype} of size {tuple(p.shape)}]"
                         for name, p in self._items())
