"""Threads: how many the kernels split a batch over, and numpy's OpenBLAS threads beside them.

The splitting itself is `tinygrad_cnn.kernels.parallel` (numpy only); this module owns the process-wide
side of it. As in PyTorch, the kernels use the available cores (at most 4) unless told otherwise:
nothing changes on import, and the first kernel big enough to split calls `set_num_threads(available_cores())`.
More than one thread pins OpenBLAS to one thread, a process-wide change: BLAS's own threads keep spinning
for a while after each call and compete with ours (docs/performance.md measures it).
`set_num_threads(1)` before that turns the splitting off and leaves numpy's BLAS alone.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable, Hashable

from ..kernels import parallel as kernel_threads
from ..kernels.parallel import even_slices

__all__ = ["available_cores", "blas_description", "even_slices", "get_num_threads", "pin_blas", "set_num_threads",
           "unpin_blas"]

_blas_threads_before: int | None = None  # OpenBLAS's count before the first pin_blas
_blas_owners: set[Hashable] = set()
_pool_owner = object()  # set_num_threads' pin


def _openblas() -> ctypes.CDLL | None:
    """The OpenBLAS that numpy loaded, found through the process's memory map (Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


# The exported names depend on how OpenBLAS was built: plain, or prefixed and suffixed as in numpy's wheels.
_NAMINGS = (("openblas_", ""), ("scipy_openblas_", "64_"), ("openblas_", "64_"))


@functools.cache  # the loaded library does not change
def _openblas_call(name: str, restype: type | None, *argtypes: type) -> Callable | None:
    """OpenBLAS's function `openblas_<name>` under whichever naming numpy's build uses, or None."""
    lib = _openblas()
    for prefix, suffix in _NAMINGS:
        fn = getattr(lib, prefix + name + suffix, None) if lib is not None else None
        if fn is not None:
            fn.restype, fn.argtypes = restype, list(argtypes)
            return fn
    return None


def _blas_thread_calls() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    getter = _openblas_call("get_num_threads", ctypes.c_int)
    setter = _openblas_call("set_num_threads", None, ctypes.c_int)
    return None if getter is None or setter is None else (getter, setter)


def blas_description() -> str:
    """Which BLAS kernel numpy runs here, e.g. "OpenBLAS, SkylakeX kernels, 2 threads" (the
    OPENBLAS_CORETYPE environment variable changes it), for benchmark headers."""
    corename, threads = _openblas_call("get_corename", ctypes.c_char_p), _blas_thread_calls()
    if corename is None or threads is None:
        return "not an OpenBLAS that we can query"
    return f"OpenBLAS, {corename().decode()} kernels, {threads[0]()} threads"


def pin_blas(owner: Hashable) -> bool:
    """Set numpy's OpenBLAS to one thread while `owner` needs it (batch threads here, or worker
    processes: BLAS threads of its own on top of those would compete for the same cores). The count
    it had comes back when the last owner calls `unpin_blas`. False (nothing changed) where numpy's
    BLAS is not an OpenBLAS whose thread count we can set."""
    global _blas_threads_before
    blas = _blas_thread_calls()
    if blas is None:
        return False
    if not _blas_owners:
        _blas_threads_before = blas[0]()
        blas[1](1)
    _blas_owners.add(owner)
    return True


def unpin_blas(owner: Hashable) -> None:
    global _blas_threads_before
    _blas_owners.discard(owner)
    if not _blas_owners and _blas_threads_before is not None:
        _blas_thread_calls()[1](_blas_threads_before)
        _blas_threads_before = None


def set_num_threads(n: int) -> int:
    """Use `n` threads for the big kernels (1: off). Returns the number in effect: 1 where numpy's BLAS
    is not an OpenBLAS whose thread count we can pin. `n > 1` sets OpenBLAS to one thread for the whole
    process (`pin_blas`); `set_num_threads(1)` gives it back. Like torch.set_num_threads, call it
    between steps, not while another thread is running tinygrad_cnn ops."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    kernel_threads.set_threads(1)
    if n > 1 and pin_blas(_pool_owner):
        kernel_threads.set_threads(n)
    else:
        n = 1
        unpin_blas(_pool_owner)
    return n


def get_num_threads() -> int:
    """The threads the big kernels use: set_num_threads' count, else the default, the available cores."""
    chosen = kernel_threads.get_threads()
    if chosen is None:  # what the default will be: more than one thread needs a BLAS we can pin
        return available_cores() if _blas_thread_calls() is not None else 1
    return chosen


def _default_threads() -> None:
    set_num_threads(available_cores())


kernel_threads.choose_default = _default_threads


def available_cores(limit: int = 4) -> int:
    """The cores this process may run on, at most `limit` (more than 2 is untested: our machine has 2)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(cores, limit)
