"""Map-style datasets (``dataset[i]`` and ``len(dataset)``), as in ``torch.utils.data``.

Besides ``__getitem__``, a dataset may offer ``__getbatch__(indices)``: the batch that
``default_collate([dataset[i] for i in indices])`` would give, computed in one vectorised step.
:class:`DataLoader` uses it when it collates with :func:`default_collate`; returning ``NotImplemented``
(as :class:`Dataset` does) makes it fetch the samples one by one. A subclass that overrides ``__getitem__``
is always read item by item, so ``__getbatch__`` never bypasses a user's own ``__getitem__``. The name is
this library's, in the manner of PyTorch's ``__getitems__``: a dunder cannot clash with a method a user's
dataset already has.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ...autograd import Tensor
from ...rng import generator as default_generator
from ._checks import check_generator, check_index, check_indices, is_int


class Dataset:
    """Base class of map-style datasets: subclasses define ``__getitem__`` and usually ``__len__``."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__}: subclasses of Dataset must define __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])

    def __getbatch__(self, indices: np.ndarray) -> Any:
        """The collated batch of the samples at ``indices`` (int array of shape (B,)), or ``NotImplemented``
        to be read item by item (the default)."""
        return NotImplemented


def _own_getitem(dataset: Dataset, cls: type) -> bool:
    """True if ``dataset`` reads its items with ``cls.__getitem__``, i.e. a subclass did not replace it."""
    return type(dataset).__getitem__ is cls.__getitem__


class TensorDataset(Dataset):
    """Samples are the i-th rows of each tensor: ``dataset[i] == (t0[i], t1[i], ...)``.

    Args:
        *tensors: Tensors (or numpy arrays, wrapped without copying) with the same first dimension N.
    """

    def __init__(self, *tensors: Tensor | np.ndarray) -> None:
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor, got none")
        for i, t in enumerate(tensors):
            if not isinstance(t, (Tensor, np.ndarray)):
                raise TypeError(f"TensorDataset: tensor {i} is a {type(t).__name__}, expected a Tensor or ndarray")
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: tensor {i} is 0-dimensional; each needs a first (sample) axis")
        sizes = [t.shape[0] for t in tensors]
        if len(set(sizes)) > 1:
            listed = ", ".join(f"tensor {i}: {n}" for i, n in enumerate(sizes))
            raise ValueError(f"TensorDataset: size mismatch between tensors, first dimensions are {listed}")
        self.tensors: tuple[Tensor, ...] = tuple(t if isinstance(t, Tensor) else Tensor(t) for t in tensors)

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        i = check_index("TensorDataset", index, len(self))
        return tuple(Tensor(t.numpy()[i]) for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __getbatch__(self, indices: np.ndarray) -> list[Tensor] | Any:
        """One Tensor per tensor of the dataset, each of shape (B, *row shape): a copy of its rows ``indices``."""
        if not _own_getitem(self, TensorDataset):
            return NotImplemented
        check_indices("TensorDataset", indices, len(self))
        return [Tensor(t.numpy()[indices]) for t in self.tensors]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``: ``Subset(d, idx)[i] == d[idx[i]]``."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices
        self._index_array = np.asarray(indices, dtype=np.int64).reshape(-1)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.indices[check_index("Subset", index, len(self))]]

    def __len__(self) -> int:
        return len(self.indices)

    def __getbatch__(self, indices: np.ndarray) -> Any:
        """The underlying dataset's ``__getbatch__`` at the mapped indices, if it has one."""
        fetch_batch = getattr(self.dataset, "__getbatch__", None)
        if fetch_batch is None or not _own_getitem(self, Subset):
            return NotImplemented
        check_indices("Subset", indices, len(self))
        return fetch_batch(self._index_array[indices])


class ConcatDataset(Dataset):
    """The samples of several datasets one after another (read item by item)."""

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: expected at least one dataset, got none")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]).tolist())

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int) -> Any:
        i = check_index("ConcatDataset", index, len(self))
        which = bisect.bisect_right(self.cumulative_sizes, i)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][i - start]


def _split_lengths(n: int, lengths: Sequence[int | float]) -> list[int]:
    """Lengths as sample counts; fractions summing to 1 become counts as PyTorch computes them: the floor of
    each share, then one more sample to each split in turn until all N are assigned."""
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: expected at least one length, got none")
    if all(is_int(x) for x in lengths):
        counts = [int(x) for x in lengths]
        if min(counts) < 0:
            raise ValueError(f"random_split: lengths must not be negative, got {lengths}")
    elif all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in lengths) and math.isclose(
            sum(lengths), 1) and sum(lengths) <= 1:
        for x in lengths:
            if not 0 <= x <= 1:
                raise ValueError(f"random_split: fraction {x} is not between 0 and 1 (lengths {lengths})")
        counts = [math.floor(n * x) for x in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
    else:
        raise ValueError(f"random_split: lengths must be sample counts (ints) or fractions summing to 1, "
                         f"got {lengths}")
    if sum(counts) != n:
        raise ValueError(f"random_split: the lengths {counts} sum to {sum(counts)}, but the dataset has {n} "
                         f"samples")
    return counts


def random_split(dataset: Any, lengths: Sequence[int | float],
                 generator: np.random.Generator | None = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random :class:`Subset` s of the given lengths.

    Args:
        dataset: Any sized dataset of N samples.
        lengths: Sample counts summing to N, or fractions summing to 1 (see :func:`_split_lengths`).
        generator: Draws the permutation; defaults to the library's generator (``tinygrad_cnn.manual_seed``).
            Nothing is drawn when the arguments are rejected.
    """
    check_generator("random_split", generator)
    counts = _split_lengths(len(dataset), lengths)
    order = (default_generator() if generator is None else generator).permutation(sum(counts)).tolist()
    bounds = np.cumsum([0, *counts]).tolist()
    return [Subset(dataset, order[start:stop]) for start, stop in zip(bounds[:-1], bounds[1:], strict=True)]
