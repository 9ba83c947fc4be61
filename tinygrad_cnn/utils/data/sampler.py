"""Samplers: the order in which a :class:`DataLoader` visits a dataset's indices, as in ``torch.utils.data``.

Random samplers without a generator draw one seed from the library's generator (``tinygrad_cnn.manual_seed``)
each time an epoch starts, as PyTorch's draw from its default generator: epochs differ, and the whole run is
fixed by the seed. With a ``numpy.random.Generator`` they draw from it directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence, Sized
from itertools import islice

import numpy as np

from ...rng import generator as default_generator
from ._checks import check_generator, is_int


def _epoch_generator(generator: np.random.Generator | None) -> np.random.Generator:
    """The generator for one epoch: ``generator`` itself, or one seeded by a draw from the library's."""
    if generator is not None:
        return generator
    return np.random.default_rng(int(default_generator().integers(2**63)))


class Sampler:
    """Base class: an iterable of dataset indices, usually with ``__len__``."""

    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError(f"{type(self).__name__}: subclasses of Sampler must define __iter__")


class SequentialSampler(Sampler):
    """Indices 0, 1, ..., len(data_source) - 1 in order."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random order of the indices of ``data_source``, new every epoch.

    Args:
        data_source: The dataset (only its length is used).
        replacement: Draw ``num_samples`` indices independently instead of permuting.
        num_samples: Indices per epoch, default ``len(data_source)``; without replacement, more than that
            chains several permutations (as PyTorch).
        generator: A ``numpy.random.Generator``; None uses the library's (see the module docstring).
    """

    def __init__(self, data_source: Sized, replacement: bool = False, num_samples: int | None = None,
                 generator: np.random.Generator | None = None) -> None:
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement must be a bool, got {replacement!r}")
        if num_samples is not None and (not is_int(num_samples) or num_samples <= 0):
            raise ValueError(f"RandomSampler: num_samples must be a positive integer, got {num_samples!r}")
        check_generator("RandomSampler", generator)
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if self.num_samples <= 0:
            raise ValueError(f"RandomSampler: num_samples must be a positive integer, got {self.num_samples} "
                             f"(the dataset has {len(data_source)} samples)")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else int(self._num_samples)

    def __iter__(self) -> Iterator[int]:
        n, count = len(self.data_source), self.num_samples
        rng = _epoch_generator(self.generator)
        if self.replacement:
            order = rng.integers(0, n, size=count)
        else:
            order = np.concatenate([rng.permutation(n) for _ in range(-(-count // n))])[:count]
        return iter(order.tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a random order, new every epoch."""

    def __init__(self, indices: Sequence[int], generator: np.random.Generator | None = None) -> None:
        check_generator("SubsetRandomSampler", generator)
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        order = _epoch_generator(self.generator).permutation(len(self.indices)).tolist()
        return iter([self.indices[i] for i in order])

    def __len__(self) -> int:
        return len(self.indices)


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size`` (the last one shorter unless
    ``drop_last``)."""

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool) -> None:
        if not is_int(batch_size) or batch_size <= 0:
            raise ValueError(f"BatchSampler: batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"BatchSampler: drop_last must be a bool, got {drop_last!r}")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        return self._batches(iter(self.sampler))

    def _batches(self, indices: Iterator[int]) -> Iterator[list[int]]:
        while batch := list(islice(indices, self.batch_size)):
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch

    def __len__(self) -> int:
        full, rest = divmod(len(self.sampler), self.batch_size)  # type: ignore[arg-type]
        return full if self.drop_last or rest == 0 else full + 1

