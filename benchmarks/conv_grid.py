"""Issue 16's conv grid: every layer's forward + backward (dx, dw, db), tinygrad_cnn against PyTorch.

    python benchmarks/conv_grid.py [--quick] [--threads N]

Batch 64, float32, channels in/out from {3, 16, 32, 64, 128}, kernels 1x1, 3x3 (padding 1) and 5x5, stride 1
and 2, sizes 8-56 (the bigger channel pairs on the smaller sizes, as in a network; see `layers`). Each
layer interleaves both frameworks in one process (tools.bench.interleaved_medians), PyTorch on 2 threads.
Prints a markdown table: times, ratio, our GFLOP/s and its share of numpy's GEMM peak here (a square
1024 GEMM on the same threads, measured first), and the BLAS kernel that ran.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor
from tinygrad_cnn.runtime import threads
from tinygrad_cnn.runtime.memory import freeze_gc, tune_malloc
from tinygrad_cnn.tools.bench import interleaved_medians, on_threads

CHANNELS = ((3, 16), (3, 32), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128))
SIZES = (8, 16, 32, 56)
KERNELS = ((1, 0), (3, 1), (5, 0))  # (kernel, padding)
BATCH = 64
MAX_WORK = 64 * 64 * 32 * 32  # C * O * H * W at most: bigger pairs run on smaller sizes


def layers(quick: bool) -> Iterator[tuple[int, int, int, int, int, int]]:
    """(C, O, size, kernel, padding, stride) of every layer in the grid (a 14-layer sample if quick)."""
    grid = [(c, o, size, k, p, s) for c, o in CHANNELS for size in SIZES if c * o * size * size <= MAX_WORK
            for k, p in KERNELS for s in (1, 2)]
    yield from (grid[::13] if quick else grid)  # 13: coprime to the 6 kernel-stride pairs, so all of them occur


def step_pair(c: int, o: int, size: int, k: int, p: int, s: int) -> tuple[Callable[[], None], Callable[[], None]]:
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(shape, dtype=np.float32) for shape in ((BATCH, c, size, size), (o, c, k, k), (o,)))
    ours = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    out = (size + 2 * p - k) // s + 1
    g = rng.standard_normal((BATCH, o, out, out), dtype=np.float32)
    g_torch = torch.from_numpy(g)

    def run_ours() -> None:
        F.conv2d(*ours, stride=s, padding=p).backward(Tensor(g))

    def run_torch() -> None:
        torch.nn.functional.conv2d(*theirs, stride=s, padding=p).backward(g_torch)

    return run_ours, run_torch


def gemm_peak() -> float:
    """GFLOP/s of a square 1024 float32 GEMM in numpy on its current threads (best of 10)."""
    a = np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32)
    best = min(_timed(lambda: a @ a) for _ in range(10))
    return 2 * 1024 ** 3 / best / 1e9


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 14-layer sample of the grid")
    parser.add_argument("--threads", type=int, default=2, help="tinygrad_cnn threads (default 2; 1: BLAS's own)")
    args = parser.parse_args()
    tune_malloc()
    freeze_gc()
    torch.set_num_threads(2)
    threads.set_num_threads(args.threads)
    peak = gemm_peak() * (args.threads if args.threads > 1 else 1)  # pinned BLAS: one thread's peak per thread
    print(f"numpy's BLAS: {threads.blas_description()}; tinygrad_cnn threads: {threads.get_num_threads()}; "
          f"GEMM peak on these threads: {peak:.0f} GFLOP/s; PyTorch {torch.__version__} on 2 threads")
    print("| layer (batch 64) | ours ms | PyTorch ms | ratio | ours GFLOP/s | share of GEMM peak |")
    print("|---|---|---|---|---|---|")
    for c, o, size, k, p, s in layers(args.quick):
        ours, theirs = interleaved_medians([on_threads(fn, ours=args.threads) for fn in step_pair(c, o, size, k, p, s)],
                                           repeats=3, inner=3, pause=0.1, warmup=1, settle=1)
        out = (size + 2 * p - k) // s + 1
        flops = 3 * 2 * BATCH * o * out * out * c * k * k  # forward, dx and dw: three GEMMs of the same size
        print(f"| {c}->{o}, {size}x{size}, {k}x{k} pad {p} stride {s} | {ours * 1e3:.2f} | {theirs * 1e3:.2f} | "
              f"{ours / theirs:.2f} | {flops / ours / 1e9:.0f} | {flops / ours / 1e9 / peak:.0%} |", flush=True)


if __name__ == "__main__":
    main()
