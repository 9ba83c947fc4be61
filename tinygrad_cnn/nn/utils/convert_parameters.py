"""`parameters_to_vector` / `vector_to_parameters`, as `torch.nn.utils`."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...autograd import Tensor
from ...tensor_methods import cat
from .clip_grad import _tensors


def parameters_to_vector(parameters: Any) -> Tensor:
    """All `parameters` flattened into one vector (differentiable: a graph of reshapes and a cat)."""
    found = _tensors("parameters_to_vector", parameters)
    if not found:
        raise ValueError("parameters_to_vector: expected at least one parameter")
    return cat([p.reshape(-1) for p in found])


def vector_to_parameters(vec: Tensor, parameters: Any) -> None:
    """Copy consecutive slices of `vec` into `parameters` (in place, each bumping its version)."""
    op = "vector_to_parameters"
    if not isinstance(vec, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(vec).__name__}")
    found = _tensors(op, parameters)
    total = sum(p.data.size for p in found)
    if vec.ndim != 1 or vec.shape[0] != total:
        raise ValueError(f"{op}: the parameters hold {total} numbers, got a vector of shape {vec.shape}")
    start = 0
    for p in found:  # the size was checked before anything changes
        np.copyto(p.data, vec.data[start:start + p.data.size].reshape(p.shape), casting="same_kind")
        p._bump_version()
        start += p.data.size
