"""Load an ONNX model as an `nn.Module` that computes it with tinygrad_cnn's ops, so it can be trained.

The file is parsed by the `onnx` package from bytes (never with external data: a crafted file could
point those at any file on the machine), checked by `onnx.checker`, and each node is mapped to the
framework's ops; nothing in the file is ever executed. Initializers become:

* Parameters (trainable), under their names as a module tree: 'features.0.weight' is the parameter
  `weight` of submodule `features.0`, so `state_dict()` keys are the exported model's. A file written by
  `tinygrad_cnn.onnx.export` lists which initializers were Parameters; in other files every floating-point
  initializer is one, except BatchNormalization's running statistics.
* buffers: BatchNormalization's mean and variance (in `state_dict`), and the other constants
  (non-persistent, not in `state_dict`).

Nodes with a layer counterpart (Gemm -> nn.Linear, BatchNormalization -> a BatchNorm, MaxPool ->
nn.MaxPool2d, Softmax, ...) run as that layer, so `model.train()` / `eval()` act as on the original and
exporting the loaded model again gives the same graph.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import Tensor
from ..nn.normalization import _BatchNorm
from ..ops import Where
from ..ops.special import Erf
from ..serialization.files import CheckpointError, open_checkpoint
from ..tensor_methods import cat
from ._common import BUFFERS_KEY, OPSETS, PARAMETERS_KEY, OnnxLoadError, require_onnx

MAX_FILE_SIZE = 2 ** 31  # protobuf's own limit
MAX_ELEMENTS = 2 ** 31  # the most elements Expand and Pad may produce


class _AnyBatchNorm(_BatchNorm):
    """BatchNormalization takes (N, C, ...) of any rank."""

    _expected_dims = (2, 3, 4, 5)


class OnnxModule(nn.Module):
    """An ONNX graph run with tinygrad_cnn ops: `forward(*inputs)` takes the graph's inputs in order and
    returns its output (a tuple if there are several)."""

    def __init__(self) -> None:
        super().__init__()
        self.input_names: list[str] = []
        self.output_names: list[str] = []
        self._nodes: list[tuple[str, str, list[str], list[str], Callable[..., Any]]] = []
        self._values: dict[str, tuple[Any, str]] = {}  # initializer name -> (module, attribute)
        self._layers: list[nn.Module] = []  # layers that run nodes but are not submodules

    def train(self, mode: bool = True) -> OnnxModule:
        super().train(mode)
        for layer in self._layers:
            layer.train(mode)
        return self

    def forward(self, *inputs: Any) -> Any:
        if len(inputs) != len(self.input_names):
            raise TypeError(f"OnnxModule: the graph takes {len(self.input_names)} input(s) "
                            f"({', '.join(self.input_names)}), got {len(inputs)}")
        env: dict[str, Any] = {"": None}
        for name, (owner, attr) in self._values.items():
            env[name] = getattr(owner, attr)
        for name, x in zip(self.input_names, inputs):
            env[name] = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
        for op, node_name, ins, outs, fn in self._nodes:
            try:
                result = fn(*[env[i] for i in ins])
            except (ValueError, TypeError, RuntimeError, IndexError) as e:
                try:
                    named = type(e)(f"ONNX node '{node_name}' ({op}): {e}")
                except Exception:  # an exception class with other constructor arguments: raise it as it is
                    raise e from None
                raise named from e
            results = result if isinstance(result, tuple) else (result,)
            for name, value in zip(outs, results):
                env[name] = value
        outputs = tuple(env[name] for name in self.output_names)
        return outputs[0] if len(outputs) == 1 else outputs


# ---- reading the file -----------------------------------------------------------------------------------
def _read_model(onnx: Any, path: str | os.PathLike) -> Any:
    path = os.fspath(path)
    try:
        with open_checkpoint(path) as f:
            data = f.read(MAX_FILE_SIZE + 1)
    except CheckpointError as e:
        raise OnnxLoadError(str(e).replace("checkpoint file", "ONNX file")) from None
    if len(data) > MAX_FILE_SIZE:
        raise OnnxLoadError(f"load: {path} is larger than 2 GiB, the most an ONNX protobuf can hold")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf's DecodeError and friends: the bytes are not a ModelProto
        raise OnnxLoadError(f"load: {path} is not a valid ONNX file (protobuf parse failed: "
                            f"{type(e).__name__}: {e})") from None
    if not model.HasField("graph"):
        raise OnnxLoadError(f"load: {path} holds no ONNX graph (empty or not an ONNX model)")
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL or t.external_data:
            raise OnnxLoadError(f"load: {path}: initializer '{t.name}' refers to external data; loading it would read "
                                "other files, which load refuses (save the model with its weights inside)")
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # onnx.checker.ValidationError, or a C++ error on very broken models
        raise OnnxLoadError(f"load: {path} fails the ONNX checker: {str(e).strip().splitlines()[0]}") from None
    return model


def _opset(model: Any, path: str) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise OnnxLoadError(f"load: {path} imports no version of the default ONNX domain")


def _attrs(onnx: Any, node: Any) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


_NAME = re.compile(r"[^0-9A-Za-z_]")


def _segments(name: str) -> list[str]:
    parts = [(_NAME.sub("_", p) or "_") for p in name.split(".")]
    return parts


# ---- the ops --------------------------------------------------------------------------------------------
class _Context:
    """What building a node needs: the attributes, the constants known at load time, the module tree."""

    def __init__(self, onnx: Any, root: OnnxModule, opset: int, constants: dict[str, np.ndarray],
                 kinds: dict[str, str]) -> None:
        self.onnx, self.root, self.opset, self.constants, self.kinds = onnx, root, opset, constants, kinds
        self.bindings: list[tuple[nn.Module, dict[str, str]]] = []  # layer -> {attribute: initializer}
        self.placed: dict[str, tuple[nn.Module, str]] = {}  # initializer -> the layer attribute it is
        self.layers: list[nn.Module] = []  # layers outside the module tree (their training mode follows root's)

    def const(self, name: str, node: Any, what: str) -> np.ndarray:
        if name not in self.constants:
            raise OnnxLoadError(f"load: node '{node.name}' ({node.op_type}): its {what} ('{name}') must be a constant "
                                "(an initializer or a Constant node); computed ones are not supported")
        return self.constants[name]


def _unsupported(node: Any, why: str) -> OnnxLoadError:
    return OnnxLoadError(f"load: node '{node.name}' ({node.op_type}): {why}")


def _pads2d(node: Any, a: dict[str, Any]) -> tuple[tuple[int, int], tuple[int, int]]:
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
        raise _unsupported(node, f"auto_pad={a['auto_pad']!r} is not supported (use explicit pads)")
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if a.get("auto_pad") in (b"VALID", "VALID"):
        pads = [0, 0, 0, 0]
    if len(pads) != 4:
        raise _unsupported(node, f"only 2-D (N, C, H, W) windows are supported, got pads {pads}")
    return (pads[0], pads[2]), (pads[1], pads[3])


def _pair(node: Any, a: dict[str, Any], name: str, default: int) -> tuple[int, int]:
    v = list(a.get(name, [default, default]))
    if len(v) != 2:
        raise _unsupported(node, f"only 2-D windows are supported, got {name}={v}")
    return int(v[0]), int(v[1])


def _symmetric(pads: tuple[tuple[int, int], tuple[int, int]]) -> bool:
    return pads[0][0] == pads[0][1] and pads[1][0] == pads[1][1]


def _pad_input(x: Tensor, pads: tuple[tuple[int, int], tuple[int, int]], value: float) -> Tensor:
    return x.pad(((0, 0), (0, 0), pads[0], pads[1]), value=value)


def _check_2d(c: _Context, node: Any, a: dict[str, Any]) -> None:
    kernel, weight = a.get("kernel_shape"), c.constants.get(list(node.input)[1])
    if (kernel is not None and len(kernel) != 2) or (weight is not None and weight.ndim != 4):
        raise _unsupported(node, "only 2-D convolutions ((N, C, H, W) inputs, 4-D weights) are supported")


def _conv(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    _check_2d(c, node, a)
    pads = _pads2d(node, a)
    stride, dilation, groups = _pair(node, a, "strides", 1), _pair(node, a, "dilations", 1), int(a.get("group", 1))
    if _symmetric(pads):
        return lambda x, w, b=None: F.conv2d(x, w, b, stride, (pads[0][0], pads[1][0]), dilation, groups)
    return lambda x, w, b=None: F.conv2d(_pad_input(x, pads, 0.0), w, b, stride, 0, dilation, groups)


def _conv_transpose(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    _check_2d(c, node, a)
    pads = _pads2d(node, a)
    if not _symmetric(pads):
        raise _unsupported(node, f"asymmetric pads {list(a.get('pads'))} are not supported")
    stride, dilation, groups = _pair(node, a, "strides", 1), _pair(node, a, "dilations", 1), int(a.get("group", 1))
    padding = (pads[0][0], pads[1][0])
    output_padding = _pair(node, a, "output_padding", 0)
    shape = a.get("output_shape")

    def run(x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
        extra = output_padding
        if shape is not None:
            smallest = [(n - 1) * s - 2 * p + d * (k - 1) + 1 for n, s, p, d, k in
                        zip(x.shape[2:], stride, padding, dilation, w.shape[2:])]
            extra = tuple(int(o) - m for o, m in zip(list(shape)[-2:], smallest))
        return F.conv_transpose2d(x, w, b, stride, padding, extra, groups, dilation)
    return run


def _gemm(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    trans_a, trans_b = int(a.get("transA", 0)), int(a.get("transB", 0))
    ins = list(node.input)
    weight = ins[1] if len(ins) > 1 else ""
    bias = ins[2] if len(ins) > 2 else ""
    if alpha == beta == 1.0 and not trans_a and trans_b and c.kinds.get(weight) == "parameter" and \
            (not bias or c.kinds.get(bias) == "parameter"):
        w = c.constants[weight]
        if w.ndim == 2 and (not bias or c.constants[bias].shape == (w.shape[0],)):
            layer = _layer_at(c, weight, bias, lambda: _bare(nn.Linear, in_features=w.shape[1],
                                                             out_features=w.shape[0]))
            return lambda x, *_: layer(x)

    def run(x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
        y = (x.T if trans_a else x).matmul(w.T if trans_b else w)
        if alpha != 1.0:
            y = y * alpha
        if b is not None:
            y = y + (b * beta if beta != 1.0 else b)
        return y
    return run


def _batch_norm(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    if len([o for o in node.output if o]) > 1 or a.get("training_mode", 0):
        raise _unsupported(node, "the training-mode form (more than one output) is not supported")
    ins = list(node.input)
    scale, bias, mean, var = ins[1:5]
    if all(n in c.constants for n in (scale, bias, mean, var)) and c.kinds.get(mean) == "buffer" and \
            c.kinds.get(var) == "buffer":
        count = c.constants[mean].shape[0]
        affine = not (c.kinds.get(scale) == c.kinds.get(bias) == "constant" and np.all(c.constants[scale] == 1)
                      and np.all(c.constants[bias] == 0))  # what export writes for affine=False
        layer = _layer_at(c, scale if affine else "", bias if affine else "", lambda: _bare(
            _AnyBatchNorm, num_features=count, eps=float(a.get("epsilon", 1e-5)),
            momentum=1.0 - float(a.get("momentum", 0.9)), affine=affine, track_running_stats=True),
            mean=mean, var=var)
        return lambda x, *_: layer(x)
    eps = float(a.get("epsilon", 1e-5))
    return lambda x, s, b, m, v: F.batch_norm(x, m, v, s, b, False, 0.0, eps)


def _bare(cls: type, **attrs: Any) -> nn.Module:
    """A layer with these settings and no parameters yet (no random initialisation of large weights)."""
    layer = cls.__new__(cls)
    nn.Module.__init__(layer)
    for k, v in attrs.items():
        setattr(layer, k, v)
    return layer


def _layer_at(c: _Context, weight: str, bias: str, make: Callable[[], nn.Module], mean: str = "",
              var: str = "") -> nn.Module:
    """A layer owning these initializers (as weight, bias, running_mean, running_var). It is put where their
    names say ('fc1.weight' -> submodule 'fc1') when they fit one layer; otherwise it holds the same tensors
    as the parameters and buffers registered under their own names."""
    layer = make()
    binding = {"weight": weight, "bias": bias, "running_mean": mean, "running_var": var}
    binding = {attr: name for attr, name in binding.items() if name}
    c.bindings.append((layer, binding))
    for attr in ("weight", "bias"):
        if attr not in binding:
            layer.register_parameter(attr, None)
    if isinstance(layer, _BatchNorm):
        layer.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
    prefix = next(iter(binding.values()), "").rpartition(".")[0]
    if prefix and all(n.rpartition(".")[0] == prefix and n.rpartition(".")[2] == attr for attr, n in binding.items()):
        parent, leaf = _parent(c.root, _segments(prefix))
        existing = None if parent is None else parent.__dict__.get(leaf)
        if parent is not None and type(existing) is nn.Module and not list(existing.named_children()):
            object.__setattr__(parent, leaf, layer)  # in the placeholder's place: state_dict keeps the file's order
            c.placed.update({n: (layer, attr) for attr, n in binding.items()})
            return layer
    c.layers.append(layer)
    return layer


def _parent(root: nn.Module, segments: Sequence[str]) -> tuple[nn.Module | None, str]:
    module = root
    for s in segments[:-1]:
        child = module.__dict__.get(s)
        if child is None:
            if hasattr(module, s):
                return None, ""
            child = nn.Module()
            module.add_module(s, child)
        if not isinstance(child, nn.Module):
            return None, ""
        module = child
    return module, segments[-1]


def _window(node: Any, a: dict[str, Any]) -> tuple[tuple[int, int], tuple[int, int], Any, bool]:
    if len(list(a.get("kernel_shape", []))) != 2:
        raise _unsupported(node, f"only 2-D pooling is supported, got kernel_shape {list(a.get('kernel_shape', []))}")
    kernel = _pair(node, a, "kernel_shape", 1)
    stride = _pair(node, a, "strides", 1)
    if _pair(node, a, "dilations", 1) != (1, 1):
        raise _unsupported(node, "dilated pooling is not supported")
    return kernel, stride, _pads2d(node, a), bool(a.get("ceil_mode", 0))


def _max_pool(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    if len([o for o in node.output if o]) > 1:
        raise _unsupported(node, "the Indices output is not supported")
    if int(a.get("storage_order", 0)):
        raise _unsupported(node, "storage_order=1 is not supported")
    kernel, stride, pads, ceil = _window(node, a)
    if _symmetric(pads) and pads[0][0] <= kernel[0] // 2 and pads[1][0] <= kernel[1] // 2:
        return nn.MaxPool2d(kernel, stride, (pads[0][0], pads[1][0]), ceil_mode=ceil)
    return lambda x: F.max_pool2d(_pad_input(x, pads, -np.inf), kernel, stride, 0, ceil_mode=ceil)


def _avg_pool(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    kernel, stride, pads, ceil = _window(node, a)
    if not (_symmetric(pads) and pads[0][0] <= kernel[0] // 2 and pads[1][0] <= kernel[1] // 2):
        raise _unsupported(node, f"pads {list(a.get('pads'))} (asymmetric, or more than half the kernel) are not "
                                 "supported")
    return nn.AvgPool2d(kernel, stride, (pads[0][0], pads[1][0]), ceil_mode=ceil,
                        count_include_pad=bool(a.get("count_include_pad", 0)))


def _global_avg_pool(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    pool = nn.AdaptiveAvgPool2d(1)
    return lambda x: pool(x) if x.ndim == 4 else x.mean(tuple(range(2, x.ndim)), keepdim=True)


def _softmax(layer: type) -> Callable[[_Context, Any, dict[str, Any]], Callable[..., Any]]:
    def build(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
        axis = int(a.get("axis", -1 if c.opset >= 13 else 1))
        module = layer(dim=axis)
        if c.opset >= 13:
            return module

        def old(x: Tensor) -> Tensor:  # before opset 13: over the axes from `axis` on, flattened
            if axis % x.ndim != x.ndim - 1:
                return module.__class__(dim=-1)(x.reshape(*x.shape[:axis], -1)).reshape(*x.shape)
            return module(x)
        return old
    return build


def _flatten(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    axis = int(a.get("axis", 1))
    if axis == 1:
        layer = nn.Flatten()
        return lambda x: layer(x) if x.ndim >= 2 else x.reshape(x.shape[0] if x.ndim else 1, -1)
    return lambda x: x.reshape(math.prod(x.shape[:axis % (x.ndim or 1)]) if axis else 1, -1)


def _reshape(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    allow_zero = int(a.get("allowzero", 0))

    def run(x: Tensor, shape: Tensor) -> Tensor:
        dims = [int(v) for v in np.asarray(shape.data).reshape(-1)]
        if not allow_zero:
            dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
        return x.reshape(*dims)
    return run


def _axes_of(c: _Context, node: Any, a: dict[str, Any], position: int) -> list[int] | None:
    """Reduce/Squeeze axes: an attribute before their opset, an optional constant input after."""
    if "axes" in a:
        return [int(v) for v in a["axes"]]
    ins = list(node.input)
    if len(ins) > position and ins[position]:
        return [int(v) for v in c.const(ins[position], node, "axes").reshape(-1)]
    return None


def _reduce(kind: str) -> Callable[[_Context, Any, dict[str, Any]], Callable[..., Any]]:
    def build(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
        axes = _axes_of(c, node, a, 1)
        keep = bool(a.get("keepdims", 1))
        if axes is None and a.get("noop_with_empty_axes", 0):
            return lambda x, *_: x

        def run(x: Tensor, *_: Any) -> Tensor:
            dims = tuple(range(x.ndim)) if axes is None else tuple(v % x.ndim for v in axes)
            return getattr(x, kind)(dims, keepdim=keep)
        return run
    return build


def _squeeze(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    axes = _axes_of(c, node, a, 1)

    def run(x: Tensor, *_: Any) -> Tensor:
        drop = {v % x.ndim for v in axes} if axes is not None else {i for i, n in enumerate(x.shape) if n == 1}
        return x.reshape(*[n for i, n in enumerate(x.shape) if i not in drop])
    return run


def _unsqueeze(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    axes = _axes_of(c, node, a, 1)
    if axes is None:
        raise _unsupported(node, "Unsqueeze needs axes")

    def run(x: Tensor, *_: Any) -> Tensor:
        rank = x.ndim + len(axes)
        shape, rest = [], iter(x.shape)
        positions = {v % rank for v in axes}
        for i in range(rank):
            shape.append(1 if i in positions else next(rest))
        return x.reshape(*shape)
    return run


def _slice(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    ins = list(node.input) + [""] * 5
    if c.opset < 10 or "starts" in a:
        raise _unsupported(node, "the attribute form of Slice (opset < 10) is not supported")
    starts = c.const(ins[1], node, "starts").reshape(-1)
    ends = c.const(ins[2], node, "ends").reshape(-1)
    axes = c.const(ins[3], node, "axes").reshape(-1) if ins[3] else np.arange(len(starts))
    steps = c.const(ins[4], node, "steps").reshape(-1) if ins[4] else np.ones(len(starts), np.int64)

    def run(x: Tensor, *_: Any) -> Tensor:
        index = [slice(None)] * x.ndim
        for s, e, ax, st in zip(starts, ends, axes, steps):
            n = x.shape[int(ax)]
            s, e, st = int(s), int(e), int(st)
            if st > 0:
                s, e = (max(0, min(n, v + n if v < 0 else v)) for v in (s, e))
            else:
                s = max(-1, min(n - 1, s + n if s < 0 else s))
                e = max(-1, min(n - 1, e + n if e < 0 else e))
                e = None if e < 0 else e
            index[int(ax) % x.ndim] = slice(s, e, st)
        return x[tuple(index)]
    return run


def _gather(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    axis = int(a.get("axis", 0))
    indices = c.const(list(node.input)[1], node, "indices")

    def run(x: Tensor, *_: Any) -> Tensor:
        ax = axis % x.ndim
        idx = np.where(indices < 0, indices + x.shape[ax], indices)
        return x[(slice(None),) * ax + (int(idx) if idx.ndim == 0 else idx,)]
    return run


def _pad(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        raise _unsupported(node, f"mode {mode!r} is not supported (only 'constant')")
    ins = list(node.input) + [""] * 3
    pads = [int(v) for v in c.const(ins[1], node, "pads").reshape(-1)]
    value = float(c.const(ins[2], node, "constant_value").reshape(-1)[0]) if ins[2] else 0.0
    axes = [int(v) for v in c.const(ins[3], node, "axes").reshape(-1)] if ins[3] else None

    def run(x: Tensor, *_: Any) -> Tensor:
        which = list(range(x.ndim)) if axes is None else [v % x.ndim for v in axes]
        widths = [(0, 0)] * x.ndim
        for k, ax in enumerate(which):
            widths[ax] = (pads[k], pads[k + len(which)])
        if any(lo < 0 or hi < 0 for lo, hi in widths):
            raise ValueError("negative pads are not supported")
        _bounded(tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, widths)))
        return x.pad(tuple(widths), value=value)
    return run


def _bounded(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape a file asks for, refused when it holds more than MAX_ELEMENTS elements (a crafted file must
    not make a forward allocate the machine's memory)."""
    if math.prod(shape) > MAX_ELEMENTS:
        raise ValueError(f"the output shape {shape} has more than {MAX_ELEMENTS:,} elements")
    return shape


def _expand(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    def run(x: Tensor, shape: Tensor) -> Tensor:
        target = _bounded(np.broadcast_shapes(x.shape, tuple(int(v) for v in np.asarray(shape.data).reshape(-1))))
        return x.expand(*target)
    return run


def _where(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    def run(cond: Tensor, x: Tensor, y: Tensor) -> Tensor:
        if cond.requires_grad:
            raise ValueError("a Where condition computed from the input is not supported")
        return Where.apply(x, y, condition=np.asarray(cond.data, dtype=bool))
    return run


def _pow(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    exponent = list(node.input)[1]
    if exponent in c.constants and c.kinds.get(exponent) == "constant" and c.constants[exponent].size == 1:
        value = float(c.constants[exponent].reshape(-1)[0])
        return lambda x, *_: x ** value
    return lambda x, y: x ** y


def _cast(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    dtype = c.onnx.helper.tensor_dtype_to_np_dtype(int(a["to"]))
    return lambda x: x.astype(dtype)


def _clip(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    def run(x: Tensor, low: Tensor | None = None, high: Tensor | None = None) -> Tensor:
        lo = None if low is None else float(low.data)
        hi = None if high is None else float(high.data)
        return x if lo is None and hi is None else x.clamp(lo, hi)
    return run


def _dropout(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    if len([o for o in node.output if o]) > 1:
        raise _unsupported(node, "the mask output is not supported")
    return lambda x, *_: x


def _simple(fn: Callable[..., Any]) -> Callable[[_Context, Any, dict[str, Any]], Callable[..., Any]]:
    return lambda c, node, a: fn


def _gelu(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    approx = a.get("approximate", b"none")
    return nn.GELU(approx.decode() if isinstance(approx, bytes) else approx)


def _shape(c: _Context, node: Any, a: dict[str, Any]) -> Callable[..., Any]:
    start, end = a.get("start", 0), a.get("end")
    return lambda x: Tensor(np.asarray(x.shape[start:end], dtype=np.int64))


_OPS: dict[str, Callable[[_Context, Any, dict[str, Any]], Callable[..., Any]]] = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "Gemm": _gemm, "BatchNormalization": _batch_norm,
    "MaxPool": _max_pool, "AveragePool": _avg_pool, "GlobalAveragePool": _global_avg_pool,
    "GlobalMaxPool": _simple(lambda x: x.amax(tuple(range(2, x.ndim)), keepdim=True)),
    "Softmax": _softmax(nn.Softmax), "LogSoftmax": _softmax(nn.LogSoftmax), "Flatten": _flatten,
    "Reshape": _reshape, "ReduceSum": _reduce("sum"), "ReduceMean": _reduce("mean"), "ReduceMax": _reduce("amax"),
    "ReduceMin": _reduce("amin"), "Squeeze": _squeeze, "Unsqueeze": _unsqueeze, "Slice": _slice, "Gather": _gather,
    "Pad": _pad, "Expand": _expand, "Where": _where, "Pow": _pow, "Cast": _cast, "Clip": _clip,
    "Dropout": _dropout, "Gelu": _gelu, "Shape": _shape,
    "LeakyRelu": lambda c, node, a: nn.LeakyReLU(float(a.get("alpha", 0.01))),
    "Relu": _simple(lambda x: x.relu()), "Sigmoid": lambda c, node, a: nn.Sigmoid(),
    "Tanh": lambda c, node, a: nn.Tanh(), "Exp": _simple(lambda x: x.exp()), "Log": _simple(lambda x: x.log()),
    "Neg": _simple(lambda x: -x), "Sqrt": _simple(lambda x: x ** 0.5), "Reciprocal": _simple(lambda x: 1.0 / x),
    "Abs": _simple(lambda x: x.abs()), "Erf": _simple(lambda x: Erf.apply(x)), "Identity": _simple(lambda x: x),
    "Add": _simple(lambda x, y: x + y), "Sub": _simple(lambda x, y: x - y), "Mul": _simple(lambda x, y: x * y),
    "Div": _simple(lambda x, y: x / y), "MatMul": _simple(lambda x, y: x.matmul(y)),
    "Transpose": lambda c, node, a: (lambda x: x.permute(*(a["perm"] if "perm" in a else
                                                             reversed(range(x.ndim))))),
    "Concat": lambda c, node, a: (lambda *xs: cat(list(xs), int(a["axis"]))),
}


def supported_ops() -> list[str]:
    """The ONNX operators (default domain) that load can run."""
    return sorted([*_OPS, "Constant"])


# ---- building the module ---------------------------------------------------------------------------------
def _constant_node(onnx: Any, node: Any) -> np.ndarray:
    a = _attrs(onnx, node)
    if "value" in a:
        return onnx.numpy_helper.to_array(a["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                       ("value_ints", np.int64)):
        if key in a:
            return np.asarray(a[key], dtype=dtype)
    raise _unsupported(node, f"only tensor, float(s) and int(s) constants are supported, got {sorted(a)}")


def load(path: str | os.PathLike) -> OnnxModule:
    """The ONNX model at `path` as an `OnnxModule` (an nn.Module, in eval mode) computing the same with
    tinygrad_cnn's ops. Raises OnnxLoadError for a file that is not a valid ONNX model, refers to external
    data, or uses an op this loader does not support (naming the op type and the node)."""
    onnx = require_onnx()
    model = _read_model(onnx, path)
    path = os.fspath(path)
    opset = _opset(model, path)
    if opset < OPSETS[0] - 2:
        raise OnnxLoadError(f"load: {path} uses opset {opset}; load reads opsets {OPSETS[0] - 2} and later")
    graph = model.graph
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise OnnxLoadError(f"load: node '{node.name}' uses op {node.op_type} of domain '{node.domain}', which "
                                "load does not support (only the default ONNX domain)")
        if node.op_type not in _OPS and node.op_type != "Constant":
            raise OnnxLoadError(f"load: node '{node.name}' uses the ONNX op {node.op_type}, which load does not "
                                f"support (supported: {', '.join(supported_ops())})")

    constants: dict[str, np.ndarray] = {}
    for t in graph.initializer:
        try:
            constants[t.name] = np.array(onnx.numpy_helper.to_array(t))
        except Exception as e:
            raise OnnxLoadError(f"load: {path}: initializer '{t.name}' cannot be read ({e})") from None
    props = {p.key: p.value for p in model.metadata_props}
    marked: dict[str, set[str] | None] = {PARAMETERS_KEY: None, BUFFERS_KEY: None}
    for key in marked:
        if key in props:
            try:
                marked[key] = {str(n) for n in json.loads(props[key])}
            except (ValueError, TypeError):
                raise OnnxLoadError(f"load: {path}: metadata {key} is not a JSON list of names") from None
    parameters, buffers = marked[PARAMETERS_KEY], marked[BUFFERS_KEY] or set()
    statistics = {n for node in graph.node if node.op_type == "BatchNormalization" for n in list(node.input)[3:5]}
    kinds = {}
    for name, array in constants.items():
        if name in buffers or (name in statistics and array.dtype.kind == "f"):
            kinds[name] = "buffer"
        elif array.dtype.kind == "f" and (name in parameters if parameters is not None else True):
            kinds[name] = "parameter"
        else:
            kinds[name] = "constant"

    root = OnnxModule()
    for name, kind in kinds.items():  # the module tree in the file's order (layers replace placeholders)
        if kind != "constant":
            _parent(root, _segments(name))
    context = _Context(onnx, root, opset, constants, kinds)
    input_names = [i.name for i in graph.input if i.name not in constants]
    for node in graph.node:
        if node.op_type == "Constant":
            try:
                value = _constant_node(onnx, node)
            except OnnxLoadError:
                raise
            except Exception as e:
                raise _unsupported(node, f"its value cannot be read ({e})") from None
            constants[node.output[0]] = value
            kinds[node.output[0]] = "constant"
    nodes = []
    for node in graph.node:
        if node.op_type == "Constant":
            continue
        fn = _OPS[node.op_type](context, node, _attrs(onnx, node))
        nodes.append((node.op_type, node.name or node.op_type, list(node.input), list(node.output), fn))

    # initializers: into the layers built above when they own them, else as parameters/buffers by name
    owners = context.placed
    holder = nn.Module()  # constants that cannot sit at their own name
    root.add_module("_constants", holder)
    for k, (name, array) in enumerate(constants.items()):
        kind = kinds[name]
        if name in owners:
            module, attr = owners[name]
        else:
            module, attr = _parent(root, _segments(name)) if kind != "constant" else (None, "")
            if module is None or attr in module.__dict__ or hasattr(module, attr):
                module, attr = holder, f"c{k}"
        value = Tensor(array)
        if kind == "parameter":
            module.register_parameter(attr, nn.Parameter(array))
        else:
            module.register_buffer(attr, value, persistent=kind == "buffer")
        root._values[name] = (module, attr)
    for layer, binding in context.bindings:  # the layers outside the tree hold the registered tensors
        for attr, name in binding.items():
            owner, key = root._values[name]
            value = getattr(owner, key)
            if getattr(layer, attr, None) is not value:
                if isinstance(value, nn.Parameter):
                    layer.register_parameter(attr, value)
                else:
                    layer.register_buffer(attr, value)
    root._layers = context.layers + [fn for *_, fn in nodes if isinstance(fn, nn.Module)]
    root.input_names = input_names
    root.output_names = [o.name for o in graph.output]
    root._nodes = nodes
    return root.eval()
