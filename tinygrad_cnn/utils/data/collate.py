"""Turning a list of samples into a batch, with the rules of ``torch.utils.data.default_collate``.

A sample is a Tensor, numpy array, number, string, or a tuple/list/dict/namedtuple of those (nested). The
batch has the sample's structure with every leaf stacked along a new first axis:

=================================  =====================================================================
samples of                         batch
=================================  =====================================================================
Tensor / ndarray of shape S        Tensor of shape (B, *S), same dtype (numpy's promotion if they differ)
Python int / float / bool          int64 / float64 / bool Tensor of shape (B,)
numpy scalar                       Tensor of shape (B,) and its dtype
str / bytes                        the list of them, unchanged
tuple or list                      a list with one batch per position (as PyTorch: a tuple becomes a list)
namedtuple / dict                  the same type with one batch per field / key
=================================  =====================================================================

Stacked Tensors are new leaves: a sample's autograd history is not carried into the batch.
"""

from __future__ import annotations

import collections.abc
import copy
from typing import Any

import numpy as np

from ...autograd import Tensor

_TEXT = (str, bytes)


def _stack(arrays: list[np.ndarray]) -> Tensor:
    """Stack same-shape arrays of shape S into a Tensor of shape (B, *S)."""
    first = arrays[0].shape
    for i, a in enumerate(arrays):
        if a.shape != first:
            raise RuntimeError(f"default_collate: stack expects each tensor to be equal size, but got "
                               f"{list(first)} at entry 0 and {list(a.shape)} at entry {i}")
        if a.dtype.kind in "SUOV":
            raise TypeError(f"default_collate: numpy arrays of dtype {a.dtype} (strings or objects) cannot be "
                            f"batched into a Tensor")
    return Tensor(np.stack(arrays))


def default_collate(batch: list[Any]) -> Any:
    """Collate a non-empty list of B samples into one batch (see the module docstring for the rules).

    Raises:
        RuntimeError: Tensors or arrays of different shapes, or sequences of different lengths.
        TypeError: A leaf of a type that cannot be batched (e.g. None or an object array).
    """
    if not batch:
        raise ValueError("default_collate: expected a non-empty list of samples, got an empty one")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack([t.numpy() for t in batch])
    if isinstance(elem, np.ndarray):
        return _stack([np.asarray(a) for a in batch])
    if isinstance(elem, (np.number, np.bool_)):
        return Tensor(np.asarray(batch))
    if isinstance(elem, bool):
        return Tensor(np.asarray(batch))  # bool if every sample is; int64 if ints are mixed in, as torch.tensor
    if isinstance(elem, int):
        return Tensor(np.asarray(batch, dtype=np.int64))
    if isinstance(elem, float):
        return Tensor(np.asarray(batch, dtype=np.float64))
    if isinstance(elem, _TEXT):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        collated = {key: default_collate([sample[key] for sample in batch]) for key in elem}
        if isinstance(elem, collections.abc.MutableMapping):
            clone = copy.copy(elem)
            clone.update(collated)
            return clone
        return collated
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a namedtuple
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch, strict=True)))
    if isinstance(elem, collections.abc.Sequence):
        sizes = {len(sample) for sample in batch}
        if len(sizes) > 1:
            raise RuntimeError(f"default_collate: each element in list of batch should be of equal size, got "
                               f"sizes {sorted(sizes)}")
        return [default_collate(list(position)) for position in zip(*batch, strict=True)]
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                    f"found {type(elem).__name__}")


def default_convert(data: Any) -> Any:
    """Convert one sample without batching (the loader's ``batch_size=None`` mode): numpy arrays and scalars
    become Tensors (strings and objects excepted), containers are converted leaf by leaf, the rest is
    returned unchanged."""
    if isinstance(data, np.ndarray):
        return data if data.dtype.kind in "SUOV" else Tensor(data)
    if isinstance(data, (np.number, np.bool_)):
        return Tensor(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        return {key: default_convert(value) for key, value in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, _TEXT):
        return [default_convert(d) for d in data]
    return data
