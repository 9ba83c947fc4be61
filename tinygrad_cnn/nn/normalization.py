"""Batch normalisation layers over `F.batch_norm`, with PyTorch's buffers and state_dict names.

running_mean, running_var and num_batches_tracked are buffers (`register_buffer`), so they are in the
state_dict under PyTorch's names, follow `.double()`/`.to()`, and load from a PyTorch checkpoint.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from ..autograd import Tensor
from .layers import factory_dtype
from .module import Module, Parameter


class _BatchNorm(Module):
    _expected_dims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: Any = None, dtype: Any = None, *, bias: bool = True) -> None:
        super().__init__()
        layer = type(self).__name__
        dtype = factory_dtype(layer, device, dtype) or np.float32
        self.num_features = F.positive_int(num_features, "num_features", layer)
        self.eps, self.momentum, self.affine, self.track_running_stats = eps, momentum, affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=dtype)) if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=dtype)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=dtype)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            for buffer, value in ((self.running_mean, 0), (self.running_var, 1), (self.num_batches_tracked, 0)):
                buffer.data[...] = value
                buffer._bump_version()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            for p, value in ((self.weight, 1), (self.bias, 0)):
                p.data[...] = value
                p._bump_version()

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002 - PyTorch's argument name
        x = F._as_tensor(input)
        if x.ndim not in self._expected_dims:
            dims = " or ".join(f"{d}D" for d in self._expected_dims)
            raise ValueError(f"{type(self).__name__}: expected {dims} input (got {x.ndim}D input)")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.data[...] += 1
            self.num_batches_tracked._bump_version()
            if self.momentum is None:  # a cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.data)
        # batch statistics when training, or in eval mode when no running statistics are kept
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        update = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean if update else None, self.running_var if update else None,
                            self.weight, self.bias, use_batch, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Normalise each feature of an (N, C) or (N, C, L) input over the batch (and L)."""

    _expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Normalise each channel of an (N, C, H, W) input over the batch and the pixels."""

    _expected_dims = (4,)
