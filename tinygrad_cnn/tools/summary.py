"""Model inspection: parameter counts, a torchinfo-like `summary`, and `receptive_field`.

`summary` learns output shapes the only reliable way: it runs the model once on a zero batch of one
sample (under no_grad, in eval mode) and records what every layer returns, by temporarily replacing
each layer's `forward` with a recording wrapper.

Multiply-accumulate (MAC) convention, per sample: a Conv2d or Linear output element is one dot product
of length K, so the layer costs (output elements) * K MACs, with K = in_channels/groups * kh * kw for a
convolution and K = in_features for a linear layer. This is torchinfo's count of the weight
multiplications; torchinfo also adds one MAC per bias per output position, which we leave out (a bias
is an add, not a multiply-add). Pooling, activations, dropout and reshapes count 0.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .. import nn
from ..autograd import Tensor, no_grad
from ..utils import conv_output_size, pool_output_size

Pair = tuple[int, int]
MB = 1e6  # torchinfo's megabyte


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (each shared Parameter counted once); requires_grad ones only if asked."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# ---- summary ---------------------------------------------------------------------------------------

class LayerRow(NamedTuple):
    name: str                          # dotted module name, "" for the model itself
    type: str                          # class name
    output_shape: tuple | None         # with the batch axis of 1 (a tuple of shapes for several outputs);
                                       # None: the layer was never called
    params: int                        # parameters the layer owns directly (shared ones on first use only)
    macs: int                          # multiply-accumulates for one sample
    output_bytes: int                  # size of the output array(s)


def _macs_per_output(module: nn.Module) -> int:
    """Length of the dot product behind one output element (0 for layers that do not multiply weights)."""
    if isinstance(module, nn.Conv2d):
        return module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
    if isinstance(module, nn.Linear):
        return module.in_features
    return 0


def _own_parameters(module: nn.Module) -> list[nn.Parameter]:
    return [v for v in vars(module).values() if isinstance(v, nn.Parameter)]


def _recorded_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules that get a row: leaves, and containers that own parameters of their own (so every
    parameter appears in some row)."""
    layers, seen = [], set()
    for name, module in model.named_modules():
        if id(module) not in seen and (next(module.children(), None) is None or _own_parameters(module)):
            seen.add(id(module))
            layers.append((name, module))
    return layers


@contextlib.contextmanager
def _recording_forwards(layers: Sequence[tuple[str, nn.Module]], calls: list) -> Iterator[None]:
    """Append (name, module, output) to `calls` each time one of `layers` returns; undo on exit, even on error."""
    originals = {id(m): m.__dict__.get("forward") for _, m in layers}

    def recorder(name: str, module: nn.Module, forward: Any) -> Any:
        def recording_forward(*args: Any, **kwargs: Any) -> Any:
            try:
                out = forward(*args, **kwargs)
            except Exception as e:
                if not (calls and calls[-1][2] is e):  # only the innermost failing layer, for the error message
                    calls.append((name, module, e))
                raise
            calls.append((name, module, out))
            return out
        return recording_forward

    try:
        for name, module in layers:
            module.forward = recorder(name, module, module.forward)
        yield
    finally:
        for _, module in layers:
            if originals[id(module)] is None:
                module.__dict__.pop("forward", None)
            else:
                module.forward = originals[id(module)]


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode (dropout off: no random draws) for the duration, then every module's own flag back."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag


def _output_tensors(out: Any) -> list[Tensor]:
    if isinstance(out, Tensor):
        return [out]
    return [t for t in out if isinstance(t, Tensor)] if isinstance(out, (tuple, list)) else []


def _row(name: str, module: nn.Module, out: Any, params: int) -> LayerRow:
    tensors = _output_tensors(out)
    shape = tensors[0].shape if len(tensors) == 1 else tuple(t.shape for t in tensors) if tensors else None
    macs = sum(t.numel() for t in tensors) * _macs_per_output(module)
    return LayerRow(name, type(module).__name__, shape, params, macs, sum(t.data.nbytes for t in tensors))


@dataclass
class Summary:
    """Per-layer rows in call order (layers never called come last, without a shape) and totals."""

    model_name: str
    input_shape: tuple[int, ...]       # with the batch axis of 1
    input_bytes: int
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    param_bytes: int

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def activation_bytes(self) -> int:
        """Memory of every layer's output for one sample: what a forward keeps alive for backward."""
        return sum(r.output_bytes for r in self.rows)

    @property
    def activation_mb(self) -> float:
        return self.activation_bytes / MB

    def __str__(self) -> str:
        def count(n: int) -> str:
            return f"{n:,}" if n else "--"

        header = ("Layer (type)", "Output Shape", "Param #", "Mult-Adds")
        body = [(f"{r.name} ({r.type})" if r.name else r.type,
                 "--" if r.output_shape is None else str(list(r.output_shape)), count(r.params), count(r.macs))
                for r in self.rows]
        widths = [max(len(line[i]) for line in [header, *body]) + 3 for i in range(4)]
        width = sum(widths)

        def line(cells: Sequence[str]) -> str:
            return (cells[0].ljust(widths[0]) + cells[1].ljust(widths[1])
                    + cells[2].rjust(widths[2]) + cells[3].rjust(widths[3]))

        rule = "=" * width
        totals = [
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.total_params - self.trainable_params:,}",
            f"Total mult-adds: {self.total_macs:,} ({_scaled(self.total_macs)})",
        ]
        sizes = [
            f"Input size (MB): {self.input_bytes / MB:,.2f}",
            f"Activations, one sample (MB): {self.activation_mb:,.2f}",
            f"Params size (MB): {self.param_bytes / MB:,.2f}",
        ]
        return "\n".join([f"{self.model_name}, input {list(self.input_shape)}", rule, line(header), rule,
                          *map(line, body), rule, *totals, rule, *sizes, rule])


def _scaled(count: int) -> str:
    return f"{count / 1e9:.2f} G" if count >= 1e9 else f"{count / 1e6:.2f} M"


def summary(model: nn.Module, input_shape: Sequence[int], dtype: Any = np.float32) -> Summary:
    """Run `model` on zeros of shape (1, *input_shape) and tabulate each layer's output shape, parameters
    and MACs; `str()` of the result is a torchinfo-style table. The model is left as it was."""
    shape = tuple(input_shape)
    if not shape or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1 for d in shape):
        raise ValueError(f"summary: input_shape must be a non-empty sequence of positive ints without the batch "
                         f"axis, e.g. (3, 224, 224), got {input_shape!r}")
    x = Tensor._make(np.zeros((1, *shape), dtype=dtype))
    layers = _recorded_layers(model)
    calls: list[tuple[str, nn.Module, Any]] = []
    try:
        with _recording_forwards(layers, calls), _eval_mode(model), no_grad():
            model(x)
    except Exception as e:
        failed = next((f"in layer '{n}' ({type(m).__name__}) " for n, m, out in reversed(calls) if out is e), "")
        raise RuntimeError(f"summary: running {type(model).__name__} on a zero input of shape {x.shape} failed "
                           f"{failed}with {type(e).__name__}: {e}") from e

    rows, counted = [], set()
    called = {id(m) for _, m, _ in calls}
    uncalled = [(n, m, None) for n, m in layers if id(m) not in called]
    for name, module, out in [*calls, *uncalled]:
        fresh = [p for p in _own_parameters(module) if id(p) not in counted]  # a reused layer's weights count once
        counted.update(id(p) for p in fresh)
        rows.append(_row(name, module, out, sum(p.numel() for p in fresh)))
    return Summary(type(model).__name__, x.shape, x.data.nbytes, rows, count_parameters(model),
                   count_parameters(model, trainable_only=True), sum(p.data.nbytes for p in model.parameters()))


# ---- receptive field -------------------------------------------------------------------------------

class ReceptiveFieldRow(NamedTuple):
    name: str
    type: str
    receptive_field: Pair   # (rows, columns) of the input one output element depends on
    jump: Pair              # input positions between neighbouring output elements (product of strides)
    output_size: Pair | None  # spatial size, when the input size is known


@dataclass
class ReceptiveFields:
    input_size: Pair | None
    rows: list[ReceptiveFieldRow]

    def __str__(self) -> str:
        def pair(p: Pair | None) -> str:
            return "?" if p is None else f"{p[0]}x{p[1]}"

        header = ("Layer (type)", "Output size", "Receptive field", "Jump")
        body = [(f"{r.name} ({r.type})" if r.name else r.type, pair(r.output_size), pair(r.receptive_field),
                 pair(r.jump)) for r in self.rows]
        widths = [max(len(line[i]) for line in [header, *body]) + 3 for i in range(4)]
        lines = ["".join(cell.ljust(w) for cell, w in zip(cells, widths)).rstrip() for cells in [header, *body]]
        return "\n".join([f"Receptive field of one output element, input {pair(self.input_size)}", *lines])


def _as_pair(value: int | Sequence[int]) -> Pair:
    return (int(value), int(value)) if isinstance(value, (int, np.integer)) else (int(value[0]), int(value[1]))


# Layers that act on each position alone (the receptive field passes through them unchanged), and layers
# that mix all positions into one vector (the receptive field ends there).
_POINTWISE = (nn.ReLU, nn.Dropout)
_END = (nn.Flatten, nn.Linear)


def _window(name: str, module: nn.Module, size: Pair | None) -> tuple[Pair, Pair, Pair | None]:
    """(effective kernel, stride, output size) of one spatial layer."""
    if isinstance(module, nn.Conv2d):
        kernel = tuple(d * (k - 1) + 1 for k, d in zip(module.kernel_size, module.dilation))
        out = None if size is None else conv_output_size(
            size, module.kernel_size, module.stride, module.padding, module.dilation)
        return kernel, module.stride, out
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        out = None if size is None else pool_output_size(size, module.kernel_size, module.stride, module.padding)
        return _as_pair(module.kernel_size), _as_pair(module.stride), out
    if isinstance(module, nn.AdaptiveAvgPool2d):
        if size is None or any(s % o for s, o in zip(size, module.output_size)):
            raise ValueError(f"receptive_field: layer '{name}' (AdaptiveAvgPool2d to {module.output_size}) has "
                             f"windows of one size only when its input size is a multiple of the output size; got "
                             f"input size {size} (give the model's input size: receptive_field(model, input_size))")
        kernel = tuple(s // o for s, o in zip(size, module.output_size))
        return kernel, kernel, module.output_size
    raise ValueError(f"receptive_field: don't know how layer '{name}' ({type(module).__name__}) maps input "
                     f"positions to output positions; supported: Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, "
                     f"ReLU and Dropout, up to the first Flatten or Linear")


def receptive_field(model: nn.Module, input_size: int | Sequence[int] | None = None) -> ReceptiveFields:
    """Receptive field and jump after each convolution or pooling layer, taking the leaf layers in definition
    order (the order a Sequential, or AlexNet/VGG, runs them) up to the first Flatten or Linear. ReLU and
    Dropout act on each position alone, so they are passed over.

    A layer with (dilated) kernel k and stride s turns the receptive field r and jump j of its input
    into r + (k - 1) * j and j * s. `input_size` (H or (H, W)) adds each layer's output size, and is
    needed to resolve an AdaptiveAvgPool2d into a plain pool.
    """
    size = None if input_size is None else _as_pair(input_size)
    rf, jump = (1, 1), (1, 1)
    rows = []
    for name, module in model.named_modules():
        if next(module.children(), None) is not None:
            continue
        if isinstance(module, _END):
            break
        if isinstance(module, _POINTWISE):
            continue
        kernel, stride, size = _window(name, module, size)
        rf = tuple(r + (k - 1) * j for r, k, j in zip(rf, kernel, jump))
        jump = tuple(j * s for j, s in zip(jump, stride))
        rows.append(ReceptiveFieldRow(name, type(module).__name__, rf, jump, size))
    return ReceptiveFields(None if input_size is None else _as_pair(input_size), rows)
