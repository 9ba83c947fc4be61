"""The engine: `Tensor`, `Function`, grad mode and reverse-mode differentiation.

A `Tensor` wraps an `np.ndarray`. Calling a `Function` on tensors runs its numpy `forward` and, when
grad mode is on and an input requires grad, leaves a `Context` on the result: the function, its inputs
and what its `backward` (the vector-Jacobian product, VJP) needs. `backward()` walks these contexts
from the output in reverse topological order. VJPs are written with Tensor ops, so running them with
grad mode on (`create_graph=True`) records the backward pass as a graph of its own.
"""

from __future__ import annotations

import contextlib
import gc
import math
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
    anomaly_hook = None  # set by `detect_anomaly()`: called on every op's forward and VJP result
    current_module = None  # the nn.Module whose forward is running: recorded on each op for drawing


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


def is_grad_enabled() -> bool:
    return Config.enable_grad


class Context:
    """What one op application leaves in the graph: its function, inputs, attributes and saved arrays.

    Arrays a `forward` stores on the context (via `save_for_backward` or as attributes such as
    `ctx.winners`) are freed after `backward` unless `retain_graph=True`. What stays is what describes
    the node (function, inputs, attributes, output shape/dtype, creation site, gradient norm), so a
    graph can still be drawn or checked after backward.
    """

    __slots__ = ("fn", "inputs", "attrs", "saved", "needs_input_grad", "saved_refs", "saved_versions", "output",
                 "out_shape", "out_dtype", "freed", "site", "_grad_seen", "module", "__dict__")

    def __init__(self, fn: type[Function], inputs: tuple, attrs: dict) -> None:
        # Kept minimal: under no_grad (including every backward without create_graph) the context
        # only lives for the duration of forward. `record` fills in the rest when the op is recorded.
        self.fn, self.inputs, self.attrs, self.saved = fn, inputs, attrs, ()

    def record(self, output: Tensor) -> None:
        data = output.data
        self.output = weakref.ref(output)  # weak: the output owns its context, not the other way round
        self.out_shape, self.out_dtype = data.shape, data.dtype
        self.freed, self.site, self._grad_seen, self.module = False, None, None, Config.current_module
        # Which saved arrays are an input's or the output's data: those come back as that very Tensor
        # (keeping the VJP connected to the graph) and their version is checked at unpack time.
        refs, versions = [], []
        for arr in self.saved:
            for i, a in enumerate(self.inputs):
                if isinstance(a, Tensor) and a.data is arr:
                    refs.append(i)
                    versions.append((a if a._base is None else a._base)._version)  # a._version_owner()'s
                    break
            else:
                refs.append(-1 if arr is data else None)
                versions.append(0 if arr is data else None)
        self.saved_refs, self.saved_versions = refs, versions

    @property
    def name(self) -> str:
        return self.fn.__name__

    @property
    def grad_norm(self) -> float | None:
        """Norm of the gradient that reached this op's output in the last backward (None before any)."""
        if isinstance(self._grad_seen, np.ndarray):
            self._grad_seen = _norm(self._grad_seen)
        return self._grad_seen

    def _see_grad(self, grad: np.ndarray) -> None:
        # A drawing of the graph needs each gradient's norm after backward. Small gradients are kept and
        # measured on demand (a norm costs ~1 us, as much as a tiny op); large ones are measured now.
        self._grad_seen = grad if grad.size <= _KEEP_GRAD_SIZE else _norm(grad)

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

    def free(self) -> None:
        self.saved = ()
        try:  # what forward kept as attributes (ctx.cols, ctx.winners, ...), if it kept any
            del self.__dict__
        except AttributeError:
            pass
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
    """

    view = False

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
            out = cls.forward(ctx, *[a.data if isinstance(a, Tensor) else a for a in args], **attrs)
        except ValueError as e:  # numpy's message (e.g. shapes that do not broadcast) does not name the op
            shapes = " and ".join(str(a.shape) for a in args if isinstance(a, Tensor))
            raise ValueError(f"{cls.__name__}: {e} (input shapes {shapes})") from None
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        result = Tensor._make(out)
        if cls.view and np.may_share_memory(out, args[0].data):
            result._base = args[0]._version_owner()
        if ctx.needs_input_grad:
            ctx.record(result)
            result._ctx, result.requires_grad = ctx, True
        if Config.anomaly_hook is not None:
            Config.anomaly_hook(ctx, out, "forward")
        return result


def _as_array(data: Any, dtype: Any) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    try:
        arr = np.asarray(data, dtype=dtype)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"Tensor: cannot build an array from {type(data).__name__} data ({e}); "
                         "expected a number, a rectangular nested list or an ndarray") from None
    if dtype is None and arr.dtype == np.float64 and not isinstance(data, (np.ndarray, np.generic)):
        arr = arr.astype(np.float32)  # Python floats default to float32, as in PyTorch; arrays keep theirs
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"Tensor: unsupported dtype {arr.dtype} (from {type(data).__name__}); "
                        "expected bool, integer or floating-point data")
    return arr


class Tensor:
    """An `np.ndarray` plus what autograd needs: `requires_grad`, `.grad` and the op that made it.

    `Tensor(ndarray)` wraps the array without copying and keeps its dtype; Python floats (and lists of
    them) become float32, Python ints int64, unless `dtype` says otherwise.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_version", "_base", "__weakref__")
    __array_priority__ = 1000  # so `ndarray + Tensor` calls Tensor.__radd__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        arr = _as_array(data, dtype)
        if requires_grad and arr.dtype.kind != "f":
            raise TypeError(f"Tensor: requires_grad=True needs a floating-point dtype, got {arr.dtype}; "
                            "only float tensors can have gradients")
        self.data = arr
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self._ctx: Context | None = None
        self._version = 0
        self._base: Tensor | None = None  # the tensor whose memory this one views (see Function.view)

    @classmethod
    def _make(cls, data: np.ndarray) -> Tensor:
        t = object.__new__(cls)
        t.data, t.grad, t.requires_grad, t._ctx, t._version, t._base = data, None, False, None, 0, None
        return t

    # ---- basic properties ------------------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: self.data.size)

    @property
    def grad_fn(self) -> Context | None:
        return self._ctx

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float | int | bool:
        if self.data.size != 1:
            raise ValueError(f"item: only a one-element tensor converts to a Python number, got shape {self.shape}")
        return self.data.item()

    def detach(self) -> Tensor:
        return Tensor._make(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(", threshold=50)
        extra = f", grad_fn=<{self._ctx.name}>" if self._ctx is not None else (
            ", requires_grad=True" if self.requires_grad else "")
        return f"Tensor({body}, dtype={self.dtype}{extra})"

    def _bump_version(self) -> None:
        """Record an in-place change, so a backward that saved this tensor (or a view of it) refuses a stale
        value."""
        self._version_owner()._version += 1

    def _version_owner(self) -> Tensor:
        """The tensor whose version counter this one uses: its base if it is a view, else itself."""
        return self if self._base is None else self._base

    # ---- differentiation -------------------------------------------------------------------------
    def backward(self, grad: Any = None, retain_graph: bool = False, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (a vector-Jacobian product with `grad`)."""
        seed = _seed_grad(self, grad, "backward")
        for leaf, g in _backprop(self, seed, retain_graph, create_graph).values():
            if create_graph:
                g = g.astype(leaf.dtype)  # stays in the graph
            else:  # its own writable memory: never a broadcast view, another leaf's gradient or the seed
                g = Tensor._make(np.array(g.data, dtype=leaf.dtype))
            leaf.grad = g if leaf.grad is None else leaf.grad + g

    def _topo(self, stop_at: set[int] = frozenset()) -> list[Tensor]:
        """Tensors with a recorded op, inputs before outputs (iterative DFS: no recursion limit).
        The inputs of tensors in `stop_at` are not visited."""
        order: list[Tensor] = []
        visited = {id(self)}
        stack = [(self, iter(self._ctx.inputs))]  # each entry: a tensor and its inputs still to visit
        while stack:
            t, inputs = stack[-1]
            for p in inputs:
                if isinstance(p, Tensor) and p._ctx is not None and id(p) not in visited:
                    visited.add(id(p))
                    stack.append((p, iter(() if id(p) in stop_at else p._ctx.inputs)))
                    break
            else:  # all of t's inputs are placed: t comes next
                stack.pop()
                order.append(t)
        return order

    # ---- the Tensor front over the primitive ops (ops.py defines them) --------------------------
    def _lift(self, other: Any) -> Tensor:
        if isinstance(other, Tensor):
            return other
        dtype = self.data.dtype
        if isinstance(other, (int, float)) and dtype.kind == "f":
            return Tensor._make(np.array(other, dtype=dtype))  # a scalar keeps our precision
        return Tensor(other)

    def __add__(self, other: Any) -> Tensor: return ops.Add.apply(self, self._lift(other))
    def __radd__(self, other: Any) -> Tensor: return ops.Add.apply(self._lift(other), self)
    def __sub__(self, other: Any) -> Tensor: return ops.Sub.apply(self, self._lift(other))
    def __rsub__(self, other: Any) -> Tensor: return ops.Sub.apply(self._lift(other), self)
    def __mul__(self, other: Any) -> Tensor: return ops.Mul.apply(self, self._lift(other))
    def __rmul__(self, other: Any) -> Tensor: return ops.Mul.apply(self._lift(other), self)
    def __truediv__(self, other: Any) -> Tensor: return ops.Div.apply(self, self._lift(other))
    def __rtruediv__(self, other: Any) -> Tensor: return ops.Div.apply(self._lift(other), self)
    def __neg__(self) -> Tensor: return ops.Neg.apply(self)
    def __matmul__(self, other: Any) -> Tensor: return self.matmul(self._lift(other))
    def __rmatmul__(self, other: Any) -> Tensor: return self._lift(other).matmul(self)

    def __pow__(self, exponent: Any) -> Tensor:
        if isinstance(exponent, (int, float)):
            return ops.Pow.apply(self, exponent=exponent)
        return (self._lift(exponent) * self.log()).exp()  # x**y = exp(y log x), for x > 0

    def __rpow__(self, base: Any) -> Tensor:
        return (self * self._lift(base).log()).exp()

    def __getitem__(self, index: Any) -> Tensor:
        return ops.Getitem.apply(self, index=_plain_index(index))

    def exp(self) -> Tensor: return ops.Exp.apply(self)
    def log(self) -> Tensor: return ops.Log.apply(self)
    def relu(self) -> Tensor: return ops.Relu.apply(self)

    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.Sum.apply(self, axis=_norm_axis(axis, self.ndim, "sum"), keepdims=keepdims)

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.Max.apply(self, axis=_norm_axis(axis, self.ndim, "max"), keepdims=keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        axes = _norm_axis(axis, self.ndim, "mean")
        count = math.prod(self.shape[a] for a in axes)
        return self.sum(axes, keepdims) / count

    def expand(self, *shape: int) -> Tensor:
        shape = _shape_arg(shape)
        try:
            np.broadcast_shapes(self.shape, shape)
        except ValueError:
            raise ValueError(f"expand: cannot broadcast shape {self.shape} to {shape}") from None
        return self if shape == self.shape else ops.Expand.apply(self, shape=shape)

    def reshape(self, *shape: int) -> Tensor:
        shape = _shape_arg(shape)
        known = math.prod(d for d in shape if d != -1)
        wildcards = shape.count(-1)
        if not (all(d >= -1 for d in shape) and (known == self.size if wildcards == 0 else
                                                 wildcards == 1 and known > 0 and self.size % known == 0)):
            raise ValueError(f"reshape: cannot reshape tensor of shape {self.shape} ({self.size} elements) "
                             f"into shape {shape}")
        shape = tuple(self.size // known if d == -1 else d for d in shape)
        if shape == self.shape:
            return self
        return ops.Reshape.apply(self, shape=shape)

    def flatten(self, start_dim: int = 1) -> Tensor:
        (start,) = _norm_axis(start_dim, self.ndim, "flatten") if self.ndim else (0,)
        # the size, not -1: a -1 is ambiguous for an empty batch (N = 0)
        return self.reshape(*self.shape[:start], math.prod(self.shape[start:]))

    def permute(self, *axes: int) -> Tensor:
        axes = _shape_arg(axes)
        if (len(axes) != self.ndim or not all(-self.ndim <= a < self.ndim for a in axes)
                or sorted(a % self.ndim for a in axes) != list(range(self.ndim))):
            raise ValueError(f"permute: {axes} is not a permutation of the {self.ndim} axes of shape {self.shape}")
        return ops.Permute.apply(self, axes=tuple(a % self.ndim for a in axes))

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        _norm_axis((dim0, dim1), self.ndim, "transpose")  # a clear error for a dimension out of range
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return self.permute(*axes)

    @property
    def T(self) -> Tensor:
        return ops.Permute.apply(self, axes=tuple(reversed(range(self.ndim))))  # always a valid permutation

    def matmul(self, other: Tensor) -> Tensor:
        """Batched matrix product with numpy semantics (1-D operands are promoted, then squeezed)."""
        a, b = self, self._lift(other)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: operands must be at least 1-D, got shapes {a.shape} and {b.shape}")
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align: the last dimension of the "
                             f"first ({a.shape[-1]}) must equal the {'second-to-last' if b.ndim > 1 else 'only'} "
                             f"dimension of the second ({b.shape[-2 if b.ndim > 1 else 0]})")
        a2 = a.reshape(1, a.shape[0]) if a.ndim == 1 else a
        b2 = b.reshape(b.shape[0], 1) if b.ndim == 1 else b
        try:
            if a2.ndim > 2 or b2.ndim > 2:
                np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        except ValueError:
            raise ValueError(f"matmul: batch dimensions of {a.shape} and {b.shape} do not broadcast") from None
        out = ops.MatMul.apply(a2, b2)
        if a.ndim == 1:
            out = out.reshape(*out.shape[:-2], out.shape[-1])
        if b.ndim == 1:
            out = out.reshape(*out.shape[:-1])
        return out

    def log_softmax(self, axis: int = -1) -> Tensor:
        _norm_axis(axis, self.ndim, "log_softmax")  # numpy's own error would not name the op
        shifted = self - self.data.max(axis=axis, keepdims=True)  # a constant shift: no gradient needed
        return shifted - shifted.exp().sum(axis, keepdims=True).log()

    def softmax(self, axis: int = -1) -> Tensor:
        return self.log_softmax(axis).exp()

    def pad(self, pad_width: Sequence[tuple[int, int]] | int, value: float = 0.0) -> Tensor:
        """Constant padding, `pad_width` as for `np.pad`: one (before, after) pair per axis, or an int."""
        try:
            widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (self.ndim, 2))
        except ValueError:
            raise ValueError(f"pad: pad_width {pad_width!r} is not an int, one (before, after) pair, or one pair "
                             f"for each of the {self.ndim} axes of shape {self.shape}") from None
        if (widths < 0).any():
            raise ValueError(f"pad: pad widths must be >= 0, got {pad_width}")
        return ops.Pad.apply(self, pad_width=tuple(map(tuple, widths.tolist())), value=value)

    def astype(self, dtype: Any) -> Tensor:
        dtype = np.dtype(dtype)
        return self if dtype == self.dtype else ops.Cast.apply(self, dtype=dtype)

    def float(self) -> Tensor: return self.astype(np.float32)
    def double(self) -> Tensor: return self.astype(np.float64)


def _shape_arg(shape: tuple) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(d) for d in shape)


def _norm_axis(axis: int | Sequence[int] | None, ndim: int, op: str) -> tuple[int, ...]:
    if type(axis) is int and -ndim <= axis < ndim:  # the common case, first
        return (axis % ndim,)
    axes = tuple(range(ndim)) if axis is None else (axis,) if isinstance(axis, (int, np.integer)) else (
        tuple(axis) if isinstance(axis, (tuple, list)) else None)
    if axes is None or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
        raise TypeError(f"{op}: axis must be None, an int or a sequence of ints, got {axis!r}")
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
    normalized = tuple(sorted(a % ndim for a in axes)) if ndim else ()
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{op}: axis {axis!r} names a dimension more than once")
    return normalized


def _plain_index(index: Any) -> Any:
    """Tensors inside an index become their arrays (indices are never differentiated)."""
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index.data if isinstance(index, Tensor) else index


def _seed_grad(root: Tensor, grad: Any, op: str) -> Tensor:
    if not root.requires_grad:
        raise RuntimeError(f"{op}: the tensor does not require grad and has no recorded op "
                           "(was it computed inside no_grad(), or from inputs without requires_grad=True?)")
    if grad is None:
        if root.size != 1:
            raise RuntimeError(f"{op}: grad can be implicitly created only for a scalar output, but the output "
                               f"has shape {root.shape}; pass grad= with that shape")
        return Tensor._make(np.ones(root.shape, dtype=root.dtype))
    seed = grad if isinstance(grad, Tensor) else Tensor(np.asarray(grad, dtype=root.dtype))
    if seed.shape != root.shape:
        raise ValueError(f"{op}: grad has shape {seed.shape} but the output has shape {root.shape}")
    return seed


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The backward sweep makes many short-lived objects and no reference cycles, so the cyclic
    collector would only re-walk the heap (slow when big libraries are imported). Paused, then restored."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_KEEP_GRAD_SIZE = 4096  # elements: 16 KiB of float32


def _norm(a: np.ndarray) -> float:
    flat = a.reshape(-1)
    norm = math.sqrt(np.dot(flat, flat))  # BLAS: 3x faster than einsum on LeNet's activation gradients
    if math.isinf(norm) and np.isfinite(flat).all():  # squares overflowed float32; the norm itself is finite
        norm = float(np.linalg.norm(flat.astype(np.float64)))
    return norm


def _backprop(root: Tensor, seed: Tensor, retain_graph: bool, create_graph: bool,
              stop_at: set[int] | None = None) -> dict[int, tuple[Tensor, Tensor]]:
    """Run every VJP from `root` back to the leaves; return {id: (tensor, grad)} for the leaves and for
    the tensors in `stop_at` (whose gradients are not propagated further)."""
    if root._ctx is None:  # a leaf: its gradient is the seed itself
        return {id(root): (root, seed)}
    stop_at = stop_at or set()
    topo = root._topo(stop_at)
    for t in topo:
        if t._ctx.freed:
            raise RuntimeError(_freed_message(t._ctx))
    grads: dict[int, Tensor] = {id(root): seed}
    result: dict[int, tuple[Tensor, Tensor]] = {}
    hook = Config.anomaly_hook
    with using_config(enable_grad=create_graph), _gc_paused():
        for t in reversed(topo):
            g = grads.pop(id(t), None)
            if g is None:  # every path from here to the root carried no gradient
                continue
            if id(t) in stop_at:
                result[id(t)] = (t, g)
                continue
            ctx = t._ctx
            ctx._see_grad(g.data)
            in_grads = ctx.fn.backward(ctx, g)
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
            if len(in_grads) != len(ctx.inputs):
                raise RuntimeError(f"backward of {ctx.name} returned {len(in_grads)} gradients, expected one per "
                                   f"forward argument ({len(ctx.inputs)})")
            for parent, pg, needed in zip(ctx.inputs, in_grads, ctx.needs_input_grad):
                if pg is None or not needed:
                    continue
                if pg.data.shape != parent.data.shape:
                    raise RuntimeError(f"backward of {ctx.name} returned a gradient of shape {pg.shape} for an "
                                       f"input of shape {parent.shape}")
                if hook is not None:
                    hook(ctx, pg.data, "backward")
                key = id(parent)
                if parent._ctx is None or key in stop_at:
                    prev = result.get(key)
                    result[key] = (parent, pg if prev is None else prev[1] + pg)
                else:
                    prev = grads.get(key)
                    grads[key] = pg if prev is None else prev + pg
            if not retain_graph:
                ctx.free()
    return result


def grad(outputs: Tensor, inputs: Sequence[Tensor], grad_outputs: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool = False) -> tuple[Tensor | None, ...]:
    """Return d(outputs)/d(inputs) (a VJP with `grad_outputs`) without touching any `.grad`."""
    seed = _seed_grad(outputs, grad_outputs, "grad")
    found = _backprop(outputs, seed, create_graph if retain_graph is None else retain_graph, create_graph,
                      stop_at={id(t) for t in inputs if t._ctx is not None})
    result = tuple(found[id(t)][1] if id(t) in found else None for t in inputs)
    if not allow_unused and any(g is None for g in result):
        unused = [i for i, g in enumerate(result) if g is None]
        raise RuntimeError(f"grad: inputs {unused} were not used to compute the output; pass allow_unused=True")
    return result


from . import ops  # noqa: E402  (ops builds on Function and Tensor defined above)
