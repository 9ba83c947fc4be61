"""The one random number generator behind parameter initialisation and dropout.

`manual_seed(n)` makes model construction (and everything else drawn from here) reproducible.
Data shuffling has its own generator in `data.DataLoader`, so that resuming it does not depend on
how many parameters were initialised.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .devices import CPU, device, resolve


class Generator(np.random.Generator):
    """PyTorch's `torch.Generator`: a numpy Generator (so it goes wherever the library takes one: factories'
    and random_split's `generator=`, DataLoader) with PyTorch's seeding methods.
    `Generator().manual_seed(n)` draws the same numbers as `np.random.default_rng(n)`."""

    def __init__(self, device: Any = "cpu") -> None:
        resolve(device, "Generator")
        self._initial_seed = int(np.random.SeedSequence().entropy % 2**63)
        super().__init__(np.random.PCG64(self._initial_seed))

    def manual_seed(self, seed: int) -> Generator:
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
        self._initial_seed = int(seed)
        self.bit_generator.state = np.random.PCG64(self._initial_seed).state
        return self

    def seed(self) -> int:
        """Reseed from fresh entropy; returns the new seed."""
        self.manual_seed(int(np.random.SeedSequence().entropy % 2**63))
        return self._initial_seed

    def initial_seed(self) -> int:
        return self._initial_seed

    def get_state(self) -> dict[str, Any]:
        return self.bit_generator.state

    def set_state(self, state: dict[str, Any]) -> Generator:
        self.bit_generator.state = state
        return self

    @property
    def device(self) -> device:
        return CPU


_generator: np.random.Generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Reseed the library's generator (as `torch.manual_seed`); returns it."""
    global _generator
    _generator = Generator().manual_seed(seed)
    return _generator


def seed() -> int:
    """Reseed the library's generator from fresh entropy (torch.seed); returns the seed."""
    return _generator.seed() if isinstance(_generator, Generator) else manual_seed(
        int(np.random.SeedSequence().entropy % 2**63)).initial_seed()


def initial_seed() -> int:
    return _generator.initial_seed() if isinstance(_generator, Generator) else 0


def generator() -> np.random.Generator:
    return _generator


def get_rng_state() -> dict[str, Any]:
    """The generator's state: plain ints and strings (JSON-able, so checkpoints need no pickle)."""
    return _generator.bit_generator.state


def set_rng_state(state: dict[str, Any]) -> None:
    _generator.bit_generator.state = state
