"""The kernel choices of docs/performance.md, each timed against its alternative in one process.

    python benchmarks/kernel_variants.py

Every pair runs interleaved (tools.bench.interleaved_medians) after raising the allocator thresholds,
as the CLI does. Shapes are LeNet's at the given batch.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

import numpy as np

import tinygrad_cnn.functional as F
import tinygrad_cnn.ops.conv as conv_ops
from tinygrad_cnn import Tensor, no_grad
from tinygrad_cnn.autograd import Context
from tinygrad_cnn.perf import freeze_gc, tune_malloc
from tinygrad_cnn.tools.bench import interleaved_medians, op_chain

PARAMS = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1}


def compare(title: str, a: tuple[str, Callable[[], object]], b: tuple[str, Callable[[], object]]) -> None:
    ta, tb = interleaved_medians([a[1], b[1]], repeats=9, pause=0.1)
    print(f"{title:<58} {a[0]}: {ta * 1e3:7.3f} ms   {b[0]}: {tb * 1e3:7.3f} ms")


def col2im_variants(rng: np.random.Generator) -> None:
    g = rng.standard_normal((64, 16, 8, 8), dtype=np.float32)   # conv2's output gradient, batch 64
    w = rng.standard_normal((16, 6, 5, 5), dtype=np.float32)
    args = (g, w, (12, 12))
    compare("conv2 input gradient (col2im), batch 64",
            ("strided slices", lambda: conv_ops._input_grad_col2im(*args, **PARAMS)),
            ("flat shift", lambda: conv_ops._input_grad_flat_shift(*args, (0, 0), (1, 1), 1)))


def chunk_variants(rng: np.random.Generator) -> None:
    x = rng.standard_normal((256, 1, 28, 28), dtype=np.float32)
    w = rng.standard_normal((6, 1, 5, 5), dtype=np.float32)
    ctx = Context(conv_ops.Conv2d, (), {})
    chunk = conv_ops.BATCH_CHUNK

    def whole() -> object:
        conv_ops.BATCH_CHUNK = 10 ** 9
        try:
            return conv_ops.Conv2d.forward(ctx, x, w, **PARAMS)
        finally:
            conv_ops.BATCH_CHUNK = chunk

    compare("conv1 forward, batch 256", ("one pass", whole),
            (f"chunks of {chunk}", lambda: conv_ops.Conv2d.forward(ctx, x, w, **PARAMS)))


def argmax_variants(rng: np.random.Generator) -> None:
    best = rng.standard_normal((64, 6, 12, 12), dtype=np.float32)
    candidate = rng.standard_normal((64, 6, 12, 12), dtype=np.float32)
    winners = np.zeros(best.shape, dtype=np.int16)

    def boolean_index() -> None:
        winners[candidate > best] = 1

    compare("max pool winners update (pool1, one offset)", ("boolean index", boolean_index),
            ("np.putmask", lambda: np.putmask(winners, candidate > best, 1)))


def pool_inference_variants(rng: np.random.Generator) -> None:
    x = Tensor(rng.standard_normal((100, 6, 24, 24), dtype=np.float32))
    recorded = Tensor(x.data, requires_grad=True)

    @no_grad()
    def inference() -> object:
        return F.max_pool2d(x, 2)

    compare("max pool forward, 100 images", ("recording winners", lambda: F.max_pool2d(recorded, 2)),
            ("no_grad", inference))


def gc_variants() -> None:
    import torch  # noqa: F401  (a big import: many objects for the collector to walk)

    chain = op_chain(1000)
    (before,) = interleaved_medians([chain], repeats=5, pause=0.1)
    freeze_gc()
    (after,) = interleaved_medians([chain], repeats=5, pause=0.1)
    gc.unfreeze()
    print(f"{'1,000-op chain with torch imported':<58} as imported: {before * 1e3:7.3f} ms   "
          f"after freeze_gc(): {after * 1e3:7.3f} ms")


if __name__ == "__main__":
    tune_malloc()
    generator = np.random.default_rng(0)
    col2im_variants(generator)
    chunk_variants(generator)
    argmax_variants(generator)
    pool_inference_variants(generator)
    try:
        gc_variants()
    except ImportError:
        print("torch is not installed: skipping the garbage-collector comparison")
