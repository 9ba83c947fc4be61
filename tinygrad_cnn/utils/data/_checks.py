"""Argument checks shared by the datasets, samplers and the loader; every message names the class and value."""

from __future__ import annotations

from typing import Any

import numpy as np


def is_int(value: Any) -> bool:
    """True for Python and numpy integers, but not for bools (``batch_size=True`` is surely a mistake)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_index(owner: str, index: Any, length: int) -> int:
    """Return ``index`` as an int in ``[0, length)``, negative indices counting from the end as in PyTorch.

    Raises:
        TypeError: ``index`` is not an integer.
        IndexError: ``index`` is outside ``[-length, length)``.
    """
    if not is_int(index):
        raise TypeError(f"{owner}: expected an integer index, got {index!r} of type {type(index).__name__}")
    if not -length <= index < length:
        raise IndexError(f"{owner}: index {index} is out of range for a dataset of {length} samples")
    return int(index) % length


def check_indices(owner: str, indices: np.ndarray, length: int) -> None:
    """Check every entry of an integer index array of shape (B,) as :func:`check_index` checks one index."""
    if indices.size and not (-length <= indices.min() and indices.max() < length):
        bad = indices[(indices < -length) | (indices >= length)][0]
        raise IndexError(f"{owner}: index {bad} is out of range for a dataset of {length} samples")


def check_generator(owner: str, generator: Any) -> None:
    """Accept None (use the library's generator) or a ``numpy.random.Generator`` such as
    ``tinygrad_cnn.Generator()``."""
    if generator is not None and not isinstance(generator, np.random.Generator):
        raise TypeError(f"{owner}: generator must be a numpy.random.Generator (e.g. tinygrad_cnn.Generator()) or "
                        f"None, got {type(generator).__name__}")
