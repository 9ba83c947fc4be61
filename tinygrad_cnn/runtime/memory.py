"""Allocator and garbage-collector settings: process-wide levers that the library never pulls by itself.

Each is opt-in. `tinygrad-cnn train` and `bench` pull all three; a training script of your own can too:

    from tinygrad_cnn.runtime.memory import freeze_gc, gc_paused, tune_malloc
    tune_malloc()          # first thing, before the big arrays exist
    # ... imports ...
    freeze_gc()            # after the imports
    for x, y in loader:
        with gc_paused():  # one training step
            ...

What each one saves, measured, is in docs/performance.md ("The allocator and collector levers").
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import platform
from collections.abc import Iterator

# From glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # blocks below this come from the heap, not from mmap
TRIM_THRESHOLD_BYTES = 1024 * 1024 * 1024  # keep up to this much free memory at the heap top


def tune_malloc() -> bool:
    """Raise glibc's mmap threshold to 32 MiB and its trim threshold to 1 GiB for this process.

    A training step allocates and frees the same large temporaries (im2col columns, activations,
    gradients: a few MiB each) every time. With glibc's defaults each of them is a fresh `mmap`,
    page-faulted and zeroed, and unmapped on `free`; with these thresholds they stay in the heap and
    the next step reuses them. Memory use can stay near its peak after a large step, which is the
    point. Returns True if both settings took effect; False (and changes nothing) where the C library
    is not glibc, e.g. macOS, Windows or musl.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # mallopt returns 1 on success, 0 on error.
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))


def freeze_gc() -> None:
    """Move every object alive now (in practice: the imported modules) out of the cyclic garbage
    collector's view, with `gc.freeze()`.

    A training step creates thousands of small graph objects, which trigger collections, and a full
    collection walks every live object: hundreds of thousands once PyTorch or matplotlib is imported.
    Call it once after the imports; later garbage is collected as usual.
    """
    gc.freeze()


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Switch the cyclic garbage collector off inside the block, and back to how it was afterwards.

    Meant for one training step: a step's graph holds no reference cycles, so reference counting frees
    it all as soon as the step ends and the collector would only re-walk the heap. Do not wrap a whole
    epoch: garbage that does form cycles would pile up until the block ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
