"""`tinygrad_cnn.functional` (import as F): the PyTorch-style functions, NCHW layout.

conv2d and the pools check their arguments and call a primitive; linear, the losses and softmax are
composed of primitives and get their gradients from them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .autograd import Tensor
from .ops import AvgPool2d, Conv2d, MaxPool2d
from .ops.conv import conv_out_size

IntOrPair = int | tuple[int, int]


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


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrPair = 1, padding: IntOrPair = 0,
           dilation: IntOrPair = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation as in PyTorch: (N, C, H, W) * (O, C/groups, KH, KW) -> (N, O, Ho, Wo)."""
    op = "conv2d"
    x, weight = _as_tensor(x), _as_tensor(weight)
    _check_float_4d(x, op)
    _check_float_4d(weight, op, "weight")
    _check_same_dtype(op, x, weight)
    stride, padding = as_pair(stride, "stride", op, 1), as_pair(padding, "padding", op, 0)
    dilation = as_pair(dilation, "dilation", op, 1)
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    c, o = x.shape[1], weight.shape[0]
    if c % groups or o % groups:
        raise ValueError(f"{op}: groups={groups} must divide both the input channels ({c}) and the output "
                         f"channels ({o})")
    if weight.shape[1] * groups != c:
        raise ValueError(f"{op}: input has {c} channels but weight of shape {weight.shape} with groups={groups} "
                         f"expects {weight.shape[1] * groups} (weight.shape[1] * groups)")
    _check_output_size(op, x, weight.shape[2:], stride, padding, dilation)
    if bias is not None:
        bias = _as_tensor(bias)
        if bias.shape != (o,):
            raise ValueError(f"{op}: bias must have shape ({o},) for {o} output channels, got {bias.shape}")
    return Conv2d.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=int(groups))


def _pool_args(op: str, x: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None,
               padding: IntOrPair) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    _check_float_4d(x, op)
    kernel = as_pair(kernel_size, "kernel_size", op, 1)
    stride = kernel if stride is None else as_pair(stride, "stride", op, 1)
    padding = as_pair(padding, "padding", op, 0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel size {kernel}")
    _check_output_size(op, x, kernel, stride, padding, (1, 1))
    return kernel, stride, padding


def max_pool2d(x: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None, padding: IntOrPair = 0) -> Tensor:
    """Max over each window; stride defaults to kernel_size; padding counts as -inf. (N, C, H, W) -> (N, C, Ho, Wo)"""
    x = _as_tensor(x)
    kernel, stride, padding = _pool_args("max_pool2d", x, kernel_size, stride, padding)
    return MaxPool2d.apply(x, kernel=kernel, stride=stride, padding=padding)


def avg_pool2d(x: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None, padding: IntOrPair = 0,
               count_include_pad: bool = True) -> Tensor:
    """Mean over each window; padding counts as zeros unless count_include_pad=False. (N, C, H, W) -> (N, C, Ho, Wo)"""
    x = _as_tensor(x)
    kernel, stride, padding = _pool_args("avg_pool2d", x, kernel_size, stride, padding)
    return AvgPool2d.apply(x, kernel=kernel, stride=stride, padding=padding, count_include_pad=bool(count_include_pad))


def relu(x: Tensor) -> Tensor:
    return _as_tensor(x).relu()


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return _as_tensor(x).log_softmax(axis)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return _as_tensor(x).softmax(axis)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, weight shaped (out_features, in_features) as in PyTorch. (..., in) -> (..., out)"""
    x, weight = _as_tensor(x), _as_tensor(weight)
    if x.ndim < 1:
        raise ValueError(f"linear: expected an input of shape (..., in_features), got shape {x.shape}")
    if weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {x.shape} needs a weight of shape (out_features, {x.shape[-1]}), "
                         f"got {weight.shape}")
    _check_same_dtype("linear", x, weight)
    if bias is not None:
        bias = _as_tensor(bias)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    y = x.matmul(weight.T)
    return y if bias is None else y + bias


def _loss_target(op: str, scores: Tensor, target: Any, reduction: str) -> np.ndarray:
    """Check a classification loss's arguments before anything is computed; return the targets (N,)."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if scores.ndim != 2:
        raise ValueError(f"{op}: expected scores of shape (N, classes), got {scores.shape}")
    n, classes = scores.shape
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {t.dtype}")
    if t.shape != (n,):
        raise ValueError(f"{op}: target must have shape ({n},) (one class per sample), got {t.shape}")
    if n and (t.min() < 0 or t.max() >= classes):
        bad = t[(t < 0) | (t >= classes)]
        raise ValueError(f"{op}: target values must be in [0, {classes}), got {bad[:5].tolist()}")
    return t


def _nll(log_probs: Tensor, t: np.ndarray, reduction: str) -> Tensor:
    picked = -log_probs[np.arange(len(t)), t]                              # (N,)
    if reduction == "none":
        return picked
    return picked.sum() if reduction == "sum" else picked.mean()


def nll_loss(log_probs: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of integer class targets. (N, classes), (N,) -> scalar (or (N,) with 'none')."""
    log_probs = _as_tensor(log_probs)
    return _nll(log_probs, _loss_target("nll_loss", log_probs, target, reduction), reduction)


def cross_entropy(logits: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """nll_loss(log_softmax(logits)): (N, classes) unnormalised scores, (N,) integer classes."""
    logits = _as_tensor(logits)
    t = _loss_target("cross_entropy", logits, target, reduction)
    return _nll(log_softmax(logits, axis=-1), t, reduction)
