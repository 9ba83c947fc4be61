"""`tinygrad_cnn.functional`, also importable as `tinygrad_cnn.nn.functional` (import as F): PyTorch's
functions with PyTorch's argument names, defaults and errors, NCHW layout.

conv2d and the pools check their arguments and call a primitive (sigmoid, tanh and the exact gelu's erf
are primitives too). Everything else is composed of primitives and gets its gradients, first and second
order, from them: conv_transpose2d is conv2d's input-gradient primitive; ceil_mode pooling pads the input;
batch_norm, dropout, pad, interpolate and the losses are elementwise ops, reductions and indexing. Where a
function has a kink (leaky_relu at 0), the branch taken is a constant mask of the input, as in PyTorch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import rng
from .autograd import Tensor
from .ops import AvgPool2d, BinaryCrossEntropy, Conv2d, Conv2dInputGrad, Erf, MaxPool2d
from .ops.conv import conv_out_size

IntOrPair = int | tuple[int, int]


def positive_int(value: Any, name: str, op: str) -> int:
    """Validate a count argument of `op` (channels, groups, processes, ...): a positive int, not a bool."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{op}: {name} must be a positive int, got {value!r}")
    return int(value)


def as_pair(value: IntOrPair, name: str, op: str, minimum: int) -> tuple[int, int]:
    """Validate an int-or-pair argument (kernel_size, stride, ...) of `op`; return it as a pair."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else (
        tuple(value) if isinstance(value, (tuple, list)) else (value,))
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _constant(array: np.ndarray) -> Tensor:
    return Tensor._make(array)


def _check_float(x: Tensor, op: str) -> None:
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got dtype {x.dtype}")


def _check_float_4d(x: Tensor, op: str, what: str = "input") -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D {what} (N, C, H, W), got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: {what} must be floating point, got dtype {x.dtype}")


def _check_same_dtype(op: str, x: Tensor, weight: Tensor) -> None:
    """As PyTorch: promoting silently would run a float32 model in float64 (about 2x slower)."""
    if x.dtype != weight.dtype:
        raise TypeError(f"{op}: input dtype {x.dtype} and weight dtype {weight.dtype} differ; convert one "
                        f"(e.g. a float64 input to a float32 model: x.float())")


def _check_output_size(op: str, x: Tensor, kernel: tuple[int, int], stride: tuple[int, int],
                       padding: tuple[int, int], dilation: tuple[int, int]) -> None:
    out = [conv_out_size(s, k, st, p, d) for s, k, st, p, d in zip(x.shape[2:], kernel, stride, padding, dilation)]
    if min(out) < 1:
        effective = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        padded = tuple(s + 2 * p for s, p in zip(x.shape[2:], padding))
        raise ValueError(f"{op}: kernel {kernel} (effective size {effective} with dilation {dilation}) is larger "
                         f"than the padded input {padded} (input shape {x.shape}, padding {padding})")


def _conv_operands(op: str, input: Any, weight: Any) -> tuple[Tensor, Tensor]:  # noqa: A002
    """The input and weight of a convolution: 4-D, floating point, one dtype."""
    x, weight = _as_tensor(input), _as_tensor(weight)
    _check_float_4d(x, op)
    _check_float_4d(weight, op, "weight")
    _check_same_dtype(op, x, weight)
    return x, weight


def _checked_bias(op: str, bias: Any, channels: int) -> Tensor | None:
    if bias is None:
        return None
    bias = _as_tensor(bias)
    if bias.shape != (channels,):
        raise ValueError(f"{op}: bias must have shape ({channels},) for {channels} output channels, got {bias.shape}")
    return bias


# ---- convolutions ---------------------------------------------------------------------------------------
def same_padding(kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """padding='same' as PyTorch: the total d(k-1) per axis, half before and the odd one after.
    Returns ((top, bottom), (left, right))."""
    totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
    return tuple((t // 2, t - t // 2) for t in totals)  # type: ignore[return-value]


def _conv_padding(op: str, padding: IntOrPair | str, kernel: tuple[int, int], stride: tuple[int, int],
                  dilation: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """A string padding as ((top, bottom), (left, right)); None for an int or pair (checked by as_pair)."""
    if not isinstance(padding, str):
        return None
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding != "same":
        raise ValueError(f"{op}: invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
    if stride != (1, 1):
        raise ValueError(f"{op}: padding='same' is not supported for strided convolutions")
    return same_padding(kernel, dilation)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrPair = 1,  # noqa: A002
           padding: IntOrPair | str = 0, dilation: IntOrPair = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation as in PyTorch: (N, C, H, W) * (O, C/groups, KH, KW) -> (N, O, Ho, Wo).
    padding may be 'valid' (none) or 'same' (stride 1; an even kernel gets the extra row/column after)."""
    op = "conv2d"
    x, weight = _conv_operands(op, input, weight)
    stride, dilation = as_pair(stride, "stride", op, 1), as_pair(dilation, "dilation", op, 1)
    sides = _conv_padding(op, padding, weight.shape[2:], stride, dilation)
    if sides is not None:
        padding = tuple(lo for lo, _ in sides)
        if any(hi != lo for lo, hi in sides):  # the odd extra row/column, after
            x = x.pad(((0, 0), (0, 0), (0, sides[0][1] - sides[0][0]), (0, sides[1][1] - sides[1][0])))
    padding = as_pair(padding, "padding", op, 0)
    groups = positive_int(groups, "groups", op)
    c, o = x.shape[1], weight.shape[0]
    if c % groups or o % groups:
        raise ValueError(f"{op}: groups={groups} must divide both the input channels ({c}) and the output "
                         f"channels ({o})")
    if weight.shape[1] * groups != c:
        raise ValueError(f"{op}: input has {c} channels but weight of shape {weight.shape} with groups={groups} "
                         f"expects {weight.shape[1] * groups} (weight.shape[1] * groups)")
    _check_output_size(op, x, weight.shape[2:], stride, padding, dilation)
    bias = _checked_bias(op, bias, o)
    return Conv2d.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=int(groups))


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrPair = 1,  # noqa: A002
                     padding: IntOrPair = 0, output_padding: IntOrPair = 0, groups: int = 1,
                     dilation: IntOrPair = 1) -> Tensor:
    """The transposed convolution (conv2d's input gradient), PyTorch's argument order:
    (N, C_in, H, W) * (C_in, C_out/groups, KH, KW) -> (N, C_out, Ho, Wo),
    Ho = (H - 1) stride - 2 padding + dilation (KH - 1) + output_padding + 1."""
    op = "conv_transpose2d"
    x, weight = _conv_operands(op, input, weight)
    stride, padding = as_pair(stride, "stride", op, 1), as_pair(padding, "padding", op, 0)
    dilation, output_padding = as_pair(dilation, "dilation", op, 1), as_pair(output_padding, "output_padding", op, 0)
    groups = positive_int(groups, "groups", op)
    if x.shape[1] != weight.shape[0] or weight.shape[0] % groups:
        raise ValueError(f"{op}: input has {x.shape[1]} channels but weight of shape {weight.shape} expects "
                         f"{weight.shape[0]} (weight.shape[0], divisible by groups={groups})")
    for p, s, d in zip(output_padding, stride, dilation):
        if p >= max(s, d):
            raise ValueError(f"{op}: output_padding {output_padding} must be smaller than either stride {stride} "
                             f"or dilation {dilation}")
    out_hw = tuple((h - 1) * s - 2 * p + d * (k - 1) + op_ + 1 for h, s, p, d, k, op_ in
                   zip(x.shape[2:], stride, padding, dilation, weight.shape[2:], output_padding))
    if min(out_hw) < 1:
        raise ValueError(f"{op}: the output size {out_hw} is too small (input shape {x.shape}, padding {padding})")
    out_channels = weight.shape[1] * groups
    bias = _checked_bias(op, bias, out_channels)
    if all(p < s for p, s in zip(output_padding, stride)):
        y = Conv2dInputGrad.apply(x, weight, input_hw=out_hw, stride=stride, padding=padding, dilation=dilation,
                                  groups=int(groups))                               # (N, C_out, Ho, Wo)
    else:  # output_padding >= stride (allowed below the dilation): no conv2d input of size out_hw has x's size,
        # so transpose without padding, then crop the padding (and add zeros past the end)
        full_hw = tuple((h - 1) * s + d * (k - 1) + 1 for h, s, d, k in zip(x.shape[2:], stride, dilation,
                                                                              weight.shape[2:]))
        y = Conv2dInputGrad.apply(x, weight, input_hw=full_hw, stride=stride, padding=(0, 0), dilation=dilation,
                                  groups=int(groups))                               # (N, C_out, Hf, Wf)
        extra = [max(0, o + p - f) for o, p, f in zip(out_hw, padding, full_hw)]
        y = y.pad(((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
        y = y[:, :, padding[0]: padding[0] + out_hw[0], padding[1]: padding[1] + out_hw[1]]
    return y if bias is None else y + bias.reshape(1, out_channels, 1, 1)


# ---- pooling --------------------------------------------------------------------------------------------
def _pool_out(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size: with ceil_mode a last window may start in the input or the left
    padding but never in the right padding."""
    out = (size + 2 * padding - kernel + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _pool_args(op: str, x: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None, padding: IntOrPair,
               ceil_mode: bool = False) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]:
    """The checked (kernel, stride, padding) and the extra bottom/right rows ceil_mode adds (0, 0 without)."""
    _check_float_4d(x, op)
    kernel = as_pair(kernel_size, "kernel_size", op, 1)
    stride = kernel if stride is None or (isinstance(stride, (list, tuple)) and not stride) else \
        as_pair(stride, "stride", op, 1)
    padding = as_pair(padding, "padding", op, 0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel size {kernel}")
    _check_output_size(op, x, kernel, stride, padding, (1, 1))
    extra = (0, 0)
    if ceil_mode:  # the rows a ceil_mode window hangs over the bottom/right of the padded input
        out = [_pool_out(*a, True) for a in zip(x.shape[2:], kernel, stride, padding)]
        extra = tuple(max(0, (o - 1) * s + k - (n + 2 * p)) for o, s, k, n, p in
                      zip(out, stride, kernel, x.shape[2:], padding))
    return kernel, stride, padding, extra


def _pad_after(x: Tensor, extra: tuple[int, int], value: float) -> Tensor:
    return x.pad(((0, 0), (0, 0), (0, extra[0]), (0, extra[1])), value=value) if any(extra) else x


def max_pool2d(input: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None,  # noqa: A002
               padding: IntOrPair = 0, dilation: IntOrPair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor:
    """Max over each window; stride defaults to kernel_size; padding counts as -inf; ceil_mode keeps a last
    partial window. (N, C, H, W) -> (N, C, Ho, Wo)"""
    op = "max_pool2d"
    x = _as_tensor(input)
    if as_pair(dilation, "dilation", op, 1) != (1, 1) or return_indices:
        raise NotImplementedError(f"{op}: dilation > 1 and return_indices=True are not supported")
    kernel, stride, padding, extra = _pool_args(op, x, kernel_size, stride, padding, ceil_mode)
    return MaxPool2d.apply(_pad_after(x, extra, -np.inf), kernel=kernel, stride=stride, padding=padding)


def _pool_divisors(input_hw: tuple[int, int], out_hw: tuple[int, int], kernel: tuple[int, int],
                   stride: tuple[int, int], padding: tuple[int, int], count_include_pad: bool) -> np.ndarray:
    """(Ho, Wo): PyTorch's avg-pool divisor of each window: its size clipped to the padded input (with
    count_include_pad) or to the input (without). ceil_mode's overhang never counts."""
    per_axis = []
    for n, o, k, s, p in zip(input_hw, out_hw, kernel, stride, padding):
        start = np.arange(o) * s - p                                   # (O,)
        end = np.minimum(start + k, n + p)
        per_axis.append(end - start if count_include_pad else np.minimum(end, n) - np.maximum(start, 0))
    return np.outer(*per_axis)                                         # (Ho, Wo)


def avg_pool2d(input: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None,  # noqa: A002
               padding: IntOrPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """Mean over each window; padding counts as zeros in the divisor unless count_include_pad=False;
    divisor_override replaces the divisor. (N, C, H, W) -> (N, C, Ho, Wo)"""
    op = "avg_pool2d"
    x = _as_tensor(input)
    kernel, stride, padding, extra = _pool_args(op, x, kernel_size, stride, padding, ceil_mode)
    if divisor_override is not None:
        divisor_override = positive_int(divisor_override, "divisor_override", op)
    if not any(extra) and divisor_override is None:
        return AvgPool2d.apply(x, kernel=kernel, stride=stride, padding=padding,
                               count_include_pad=bool(count_include_pad))
    # Window sums (the mean over the whole kernel, zeros included, times its size), then PyTorch's divisors.
    sums = AvgPool2d.apply(_pad_after(x, extra, 0.0), kernel=kernel, stride=stride, padding=padding,
                           count_include_pad=True) * float(kernel[0] * kernel[1])  # (N, C, Ho, Wo)
    divisors = np.full(sums.shape[2:], divisor_override) if divisor_override is not None else _pool_divisors(
        x.shape[2:], sums.shape[2:], kernel, stride, padding, count_include_pad)
    return sums / _constant(divisors.astype(x.dtype))


def _output_size(op: str, output_size: Any, input_hw: tuple[int, ...]) -> tuple[int, ...]:
    """An int, or one int-or-None (keep the input's size) per spatial axis."""
    sizes = (output_size,) * len(input_hw) if output_size is None or isinstance(output_size, (int, np.integer)) \
        else tuple(output_size) if isinstance(output_size, (tuple, list)) else ()
    if len(sizes) != len(input_hw) or not all(
            v is None or isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in sizes):
        raise ValueError(f"{op}: output_size must be a positive int or a pair of them, got {output_size!r}")
    return tuple(n if v is None else int(v) for v, n in zip(sizes, input_hw))


def averaging_matrix(in_size: int, out_size: int, dtype: np.dtype) -> np.ndarray:
    """(out_size, in_size): row i holds 1/len over PyTorch's adaptive window i of the input axis,
    [floor(i * H / Ho), ceil((i + 1) * H / Ho))."""
    matrix = np.zeros((out_size, in_size), dtype=dtype)
    for i in range(out_size):
        start, end = i * in_size // out_size, -(-(i + 1) * in_size // out_size)  # floor, ceil
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


def adaptive_avg_pool2d(input: Tensor, output_size: IntOrPair | None) -> Tensor:  # noqa: A002
    """(N, C, H, W) or (C, H, W) -> (..., Ho, Wo), averaging PyTorch's adaptive windows. An average over a
    rectangle is one over rows then one over columns: y = A_h @ x @ A_w^T, two matmuls with constant
    averaging matrices (MatMul's VJP is the gradient)."""
    op = "adaptive_avg_pool2d"
    x = _as_tensor(input)
    out_hw = _output_size(op, output_size, x.shape[-2:] if x.ndim >= 2 else (0, 0))
    if x.ndim not in (3, 4) or x.dtype.kind != "f":
        raise ValueError(f"{op}: expected a floating-point 3-D or 4-D input ((N,) C, H, W), got shape "
                         f"{x.shape} and dtype {x.dtype}")
    if x.shape[-2:] == out_hw:  # every window is one element: torchvision's models at 224x224 hit this
        return x
    rows = _constant(averaging_matrix(x.shape[-2], out_hw[0], x.dtype))          # (Ho, H)
    cols = _constant(averaging_matrix(x.shape[-1], out_hw[1], x.dtype).T)        # (W, Wo)
    return rows.matmul(x.matmul(cols))                                            # (..., Ho, Wo)


# ---- padding and resizing -------------------------------------------------------------------------------
_INDEX_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Tensor:  # noqa: A002
    """Pad the last len(pad) // 2 dimensions, PyTorch's order: (left, right) of the last dimension first,
    then (top, bottom) of the one before, ... Modes 'constant' (negative widths crop), 'reflect' (the edge
    not repeated), 'replicate' (the edge repeated) and 'circular' (wrapped around)."""
    x = _as_tensor(input)
    if not isinstance(pad, (tuple, list)) or not all(
            isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in pad):
        raise TypeError(f"pad: pad must be a tuple of ints, got {pad!r}")
    if len(pad) % 2:
        raise ValueError(f"pad: padding length must be divisible by 2, got {len(pad)} values {tuple(pad)}")
    if len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: padding length {len(pad)} is too large for a {x.ndim}-D input of shape {x.shape}")
    sides = [(0, 0)] * (x.ndim - len(pad) // 2) + [(int(pad[i]), int(pad[i + 1]))
                                                   for i in reversed(range(0, len(pad), 2))]
    if mode == "constant":
        if any(lo < 0 or hi < 0 for lo, hi in sides):  # negative widths crop first
            x = x[tuple(slice(max(-lo, 0), n - max(-hi, 0)) for (lo, hi), n in zip(sides, x.shape))]
        return x.pad([(max(lo, 0), max(hi, 0)) for lo, hi in sides], value=0.0 if value is None else value)
    if mode not in _INDEX_MODES:
        raise NotImplementedError(f"pad: mode {mode!r} is not supported; use 'constant', 'reflect', 'replicate' "
                                  "or 'circular'")
    if value is not None and value != 0:
        raise RuntimeError(f"pad: padding mode {mode!r} doesn't take in a value argument")
    padded = len(pad) // 2
    if padded not in (1, 2, 3) or x.ndim not in (padded + 1, padded + 2):
        raise NotImplementedError(f"pad: mode {mode!r} pads the last 1, 2 or 3 dimensions of a 2-D to 5-D input "
                                  f"(one or two leading dimensions), got {len(pad)} values for shape {x.shape}")
    for axis, ((lo, hi), n) in enumerate(zip(sides, x.shape)):
        if lo == hi == 0:
            continue
        if min(lo, hi) < 0 or (mode == "reflect" and max(lo, hi) >= n) or (mode == "circular" and max(lo, hi) > n) \
                or n == 0:
            raise RuntimeError(f"pad: mode {mode!r} needs padding ({lo}, {hi}) at dimension {axis} to be >= 0 and "
                             f"{'smaller than' if mode == 'reflect' else 'at most'} the input's size {n} "
                             f"(input shape {x.shape})")
        index = np.pad(np.arange(n), (lo, hi), mode=_INDEX_MODES[mode])                  # (lo + n + hi,)
        x = x[(slice(None),) * axis + (index,)]       # a gather: its VJP adds the copies back (IndexAdd)
    return x


def _nearest_indices(in_size: int, out_size: int, scale: float | None, exact: bool) -> np.ndarray:
    """PyTorch's nearest source index of each output position along one axis, in float32 arithmetic:
    floor(o * scale) ('nearest') or floor((o + 0.5) * scale) ('nearest-exact'), capped at in_size - 1;
    scale = 1 / scale_factor when that was given, else in_size / out_size."""
    if not exact and out_size == in_size:
        return np.arange(out_size)
    if not exact and out_size == 2 * in_size:
        return np.arange(out_size) >> 1
    step = np.float32(1.0 / scale if scale is not None and scale > 0 else in_size / out_size)
    position = (np.arange(out_size, dtype=np.float32) + np.float32(0.5 if exact else 0.0)) * step
    return np.minimum(np.floor(position).astype(np.int64), in_size - 1)


def interpolate(input: Tensor, size: int | Sequence[int] | None = None,  # noqa: A002
                scale_factor: float | Sequence[float] | None = None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resize the spatial dimensions of an (N, C, L), (N, C, H, W) or (N, C, D, H, W) input by copying the
    nearest input element (modes 'nearest' and 'nearest-exact', PyTorch's indices). A gather per axis:
    its VJP adds each output's gradient back to its source."""
    op = "interpolate"
    x = _as_tensor(input)
    if mode not in ("nearest", "nearest-exact"):
        raise NotImplementedError(f"{op}: mode {mode!r} is not supported; use 'nearest' or 'nearest-exact'")
    if align_corners is not None:
        raise ValueError(f"{op}: align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if antialias:
        raise ValueError(f"{op}: anti-alias option is restricted to bilinear and bicubic modes")
    if x.ndim not in (3, 4, 5):
        raise ValueError(f"{op}: expected a 3-D, 4-D or 5-D input (N, C, spatial...), got shape {x.shape}")
    spatial = x.shape[2:]
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: only one of size or scale_factor should be defined" if size is not None else
                         f"{op}: either size or scale_factor should be defined")
    if size is not None:
        sizes = (size,) * len(spatial) if isinstance(size, (int, np.integer)) else tuple(size)
        if len(sizes) != len(spatial) or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in sizes):
            raise ValueError(f"{op}: size must be a positive int or one per spatial dimension ({len(spatial)}) "
                             f"for input shape {x.shape}, got {size!r}")
        scales: tuple[float | None, ...] = (None,) * len(spatial)
    else:
        factors = (scale_factor,) * len(spatial) if isinstance(scale_factor, (int, float, np.number)) \
            else tuple(scale_factor)
        if len(factors) != len(spatial) or not all(isinstance(f, (int, float, np.number)) and f > 0 for f in factors):
            raise ValueError(f"{op}: scale_factor must be a positive number or one per spatial dimension "
                             f"({len(spatial)}) for input shape {x.shape}, got {scale_factor!r}")
        sizes = tuple(math.floor(float(n) * float(f)) for n, f in zip(spatial, factors))
        scales = (None,) * len(spatial) if recompute_scale_factor else tuple(float(f) for f in factors)
        if min(sizes) < 1:
            raise ValueError(f"{op}: scale_factor {scale_factor!r} gives an empty output size {sizes}")
    for axis, (n, o, scale) in enumerate(zip(spatial, sizes, scales), start=2):
        index = _nearest_indices(n, int(o), scale, mode == "nearest-exact")                # (o,)
        if not np.array_equal(index, np.arange(n)):
            x = x[(slice(None),) * axis + (index,)]
    return x


# ---- activations ----------------------------------------------------------------------------------------
def relu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """max(x, 0). inplace=True is accepted and returns a new tensor (the input is left unchanged)."""
    return _as_tensor(input).relu()


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:  # noqa: A002
    """x where x > 0, negative_slope * x elsewhere (so the gradient at 0 is negative_slope, as PyTorch)."""
    x = _as_tensor(input)
    _check_float(x, "leaky_relu")
    factor = np.where(x.data > 0, x.dtype.type(1), x.dtype.type(negative_slope))  # (x.shape) constant slopes
    return x * _constant(factor)


def sigmoid(input: Tensor) -> Tensor:  # noqa: A002
    """1 / (1 + exp(-x)), the Sigmoid primitive (stable for any x)."""
    x = _as_tensor(input)
    _check_float(x, "sigmoid")
    return x.sigmoid()


def tanh(input: Tensor) -> Tensor:  # noqa: A002
    """The Tanh primitive."""
    x = _as_tensor(input)
    _check_float(x, "tanh")
    return x.tanh()


def gelu(input: Tensor, approximate: str = "none") -> Tensor:  # noqa: A002
    """x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, or with approximate='tanh'
    x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2."""
    x = _as_tensor(input)
    _check_float(x, "gelu")
    if x.dtype == np.float16:  # in float32, rounded once (PyTorch's opmath): float16 steps lose up to 40 %
        return gelu(x.float(), approximate).half()
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * math.sqrt(2.0 / math.pi)
        return x * 0.5 * (inner.tanh() + 1.0)
    if approximate != "none":
        raise ValueError(f"gelu: approximate argument must be either 'none' or 'tanh', got {approximate!r}")
    return x * 0.5 * (Erf.apply(x * math.sqrt(0.5)) + 1.0)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    """x clipped to [min_val, max_val]; the gradient is 1 strictly inside and 0 elsewhere (PyTorch's, also at
    the two limits: the branch taken is a constant mask of the input)."""
    x = _as_tensor(input)
    _check_float(x, "hardtanh")
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    below, above = x.data <= min_val, x.data >= max_val                         # (x.shape) constant
    limits = _constant(np.where(below, x.dtype.type(min_val), x.dtype.type(max_val)))
    # selected, not masked by multiplication (inf * 0 would be NaN); NaN is neither below nor above: it
    # passes, with its gradient, as in PyTorch
    return x.where(~(below | above), limits)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """min(max(x, 0), 6): hardtanh(x, 0, 6)."""
    return hardtanh(input, 0.0, 6.0)


def silu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """x * sigmoid(x) (also called swish)."""
    x = _as_tensor(input)
    _check_float(x, "silu")
    if x.dtype == np.float16:  # in float32, rounded once (PyTorch's opmath)
        return silu(x.float()).half()
    return x * x.sigmoid()


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    """x where x > 0, alpha (exp(x) - 1) elsewhere (the exponential only of the non-positive elements)."""
    x = _as_tensor(input)
    _check_float(x, "elu")
    if x.dtype == np.float16:  # in float32, rounded once (PyTorch's opmath)
        return elu(x.float(), alpha).half()
    negative = x.data <= 0                                                        # (x.shape) constant branches
    # selected, not masked by multiplication (inf * 0 would be NaN); exp of the non-positive part only
    grows = (x.where(negative, 0.0).exp() - 1.0) * alpha                          # alpha (exp(x) - 1), 0 where x > 0
    return x.where(~negative, grows)


def _softplus(z: Tensor) -> Tensor:
    """log(1 + exp(z)) without overflow: max(z, 0) + log(1 + exp(-|z|)), with |z| = z times its constant sign
    and z >= 0 counted as positive, so the gradient at 0 is sigmoid(0) = 1/2 (the kinks do not cancel)."""
    positive = z.data >= 0
    magnitude = z * _constant(np.where(positive, z.dtype.type(1), z.dtype.type(-1)))  # |z|
    # max(z, 0) selected, not masked by multiplication (-inf * 0 would be NaN)
    return z.where(positive, 0.0) + ((-magnitude).exp() + 1.0).log()


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:  # noqa: A002
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as PyTorch)."""
    x = _as_tensor(input)
    _check_float(x, "softplus")
    if x.dtype == np.float16:  # in float32, rounded once (PyTorch's opmath): float16 steps lost 18 %
        return softplus(x.float(), beta, threshold).half()
    linear = x.data * beta > threshold                                            # (x.shape) constant
    smooth = _softplus(x * beta) / beta if beta != 1 else _softplus(x)
    if not linear.any():
        return smooth
    return x.where(linear, smooth)                                                # selected: inf * 0 would be NaN


def one_hot(tensor: Any, num_classes: int = -1) -> Tensor:
    """(...) int64 class indices -> (..., num_classes) int64 one-hot rows (num_classes=-1: max + 1)."""
    t = _target_array(tensor)
    if t.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected an integer (int64) tensor of class indices, got dtype {t.dtype}")
    if num_classes == -1:
        num_classes = int(t.max()) + 1 if t.size else 0
    if t.size and (t.min() < 0 or t.max() >= num_classes):
        raise RuntimeError(f"one_hot: class values must be in [0, {num_classes}), got {t.min()} to {t.max()}")
    return Tensor(np.eye(num_classes, dtype=np.int64)[t.astype(np.int64)])


def _softmax_dim(op: str, x: Tensor, dim: int | None, axis: int | None, stacklevel: int) -> int:
    if axis is not None:  # the numpy-style name of the first release
        if dim is not None:
            raise TypeError(f"{op}: got both dim and axis")
        return axis
    if dim is None:  # PyTorch's deprecated implicit choice
        warnings.warn(f"Implicit dimension choice for {op} has been deprecated. Change the call to include dim=X "
                      "as an argument.", UserWarning, stacklevel=stacklevel)
        return 0 if x.ndim in (0, 1, 3) else 1
    return dim


def _with_dtype(x: Tensor, dtype: Any) -> Tensor:
    return x if dtype is None else x.astype(dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None,  # noqa: A002
                *, axis: int | None = None) -> Tensor:
    """x - logsumexp(x) along `dim` (cast to `dtype` first if given)."""
    x = _with_dtype(_as_tensor(input), dtype)
    return x.log_softmax(_softmax_dim("log_softmax", x, dim, axis, _stacklevel))


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None,  # noqa: A002
            *, axis: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along `dim` (cast to `dtype` first if given)."""
    x = _with_dtype(_as_tensor(input), dtype)
    return x.softmax(_softmax_dim("softmax", x, dim, axis, _stacklevel))


# ---- linear, normalisation, dropout ---------------------------------------------------------------------
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:  # noqa: A002
    """x @ weight.T + bias, weight shaped (out_features, in_features) as in PyTorch. (..., in) -> (..., out)"""
    x, weight = _as_tensor(input), _as_tensor(weight)
    if x.ndim < 1:
        raise ValueError(f"linear: expected an input of shape (..., in_features), got shape {x.shape}")
    if weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {x.shape} needs a weight of shape (out_features, {x.shape[-1]}), "
                         f"got {weight.shape}")
    bias = _checked_bias("linear", bias, weight.shape[0])
    y = x.matmul(weight.T)
    return y if bias is None else y + bias


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,  # noqa: A002
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel (dimension 1) of an (N, C, ...) input: by the batch's mean and biased variance
    when training (then running_mean/running_var, if given, move `momentum` of the way to the batch mean and
    unbiased variance, in place), by the running statistics otherwise; then * weight + bias per channel.
    Composed of primitives, so the gradient (and double backward) goes through the batch statistics."""
    op = "batch_norm"
    x = _as_tensor(input)
    if x.ndim < 2:
        raise ValueError(f"{op}: expected an input with at least 2 dimensions (N, C, ...), got shape {x.shape}")
    _check_float(x, op)
    c = x.shape[1]
    shape = (1, c) + (1,) * (x.ndim - 2)                       # broadcasts a per-channel (C,) over the input
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and tuple(t.shape) != (c,):
            raise RuntimeError(f"{op}: {name} should contain {c} elements (one per channel of input shape "
                               f"{x.shape}), not {math.prod(t.shape)}")
    if training:
        axes = (0, *range(2, x.ndim))
        count = x.data.size // c if c else 0
        if count <= 1:
            raise ValueError(f"{op}: expected more than 1 value per channel when training, got input size {x.shape}")
        mean = x.mean(axes, keepdim=True)                                           # (1, C, 1, ...)
        centred = x - mean                                                          # (N, C, ...)
        var = (centred * centred).mean(axes, keepdim=True)                          # (1, C, 1, ...) biased
        for stat, value in ((running_mean, mean.data), (running_var, var.data * (count / (count - 1)))):
            if stat is not None:  # running = (1 - momentum) running + momentum batch, in place
                stat.data[...] = (1 - momentum) * stat.data + momentum * value.reshape(c)
                stat._bump_version()
        scale = (var + eps) ** -0.5                                                 # (1, C, 1, ...)
    else:
        if running_mean is None or running_var is None:
            raise ValueError(f"{op}: running_mean and running_var must be given when training=False")
        centred = x - _constant(running_mean.data.astype(x.dtype, copy=False).reshape(shape))
        scale = _constant(((running_var.data + eps) ** -0.5).astype(x.dtype).reshape(shape))
    if weight is not None:
        scale = scale * _as_tensor(weight).reshape(*shape)
    y = centred * scale
    return y if bias is None else y + _as_tensor(bias).reshape(*shape)


def _check_p(p: Any, op: str) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0 <= p <= 1:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p!r}")
    return float(p)


def _dropout(x: Tensor, p: float, mask_shape: tuple[int, ...]) -> Tensor:
    if p == 1:
        return x * _constant(np.zeros(mask_shape, dtype=x.dtype))
    keep = rng.generator().random(mask_shape, dtype=np.float32 if x.dtype == np.float32 else np.float64) >= p
    return x * _constant(np.multiply(keep, 1 / (1 - p), dtype=x.dtype))  # kept elements scaled by 1 / (1 - p)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:  # noqa: A002
    """Zero each element with probability p (when training) and scale the rest by 1 / (1 - p); p = 1 zeroes
    everything. inplace=True is accepted and returns a new tensor."""
    p = _check_p(p, "dropout")
    x = _as_tensor(input)
    _check_float(x, "dropout")
    return x if not training or p == 0 else _dropout(x, p, x.shape)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:  # noqa: A002
    """Zero whole channels: one draw per (sample, channel) of an (N, C, H, W) input (of an (N, C, L) input
    for 3-D, as PyTorch does today, with its warning)."""
    p = _check_p(p, "dropout2d")
    x = _as_tensor(input)
    _check_float(x, "dropout2d")
    if x.ndim not in (3, 4):
        warnings.warn(f"dropout2d: Received a {x.ndim}-D input to dropout2d, which is deprecated; dropout2d expects "
                      "3-D or 4-D inputs", UserWarning, stacklevel=2)
    if x.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                      "behavior is desired - input is interpreted as shape (N, C, L)", UserWarning, stacklevel=2)
    if x.ndim < 2:
        raise ValueError(f"dropout2d: expected an input with at least 2 dimensions (N, C, ...), got shape {x.shape}")
    return x if not training or p == 0 else _dropout(x, p, x.shape[:2] + (1,) * (x.ndim - 2))


# ---- losses ---------------------------------------------------------------------------------------------
def _reduction(op: str, size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    if size_average is not None or reduce is not None:  # PyTorch's legacy arguments
        warnings.warn("size_average and reduce args will be deprecated, please use reduction='mean', 'sum' or "
                      "'none' instead.", UserWarning, stacklevel=3)
        size_average = True if size_average is None else size_average
        reduction = ("mean" if size_average else "sum") if (True if reduce is None else reduce) else "none"
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def _target_array(target: Any) -> np.ndarray:
    return target.data if isinstance(target, Tensor) else np.asarray(target)


def _check_scores(op: str, x: Tensor) -> tuple[int, tuple[int, ...]]:
    """Scores (C,), (N, C) or (N, C, d1, ...): their class dimension and the per-sample loss shape."""
    if x.ndim == 0:
        raise ValueError(f"{op}: expected scores of shape (N, classes) (or (classes,), or (N, classes, d1, ...)), "
                         "got a 0-d input")
    return (0, ()) if x.ndim == 1 else (1, (x.shape[0], *x.shape[2:]))


def _classes_last(scores: Tensor) -> Tensor:
    """(N, C, d1, ...) -> (N * d1 * ..., C) (the class dimension is 1, or 0 for an unbatched (C,) input)."""
    if scores.ndim == 1:
        return scores.reshape(1, scores.shape[0])
    if scores.ndim == 2:
        return scores
    moved = scores.permute(0, *range(2, scores.ndim), 1)                          # (N, d1, ..., C)
    return moved.reshape(math.prod(moved.shape[:-1]), scores.shape[1])


class TargetError(IndexError, ValueError):
    """A class target out of range: PyTorch raises IndexError, earlier versions of this library ValueError."""


def _class_targets(op: str, scores: Tensor, t: np.ndarray, ignore_index: int) -> np.ndarray:
    """Check integer class targets against scores (C,), (N, C) or (N, C, d1, ...); return them flat (M,)."""
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices (or, for cross_entropy, probabilities "
                        f"shaped like the input {scores.shape}), got dtype {t.dtype} and shape {t.shape}")
    expected = _check_scores(op, scores)[1]
    if t.shape != expected:
        raise ValueError(f"{op}: expected scores (N, classes) and a target (N,) (or (classes,) and (), or "
                         f"(N, classes, d1, ...) and (N, d1, ...)): the input of shape {scores.shape} needs a "
                         f"target of shape {expected}, got {t.shape}")
    classes = scores.shape[0] if scores.ndim == 1 else scores.shape[1]
    flat = t.reshape(-1).astype(np.int64)
    bad = flat[((flat < 0) | (flat >= classes)) & (flat != ignore_index)]
    if bad.size:
        raise TargetError(f"{op}: Target {bad[0]} is out of bounds: target values must be in [0, {classes}) "
                          f"(or ignore_index={ignore_index}), got {bad[:5].tolist()}")
    return flat


def _weights(op: str, weight: Any, classes: int) -> Tensor | None:
    if weight is None:
        return None
    w = _as_tensor(weight)
    if w.shape != (classes,):
        raise RuntimeError(f"{op}: weight tensor should be defined either for all {classes} classes or no classes "
                           f"but got weight tensor of shape {w.shape}")
    return w


def _sample_weights(t: np.ndarray, w: Tensor | None, ignore_index: int, dtype: np.dtype) -> Tensor:
    """(M,): weight[t] for each kept target, 0 for ignored ones."""
    kept = t != ignore_index
    keep = _constant(kept.astype(dtype))
    return keep if w is None else w[np.where(kept, t, 0)] * keep


def _picked_nll(log_probs: Tensor, t: np.ndarray, w: Tensor | None, ignore_index: int, reduction: str,
                out_shape: tuple[int, ...]) -> Tensor:
    """-weight[t] * log_probs[t] for checked flat targets t (M,), ignored ones 0; 'mean' divides by the total
    weight of the kept targets."""
    flat = _classes_last(log_probs)                                               # (M, C)
    if w is None and (t != ignore_index).all():  # the common case: a plain mean, and the smallest graph
        loss = -flat[np.arange(len(t)), t]                                        # (M,)
        return loss.reshape(*out_shape) if reduction == "none" else _reduce(loss, reduction)
    picked = flat[np.arange(len(t)), np.where(t != ignore_index, t, 0)]          # (M,), ignored rows: class 0 ...
    sample_weight = _sample_weights(t, w, ignore_index, flat.dtype)              # ... times weight 0
    loss = -(picked * sample_weight)
    if reduction == "none":
        return loss.reshape(*out_shape)
    if reduction == "sum":
        return loss.sum()
    with np.errstate(invalid="ignore", divide="ignore"):  # every target ignored: 0 / 0 = nan, as PyTorch
        # summing the kept targets only gives an ignored one exactly zero gradient, as PyTorch, not 0 * (1 / 0)
        return loss[np.flatnonzero(t != ignore_index)].sum() / sample_weight.sum()


def nll_loss(input: Tensor, target: Any, weight: Tensor | None = None, size_average: bool | None = None,  # noqa: A002
             ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of integer class targets: input (N, C) (or (C,), or (N, C, d1, ...)) of log
    probabilities, target (N,) (or (), or (N, d1, ...)). 'mean' is a weighted mean over non-ignored targets."""
    op = "nll_loss"
    reduction = _reduction(op, size_average, reduce, reduction)
    x = _as_tensor(input)
    class_dim, out_shape = _check_scores(op, x)
    t = _class_targets(op, x, _target_array(target), ignore_index)               # (M,)
    return _picked_nll(x, t, _weights(op, weight, x.shape[class_dim]), ignore_index, reduction, out_shape)


def cross_entropy(input: Tensor, target: Any, weight: Tensor | None = None,  # noqa: A002
                  size_average: bool | None = None, ignore_index: int = -100, reduce: bool | None = None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """log_softmax over the class dimension, then the negative log-likelihood of integer class targets, or
    -sum(target * log_probs) for probability targets shaped like the input. label_smoothing mixes the
    targets with the uniform distribution, PyTorch's way (for class targets: (1 - e) nll + e/C * smooth,
    the smooth part normalised like the nll part). Every argument is checked before anything is computed."""
    op = "cross_entropy"
    reduction = _reduction(op, size_average, reduce, reduction)
    x = _as_tensor(input)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    class_dim, out_shape = _check_scores(op, x)
    classes = x.shape[class_dim]
    w = _weights(op, weight, classes)
    w_shape = (classes,) + (1,) * (x.ndim - 1 - class_dim)                        # broadcasts over the input
    t = _target_array(target)
    if t.dtype.kind == "f" and t.shape == x.shape:  # class probabilities
        if ignore_index >= 0:
            raise ValueError(f"{op}: ignore_index is not supported for floating point target")
        probs = _as_tensor(target).astype(x.dtype)
        if label_smoothing > 0:
            probs = probs * (1 - label_smoothing) + label_smoothing / classes
        weighted = x.log_softmax(class_dim) * (probs if w is None else probs * w.reshape(*w_shape))
        return _reduce(-weighted.sum(class_dim), reduction)  # 'mean' over the samples (not the weights), as PyTorch
    t = _class_targets(op, x, t, ignore_index)                                    # (M,)
    log_probs = x.log_softmax(class_dim)
    nll = _picked_nll(log_probs, t, w, ignore_index, reduction, out_shape)
    if label_smoothing == 0:
        return nll
    weighted = log_probs if w is None else log_probs * w.reshape(*w_shape)
    kept = _constant((t != ignore_index).astype(x.dtype).reshape(out_shape))     # out_shape
    smooth = -weighted.sum(class_dim) * kept                                      # out_shape
    if reduction == "sum":
        smooth = smooth.sum()
    elif reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):  # kept targets only, as in _picked_nll
            smooth = smooth.reshape(-1)[np.flatnonzero(t != ignore_index)].sum() / _sample_weights(
                t, w, ignore_index, x.dtype).sum()
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / classes)


def _pointwise_loss(op: str, input: Tensor, target: Any, reduction: str, weight: Any,  # noqa: A002
                    distance: Any) -> Tensor:
    x = _as_tensor(input)
    # an array or list target takes a floating input's dtype (a Python float list would be float64)
    y = target if isinstance(target, Tensor) else Tensor(np.asarray(target, dtype=x.dtype if x.dtype.kind == "f"
                                                                     else None))
    if x.shape != y.shape:
        warnings.warn(f"Using a target size ({y.shape}) that is different to the input size ({x.shape}). This will "
                      "likely lead to incorrect results due to broadcasting. Please ensure they have the same size.",
                      UserWarning, stacklevel=3)
        try:
            np.broadcast_shapes(x.shape, y.shape)
        except ValueError:
            raise RuntimeError(f"{op}: the input of shape {x.shape} and the target of shape {y.shape} do not "
                               "broadcast") from None
    loss = distance(x - y)
    if weight is None:
        return _reduce(loss, reduction)
    w = _as_tensor(weight)
    if w.shape != x.shape:
        raise ValueError(f"{op}: Weights and input must have the same size.")
    loss = loss * w
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / w.sum()


def mse_loss(input: Tensor, target: Any, size_average: bool | None = None, reduce: bool | None = None,  # noqa: A002
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """(input - target)^2, reduced ('mean': over every element; with weight: sum(w e) / sum(w))."""
    reduction = _reduction("mse_loss", size_average, reduce, reduction)
    return _pointwise_loss("mse_loss", input, target, reduction, weight, lambda d: d * d)


def l1_loss(input: Tensor, target: Any, size_average: bool | None = None, reduce: bool | None = None,  # noqa: A002
            reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """|input - target|, reduced as mse_loss."""
    reduction = _reduction("l1_loss", size_average, reduce, reduction)
    return _pointwise_loss("l1_loss", input, target, reduction, weight, Tensor.abs)


def smooth_l1_loss(input: Tensor, target: Any, size_average: bool | None = None,  # noqa: A002
                   reduce: bool | None = None, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (d = input - target; beta = 0 is l1_loss)."""
    reduction = _reduction("smooth_l1_loss", size_average, reduce, reduction)
    if beta < 0:
        raise RuntimeError(f"smooth_l1_loss: beta must be non-negative, got {beta}")

    def distance(d: Tensor) -> Tensor:
        inside = np.abs(d.data) < beta                                            # (d.shape) constant branches
        if not inside.any():
            return d.abs() - 0.5 * beta
        # selected, not masked by multiplication: d * d of a huge or infinite d times 0 would be NaN
        small = d.where(inside, 0.0)
        return (small * small * (0.5 / beta)).where(inside, d.abs() - 0.5 * beta)

    return _pointwise_loss("smooth_l1_loss", input, target, reduction, None, distance)


def _binary_target(op: str, x: Tensor, target: Any) -> Tensor:
    y = target if isinstance(target, Tensor) else Tensor(np.asarray(target, dtype=x.dtype))
    if y.shape != x.shape:
        raise ValueError(f"{op}: Using a target size ({y.shape}) that is different to the input size ({x.shape}) "
                         "is deprecated. Please ensure they have the same size.")
    return y.astype(x.dtype)


def _weighted(op: str, loss: Tensor, weight: Any, reduction: str) -> Tensor:
    if weight is not None:
        w = _as_tensor(weight)
        try:
            np.broadcast_shapes(w.shape, loss.shape)
        except ValueError:
            raise RuntimeError(f"{op}: weight of shape {w.shape} does not broadcast to the loss's shape "
                               f"{loss.shape}") from None
        loss = loss * w
    return _reduce(loss, reduction)


def binary_cross_entropy(input: Tensor, target: Any, weight: Tensor | None = None,  # noqa: A002
                         size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> Tensor:
    """-(t log p + (1 - t) log(1 - p)) for probabilities p in [0, 1]; each log is clamped at -100 (PyTorch's
    way to keep the loss finite at p = 0 or 1)."""
    op = "binary_cross_entropy"
    reduction = _reduction(op, size_average, reduce, reduction)
    p = _as_tensor(input)
    _check_float(p, op)
    y = _binary_target(op, p, target)
    if p.data.size and (p.data.min() < 0 or p.data.max() > 1):
        raise RuntimeError(f"{op}: all elements of input should be between 0 and 1")
    return _weighted(op, BinaryCrossEntropy.apply(p, y), weight, reduction)  # PyTorch's VJP, finite at 0 and 1


def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Tensor | None = None,  # noqa: A002
                                     size_average: bool | None = None, reduce: bool | None = None,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
    """binary_cross_entropy(sigmoid(x), t) computed stably from the logits x: (1 - t) x + w_t softplus(-x),
    w_t = 1 + (pos_weight - 1) t weighting the positive term (PyTorch's formula)."""
    op = "binary_cross_entropy_with_logits"
    reduction = _reduction(op, size_average, reduce, reduction)
    x = _as_tensor(input)
    _check_float(x, op)
    y = _binary_target(op, x, target)
    softplus_neg = _softplus(-x)                                                  # -log(sigmoid(x))
    if pos_weight is not None:
        softplus_neg = softplus_neg * ((_as_tensor(pos_weight) - 1.0) * y + 1.0)
    return _weighted(op, (1.0 - y) * x + softplus_neg, weight, reduction)

