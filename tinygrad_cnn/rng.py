"""The one random number generator behind parameter initialisation and dropout.

`manual_seed(n)` makes model construction (and everything else drawn from here) reproducible.
Data shuffling has its own generator in `data.DataLoader`, so that resuming it does not depend on
how many parameters were initialised.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the library's generator (as `torch.manual_seed`); returns it."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator() -> np.random.Generator:
    return _generator


def get_rng_state() -> dict[str, Any]:
    """The generator's state: plain ints and strings (JSON-able, so checkpoints need no pickle)."""
    return _generator.bit_generator.state


def set_rng_state(state: dict[str, Any]) -> None:
    _generator.bit_generator.state = state
