"""Mini-batch iteration over in-memory numpy arrays.

Deliberately independent of the autograd engine: batches are plain numpy
arrays, and the training code decides how to wrap them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np


class DataLoader:
    """Iterate over ``(x, y)`` in mini-batches ``(xb, yb)`` of numpy arrays.

    Each ``for`` loop over the loader is one epoch of ``len(loader)`` batches.
    With ``shuffle=True`` every epoch draws a fresh permutation from the
    loader's own generator, so epochs differ while the whole sequence is fixed
    by ``seed``. The generator advances exactly once per epoch, when iteration
    starts: a :meth:`state_dict` taken between epochs and restored with
    :meth:`load_state_dict` replays the following epochs bit-identically.

    Unshuffled batches are views into ``x`` and ``y`` (shuffled ones are
    copies), so do not modify batches in place.

    Args:
        x: Inputs, indexed along the first axis.
        y: Targets, with ``len(y) == len(x)``.
        batch_size: Samples per batch, at least 1.
        shuffle: Visit the samples in a new random order every epoch.
        drop_last: Skip the final batch if it has fewer than ``batch_size`` samples.
        seed: Seed for the shuffling generator; None seeds from the OS.
        transform: Applied to each ``xb`` (not ``yb``) before it is yielded,
            e.g. :func:`tinygrad_cnn.data.normalize`.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int = 64,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        # bool is an int subclass, but batch_size=True is surely a mistake.
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1
        ):
            raise ValueError(
                f"batch_size: expected an integer >= 1, got {batch_size!r}"
            )
        x, y = np.asarray(x), np.asarray(y)
        if len(x) != len(y):
            raise ValueError(
                f"x, y: expected the same number of samples, "
                f"got len(x)={len(x)} and len(y)={len(y)}"
            )
        if transform is not None and not callable(transform):
            raise TypeError(
                f"transform: expected a callable or None, got {transform!r}"
            )
        self.x = x
        self.y = y
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.transform = transform
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        """Return the number of batches per epoch."""
        full, rest = divmod(len(self.x), self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # Drawn here rather than inside the generator, which would only run
        # on the first next(): the state must advance as soon as an epoch begins.
        order = self._rng.permutation(len(self.x)) if self.shuffle else None
        return self._batches(order)

    def _batches(
        self, order: np.ndarray | None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            batch = slice(start, start + self.batch_size)
            if order is None:
                xb, yb = self.x[batch], self.y[batch]
            else:
                xb, yb = self.x[order[batch]], self.y[order[batch]]
            yield (self.transform(xb) if self.transform is not None else xb), yb

    def state_dict(self) -> dict[str, Any]:
        """Return the shuffling generator's state (numpy ``bit_generator.state``).

        A nested dict of str and int only, so it can be stored without pickle,
        e.g. as JSON. The ints of the default PCG64 state are 128-bit: do not
        store them in int64 arrays.
        """
        return self._rng.bit_generator.state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a generator state returned by :meth:`state_dict`."""
        expected = type(self._rng.bit_generator).__name__
        found = state.get("bit_generator")
        if found != expected:
            raise ValueError(
                f"state: expected the state of a {expected} generator, "
                f"got bit_generator={found!r}"
            )
        self._rng.bit_generator.state = dict(state)
