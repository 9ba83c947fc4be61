"""Batch parallelism: the convolutions split their batch over threads.

numpy releases the GIL inside its loops and BLAS calls, so threads that work on disjoint slices of a
batch run on separate cores. Handing work to another thread costs from ~10 us to ~80 us on our
2-core machine (more, the longer the worker slept: `benchmarks/step_anatomy.py`), so only kernels
worth hundreds of microseconds split (`MIN_PARALLEL_MACS`).

Off by default: one thread, and numpy's BLAS keeps its own threads. `set_num_threads(n)` turns it on
and pins OpenBLAS to one thread: BLAS's own threads keep spinning for a while after each call and
compete with ours (`benchmarks/step_anatomy.py`: with OpenBLAS left on 2 threads, a LeNet step ran
slower than with no threads at all, in each of three runs). That is a process-wide change, which is
why the library never makes it on import; the `tinygrad-cnn` command does.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

P = TypeVar("P")
T = TypeVar("T")

# Below this many multiply-adds a kernel runs on the calling thread: a hand-off would cost more than it saves.
MIN_PARALLEL_MACS = 1 << 20

_state = threading.local()  # .worker is True on the pool's threads: they never hand work on
_threads = 1
_pool: ThreadPoolExecutor | None = None
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


@functools.cache  # the loaded library does not change
def _blas_thread_calls() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    lib = _openblas()
    # The exported names depend on how OpenBLAS was built: plain, or prefixed and suffixed as in numpy's wheels.
    for get, set_ in (("openblas_get_num_threads", "openblas_set_num_threads"),
                      ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
                      ("openblas_get_num_threads64_", "openblas_set_num_threads64_")):
        if lib is not None and hasattr(lib, get) and hasattr(lib, set_):
            getter, setter = getattr(lib, get), getattr(lib, set_)
            getter.restype, setter.argtypes = ctypes.c_int, [ctypes.c_int]
            return getter, setter
    return None


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
    global _threads, _pool
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None
    if n > 1 and pin_blas(_pool_owner):
        _pool = ThreadPoolExecutor(n - 1, thread_name_prefix="tinygrad_cnn", initializer=_mark_worker)
    else:
        n = 1
        unpin_blas(_pool_owner)
    _threads = n
    return n


def get_num_threads() -> int:
    return _threads


def available_cores(limit: int = 4) -> int:
    """The cores this process may run on, at most `limit` (more than 2 is untested: our machine has 2)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(cores, limit)


def _mark_worker() -> None:
    _state.worker = True


def _after_fork_in_child() -> None:
    # A forked child has none of the parent's threads: work handed to the copied pool would never run.
    global _pool, _threads
    _pool, _threads = None, 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def even_slices(n: int, count: int) -> list[slice]:
    """range(n) cut into `count` contiguous slices whose sizes differ by at most one."""
    bounds = [n * i // count for i in range(count + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def batch_parts(n: int, chunk: int, macs: int) -> list[slice]:
    """Split a batch of n into slices of at most `chunk` items, as many per thread, when the kernel's
    `macs` (multiply-adds for the whole batch) make splitting over threads pay; else chunks only."""
    threads = _threads if macs >= MIN_PARALLEL_MACS and not getattr(_state, "worker", False) else 1
    return even_slices(n, max(1, min(n, threads * -(-n // (threads * chunk)))))  # a multiple of the threads


def map_parts(fn: Callable[[P], T], parts: Sequence[P]) -> list[T]:
    """[fn(part) for part in parts], the parts divided between the threads in contiguous runs (the
    calling thread takes the first run). Every run has finished when this returns or raises."""
    pool = _pool
    runs = min(_threads, len(parts))
    if pool is None or runs < 2 or getattr(_state, "worker", False):
        return [fn(p) for p in parts]
    ours, *theirs = even_slices(len(parts), runs)
    futures = [pool.submit(lambda ps=parts[run]: [fn(p) for p in ps]) for run in theirs]
    try:
        results = [fn(p) for p in parts[ours]]
    finally:
        wait(futures)  # even if our run raised: theirs write into arrays the caller owns
    return results + [r for f in futures for r in f.result()]
