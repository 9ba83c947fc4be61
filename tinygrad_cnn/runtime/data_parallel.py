"""Data parallelism over processes: each step's batch is split between this process and forked workers.

Every process computes the gradient of its slice of the batch on its own copy of the model; the
workers hand theirs back through shared memory and this process adds them up. Why processes and not
threads: numpy gives up and retakes the GIL around every call, so threads splitting each kernel of a
batch-64 LeNet step hand work back and forth dozens of times per step and gain little, while
processes exchange two messages per step (`tinygrad-cnn bench` times both, interleaved). The cost
is a copy of the parameters into shared memory before each step and one of the gradients out of it
after (LeNet: 0.25 MB each way).

    dp = DataParallel(model, lambda x, y: F.cross_entropy(model(Tensor(x)), y))
    for x, y in loader:
        optimizer.zero_grad()
        loss = dp.value_and_grad(x, y)  # a float: the batch's mean loss; every .grad now holds the batch's
        optimizer.step()

`loss_fn` must return the *mean* loss over the slice it is given (as `F.cross_entropy` does by
default): the batch's mean is the slices' means weighted by their sizes, and so is its gradient. (A
summed loss, `reduction="sum"`, would come out divided by the batch size.)

Workers are forked (Linux and other Unix; `processes=1` everywhere else): a worker starts as a copy of
this process, model and `loss_fn` included, so nothing is pickled. Before each step the worker takes
the current parameter values, each module's train/eval mode and each parameter's `requires_grad`;
everything else it sees is as it was at the fork: other module attributes (`Dropout.p`), `Config`
switches such as `detect_anomaly()`, what `loss_fn` captured, numpy's and Python's global random
generators. Which parameters the model has must not change (checked each step: make a new one).
Each worker's library RNG (dropout) is seeded from this process's generator when it is forked, so runs
are reproducible for a given seed and process count, and no two processes draw the same masks.
"""

from __future__ import annotations

import contextlib
import mmap
import multiprocessing
import os
import select
import signal
import struct
import time
import traceback
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection

import numpy as np

from .. import rng
from ..autograd import Tensor, grad
from ..functional import positive_int
from ..kernels import parallel as kernel_threads
from ..nn import BatchNorm1d, BatchNorm2d, Module
from . import threads as parallel

# After finishing its slice each side polls its pipe for this long before sleeping in the kernel: the
# other side's message is due soon, and waking a sleeping process is slow on a VM (the cost is
# measured by `benchmarks/step_anatomy.py`, part 7 of its output, which times a step both ways).
SPIN_SECONDS = 0.002
_REQUEST = struct.Struct("qq")  # items in the worker's slice, items in the whole batch
_LOSS = struct.Struct("d")


_live_workers: weakref.WeakSet[_Worker] = weakref.WeakSet()


class WorkerError(RuntimeError):
    """A worker process failed: its loss_fn raised (the worker's traceback is in the message) or it died."""


@dataclass(frozen=True)
class _Layout:
    """The arrays of a worker's shared memory, as (shape, dtype): the parameters, their gradients, a
    has-gradient flag each, the modes (module training flags, then parameter requires_grad flags), and
    room for `capacity` items of each batch array. A step that does not fit starts new workers."""

    params: tuple[tuple[tuple[int, ...], np.dtype], ...]
    items: tuple[tuple[tuple[int, ...], np.dtype], ...]  # per batch array: one item's shape, dtype
    modes: int
    capacity: int

    def fits(self, step: _Layout) -> bool:
        return (self.params, self.items, self.modes) == (step.params, step.items, step.modes) and \
            step.capacity <= self.capacity

    def arrays(self) -> list[tuple[tuple[int, ...], np.dtype]]:
        flags = ((len(self.params),), np.dtype(bool)), ((self.modes,), np.dtype(bool))
        return [*self.params, *self.params, *flags, *(((self.capacity, *shape), dtype) for shape, dtype in self.items)]

    def offsets(self) -> tuple[list[int], int]:
        """Where each of `arrays()` starts (each on its own cache line), and the bytes they need."""
        offsets, end = [], 0
        for shape, dtype in self.arrays():
            offsets.append(-(-end // 64) * 64)
            end = offsets[-1] + int(np.prod(shape)) * dtype.itemsize
        return offsets, max(end, 1)


class _Shared:
    """A worker's shared memory (anonymous and shared, so a forked child sees the same pages), as arrays."""

    def __init__(self, layout: _Layout) -> None:
        offsets, size = layout.offsets()
        self.memory = mmap.mmap(-1, size)
        arrays = [np.frombuffer(self.memory, dtype, int(np.prod(shape)), offset).reshape(shape)
                  for (shape, dtype), offset in zip(layout.arrays(), offsets)]
        n = len(layout.params)
        self.params, self.grads = arrays[:n], arrays[n:2 * n]
        self.has_grad, self.modes = arrays[2 * n], arrays[2 * n + 1]
        self.batch = arrays[2 * n + 2:]


class _Worker:
    """One forked process, its pipe and its shared memory."""

    def __init__(self, model: _Model, layout: _Layout, index: int) -> None:
        self.layout, self.shared = layout, _Shared(layout)
        context = multiprocessing.get_context("fork")
        self.conn, child_end = context.Pipe()
        # The child must close every parent end of a pipe it inherits, ours and those of every other live
        # worker (of any DataParallel): holding one would keep that worker from seeing EOF when it is closed.
        parent_ends = [w.conn for w in _live_workers] + [self.conn]
        self.process = context.Process(target=_serve, name=f"tinygrad_cnn-data-parallel-{index}", daemon=True,
                                       args=(model, self.shared, child_end, index, parent_ends))
        self.process.start()
        child_end.close()
        _live_workers.add(self)
        self.wait = _waiter(self.conn)

    def request(self, model: _Model, modes: np.ndarray, arrays: list[np.ndarray], part: slice, total: int) -> None:
        """Hand the worker the current parameters and modes and its slice of the batch, and start it."""
        for shared, p in zip(self.shared.params, model.params):
            np.copyto(shared, p.data)
        self.shared.modes[:] = modes
        for shared, array in zip(self.shared.batch, arrays):
            np.copyto(shared[:part.stop - part.start], array[part])
        self.conn.send_bytes(_REQUEST.pack(part.stop - part.start, total))

    def reply(self) -> tuple[float | None, str | None]:
        """(its share of the loss, None) after a successful slice; (None, what went wrong) otherwise."""
        try:
            self.wait(SPIN_SECONDS)
            message = self.conn.recv_bytes()
        except (EOFError, OSError):
            self.process.join(1.0)
            return None, f"the worker process exited (exit code {self.process.exitcode})"
        if message[:1] == b"K":
            return _LOSS.unpack(message[1:])[0], None
        return None, message[1:].decode("utf-8", "replace")

    def close(self) -> None:
        _live_workers.discard(self)
        self.conn.close()  # the worker sees EOF and exits
        self.process.join(2.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _waiter(conn: Connection) -> Callable[[float], None]:
    """wait(spin): poll `conn` for up to `spin` seconds; the caller's recv then sleeps if nothing came.
    A `select.poll` object made once: `Connection.poll` builds a new selector on every call."""
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)

    def wait(spin: float) -> None:
        end = time.perf_counter() + spin
        while not poller.poll(0) and time.perf_counter() < end:
            pass

    return wait


@dataclass(frozen=True)
class _Model:
    """What a worker needs of the model: it refers to the worker's copies after the fork."""

    modules: list[Module]
    params: list[Tensor]
    loss_fn: Callable[..., Tensor]

    def modes(self) -> np.ndarray:
        return np.array([m.training for m in self.modules] + [p.requires_grad for p in self.params], dtype=bool)

    def set_modes(self, modes: np.ndarray) -> None:
        for module, training in zip(self.modules, modes):
            module.training = bool(training)
        for p, flag in zip(self.params, modes[len(self.modules):]):
            p.requires_grad = bool(flag)

    def value_and_grad(self, arrays: list[np.ndarray], weight: float) -> tuple[float, list[np.ndarray | None]]:
        """`weight` (the slice's share of the batch) times loss_fn's mean loss on the slice `arrays`, and
        that weighted loss's gradient for each parameter (None where the loss does not depend on it)."""
        loss = self.loss_fn(*arrays)
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            found = f"a Tensor of shape {loss.shape}" if isinstance(loss, Tensor) else f"a {type(loss).__name__}"
            raise TypeError(f"DataParallel: loss_fn must return a scalar Tensor (the slice's mean loss), got {found}")
        trainable = [p for p in self.params if p.requires_grad]
        if not loss.requires_grad or not trainable:
            raise RuntimeError("DataParallel: the loss does not depend on any parameter that requires grad")
        found = iter(grad(loss, trainable, grad_outputs=np.full(loss.shape, weight, loss.dtype), allow_unused=True))
        grads = [next(found) if p.requires_grad else None for p in self.params]
        return weight * loss.item(), [None if g is None else np.array(g.data, dtype=p.dtype)
                                      for g, p in zip(grads, self.params)]


class DataParallel:
    """Compute a loss's gradient over a batch with `processes` processes, each on a slice of it.

    `model`: the Module whose parameters get the gradients; `loss_fn(*slices)`: the mean loss (a scalar
    Tensor) of a slice of the batch arrays, computed with `model`. `processes`: this one plus forked
    workers (default: the cores available; 1 where there is no fork); a batch of fewer items uses one
    process per item. Use it as a context manager, or call `close()`, to stop the workers. While they
    run, numpy's OpenBLAS is pinned to one thread and this process computes its slice on one kernel
    thread (each process is meant to have a core of its own).
    """

    def __init__(self, model: Module, loss_fn: Callable[..., Tensor], processes: int | None = None) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"DataParallel: model must be an nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise TypeError(f"DataParallel: loss_fn must be callable, got {type(loss_fn).__name__}")
        processes = parallel.available_cores() if processes is None else positive_int(processes, "processes",
                                                                                               "DataParallel")
        self.module = model
        self.model = _Model(list(model.modules()), list(model.parameters()), loss_fn)
        if not self.model.params:
            raise ValueError("DataParallel: the model has no parameters")
        self.processes = processes if hasattr(os, "fork") else 1
        self._workers: list[_Worker] = []
        self._finalizer = weakref.finalize(self, _stop, self._workers, id(self))

    def __enter__(self) -> DataParallel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes (a later `value_and_grad` starts new ones)."""
        _stop(self._workers, id(self))

    def value_and_grad(self, *batch: np.ndarray) -> float:
        """The mean loss over the batch (float); adds its gradient to each parameter's `.grad`, as
        `loss.backward()` would. `batch`: arrays with the same first dimension N >= 1, split along it.
        If any process fails, raises (WorkerError for a worker) with every `.grad` as it was."""
        arrays = _check_batch(batch)
        self._check_parameters()
        n = len(arrays[0])
        ours, *theirs = parallel.even_slices(n, min(self.processes, n))
        if theirs:
            self._check_no_batch_statistics()
        workers = self._start_workers(arrays, theirs)
        try:
            modes = self.model.modes()
            for worker, part in zip(workers, theirs):
                worker.request(self.model, modes, arrays, part, n)
            with kernel_threads.serial() if workers else contextlib.nullcontext():
                loss, grads = self.model.value_and_grad([a[ours] for a in arrays], (ours.stop - ours.start) / n)
            replies = [w.reply() for w in workers]
        except BaseException:  # our slice failed, or Ctrl-C: the workers may be mid-slice, and are stopped
            self.close()
            raise
        failures = [f"worker {i}: {error}" for i, (_, error) in enumerate(replies, 1) if error is not None]
        if failures:
            if any(not w.process.is_alive() for w in workers):
                self.close()
            raise WorkerError(f"DataParallel: {len(failures)} of {len(workers)} worker(s) failed; the first: "
                              f"{failures[0]}")
        for w in workers:
            for i, (g, shared) in enumerate(zip(grads, w.shared.grads)):
                if w.shared.has_grad[i]:
                    grads[i] = shared.copy() if g is None else np.add(g, shared, out=g)
        # Every new .grad first, then the assignments, in one short loop of no work that could fail.
        updates = [(p, Tensor._make(g) if p.grad is None else p.grad + Tensor._make(g))
                   for p, g in zip(self.model.params, grads) if g is not None]
        for p, g in updates:
            p.grad = g
        return loss + sum(share for share, _ in replies)

    def _check_parameters(self) -> None:
        now = list(self.module.parameters())
        if len(now) != len(self.model.params) or any(a is not b for a, b in zip(now, self.model.params)):
            raise RuntimeError(f"DataParallel: the model's parameters changed since it was made ({len(now)} now, "
                               f"{len(self.model.params)} then, or some replaced); make a new DataParallel")

    def _check_no_batch_statistics(self) -> None:
        # BatchNorm in training mode normalises by its slice's statistics and updates running statistics from
        # them: split over processes, the gradient would differ from one process's and each worker's running
        # statistics would be lost. Refuse rather than train differently in silence.
        for name, module in self.module.named_modules():
            if isinstance(module, (BatchNorm1d, BatchNorm2d)) and module.training:
                raise RuntimeError(f"DataParallel: layer {name or type(module).__name__!r} "
                                   f"({type(module).__name__}) uses batch statistics in training mode, which a "
                                   "split batch would change; train it with processes=1 (or call .eval() on it)")

    def _start_workers(self, arrays: list[np.ndarray], parts: list[slice]) -> list[_Worker]:
        """Workers for `parts`: the running ones, or new ones when the step does not fit them."""
        if not parts:
            return []
        layout = _Layout(tuple((p.shape, p.dtype) for p in self.model.params),
                         tuple((a.shape[1:], a.dtype) for a in arrays),
                         len(self.model.modules) + len(self.model.params), max(p.stop - p.start for p in parts))
        running = self._workers
        if len(running) < len(parts) or any(not w.layout.fits(layout) or not w.process.is_alive() for w in running):
            self.close()
            parallel.pin_blas(id(self))
            try:
                for index in range(1, self.processes):
                    running.append(_Worker(self.model, layout, index))
            except BaseException:  # e.g. fork failed: no half-started set of workers stays behind
                self.close()
                raise
        return running[:len(parts)]


def _check_batch(batch: Sequence[np.ndarray]) -> list[np.ndarray]:
    if not batch:
        raise TypeError("DataParallel.value_and_grad: expected at least one batch array, got none")
    arrays = [b.data if isinstance(b, Tensor) else np.asarray(b) for b in batch]
    shapes = [a.shape for a in arrays]
    if any(a.ndim == 0 for a in arrays) or len({s[0] for s in shapes}) != 1 or shapes[0][0] == 0:
        raise ValueError(f"DataParallel.value_and_grad: batch arrays of shapes {shapes}; expected arrays with the "
                         "same first dimension N >= 1 (the batch axis)")
    if any(a.dtype.kind not in "biuf" for a in arrays):
        raise TypeError(f"DataParallel.value_and_grad: batch dtypes {[str(a.dtype) for a in arrays]}; expected "
                        "numeric arrays")
    return arrays


def _serve(model: _Model, shared: _Shared, conn: Connection, index: int, parent_ends: Sequence[Connection]) -> None:
    """A worker's loop: wait for a request, compute the gradient of the slice it names, reply."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    for end in parent_ends:
        end.close()
    # Dropout masks must differ between processes: a seed from the parent's generator (this copy of it).
    rng.manual_seed(int(rng.generator().integers(2 ** 62)) + index)
    for p, values in zip(model.params, shared.params):
        p.data = values  # our copy of the model reads the parameters where the parent writes them
    parent, wait = os.getppid(), _waiter(conn)
    while True:
        wait(SPIN_SECONDS)
        while not conn.poll(1.0):
            if os.getppid() != parent:  # the parent died without closing our pipe
                return
        try:
            items, total = _REQUEST.unpack(conn.recv_bytes())
        except EOFError:  # the parent closed the pipe: close(), or it exited
            return
        try:
            model.set_modes(shared.modes)
            loss, grads = model.value_and_grad([b[:items] for b in shared.batch], items / total)
            for i, (g, out) in enumerate(zip(grads, shared.grads)):
                shared.has_grad[i] = g is not None
                if g is not None:
                    np.copyto(out, g)
            reply = b"K" + _LOSS.pack(loss)
        except Exception:
            reply = b"E" + traceback.format_exc().encode("utf-8", "replace")
        try:
            conn.send_bytes(reply)
        except OSError:  # the parent stopped listening (it closed us mid-slice)
            return


def _stop(workers: list[_Worker], owner: int) -> None:
    for w in workers:
        w.close()
    workers.clear()
    parallel.unpin_blas(owner)
