"""The engine: `Tensor`, `Function`, `Context`, grad mode, observers and reverse-mode differentiation.

A `Tensor` wraps an `np.ndarray`. Calling a `Function` on tensors runs its numpy `forward` and, when
grad mode is on and an input requires grad, leaves a `Context` on the result: the function, its inputs
and what its `backward` (the vector-Jacobian product, VJP) needs. `backward()` walks these contexts
from the output in reverse topological order. VJPs are written with Tensor ops, so running them with
grad mode on (`create_graph=True`) records the backward pass as a graph of its own. The Tensor's
operators and methods are attached by `tensor_methods.py`; tools watch the engine through `hooks.py`.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np


class _Config(threading.local):
    """Switches in the style of DeZero's `Config`, one set per thread (as PyTorch's grad mode): a
    `no_grad()` block in a data-loading thread must not stop the training thread's recording. The
    class attributes are each new thread's starting values."""

    enable_grad = True  # off inside `no_grad()`: ops record nothing
    in_backward = False  # on while VJPs run: their ops are the engine's, not the user's
    observers: tuple = ()  # `hooks.Observer`s, attached by `hooks.observe()`; empty costs one test per op


Config = _Config()


@contextlib.contextmanager
def using_config(**values: Any) -> Iterator[None]:
    """Set `Config` switches for the duration of a `with` block (as DeZero's `using_config`)."""
    previous = {name: getattr(Config, name) for name in values}
    for name, value in values.items():
        setattr(Config, name, value)
    try:
        yield
    finally:
        for name, value in previous.items():
            setattr(Config, name, value)


def no_grad() -> contextlib.AbstractContextManager:
    """Context manager (and decorator, as `@no_grad()`) inside which no graph is recorded."""
    return using_config(enable_grad=False)


def enable_grad() -> contextlib.AbstractContextManager:
    """Context manager that turns graph recording back on, e.g. inside `no_grad()`."""
    return using_config(enable_grad=True)


def set_grad_enabled(mode: bool) -> contextlib.AbstractContextManager:
    """Context manager that sets grad mode to `mode` (as `torch.set_grad_enabled`)."""
    return using_config(enable_grad=bool(mode))


def inference_mode(mode: bool = True) -> contextlib.AbstractContextManager:
    """`torch.inference_mode`: here the same as `no_grad()` (there is no cheaper mode to switch to)."""
    return using_config(enable_grad=not mode)


def is_grad_enabled() -> bool:
    return Config.enable_grad


class Context:
    """What one op application leaves in the graph: its function, inputs, attributes and saved arrays.
    What forward saved (`save_for_backward`, or attributes) is freed by `backward` unless `retain_graph`;
    the function, inputs and attributes stay, so a graph can still be checked or drawn afterwards."""

    __slots__ = ("fn", "inputs", "attrs", "saved", "needs_input_grad", "saved_refs", "saved_versions", "output",
                 "freed", "__dict__", "__weakref__")

    def __init__(self, fn: type[Function], inputs: tuple, attrs: dict) -> None:
        # Kept minimal: under no_grad (including every backward without create_graph) the context
        # only lives for the duration of forward. `record` fills in the rest when the op is recorded.
        self.fn, self.inputs, self.attrs, self.saved, self.freed = fn, inputs, attrs, (), False

    def record(self, output: Tensor) -> None:
        self.output = weakref.ref(output)  # weak: the output owns its context, not the other way round
        # Which saved arrays are an input's or the output's data: those come back as that very Tensor
        # (keeping the VJP connected to the graph) and their version is checked at unpack time.
        refs, versions, out = [], [], output._data
        for arr in self.saved:
            for i, a in enumerate(self.inputs):
                if isinstance(a, Tensor) and a._data is arr:
                    refs.append(i)
                    versions.append((a if a._base is None else a._base)._version)  # a._version_owner()'s, inlined
                    break
            else:
                refs.append(-1 if arr is out else None)
                versions.append(0 if arr is out else None)
        self.saved_refs, self.saved_versions = refs, versions

    @property
    def name(self) -> str:
        return self.fn.__name__

    @property
    def recorded(self) -> bool:
        """True when the op is part of a graph (grad mode on and an input required grad)."""
        return hasattr(self, "output")

    def save_for_backward(self, *arrays: np.ndarray) -> None:
        """Keep arrays for `backward`; an input's or the output's array comes back as that Tensor."""
        self.saved = arrays

    @property
    def saved_tensors(self) -> tuple[Tensor, ...]:
        """The saved arrays as Tensors: the graph's own input/output Tensor where it is one of them,
        so that a VJP written with Tensor ops stays connected to the graph (double backward)."""
        if self.freed:
            raise RuntimeError(_freed_message(self))
        tensors = []
        for arr, ref, version in zip(self.saved, self.saved_refs, self.saved_versions):
            if ref is None:
                tensors.append(Tensor._make(arr))
                continue
            t = self.inputs[ref] if ref >= 0 else self.output()
            now = (t if t._base is None else t._base)._version  # t._version_owner(), inlined: a hot path
            if now != version:
                raise RuntimeError(
                    f"backward of {self.name}: a tensor of shape {t.shape} that it saved for backward was modified "
                    f"in place after the forward pass (version {version} at save, {now} now), so the "
                    "gradient would be wrong. Do in-place updates (e.g. optimizer.step()) after backward().")
            tensors.append(t)
        return tuple(tensors)

    def __getattr__(self, name: str) -> Any:
        # Only reached for an attribute forward did not set, or one that backward() freed.
        if self.freed:
            raise RuntimeError(_freed_message(self))
        raise AttributeError(f"{self.name}'s context has no attribute {name!r}")

    def free(self) -> None:
        """Drop what forward saved; only an op that saved something can fail a second backward."""
        if self.saved or self.__dict__:
            self.saved = ()
            self.__dict__.clear()
            self.freed = True


def _freed_message(ctx: Context) -> str:
    return (f"backward: trying to backward through the graph a second time: the buffers saved by op "
            f"'{ctx.name}' were freed by the first backward(). Pass retain_graph=True to the first "
            "backward() if you need to backward through the same graph again.")


class Function:
    """Base class of every op, built-in or user-defined.

    Subclasses define two static methods side by side:
      forward(ctx, *args, **attrs): numpy arrays in (Tensor arguments are unwrapped), numpy array out.
      backward(ctx, grad): the VJP. `grad` is a Tensor shaped like the output; return one Tensor (or
        None) per positional argument of forward, written with Tensor ops so it can be differentiated.
    Call it with `MyOp.apply(*args, **attrs)`. In forward, `ctx.needs_input_grad` holds one flag per
    argument, or is empty when the op is not recorded (no_grad, or no input requires grad).
    Set `view = True` on an op whose output may share memory with its first input (reshape, permute, ...):
    the output then shares the input's version counter, so an in-place change of either is seen by both.
    Set `kinks` to a function (x, attrs, step) -> bool mask of the elements of the first input within
    `step` of a point where the op is not differentiable (relu at 0, tied maxima): finite-difference
    checks (gradcheck, check_graph) must not step across those.
    """

    view = False
    kinks = None

    @staticmethod
    def forward(ctx: Context, *args: Any, **attrs: Any) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor | None | tuple[Tensor | None, ...]:
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any, **attrs: Any) -> Tensor:
        ctx = Context(cls, args, attrs)
        needs = [isinstance(a, Tensor) and a.requires_grad for a in args] if Config.enable_grad else ()
        # Empty when the op will not be recorded, so a forward can skip what only its backward needs.
        ctx.needs_input_grad = tuple(needs) if True in needs else ()
        try:
            out = cls.forward(ctx, *[a._data if isinstance(a, Tensor) else a for a in args], **attrs)
        except ValueError as e:  # numpy's message (e.g. shapes that do not broadcast) does not name the op
            shapes = " and ".join(str(a.shape) for a in args if isinstance(a, Tensor))
            raise ValueError(f"{cls.__name__}: {e} (input shapes {shapes})") from None
        if type(out) is not np.ndarray:  # a numpy scalar (0-d result): saved as the output, it must stay it
            out, scalar = np.asarray(out), out
            ctx.saved = tuple(out if s is scalar else s for s in ctx.saved)
        result = Tensor._make(out)
        if cls.view and np.may_share_memory(out, args[0]._data):
            result._base = args[0]._version_owner()
        if ctx.needs_input_grad:
            ctx.record(result)
            result._ctx, result.requires_grad = ctx, True
        for observer in Config.observers:
            observer.forward(ctx, out)
        return result


class Tensor:
    """An `np.ndarray` plus what autograd needs: `requires_grad`, `.grad` and the op that made it.

    `Tensor(ndarray)` wraps the array without copying and keeps its dtype; Python floats (and lists of
    them) become float32, Python ints int64, unless `dtype` says otherwise. Operators and methods are
    attached by `tinygrad_cnn.tensor_methods`.
    """

    __slots__ = ("_data", "grad", "requires_grad", "_ctx", "_version", "_base", "__weakref__")
    __array_priority__ = 1000  # so `ndarray + Tensor` calls Tensor.__radd__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        arr = as_array(data, dtype, "Tensor")
        if requires_grad and arr.dtype.kind != "f":
            raise TypeError(f"Tensor: requires_grad=True needs a floating-point dtype, got {arr.dtype}; "
                            "only float tensors can have gradients")
        self._data = arr
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self._ctx: Context | None = None
        self._version = 0
        self._base: Tensor | None = None  # the tensor whose memory this one views (see Function.view)

    @classmethod
    def _make(cls, data: np.ndarray) -> Tensor:
        t = object.__new__(cls)
        t._data, t.grad, t.requires_grad, t._ctx, t._version, t._base = data, None, False, None, 0, None
        return t

    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        # PyTorch lets `p.data = tensor` swap the storage; micrograd users write `p.data += -lr * p.grad`,
        # which lands here with a Tensor. Either way the parameter must keep holding an ndarray.
        self._data = as_array(value, None, "Tensor.data")

    @property
    def grad_fn(self) -> Context | None:
        return self._ctx

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def detach(self) -> Tensor:
        """The same data, out of the graph; it shares the version counter, so an in-place change of
        either one is seen by a backward that saved the other."""
        out = Tensor._make(self._data)
        out._base = self._version_owner()
        return out

    def _bump_version(self) -> None:
        """Record an in-place change: a backward that saved this tensor (or a view of it) refuses it."""
        self._version_owner()._version += 1

    def _version_owner(self) -> Tensor:
        """The tensor whose version counter this one uses: its base if it is a view, else itself."""
        return self if self._base is None else self._base

    def backward(self, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False,
                 inputs: Sequence[Tensor] | None = None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (a vector-Jacobian product with `gradient`).
        As in PyTorch, `retain_graph` defaults to `create_graph`; `inputs` limits which tensors get `.grad`."""
        seed = _seed_grad(self, gradient, "backward")
        retain = create_graph if retain_graph is None else retain_graph
        wanted = None if inputs is None else _as_tensor_list(inputs, "backward", "inputs")
        for t, g in _backprop(self, seed, retain, create_graph, wanted).values():
            if create_graph:
                g = g.astype(t.dtype)  # stays in the graph
            else:  # its own writable memory: never a broadcast view, another leaf's gradient or the seed
                g = Tensor._make(np.array(g.data, dtype=t.dtype))
            t.grad = g if t.grad is None else t.grad + g

    def _topo(self) -> list[Tensor]:
        """Tensors with a recorded op, inputs before outputs (iterative DFS: no recursion limit)."""
        order: list[Tensor] = []
        visited = {id(self)}
        stack = [(self, iter(self._ctx.inputs))]  # each entry: a tensor and its inputs still to visit
        while stack:
            t, inputs = stack[-1]
            for p in inputs:
                if isinstance(p, Tensor) and p._ctx is not None and id(p) not in visited:
                    visited.add(id(p))
                    stack.append((p, iter(p._ctx.inputs)))
                    break
            else:  # all of t's inputs are placed: t comes next
                stack.pop()
                order.append(t)
        return order


def as_array(data: Any, dtype: Any, op: str) -> np.ndarray:
    """`data` (a Tensor, number, nested list or ndarray) as an ndarray, Python floats as float32."""
    if isinstance(data, Tensor):
        data = data.data
    try:
        arr = np.asarray(data, dtype=dtype)
    except (ValueError, TypeError) as e:  # ragged nested lists, objects numpy cannot convert
        raise ValueError(f"{op}: cannot build an array from {type(data).__name__} data ({e}); "
                         "expected a number, a rectangular nested list or an ndarray") from None
    if dtype is None and arr.dtype == np.float64 and not isinstance(data, (np.ndarray, np.generic)):
        arr = arr.astype(np.float32)  # Python floats default to float32, as in PyTorch; arrays keep theirs
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{op}: unsupported dtype {arr.dtype} (from {type(data).__name__}); "
                        "expected bool, integer or floating-point data")
    return arr


def _as_tensor_list(tensors: Tensor | Sequence[Tensor], op: str, what: str) -> list[Tensor]:
    items = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {what}[{i}] is a {type(t).__name__}, expected a Tensor")
        if not t.requires_grad:
            raise RuntimeError(f"{op}: {what}[{i}] (shape {t.shape}) does not require grad")
    return items


def _seed_grad(root: Tensor, grad: Any, op: str) -> Tensor:
    if not root.requires_grad:
        raise RuntimeError(f"{op}: the tensor does not require grad and has no recorded op "
                           "(was it computed inside no_grad(), or from inputs without requires_grad=True?)")
    if grad is None:
        if root._data.size != 1:
            raise RuntimeError(f"{op}: grad can be implicitly created only for a scalar output, but the output "
                               f"has shape {root.shape}; pass grad= with that shape")
        return Tensor._make(np.ones(root.shape, dtype=root.dtype))
    seed = grad if isinstance(grad, Tensor) else Tensor(np.asarray(grad, dtype=root.dtype))
    if seed.shape != root.shape:
        raise ValueError(f"{op}: grad has shape {seed.shape} but the output has shape {root.shape}")
    return seed


def _backprop(root: Tensor, seed: Tensor, retain_graph: bool, create_graph: bool,
              wanted: list[Tensor] | None = None) -> dict[int, tuple[Tensor, Tensor]]:
    """Run every VJP from `root` back to the leaves; return {id: (tensor, total gradient)} for the leaves
    that require grad, or, when `wanted` is given, for exactly those tensors (leaves or not)."""
    want = None if wanted is None else {id(t) for t in wanted}
    result: dict[int, tuple[Tensor, Tensor]] = {}
    if root._ctx is None:  # a leaf: its gradient is the seed itself
        return {id(root): (root, seed)} if want is None or id(root) in want else {}
    grads: dict[int, Tensor] = {id(root): seed}
    observers = Config.observers
    with using_config(enable_grad=create_graph, in_backward=True):
        for t in reversed(root._topo()):
            g = grads.pop(id(t), None)
            if g is None:  # every path from here to the root carried no gradient
                continue
            if want is not None and id(t) in want:
                result[id(t)] = (t, g)  # all of t's consumers came before it: g is total
            ctx = t._ctx
            in_grads = ctx.fn.backward(ctx, g)
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
            if len(in_grads) != len(ctx.inputs):
                raise RuntimeError(f"backward of {ctx.name} returned {len(in_grads)} gradients, expected one per "
                                   f"forward argument ({len(ctx.inputs)})")
            for observer in observers:
                observer.backward(ctx, g, in_grads)
            for parent, pg, needed in zip(ctx.inputs, in_grads, ctx.needs_input_grad):
                if pg is None or not needed:
                    continue
                if pg.data.shape != parent.data.shape:
                    raise RuntimeError(f"backward of {ctx.name} returned a gradient of shape {pg.shape} for an "
                                       f"input of shape {parent.shape}")
                key = id(parent)
                if parent._ctx is None:
                    if want is None or key in want:
                        prev = result.get(key)
                        result[key] = (parent, pg if prev is None else prev[1] + pg)
                else:
                    prev = grads.get(key)
                    grads[key] = pg if prev is None else prev + pg
            if not retain_graph:
                ctx.free()
    return result


def grad(outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor], grad_outputs: Any = None,
         retain_graph: bool | None = None, create_graph: bool = False,
         allow_unused: bool = False) -> tuple[Tensor | None, ...]:
    """d(outputs)/d(inputs), a VJP with `grad_outputs`, without touching any `.grad` (torch.autograd.grad).

    Every input gets its total derivative wherever it sits in the graph, leaf or intermediate. Several
    outputs (with one grad_output each) add their VJPs.
    """
    single = isinstance(outputs, Tensor)
    outs = [outputs] if single else list(outputs)
    if not outs:
        raise ValueError("grad: outputs is empty; expected a Tensor or a sequence of Tensors")
    if grad_outputs is None:
        seeds = [None] * len(outs)
    elif isinstance(grad_outputs, (list, tuple)) and (not single or len(grad_outputs) == 1 and (
            grad_outputs[0] is None or isinstance(grad_outputs[0], Tensor))):
        seeds = list(grad_outputs)
    else:
        seeds = [grad_outputs]
    if len(seeds) != len(outs):
        raise ValueError(f"grad: got {len(outs)} outputs but {len(seeds)} grad_outputs; expected one per output")
    wanted = _as_tensor_list(inputs, "grad", "inputs")
    retain = create_graph if retain_graph is None else retain_graph
    found: dict[int, Tensor] = {}
    for out, seed in zip(outs, seeds):
        # With several outputs the graph they share must survive until the last one has run.
        keep = retain or out is not outs[-1]
        for key, (_, g) in _backprop(out, _seed_grad(out, seed, "grad"), keep, create_graph, wanted).items():
            found[key] = g if key not in found else found[key] + g
    result = tuple(found.get(id(t)) for t in wanted)
    if not allow_unused and any(g is None for g in result):
        unused = [i for i, g in enumerate(result) if g is None]
        raise RuntimeError(f"grad: inputs {unused} were not used to compute the output; pass allow_unused=True")
    return result
