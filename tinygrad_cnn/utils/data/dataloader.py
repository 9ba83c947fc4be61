"""``DataLoader``: batches of Tensors from a map-style dataset, with ``torch.utils.data.DataLoader``'s arguments.

Each batch is fetched in one vectorised step when the loader collates with :func:`default_collate` and the
dataset's ``__getbatch__`` can produce it (:class:`TensorDataset`, ``vision.datasets.MNIST`` with
``Compose(ToTensor(), Normalize(...))``, and :class:`Subset` s of those); otherwise sample by sample through
``dataset.__getitems__`` (if defined, as PyTorch) or ``dataset[i]``, then ``collate_fn``. Both give the same
batch.

Loading runs in the calling process: ``num_workers > 0`` is accepted (PyTorch's checks apply) but starts no
worker processes, since the vectorised path leaves little to overlap; ``pin_memory`` has no meaning on the
CPU and is ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from ._checks import check_generator, is_int
from .collate import default_collate, default_convert
from .sampler import BatchSampler, RandomSampler, SequentialSampler


class DataLoader:
    """Iterate over ``dataset`` in batches; each ``for`` loop over the loader is one epoch.

    Args:
        dataset: A map-style dataset (``__getitem__`` with int indices, and ``__len__`` unless a sampler is
            given).
        batch_size: Samples per batch, >= 1; None yields the samples one by one, converted by
            :func:`default_convert` (or ``collate_fn``).
        shuffle: Visit the samples in a new random order every epoch (a :class:`RandomSampler`), drawn from
            ``generator`` or else the library's generator, so ``tinygrad_cnn.manual_seed`` fixes the order.
        sampler: An iterable of indices, instead of ``shuffle``.
        batch_sampler: An iterable of index lists, instead of ``batch_size``, ``shuffle``, ``sampler`` and
            ``drop_last``.
        num_workers: Accepted for PyTorch compatibility; loading stays in this process.
        collate_fn: Turns a list of samples into a batch; default :func:`default_collate`.
        pin_memory: Ignored (CPU only).
        drop_last: Skip a last batch smaller than ``batch_size``.
        timeout, worker_init_fn, prefetch_factor, persistent_workers: Checked as PyTorch checks them; no
            workers are started, so they have no effect.
        generator: ``numpy.random.Generator`` for ``shuffle``.
    """

    def __init__(self, dataset: Any, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Iterable[int] | None = None, batch_sampler: Iterable[list[int]] | None = None,
                 num_workers: int = 0, collate_fn: Callable[[list[Any]], Any] | None = None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable[[int], None] | None = None,
                 generator: np.random.Generator | None = None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False) -> None:
        if batch_size is not None and (not is_int(batch_size) or batch_size <= 0):
            raise ValueError(f"DataLoader: batch_size must be a positive integer or None, got {batch_size!r}")
        if not is_int(num_workers) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be a non-negative integer, got {num_workers!r}")
        if timeout < 0:
            raise ValueError(f"DataLoader: timeout must be non-negative, got {timeout!r}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(f"DataLoader: prefetch_factor={prefetch_factor!r} needs num_workers > 0 (it is "
                             f"the number of batches each worker loads ahead)")
        if num_workers == 0 and persistent_workers:
            raise ValueError("DataLoader: persistent_workers=True needs num_workers > 0")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable or None, got {collate_fn!r}")
        check_generator("DataLoader", generator)
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(f"DataLoader: batch_sampler option is mutually exclusive with batch_size, "
                                 f"shuffle, sampler, and drop_last (got batch_size={batch_size!r}, "
                                 f"shuffle={shuffle!r}, sampler={sampler!r}, drop_last={drop_last!r})")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        if sampler is None:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn or (default_collate if batch_sampler is not None else default_convert)
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.generator = generator
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers

    def __len__(self) -> int:
        """Batches per epoch (samples per epoch with ``batch_size=None``)."""
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        # The sampler is started here, not on the first next(): an epoch's random order is drawn as soon as
        # the loop begins.
        if self.batch_sampler is None:
            return map(self._fetch_one, iter(self.sampler))
        return map(self._fetch, iter(self.batch_sampler))

    def _fetch_one(self, index: int) -> Any:
        return self.collate_fn(self.dataset[index])

    def _fetch(self, indices: list[int]) -> Any:
        """The batch of the samples at ``indices``: vectorised if the dataset can, else item by item."""
        fetch_batch = getattr(self.dataset, "__getbatch__", None)
        if self.collate_fn is default_collate and fetch_batch is not None:
            batch = fetch_batch(np.asarray(indices, dtype=np.int64).reshape(-1))
            if batch is not NotImplemented:
                return batch
        get_items = getattr(self.dataset, "__getitems__", None)
        samples = get_items(indices) if get_items is not None else [self.dataset[i] for i in indices]
        return self.collate_fn(samples)
