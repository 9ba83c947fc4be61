"""Why a LeNet training step takes what it takes: the measurements behind docs/performance.md's
sections on threads and on the engine's floor.

    python benchmarks/step_anatomy.py

1. The engine's floor: a batch-64 step with every primitive's numpy forward replaced by its recorded
   result, so that only the engine, the VJPs' Python, the loss and the optimizer remain.
2. Waking a sleeping worker thread: the latency of a hand-off after the main thread was busy for a while.
3. Each conv kernel of a batch-64 step on one thread and split over two, in isolation.
4. The same split inside a training step: how long each half takes, and how long the main thread waits.
5. Whole steps, interleaved: no threads, 2 threads (OpenBLAS pinned to one thread, as
   `parallel.set_num_threads` does), 2 threads with OpenBLAS left on its own 2 threads, two half-batch
   steps on two Python threads.
6. The lever threads leave: conv2's input gradient with its second half computed by a forked worker
   process on shared memory (no GIL between the halves), copies in and out included.
7. What became of it: the timeline of a batch-64 step split over two processes by `DataParallel` (as
   `tinygrad-cnn train` runs): handing the worker its parameters and slice, the worker's start, both
   slices, the reply, and the rest of the step (summing the gradients, the optimizer); with each side
   polling its pipe for `data_parallel.SPIN_SECONDS` before it sleeps, and sleeping at once.
"""

from __future__ import annotations

import contextlib
import mmap
import multiprocessing
import os
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import shared_memory

import numpy as np
from tinygrad_cnn.perf import freeze_gc, tune_malloc

from tinygrad_cnn import data_parallel, parallel
from tinygrad_cnn.autograd import Context
from tinygrad_cnn.kernels import parallel as kernel_threads
from tinygrad_cnn.ops import conv
from tinygrad_cnn.tools.bench import forwards_replaced, interleaved_medians, on_threads, our_train_step

PARAMS = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1}


def medians_ms(fns: list[Callable[[], object]]) -> list[float]:
    """Interleaved medians (tools.bench), back to back: these kernels leave no threads spinning."""
    return [t * 1e3 for t in interleaved_medians(fns, repeats=9, pause=0.0)]


def engine_floor() -> None:
    step = our_train_step(64)
    for _ in range(5):
        step()
    recorded: list[tuple[np.ndarray, dict]] = []

    def recording(op: type, real: Callable) -> Callable:
        def forward(ctx: Context, *args: object, **attrs: object) -> np.ndarray:
            out = real(ctx, *args, **attrs)
            recorded.append((out, {**vars(ctx), "__saved__": ctx.saved}))
            return out
        return forward

    calls = iter(recorded)

    def replaying(op: type, real: Callable) -> Callable:
        def forward(ctx: Context, *args: object, **attrs: object) -> np.ndarray:
            out, kept = next(calls)
            # Replayed outputs feed the next ops, so what the real forward saved is again these very arrays.
            ctx.save_for_backward(*kept["__saved__"])
            for name, value in kept.items():
                if name != "__saved__":
                    setattr(ctx, name, value)
            return out
        return forward

    def replayed_step() -> None:
        nonlocal calls
        calls = iter(recorded)
        step()

    with forwards_replaced(recording):
        step()
    with forwards_replaced(replaying):
        (floor,) = medians_ms([replayed_step])
    (real,) = medians_ms([step])
    print(f"1. batch-64 step with the numpy kernels replaced by recorded results: {floor:.2f} ms "
          f"(a real step: {real:.2f} ms)")


def wake_latency() -> None:
    pool = ThreadPoolExecutor(1)
    pool.submit(lambda: None).result()
    for busy_ms in (0.0, 0.2, 1.0, 3.0):
        latencies = []
        for _ in range(300):
            start = time.perf_counter()
            while time.perf_counter() - start < busy_ms / 1e3:
                pass
            sent = time.perf_counter()
            latencies.append(pool.submit(time.perf_counter).result() - sent)
        median, p90 = statistics.median(latencies) * 1e6, np.percentile(latencies, 90) * 1e6
        print(f"2. hand-off after {busy_ms:.1f} ms busy: the worker starts after {median:.0f} us (median), "
              f"{p90:.0f} us (p90)")
    pool.shutdown()


def kernels_in_isolation() -> None:
    rng = np.random.default_rng(0)
    ctx = Context(conv.Conv2d, (), {})
    ctx.needs_input_grad = (True, True)
    cases = []
    for name, c, hw, o in (("conv1", 1, 28, 6), ("conv2", 6, 12, 16)):
        x = rng.standard_normal((64, c, hw, hw), dtype=np.float32)
        w = rng.standard_normal((o, c, 5, 5), dtype=np.float32)
        g = rng.standard_normal((64, o, hw - 4, hw - 4), dtype=np.float32)
        cases += [(f"{name} forward", lambda x=x, w=w: conv.Conv2d.forward(ctx, x, w, None, **PARAMS)),
                  (f"{name} weight gradient",
                   lambda x=x, g=g: conv.Conv2dWeightGrad.forward(ctx, x, g, (5, 5), **PARAMS))]
        if c > 1:
            cases.append((f"{name} input gradient",
                          lambda g=g, w=w, hw=hw: conv.Conv2dInputGrad.forward(ctx, g, w, (hw, hw), **PARAMS)))
    for name, fn in cases:
        one, two = medians_ms([on_threads(fn, ours=1), on_threads(fn, ours=2)])
        print(f"3. {name}, batch 64, in isolation: 1 thread {one:.3f} ms, 2 threads {two:.3f} ms")
    parallel.set_num_threads(1)


def halves_in_a_step() -> None:
    parallel.set_num_threads(2)
    spans: dict[str, list[tuple[float, float, float]]] = {}
    real_map = kernel_threads.map_parts
    main_thread = threading.current_thread()

    def timed_map(fn: Callable, parts: list) -> list:
        spent = {"main": 0.0, "worker": 0.0}

        def timed(part: object) -> object:
            start = time.perf_counter()
            result = fn(part)
            spent["main" if threading.current_thread() is main_thread else "worker"] += time.perf_counter() - start
            return result

        start = time.perf_counter()
        results = real_map(timed, parts)
        if spent["worker"]:
            op = fn.__qualname__.split(".")[0]
            spans.setdefault(op, []).append((spent["main"], spent["worker"], time.perf_counter() - start))
        return results

    kernel_threads.map_parts = timed_map
    try:
        step = our_train_step(64)
        for _ in range(200):
            step()
    finally:
        kernel_threads.map_parts = real_map
        parallel.set_num_threads(1)
    for name, rows in spans.items():
        mine, theirs, total = (statistics.median(col) * 1e3 for col in zip(*rows))
        print(f"4. {name} in a batch-64 step on 2 threads: main thread's half {mine:.3f} ms, worker's half "
              f"{theirs:.3f} ms, the whole split {total:.3f} ms (medians over both convs)")


def whole_steps() -> None:
    blas = parallel._blas_thread_calls()

    def variant(step: Callable[[], None], threads: int, blas_threads: int) -> Callable[[], object]:
        def with_blas() -> None:  # after on_threads, whose set_num_threads pins OpenBLAS to 1
            if blas is not None and blas[0]() != blas_threads:
                blas[1](blas_threads)
            step()
        return on_threads(with_blas, ours=threads)

    halves = [our_train_step(32), our_train_step(32)]

    def two_half_steps() -> None:
        other = threading.Thread(target=halves[1])
        other.start()
        halves[0]()
        other.join()

    variants = {"no threads": variant(our_train_step(64), 1, 2),
                "2 threads (OpenBLAS pinned to 1)": variant(our_train_step(64), 2, 1),
                "2 threads, OpenBLAS on 2 threads too": variant(our_train_step(64), 2, 2),
                "two half-batch steps on 2 Python threads": variant(two_half_steps, 1, 1)}
    times = interleaved_medians(list(variants.values()), repeats=9)
    parallel.set_num_threads(1)
    for name, t in zip(variants, times):
        print(f"5. batch-64 training step, {name}: {t * 1e3:.2f} ms")


def process_split() -> None:
    rng = np.random.default_rng(0)
    g = rng.standard_normal((64, 16, 8, 8), dtype=np.float32)   # conv2's output gradient, batch 64
    w = rng.standard_normal((16, 6, 5, 5), dtype=np.float32)
    ctx = Context(conv.Conv2dInputGrad, (), {})

    def input_grad(grad: np.ndarray) -> np.ndarray:
        return conv.Conv2dInputGrad.forward(ctx, grad, w, (12, 12), **PARAMS)

    dx_shape = (64, 6, 12, 12)
    memories = [shared_memory.SharedMemory(create=True, size=size) for size in (g.nbytes, 4 * int(np.prod(dx_shape)))]
    shared_g = np.ndarray(g.shape, np.float32, memories[0].buf)
    shared_dx = np.ndarray(dx_shape, np.float32, memories[1].buf)
    ours, theirs = multiprocessing.Pipe()

    def worker() -> None:
        while theirs.recv_bytes() == b"go":
            shared_dx[32:] = input_grad(shared_g[32:])
            theirs.send_bytes(b"done")

    blas = parallel._blas_thread_calls()
    blas_before = blas[0]() if blas is not None else None
    if blas is not None:
        blas[1](1)  # the forked worker inherits this too
    child = multiprocessing.get_context("fork").Process(target=worker)
    child.start()

    def split() -> np.ndarray:
        np.copyto(shared_g, g)
        ours.send_bytes(b"go")
        shared_dx[:32] = input_grad(g[:32])
        ours.recv_bytes()
        return shared_dx.copy()

    try:
        assert np.allclose(split(), input_grad(g), atol=1e-4)
        # One BLAS thread in every variant, so that no variant runs more threads than there are cores.
        (one,), (two_processes,) = medians_ms([lambda: input_grad(g)]), medians_ms([split])
        parallel.set_num_threads(2)
        (two_threads,) = medians_ms([lambda: input_grad(g)])
        parallel.set_num_threads(1)
    finally:
        ours.send_bytes(b"stop")
        child.join()
        for memory in memories:
            memory.close()
            memory.unlink()
        if blas is not None:
            blas[1](blas_before)
    print(f"6. conv2 input gradient, batch 64: 1 thread {one:.3f} ms, 2 threads {two_threads:.3f} ms, "
          f"2 processes (copies included) {two_processes:.3f} ms")


def data_parallel_timeline(spin: float) -> None:
    # Timestamps from both processes land in shared memory: [request start, request end, our slice start,
    # our slice end, worker slice start, worker slice end, reply received].
    stamps = np.frombuffer(mmap.mmap(-1, 8 * 7), np.float64)
    main_pid = os.getpid()
    request, reply, value_and_grad = (data_parallel._Worker.request, data_parallel._Worker.reply,
                                      data_parallel._Model.value_and_grad)

    def timed_request(self: data_parallel._Worker, *args: object) -> None:
        stamps[0] = time.perf_counter()
        request(self, *args)
        stamps[1] = time.perf_counter()

    def timed_reply(self: data_parallel._Worker) -> tuple:
        result = reply(self)
        stamps[6] = time.perf_counter()
        return result

    def timed_slice(self: data_parallel._Model, *args: object) -> tuple:
        at = 2 if os.getpid() == main_pid else 4
        stamps[at] = time.perf_counter()
        try:
            return value_and_grad(self, *args)
        finally:
            stamps[at + 1] = time.perf_counter()

    rows: list[list[float]] = []
    spin_before, data_parallel.SPIN_SECONDS = data_parallel.SPIN_SECONDS, spin  # the worker forks after this
    data_parallel._Worker.request, data_parallel._Worker.reply = timed_request, timed_reply
    data_parallel._Model.value_and_grad = timed_slice
    try:
        with contextlib.ExitStack() as workers:
            step = our_train_step(64, 2, workers)

            def timed_step() -> None:
                start = time.perf_counter()
                step()
                end = time.perf_counter()
                t = stamps.copy()
                rows.append([t[1] - t[0], t[4] - t[1], t[3] - t[2], t[5] - t[4], t[6] - max(t[3], t[5]),
                             (t[0] - start) + (end - t[6]), end - start])

            interleaved_medians([timed_step], repeats=9)
    finally:
        data_parallel._Worker.request, data_parallel._Worker.reply = request, reply
        data_parallel._Model.value_and_grad = value_and_grad
        data_parallel.SPIN_SECONDS = spin_before
    names = ["hand the worker its parameters and slice", "until the worker starts", "our slice (32 images)",
             "the worker's slice (32 images)", "from the later slice's end to the reply in hand",
             "the rest (checks, summing gradients, optimizer)", "whole step"]
    medians = np.median(np.array(rows), axis=0) * 1e3
    print(f"7. a batch-64 step on 2 processes, polling {spin * 1e3:g} ms before sleeping (medians, ms): " + "; ".join(
        f"{name} {m:.3f}" for name, m in zip(names, medians)))


if __name__ == "__main__":
    tune_malloc()
    freeze_gc()
    engine_floor()
    wake_latency()
    kernels_in_isolation()
    halves_in_a_step()
    whole_steps()
    process_split()
    data_parallel_timeline(spin=data_parallel.SPIN_SECONDS)
    data_parallel_timeline(spin=0.0)
