"""Export a model's recorded forward pass as an ONNX graph.

How: the model runs once in eval mode on the example input (made to require grad, grad mode on, so every
op is recorded), with an `Observer` that notes, for each op, the module running it and the user's source
line. The recorded graph is then written node by node:

* A call of a layer that ONNX has as one operator (Linear -> Gemm, BatchNorm -> BatchNormalization,
  MaxPool2d -> MaxPool, Softmax, LeakyReLU, ...) becomes that operator, built from the layer's settings,
  whatever primitives it recorded.
* Every other op is a primitive (`tinygrad_cnn.ops`), written as its ONNX counterpart (Conv, MatMul, Add,
  Reshape, ...), so any model made of primitives exports, not only known layers. log_softmax's
  numerical shift by a constant maximum is recognised and written as LogSoftmax.
* Parameters and buffers become initializers under their `state_dict` names; other constants are
  initializers named const*.

With `dynamic_batch` the first axis of each input is symbolic: shapes given to Reshape and Expand carry
-1 / 1 where the batch is. To catch what a static graph cannot express, the forward is recorded twice,
the second time on other values (and another batch size): a constant computed from the input's values
(e.g. a mask) or a shape that bakes in the batch makes the two graphs differ, and export names the op
and the line that recorded it instead of writing a file that would compute something else.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import nn
from ..autograd import Context, Tensor, enable_grad
from ..hooks import Observer, observe
from ..nn.normalization import _BatchNorm
from ..serialization.files import write_atomically
from ..tools.record import user_site
from ._common import BUFFERS_KEY, DEFAULT_OPSET, OPSETS, PARAMETERS_KEY, OnnxExportError, require_onnx

_IR_VERSIONS = {13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10}


# ---- recording -------------------------------------------------------------------------------------------
class _Call:
    """One call of a layer that has an ONNX operator of its own, and the ops it recorded."""

    def __init__(self, module: Any, path: str) -> None:
        self.module, self.path, self.ctxs = module, path, []


class _Tracer(Observer):
    def __init__(self, paths: dict[int, str]) -> None:
        self.paths = paths
        self.stack: list[str] = []
        self.call: _Call | None = None  # the open layer call (layers map whole: no nesting needed)
        self.depth = 0
        self.calls: list[_Call] = []
        self.where: dict[int, tuple[str | None, str | None]] = {}  # id(ctx) -> (module path, user's line)
        self.ctxs: list[Context] = []  # keeps every Context alive, so ids stay unique

    def enter_module(self, module: Any) -> None:
        self.stack.append(self.paths.get(id(module), type(module).__name__))
        if self.call is not None:
            self.depth += 1
        elif _module_plan_kind(module) is not None:
            self.call = _Call(module, self.stack[-1])
            self.calls.append(self.call)

    def exit_module(self, module: Any) -> None:
        self.stack.pop()
        if self.call is not None:
            if self.depth:
                self.depth -= 1
            else:
                self.call = None

    def forward(self, ctx: Context, output: np.ndarray) -> None:
        if not ctx.recorded:
            return
        self.ctxs.append(ctx)
        self.where[id(ctx)] = (self.stack[-1] if self.stack else None, user_site())
        if self.call is not None:
            self.call.ctxs.append(ctx)


def _module_plan_kind(module: Any) -> str | None:
    """The layer kind written as one ONNX operator, or None; a subclass with its own forward is not one."""
    for cls, kind in _MODULE_KINDS:
        if isinstance(module, cls):
            return kind if type(module).forward is cls.forward else None
    return None


_MODULE_KINDS = ((nn.Linear, "linear"), (_BatchNorm, "batchnorm"), (nn.LeakyReLU, "leaky_relu"),
                 (nn.Sigmoid, "sigmoid"), (nn.Tanh, "tanh"), (nn.GELU, "gelu"), (nn.LogSoftmax, "log_softmax"),
                 (nn.Softmax, "softmax"), (nn.Flatten, "flatten"), (nn.MaxPool2d, "max_pool"),
                 (nn.AvgPool2d, "avg_pool"), (nn.AdaptiveAvgPool2d, "adaptive_avg_pool"))


def _as_inputs(example_input: Any) -> list[np.ndarray]:
    items = list(example_input) if isinstance(example_input, (tuple, list)) else [example_input]
    if not items:
        raise ValueError("export: example_input is empty; pass a Tensor (or a tuple of them) shaped like the "
                         "model's input")
    arrays = []
    for i, item in enumerate(items):
        arr = item.data if isinstance(item, Tensor) else np.asarray(item)
        if arr.dtype.kind not in "f":
            raise TypeError(f"export: example_input[{i}] has dtype {arr.dtype}; export needs floating-point inputs "
                            "(they are made to require grad so that every op is recorded)")
        arrays.append(np.array(arr))
    return arrays


class _Trace:
    def __init__(self, model: Any, arrays: list[np.ndarray]) -> None:
        self.paths = {id(m): name for name, m in model.named_modules()}
        self.inputs = [Tensor(a, requires_grad=True) for a in arrays]
        tracer = _Tracer(self.paths)
        with enable_grad(), observe(tracer):
            result = model(*self.inputs)
        self.outputs = list(result) if isinstance(result, (tuple, list)) else [result]
        for i, out in enumerate(self.outputs):
            if not isinstance(out, Tensor):
                raise OnnxExportError(f"export: the model returned a {type(out).__name__} (output {i}); export "
                                      "needs a Tensor or a tuple of Tensors")
        self.tracer = tracer
        self.where = tracer.where
        self.calls = tracer.calls


# ---- the graph builder -----------------------------------------------------------------------------------
class _Builder:
    def __init__(self, onnx: Any, opset: int, dynamic: bool, light: bool = False) -> None:
        self.onnx, self.opset, self.dynamic = onnx, opset, dynamic
        self.light = light  # only nodes and constants, for comparing recordings (no tensors for the weights)
        self.constants: dict[str, np.ndarray] = {}  # initializers that are not parameters or buffers
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.names: dict[int, str] = {}      # id(tensor) -> value name
        self.batch: dict[int, int | None] = {}  # id(tensor) -> the axis that carries the batch
        self.taken: set[str] = set()
        self.origin: dict[str, str] = {}     # value/initializer name -> what recorded it (for errors)
        self.scope: str | None = None  # the module path ("" the model itself, None outside any module)
        self.site: str | None = None
        self.op = ""
        self.parameters: list[str] = []  # the initializers that are the model's Parameters
        self.buffers: list[str] = []  # ... and its persistent buffers

    def fresh(self, hint: str) -> str:
        name, k = hint, 1
        while name in self.taken:
            k += 1
            name = f"{hint}_{k}"
        self.taken.add(name)
        return name

    def describe(self) -> str:
        where = (f"in module '{self.scope}'" if self.scope else "in the model's own forward" if self.scope == ""
                 else "outside any module")
        return f"op '{self.op}' {where}" + (f", recorded at {self.site}" if self.site else "")

    def initializer(self, array: np.ndarray, name: str, state: bool = False) -> str:
        """`array` as the initializer `name`; `state`: a parameter's or buffer's."""
        if not state:
            self.constants[name] = array
        if not self.light:
            self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        self.origin[name] = self.describe()
        return name

    def const(self, array: Any, hint: str = "const") -> str:
        return self.initializer(np.asarray(array), self.fresh(hint))

    def i64(self, values: Sequence[int], hint: str = "shape") -> str:
        return self.const(np.asarray(list(values), dtype=np.int64), hint)

    def node(self, op: str, inputs: Sequence[str], **attrs: Any) -> str:
        prefix = f"{self.scope}/" if self.scope else ""
        out = self.fresh(f"{prefix}{op}")
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [out], name=out, **attrs))
        self.origin[out] = self.describe()
        return out

    def name(self, t: Any) -> str:
        return self.names[id(t)]

    def ax(self, t: Any) -> int | None:
        return self.batch.get(id(t)) if isinstance(t, Tensor) else None


def _fail(b: _Builder, message: str) -> OnnxExportError:
    return OnnxExportError(f"export: {message} ({b.describe()})")


def _arg(ctx: Context, name: str, position: int) -> Any:
    return ctx.attrs[name] if name in ctx.attrs else ctx.inputs[position]


def _right_aligned(axis: int | None, ndim: int, out_ndim: int) -> int | None:
    return None if axis is None else out_ndim - (ndim - axis)


def _elementwise_batch(b: _Builder, tensors: Sequence[Any], out: Tensor) -> int | None:
    for t in tensors:
        ax = b.ax(t)
        if ax is not None and t.shape[ax] == out.shape[out.ndim - (t.ndim - ax)]:
            return _right_aligned(ax, t.ndim, out.ndim)
    return None


def _tensor_type(onnx: Any, dtype: np.dtype) -> int:
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


# ---- primitives ------------------------------------------------------------------------------------------
# Each takes (builder, ctx, output tensor), emits nodes and returns (value name, batch axis of the output).
Primitive = Callable[[_Builder, Context, Tensor], tuple[str, int | None]]
_ONNX_NAMES = {"Add": "Add", "Sub": "Sub", "Mul": "Mul", "Div": "Div", "TensorPow": "Pow", "Neg": "Neg",
               "Exp": "Exp", "Log": "Log", "Relu": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Erf": "Erf"}


def _elementwise(b: _Builder, ctx: Context, out: Tensor) -> tuple[str, int | None]:
    tensors = [a for a in ctx.inputs if isinstance(a, Tensor)]
    return b.node(_ONNX_NAMES[ctx.name], [b.name(a) for a in tensors]), _elementwise_batch(b, tensors, out)


def _pow(b: _Builder, ctx: Context, out: Tensor) -> tuple[str, int | None]:
    x = ctx.inputs[0]
    exponent = b.const(np.asarray(_arg(ctx, "exponent", 1), dtype=x.dtype), "exponent")
    return b.node("Pow", [b.name(x), exponent]), b.ax(x)


def _reduce(b: _Builder, ctx: Context, out: Tensor) -> tuple[str, int | None]:
    x = ctx.inputs[0]
    axes = tuple(a % x.ndim for a in _arg(ctx, "axis", 1))
    keep = bool(_arg(ctx, "keepdims", 2))
    if not axes:
        return b.node("Identity", [b.name(x)]), b.ax(x)
    op = "ReduceSum" if ctx.name == "Sum" else "ReduceMax"
    if op == "ReduceSum" or b.opset >= 18:
        name = b.node(op, [b.name(x), b.i64(axes, "axes")], keepdims=int(keep))
    else:
        name = b.node(op, [b.name(x)], axes=list(axes), keepdims=int(keep))
    ax = b.ax(x)
    if ax is not None:
        ax = None if ax in axes else ax if keep else ax - sum(a < ax for a in axes)
    return name, ax


def _expand(b: _Builder, ctx: Context, out: Tensor) -> tuple[str, int | None]:
    x = ctx.inputs[0]
    shape = list(out.shape)
    ax = _right_aligned(b.ax(x), x.ndim, out.ndim)
    if ax is not None:
        shape[ax] = 1  # Expand broadcasts both ways: 1 keeps the input's (batch) size
    return b.node("Expand", [b.name(x), b.i64(shape)]), ax


def _matmul(b: _Builder, ctx: Context, out: Tensor) -> tuple[str, int | None]:
    x, y = ctx.inputs[:2]
    ax = None
    if b.ax(x) is not None and x.ndim >= 2 and b.ax(x) != x.ndim - 1:
        ax = _right_aligned(b.ax(x), x.ndim, out.ndim)
    elif b.ax(y) is not None and y.ndim >= 2 and b.ax(y) not in (y.ndim - 2,):
        ax = _right_aligned(b.ax(y), y.ndim, out.ndim)
    return b.node("MatMul", [b.name(x), b.name(y)]), ax


def _cast(b: _Builder, ctx: Context, out: Tensor) -> tuple[str, int | None]:
    x = ctx.inputs[0]
    return b.node("Cast", [b.name(x)], to=_tensor_type(b.onnx, out.dtype)), b.ax(x)


def _reshape(b: _Builder, ctx: Context, out: Tensor) -> tuple[str, int | None]:
    x = ctx.inputs[0]
    shape, ax = list(out.shape), b.ax(x)
    new_ax = None
    if ax is not None:
        before = math.prod(x.shape[:ax])
        for j in range(len(shape)):
            if math.prod(shape[:j]) == before and x.shape[ax] and shape[j] % x.shape[ax] == 0:
                new_ax = j
                break
        if new_ax is None:
            raise _fail(b, f"Reshape from {x.shape} to {out.shape} mixes the batch axis with others, so it "
                           "cannot be written for any batch size; export with dynamic_batch=False")
        shape[new_ax] = -1
    return b.node("Reshape", [b.name(x), b.i64(shape)]), new_ax


def _permute(b: _Builder, ctx: Context, out: Tensor) -> tuple[str, int | None]:
    x = ctx.inputs[0]
    axes = [int(a) for a in _arg(ctx, "axes", 1)]
    ax = b.ax(x)
    return b.node("Transpose", [b.name(x)], perm=axes), None if ax is None else axes.index(ax)


def _pad(b: _Builder, ctx: Context, out: Tensor) -> tuple[str, int | None]:
    x = ctx.inputs[0]
    widths = [tuple(int(v) for v in w) for w in _arg(ctx, "pad_width", 1)]
    value = _arg(ctx, "value", 2)
    ax = b.ax(x)
    if ax is not None and widths[ax] != (0, 0):
        raise _fail(b, "Pad pads the batch axis; export with dynamic_batch=False")
    pads = [lo for lo, _ in widths] + [hi for _, hi in widths]
    return b.node("Pad", [b.name(x), b.i64(pads, "pads"), b.const(np.asarray(value, dtype=x.dtype), "pad_value")],
                  mode="constant"), ax


def _cat(b: _Builder, ctx: Context, out: Tensor) -> tuple[str, int | None]:
    tensors = [a for a in ctx.inputs if isinstance(a, Tensor)]
    axis = int(ctx.attrs["axis"])
    ax = _elementwise_batch(b, tensors, out)
    if ax is not None and ax == axis:
        ax = None
    return b.node("Concat", [b.name(a) for a in tensors], axis=axis), ax


def _where(b: _Builder, ctx: Context, out: Tensor) -> tuple[str, int | None]:
    a, c = ctx.inputs[:2]
    condition = b.const(np.asarray(_arg(ctx, "condition", 2), dtype=bool), "condition")
    tensors = [t for t in (a, c) if isinstance(t, Tensor)]
    return b.node("Where", [condition, b.name(a), b.name(c)]), _elementwise_batch(b, tensors, out)


def _getitem(b: _Builder, ctx: Context, out: Tensor) -> tuple[str, int | None]:
    x = ctx.inputs[0]
    index = _arg(ctx, "index", 1)
    items = list(index) if isinstance(index, tuple) else [index]
    if sum(i is Ellipsis for i in items) > 1:
        raise _fail(b, "an index with more than one Ellipsis cannot be exported")
    if any(i is Ellipsis for i in items):
        k = next(j for j, i in enumerate(items) if i is Ellipsis)
        used = sum(i is not None for i in items) - 1
        items[k:k + 1] = [slice(None)] * (x.ndim - used)
    items += [slice(None)] * (x.ndim - sum(i is not None for i in items))
    starts, ends, axes, steps, squeeze, unsqueeze, gathers = [], [], [], [], [], [], []
    axis = 0          # the input axis the next item indexes
    out_axis = 0      # the output axis it becomes (before squeezing)
    batch_ax, new_batch = b.ax(x), None
    mid = list(x.shape)  # the shape after Slice and Gather
    for item in items:
        if item is None:
            unsqueeze.append(out_axis)
            out_axis += 1
            continue
        n = x.shape[axis]
        if isinstance(item, slice):
            start, stop, step = item.indices(n)
            if (start, stop, step) != (0, n, 1):
                if axis == batch_ax:
                    raise _fail(b, "indexing slices the batch axis; export with dynamic_batch=False")
                if step < 0 and stop < 0:
                    stop = -(2 ** 62)  # past the beginning, as ONNX's Slice clamps
                starts.append(start)
                ends.append(stop)
                axes.append(axis)
                steps.append(step)
                mid[axis] = len(range(*item.indices(n)))
            if axis == batch_ax:
                new_batch = out_axis
            out_axis += 1
        elif isinstance(item, (int, np.integer)):
            k = int(item) % n
            starts.append(k)
            ends.append(k + 1)
            axes.append(axis)
            steps.append(1)
            mid[axis] = 1
            squeeze.append(out_axis)
            out_axis += 1
        elif isinstance(item, np.ndarray) and item.dtype.kind in "iu" and item.ndim == 1 and not gathers:
            if axis == batch_ax:
                raise _fail(b, "indexing gathers along the batch axis; export with dynamic_batch=False")
            gathers.append((axis, item % n if n else item))
            mid[axis] = len(item)
            out_axis += 1
        else:
            raise _fail(b, f"indexing with {type(item).__name__} {item!r} (only slices, ints, None and one "
                           "1-D integer array) cannot be exported")
        axis += 1
    # ONNX applies: Slice (input axes), Gather (input axis), Unsqueeze, Squeeze: build in that order with
    # output positions computed for the squeeze/unsqueeze stage.
    name = b.name(x)
    if starts:
        name = b.node("Slice", [name, b.i64(starts, "starts"), b.i64(ends, "ends"), b.i64(axes, "axes"),
                                b.i64(steps, "steps")])
    for g_axis, indices in gathers:
        name = b.node("Gather", [name, b.const(indices.astype(np.int64), "indices")], axis=g_axis)
    # After slicing/gathering the array has x.ndim axes; None inserts and int removals follow. Do it with
    # one Reshape to the output's shape when anything changes rank (the batch, if any, stays -1).
    final_batch = None if new_batch is None else new_batch - sum(s < new_batch for s in squeeze)
    if (squeeze or unsqueeze) and tuple(mid) != out.shape:
        shape = list(out.shape)
        if final_batch is not None:
            shape[final_batch] = -1
        name = b.node("Reshape", [name, b.i64(shape)])
    return name, final_batch


def _pairs4(pair: Sequence[int]) -> list[int]:
    return [int(pair[0]), int(pair[1]), int(pair[0]), int(pair[1])]


def _conv(b: _Builder, ctx: Context, out: Tensor) -> tuple[str, int | None]:
    x, w = ctx.inputs[0], ctx.inputs[1]
    bias = _arg(ctx, "b", 2) if len(ctx.inputs) > 2 else None
    inputs = [b.name(x), b.name(w)] + ([b.name(bias)] if isinstance(bias, Tensor) else [])
    return b.node("Conv", inputs, kernel_shape=list(w.shape[2:]), strides=list(ctx.attrs["stride"]),
                  pads=_pairs4(ctx.attrs["padding"]), dilations=list(ctx.attrs["dilation"]),
                  group=int(ctx.attrs["groups"])), b.ax(x)


def _conv_transpose(b: _Builder, ctx: Context, out: Tensor) -> tuple[str, int | None]:
    x, w = ctx.inputs[0], ctx.inputs[1]
    a = ctx.attrs
    smallest = [(n - 1) * s - 2 * p + d * (k - 1) + 1 for n, s, p, d, k in
                zip(x.shape[2:], a["stride"], a["padding"], a["dilation"], w.shape[2:])]
    output_padding = [int(n - m) for n, m in zip(a["input_hw"], smallest)]
    return b.node("ConvTranspose", [b.name(x), b.name(w)], kernel_shape=list(w.shape[2:]),
                  strides=list(a["stride"]), pads=_pairs4(a["padding"]), dilations=list(a["dilation"]),
                  group=int(a["groups"]), output_padding=output_padding), b.ax(x)


def _max_pool(b: _Builder, ctx: Context, out: Tensor) -> tuple[str, int | None]:
    x, a = ctx.inputs[0], ctx.attrs
    return b.node("MaxPool", [b.name(x)], kernel_shape=list(a["kernel"]), strides=list(a["stride"]),
                  pads=_pairs4(a["padding"]), ceil_mode=0), b.ax(x)


def _avg_pool(b: _Builder, ctx: Context, out: Tensor) -> tuple[str, int | None]:
    x, a = ctx.inputs[0], ctx.attrs
    return b.node("AveragePool", [b.name(x)], kernel_shape=list(a["kernel"]), strides=list(a["stride"]),
                  pads=_pairs4(a["padding"]), count_include_pad=int(bool(a["count_include_pad"]))), b.ax(x)


_PRIMITIVES: dict[str, Primitive] = {
    **{name: _elementwise for name in _ONNX_NAMES}, "Pow": _pow, "Sum": _reduce, "Max": _reduce, "Expand": _expand,
    "MatMul": _matmul, "Cast": _cast, "Reshape": _reshape, "Permute": _permute, "Pad": _pad, "Cat": _cat,
    "Where": _where, "Getitem": _getitem, "Conv2d": _conv, "Conv2dInputGrad": _conv_transpose,
    "MaxPool2d": _max_pool, "AvgPool2d": _avg_pool}


# ---- plans: what each needed tensor is computed from, and how ---------------------------------------------
class _Plan:
    def __init__(self, inputs: list[Any], emit: Callable[[_Builder], tuple[str, int | None]], ctx: Context,
                 kind: str = "", emit_as: Callable[[str], Callable[[_Builder], tuple[str, int | None]]] | None = None
                 ) -> None:
        self.inputs, self.emit, self.ctx, self.kind, self.emit_as = inputs, emit, ctx, kind, emit_as


def _primitive_plan(ctx: Context, out: Tensor) -> _Plan:
    inputs = [a for a in ctx.inputs if isinstance(a, Tensor)]

    def emit(b: _Builder) -> tuple[str, int | None]:
        fn = _PRIMITIVES.get(ctx.name)
        if fn is None:
            raise _fail(b, f"op '{ctx.name}' has no ONNX counterpart in tinygrad_cnn.onnx "
                           f"(supported ops: {', '.join(sorted(_PRIMITIVES))})")
        return fn(b, ctx, out)
    return _Plan(inputs, emit, ctx)


def _log_softmax_plan(t: Tensor) -> _Plan | None:
    """t = shifted - log(sum(exp(shifted), d, keepdims)), shifted = x - C with C a constant: LogSoftmax(x, d)
    whatever C is (log_softmax subtracts the maximum for numerical safety)."""
    ctx = t._ctx
    if ctx.name != "Sub" or not all(isinstance(a, Tensor) and a._ctx is not None for a in ctx.inputs[:2]):
        return None
    shifted, log = ctx.inputs[:2]
    if log._ctx.name != "Log" or shifted._ctx.name != "Sub":
        return None
    total = log._ctx.inputs[0]
    if not (isinstance(total, Tensor) and total._ctx is not None and total._ctx.name == "Sum"):
        return None
    axes, keep = total._ctx.attrs.get("axis", ()), total._ctx.attrs.get("keepdims")
    exp = total._ctx.inputs[0]
    if not (keep and len(axes) == 1 and isinstance(exp, Tensor) and exp._ctx is not None and exp._ctx.name == "Exp"
            and exp._ctx.inputs[0] is shifted):
        return None
    x, c = shifted._ctx.inputs[:2]
    if not isinstance(x, Tensor) or not isinstance(c, Tensor) or c._ctx is not None or c.requires_grad:
        return None
    axis = axes[0] % x.ndim
    if c.shape != tuple(1 if i == axis else n for i, n in enumerate(x.shape)):
        return None

    def emit_as(op: str) -> Callable[[_Builder], tuple[str, int | None]]:
        def emit(b: _Builder) -> tuple[str, int | None]:
            return b.node(op, [b.name(x)], axis=axis), b.ax(x)
        return emit
    return _Plan([x], emit_as("LogSoftmax"), ctx, "LogSoftmax", emit_as)


def _module_plan(call: _Call, consumers: dict[int, list[Context]], graph_inputs: set[int],
                 opset: int) -> tuple[Tensor, _Plan] | None:
    """The ONNX operator for a whole layer call, or None to write its primitives instead."""
    if not call.ctxs:
        return None
    own = {id(c) for c in call.ctxs}
    out = call.ctxs[-1].output()
    if out is None:
        return None
    for c in call.ctxs[:-1]:  # what the layer computed inside must not be used outside it
        o = c.output()
        if o is None or any(id(u) not in own for u in consumers.get(id(o), ())):
            return None
    external = []
    for c in call.ctxs:
        for a in c.inputs:
            if isinstance(a, Tensor) and ((a._ctx is not None and id(a._ctx) not in own) or id(a) in graph_inputs):
                if all(a is not e for e in external):
                    external.append(a)
    if len(external) != 1:
        return None
    x = external[0]
    emit = _MODULE_EMITTERS[_module_plan_kind(call.module)](call.module, x, out, opset)
    if emit is None:
        return None
    state = [t for t in (getattr(call.module, a, None) for a in ("weight", "bias", "running_mean", "running_var"))
             if isinstance(t, Tensor)]
    return out, _Plan([x, *state], emit, call.ctxs[-1])


ModuleEmit = Callable[[_Builder], tuple[str, int | None]] | None


def _linear(m: Any, x: Tensor, out: Tensor, opset: int) -> ModuleEmit:
    if x.ndim != 2:
        return None

    def emit(b: _Builder) -> tuple[str, int | None]:
        inputs = [b.name(x), b.name(m.weight)] + ([b.name(m.bias)] if m.bias is not None else [])
        return b.node("Gemm", inputs, transB=1), b.ax(x)
    return emit


def _batchnorm(m: Any, x: Tensor, out: Tensor, opset: int) -> ModuleEmit:
    if m.training or m.running_mean is None or m.running_var is None:
        return None

    def emit(b: _Builder) -> tuple[str, int | None]:
        c = m.num_features
        scale = b.name(m.weight) if m.weight is not None else b.const(np.ones(c, x.dtype), "ones")
        bias = b.name(m.bias) if m.bias is not None else b.const(np.zeros(c, x.dtype), "zeros")
        momentum = 1.0 - (0.1 if m.momentum is None else float(m.momentum))
        return b.node("BatchNormalization", [b.name(x), scale, bias, b.name(m.running_mean), b.name(m.running_var)],
                      epsilon=float(m.eps), momentum=momentum), b.ax(x)
    return emit


def _simple(op: str, **attrs: Any) -> Callable[[Any, Tensor, Tensor, int], ModuleEmit]:
    def plan(m: Any, x: Tensor, out: Tensor, opset: int) -> ModuleEmit:
        def emit(b: _Builder) -> tuple[str, int | None]:
            values = {k: v(m) if callable(v) else v for k, v in attrs.items()}
            return b.node(op, [b.name(x)], **values), b.ax(x)
        return emit
    return plan


def _gelu(m: Any, x: Tensor, out: Tensor, opset: int) -> ModuleEmit:
    def emit(b: _Builder) -> tuple[str, int | None]:
        if opset >= 20:
            return b.node("Gelu", [b.name(x)], approximate=m.approximate), b.ax(x)
        half = b.node("Mul", [b.name(x), b.const(np.asarray(0.5, x.dtype), "half")])  # F.gelu's order
        if m.approximate == "tanh":
            cube = b.node("Mul", [b.node("Mul", [b.name(x), b.name(x)]), b.name(x)])
            inner = b.node("Add", [b.name(x), b.node("Mul", [cube, b.const(np.asarray(0.044715, x.dtype), "c")])])
            t = b.node("Tanh", [b.node("Mul", [inner, b.const(np.asarray(math.sqrt(2 / math.pi), x.dtype), "c")])])
        else:
            t = b.node("Erf", [b.node("Mul", [b.name(x), b.const(np.asarray(math.sqrt(0.5), x.dtype), "c")])])
        one = b.const(np.asarray(1.0, x.dtype), "one")
        return b.node("Mul", [half, b.node("Add", [t, one])]), b.ax(x)
    return emit


def _softmax(op: str) -> Callable[[Any, Tensor, Tensor, int], ModuleEmit]:
    def plan(m: Any, x: Tensor, out: Tensor, opset: int) -> ModuleEmit:
        dim = m.dim if m.dim is not None else (0 if x.ndim in (0, 1, 3) else 1)
        axis = dim % max(x.ndim, 1)

        def emit(b: _Builder) -> tuple[str, int | None]:
            return b.node(op, [b.name(x)], axis=axis), b.ax(x)
        return emit
    return plan


def _flatten(m: Any, x: Tensor, out: Tensor, opset: int) -> ModuleEmit:
    if x.ndim < 2 or m.start_dim % x.ndim != 1 or m.end_dim % x.ndim != x.ndim - 1:
        return None
    return _simple("Flatten", axis=1)(m, x, out, opset)


def _pool_settings(m: Any) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    def pair(v: Any) -> tuple[int, int]:
        return (int(v), int(v)) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))
    return pair(m.kernel_size), pair(m.stride if m.stride not in (None, (), []) else m.kernel_size), pair(m.padding)


def _ceil_agrees(x: Tensor, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int],
                 out: Tensor) -> bool:
    """ONNX's ceil_mode output size equals ours (PyTorch drops a last window starting in the right padding)."""
    onnx_out = [-(-(n + 2 * p - k) // s) + 1 for n, k, s, p in zip(x.shape[2:], kernel, stride, padding)]
    return tuple(onnx_out) == tuple(out.shape[2:])


def _max_pool_module(m: Any, x: Tensor, out: Tensor, opset: int) -> ModuleEmit:
    kernel, stride, padding = _pool_settings(m)
    floor_out = [(n + 2 * p - k) // s + 1 for n, k, s, p in zip(x.shape[2:], kernel, stride, padding)]
    ceil = tuple(floor_out) != tuple(out.shape[2:])  # ceil_mode only where it keeps a partial window
    if x.ndim != 4 or (ceil and not _ceil_agrees(x, kernel, stride, padding, out)):
        return None

    def emit(b: _Builder) -> tuple[str, int | None]:
        return b.node("MaxPool", [b.name(x)], kernel_shape=list(kernel), strides=list(stride),
                      pads=_pairs4(padding), ceil_mode=int(ceil)), b.ax(x)
    return emit


def _avg_pool_module(m: Any, x: Tensor, out: Tensor, opset: int) -> ModuleEmit:
    kernel, stride, padding = _pool_settings(m)
    floor_out = [(n + 2 * p - k) // s + 1 for n, k, s, p in zip(x.shape[2:], kernel, stride, padding)]
    if x.ndim != 4 or m.divisor_override is not None or tuple(floor_out) != tuple(out.shape[2:]):
        return None  # ceil_mode's partial windows: the primitives (pad, sum, divide) say exactly what we do

    def emit(b: _Builder) -> tuple[str, int | None]:
        return b.node("AveragePool", [b.name(x)], kernel_shape=list(kernel), strides=list(stride),
                      pads=_pairs4(padding), count_include_pad=int(bool(m.count_include_pad))), b.ax(x)
    return emit


def _adaptive_avg_pool(m: Any, x: Tensor, out: Tensor, opset: int) -> ModuleEmit:
    if x.ndim != 4 or out.shape[2:] != (1, 1):
        return None
    return _simple("GlobalAveragePool")(m, x, out, opset)


_MODULE_EMITTERS: dict[str, Callable[[Any, Tensor, Tensor, int], ModuleEmit]] = {
    "linear": _linear, "batchnorm": _batchnorm, "leaky_relu": _simple("LeakyRelu", alpha=lambda m: float(
        m.negative_slope)), "sigmoid": _simple("Sigmoid"), "tanh": _simple("Tanh"), "gelu": _gelu,
    "log_softmax": _softmax("LogSoftmax"), "softmax": _softmax("Softmax"), "flatten": _flatten,
    "max_pool": _max_pool_module, "avg_pool": _avg_pool_module, "adaptive_avg_pool": _adaptive_avg_pool}


# ---- building the model ----------------------------------------------------------------------------------
def _build(onnx: Any, model: Any, arrays: list[np.ndarray], opset: int, input_names: list[str],
           output_names: list[str] | None, dynamic: bool, light: bool = False) -> tuple[Any, _Builder]:
    trace = _Trace(model, arrays)
    outputs = trace.outputs
    for i, out in enumerate(outputs):
        if out._ctx is None:
            raise OnnxExportError(f"export: output {i} of the model does not depend on its input (no op recorded "
                                  "between them); there is no graph to export")
    b = _Builder(onnx, opset, dynamic, light)
    graph_inputs = {id(t) for t in trace.inputs}

    # every recorded tensor, its consumers, and the plans that replace primitives
    order: list[Tensor] = []
    seen: set[int] = set()
    for out in outputs:
        for t in out._topo():
            if id(t) not in seen:
                seen.add(id(t))
                order.append(t)
    consumers: dict[int, list[Context]] = {}
    for c in trace.tracer.ctxs:
        for a in c.inputs:
            if isinstance(a, Tensor):
                consumers.setdefault(id(a), []).append(c)
    plans: dict[int, _Plan] = {}
    for t in order:
        plans[id(t)] = _log_softmax_plan(t) or _primitive_plan(t._ctx, t)
    for t in order:  # softmax = exp(log_softmax): one Softmax when nothing else uses the log_softmax
        inner = t._ctx.inputs[0] if t._ctx.name == "Exp" else None
        plan = plans.get(id(inner)) if isinstance(inner, Tensor) else None
        if plan is not None and plan.kind == "LogSoftmax" and len(consumers.get(id(inner), ())) == 1 \
                and all(inner is not o for o in outputs):
            plans[id(t)] = _Plan(plan.inputs, plan.emit_as("Softmax"), t._ctx)
    for call in trace.calls:
        found = _module_plan(call, consumers, graph_inputs, opset)
        if found is not None:
            plans[id(found[0])] = found[1]

    # which tensors the outputs need, through the plans
    needed: set[int] = set()
    leaves: dict[int, Tensor] = {}
    stack = list(outputs)
    while stack:
        t = stack.pop()
        if id(t) in needed or id(t) in leaves:
            continue
        if t._ctx is None:
            leaves[id(t)] = t
            continue
        needed.add(id(t))
        stack.extend(plans[id(t)].inputs)

    # names: inputs, then parameters and buffers under their state_dict names, then constants
    names_in = list(input_names)
    for t, name in zip(trace.inputs, names_in):
        b.names[id(t)] = b.fresh(name)
        b.batch[id(t)] = 0 if dynamic and t.ndim >= 1 else None
    state = {id(t): name for name, t in model.named_parameters()}
    for prefix, module in model.named_modules():
        for name, persistent in module._buffer_names().items():  # non-persistent buffers are constants
            t = getattr(module, name)
            if persistent and t is not None:
                state.setdefault(id(t), f"{prefix}.{name}" if prefix else name)
    rank = {key: k for k, key in enumerate(state)}
    for t in sorted(leaves.values(), key=lambda t: rank.get(id(t), len(rank))):
        if id(t) in graph_inputs:
            continue
        if id(t) in state:
            b.names[id(t)] = b.initializer(t.data, b.fresh(state[id(t)]), state=True)
            (b.parameters if isinstance(t, nn.Parameter) else b.buffers).append(b.names[id(t)])
        elif t.requires_grad:
            b.names[id(t)] = b.initializer(t.data, b.fresh("param"), state=True)
            b.parameters.append(b.names[id(t)])
    for t in order:  # constants, named in the order their consumers run
        if id(t) not in needed:
            continue
        for a in plans[id(t)].inputs:
            if id(a) in leaves and id(a) not in b.names:
                ctx = plans[id(t)].ctx
                b.scope, b.site = trace.where.get(id(ctx), (None, None))
                b.op = ctx.name
                b.names[id(a)] = b.const(a.data)

    for t in order:
        if id(t) not in needed:
            continue
        plan = plans[id(t)]
        b.scope, b.site = trace.where.get(id(plan.ctx), (None, None))
        b.op = plan.ctx.name
        b.names[id(t)], b.batch[id(t)] = plan.emit(b)

    # graph outputs: Identity nodes give them the requested names
    out_names = list(output_names) if output_names else (
        ["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))])
    if len(out_names) != len(outputs):
        raise ValueError(f"export: {len(out_names)} output_names for {len(outputs)} outputs")
    helper = onnx.helper
    graph_outputs = []
    b.scope, b.site = "", None
    for out, name in zip(outputs, out_names):
        final = b.fresh(name)
        b.nodes.append(helper.make_node("Identity", [b.name(out)], [final], name=final))
        graph_outputs.append(helper.make_tensor_value_info(final, _tensor_type(onnx, out.dtype),
                                                           _dims(out.shape, b.ax(out))))
    if light:
        return None, b
    graph_inputs_info = [helper.make_tensor_value_info(b.name(t), _tensor_type(onnx, t.dtype),
                                                       _dims(t.shape, b.batch[id(t)])) for t in trace.inputs]
    graph = helper.make_graph(b.nodes, type(model).__name__, graph_inputs_info, graph_outputs, b.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="tinygrad_cnn", ir_version=_IR_VERSIONS[opset])
    helper.set_model_props(proto, {PARAMETERS_KEY: json.dumps(b.parameters), BUFFERS_KEY: json.dumps(b.buffers)})
    return proto, b


def _dims(shape: tuple[int, ...], batch: int | None) -> list[Any]:
    return ["batch" if i == batch else int(n) for i, n in enumerate(shape)]


def _other_input(a: np.ndarray, dynamic: bool) -> np.ndarray:
    """Values unlike `a` (and one more sample when the batch is dynamic) for the second recording."""
    rng = np.random.default_rng(12345)
    shape = (a.shape[0] + 1, *a.shape[1:]) if dynamic and a.ndim >= 1 else a.shape
    scale = float(np.std(a)) if a.size and np.isfinite(a).all() and np.std(a) > 0 else 1.0
    return (rng.standard_normal(shape) * scale + (float(np.mean(a)) if a.size else 0.0)).astype(a.dtype)


def _first_difference(first: _Builder, second: _Builder) -> str | None:
    """What differs between two recordings' graphs (weights aside), described with where it was recorded."""
    for a, c in zip(first.nodes, second.nodes):
        if a.op_type != c.op_type or list(a.input) != list(c.input) or a.attribute != c.attribute:
            return f"the {a.op_type} node written for the {first.origin.get(a.output[0], '')}"
    if len(first.nodes) != len(second.nodes):
        return "the number of ops"
    for name, value in first.constants.items():
        other = second.constants.get(name)
        if other is None or value.shape != other.shape or not np.array_equal(value, other, equal_nan=True):
            return f"the constant '{name}' of the {first.origin.get(name, '')}"
    return None


def export(model: Any, example_input: Any, path: str | os.PathLike | None = None, opset: int = DEFAULT_OPSET,
           input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
           dynamic_batch: bool = True, check: bool = True) -> Any:
    """Write `model`'s forward pass on `example_input` (a Tensor or array, or a tuple of them) as an ONNX
    file at `path` (atomically), and return the `onnx.ModelProto` (`path=None` only returns it).

    The model runs in eval mode (its training flags are restored afterwards). `opset` is the default
    domain's version (13-21). With `dynamic_batch` the first axis of every input and output is the
    symbolic 'batch'. `check` runs onnx.checker (full_check) on the result. Raises OnnxExportError
    naming the op, its module and source line when something cannot be expressed.
    """
    onnx = require_onnx()
    if opset not in OPSETS:
        raise ValueError(f"export: opset must be between {OPSETS[0]} and {OPSETS[-1]}, got {opset!r}")
    arrays = _as_inputs(example_input)
    names = list(input_names) if input_names else (["input"] if len(arrays) == 1 else
                                                   [f"input_{i}" for i in range(len(arrays))])
    if len(names) != len(arrays):
        raise ValueError(f"export: {len(names)} input_names for {len(arrays)} inputs")
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        first = _build(onnx, model, arrays, opset, names, output_names, dynamic_batch)
        second = _build(onnx, model, [_other_input(a, dynamic_batch) for a in arrays], opset, names,
                        output_names, dynamic_batch, light=True)
    finally:
        for m, mode in modes:
            m.training = mode
    difference = _first_difference(first[1], second[1])
    if difference is not None:
        what = "values or batch size" if dynamic_batch else "values"
        raise OnnxExportError(
            f"export: the recorded graph depends on the input's {what}; what changed on another input: "
            f"{difference}. A constant computed from the data (a mask, a shift), data-dependent control flow"
            + (", or a shape that includes the batch size (try dynamic_batch=False)" if dynamic_batch else "")
            + " cannot be written as a static ONNX graph; use the nn layer (e.g. nn.LeakyReLU rather than "
            "F.leaky_relu inside forward) or a primitive op")
    proto = first[0]
    if check:
        onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        data = proto.SerializeToString()
        write_atomically(os.fspath(path), lambda f: f.write(data))
    return proto
