"""Batch parallelism for the kernels: a batch's slices computed on several threads at once.

numpy releases the GIL inside its loops and BLAS calls, so threads that work on disjoint slices of a
batch run on separate cores. Handing work to another thread costs tens of microseconds (more, the
longer the worker slept), so only kernels worth hundreds of microseconds split (`MIN_PARALLEL_MACS`).

numpy only: this module knows nothing of BLAS's own threads. `tinygrad_cnn.runtime.threads.set_num_threads`
pins OpenBLAS to one thread and then calls `set_threads` here. Until something calls `set_threads`, the first
kernel worth splitting asks `choose_default` (installed by the runtime layer) how many threads to use.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

import numpy as np

P = TypeVar("P")
T = TypeVar("T")

# Below this many multiply-adds a kernel runs on the calling thread: a hand-off would cost more than it saves.
MIN_PARALLEL_MACS = 1 << 20

_state = threading.local()  # .worker is True on the pool's threads (and in `serial`): they never hand work on
_threads: int | None = None  # None: not chosen yet
_pool: ThreadPoolExecutor | None = None
_choosing = threading.Lock()  # several threads may reach the first big kernel at once


def _one_thread() -> None:
    set_threads(1)


# Called once, by the first kernel worth splitting, while no count is chosen; it must call set_threads.
choose_default: Callable[[], None] = _one_thread


def set_threads(n: int) -> None:
    """Split big kernels over `n` threads (the caller's and n - 1 workers); 1 turns splitting off."""
    global _threads, _pool
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None
    if n > 1:
        _pool = ThreadPoolExecutor(n - 1, thread_name_prefix="tinygrad_cnn", initializer=_mark_worker)
    _threads = n


def get_threads() -> int | None:
    """The count in effect, or None while none is chosen (the default applies at the first big kernel)."""
    return _threads


def _mark_worker() -> None:
    _state.worker = True


def _after_fork_in_child() -> None:
    # A forked child has none of the parent's threads: work handed to the copied pool would never run.
    # One thread, chosen: worker processes share the cores with their parent.
    global _pool, _threads
    _pool, _threads = None, 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@contextlib.contextmanager
def serial() -> Iterator[None]:
    """Inside the block, this thread's kernels run without handing work to other threads (for a process
    that shares the cores with worker processes)."""
    was = getattr(_state, "worker", False)
    _state.worker = True
    try:
        yield
    finally:
        _state.worker = was


def even_slices(n: int, count: int) -> list[slice]:
    """range(n) cut into `count` contiguous slices whose sizes differ by at most one."""
    bounds = [n * i // count for i in range(count + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def batch_parts(n: int, chunk: int, macs: int) -> list[slice]:
    """Split a batch of n into slices of at most `chunk` items, as many per thread, when the kernel's
    `macs` (multiply-adds for the whole batch) make splitting over threads pay; else chunks only."""
    if macs < MIN_PARALLEL_MACS or getattr(_state, "worker", False):
        if chunk >= n:  # the common small kernel: one part, without the arithmetic below
            return [slice(0, n)]
        threads = 1
    else:
        if _threads is None:
            with _choosing:
                if _threads is None:
                    choose_default()
        threads = _threads
    return even_slices(n, max(1, min(n, threads * -(-n // (threads * chunk)))))  # a multiple of the threads


def map_parts(fn: Callable[[P], T], parts: Sequence[P]) -> list[T]:
    """[fn(part) for part in parts], the parts divided between the threads in contiguous runs (the
    calling thread takes the first run). Every run has finished when this returns or raises."""
    pool = _pool
    runs = min(_threads or 1, len(parts))
    if pool is None or runs < 2 or getattr(_state, "worker", False):
        return [fn(p) for p in parts]
    ours, *theirs = even_slices(len(parts), runs)
    errors = np.geterr()  # numpy's error settings are per thread: the caller's apply to its parts on any thread

    def run_parts(ps: Sequence[P]) -> list[T]:
        with np.errstate(**errors):
            return [fn(p) for p in ps]

    futures = [pool.submit(run_parts, parts[run]) for run in theirs]
    try:
        results = [fn(p) for p in parts[ours]]
    finally:
        wait(futures)  # even if our run raised: theirs write into arrays the caller owns
    return results + [r for f in futures for r in f.result()]
