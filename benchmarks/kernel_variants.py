"""The kernel choices of docs/performance.md, each timed against its alternative in one process.

    python benchmarks/kernel_variants.py

Every pair runs interleaved (tools.bench.interleaved_medians) after raising the allocator thresholds,
as the CLI does. Shapes are LeNet's at the given batch.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

import numpy as np
from tinygrad_cnn.perf import freeze_gc, tune_malloc

import tinygrad_cnn.functional as F
import tinygrad_cnn.ops.conv as conv_ops
from tinygrad_cnn import Tensor, nn, no_grad, optim
from tinygrad_cnn.autograd import Context
from tinygrad_cnn.models import lenet5
from tinygrad_cnn.ops.pool import MaxPool2d
from tinygrad_cnn.rng import manual_seed
from tinygrad_cnn.tools.bench import interleaved_medians, lenet_batch, op_chain, our_train_step

PARAMS = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1}


def compare(title: str, a: tuple[str, Callable[[], object]], b: tuple[str, Callable[[], object]]) -> None:
    ta, tb = interleaved_medians([a[1], b[1]], repeats=9, pause=0.1)
    print(f"{title:<58} {a[0]}: {ta * 1e3:7.3f} ms   {b[0]}: {tb * 1e3:7.3f} ms")


def flat_shift_every_offset(g: np.ndarray, w: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """The earlier stride-1 col2im: one (C*KH*KW)-row product, then KH*KW shifted adds (no padding,
    dilation or groups: LeNet's conv2)."""
    n, o, ho, wo = g.shape
    c, kh, kw = w.shape[1:]
    hp, wp = input_hw
    g_wide = np.zeros((n, o, ho, wp), dtype=g.dtype)
    g_wide[..., :wo] = g
    cols = np.matmul(w.reshape(o, -1).T, g_wide.reshape(n, o, ho * wp)).reshape(n, c, kh, kw, ho * wp)
    flat = np.zeros((n, c, hp * wp + kw - 1), dtype=g.dtype)
    for i in range(kh):
        for j in range(kw):
            flat[:, :, i * wp + j:i * wp + j + ho * wp] += cols[:, :, i, j]
    return flat[:, :, :hp * wp].reshape(n, c, hp, wp)


def col2im_variants(rng: np.random.Generator) -> None:
    g = rng.standard_normal((64, 16, 8, 8), dtype=np.float32)   # conv2's output gradient, batch 64
    w = rng.standard_normal((16, 6, 5, 5), dtype=np.float32)
    args = (g, w, (12, 12))
    new = ("column shifts in the GEMM", lambda: conv_ops._input_grad_flat_shift(*args, (0, 0), (1, 1), 1))
    assert np.allclose(new[1](), flat_shift_every_offset(*args), atol=1e-3)
    compare("conv2 input gradient (col2im), batch 64",
            ("strided slices", lambda: conv_ops._input_grad_col2im(*args, **PARAMS)), new)
    compare("conv2 input gradient (col2im), batch 64", ("KH*KW flat shifts", lambda: flat_shift_every_offset(*args)),
            new)


def weight_grad_variants(rng: np.random.Generator) -> None:
    for name, c, hw, o in (("conv1", 1, 28, 6), ("conv2", 6, 12, 16)):
        x = rng.standard_normal((64, c, hw, hw), dtype=np.float32)
        cols = conv_ops.im2col(x, (5, 5), (1, 1), (0, 0), (1, 1), 1)                     # (N, 1, CKK, P)
        g = rng.standard_normal((64, 1, o, cols.shape[3]), dtype=np.float32)          # (N, 1, O, P)
        compare(f"{name} weight gradient product, batch 64",
                ("g @ cols^T", lambda g=g, cols=cols: np.matmul(g, cols.transpose(0, 1, 3, 2)).sum(axis=0)),
                ("cols @ g^T", lambda g=g, cols=cols: np.matmul(cols, g.transpose(0, 1, 3, 2)).sum(axis=0)))


def chunk_variants(rng: np.random.Generator) -> None:
    x = rng.standard_normal((256, 1, 28, 28), dtype=np.float32)
    w = rng.standard_normal((6, 1, 5, 5), dtype=np.float32)
    ctx = Context(conv_ops.Conv2d, (), {})
    chunk = conv_ops.BATCH_CHUNK

    def whole() -> object:
        conv_ops.BATCH_CHUNK = 10 ** 9
        try:
            return conv_ops.Conv2d.forward(ctx, x, w, None, **PARAMS)
        finally:
            conv_ops.BATCH_CHUNK = chunk

    compare("conv1 forward, batch 256", ("one pass", whole),
            (f"chunks of {chunk}", lambda: conv_ops.Conv2d.forward(ctx, x, w, None, **PARAMS)))


def conv_bias_variants(rng: np.random.Generator) -> None:
    """conv1 with its bias, forward and backward (dw, db) at batch 64: the bias inside Conv2d against the
    earlier Conv2d without it, then Reshape and a broadcasting Add."""
    x = Tensor(rng.standard_normal((64, 1, 28, 28), dtype=np.float32))
    w = Tensor(rng.standard_normal((6, 1, 5, 5), dtype=np.float32), requires_grad=True)
    b = Tensor(rng.standard_normal(6, dtype=np.float32), requires_grad=True)
    g = Tensor(rng.standard_normal((64, 6, 24, 24), dtype=np.float32))

    def separate() -> None:
        (conv_ops.Conv2d.apply(x, w, None, **PARAMS) + b.reshape(1, 6, 1, 1)).backward(g)

    def inside() -> None:
        conv_ops.Conv2d.apply(x, w, b, **PARAMS).backward(g)

    compare("conv1 with bias, forward + backward, batch 64", ("Reshape + Add", separate), ("inside Conv2d", inside))


def max_pool_every_offset(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The earlier 2x2 max pool: the KH*KW window offsets one after another, the winner's offset in an
    int16 array (first maximum wins)."""
    windows = [x[:, :, i::2, j::2] for i in range(2) for j in range(2)]
    best, winner = windows[0].copy(), np.zeros(windows[0].shape, dtype=np.int16)
    for k, candidate in enumerate(windows[1:], start=1):
        np.putmask(winner, candidate > best, k)
        np.maximum(best, candidate, out=best)
    return best, winner


def max_pool_variants(rng: np.random.Generator) -> None:
    x = rng.standard_normal((64, 6, 24, 24), dtype=np.float32)   # conv1's output, batch 64
    ctx = Context(MaxPool2d, (), {})
    ctx.needs_input_grad = (True,)
    pool = {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0)}
    assert np.array_equal(MaxPool2d.forward(ctx, x, **pool), max_pool_every_offset(x)[0])
    compare("max pool forward with winners (pool1), batch 64", ("every offset", lambda: max_pool_every_offset(x)),
            ("separable: W, then H", lambda: MaxPool2d.forward(ctx, x, **pool)))


def relu_order_variants() -> None:
    step_pool_first = our_train_step(64)  # lenet5: conv -> pool -> ReLU
    manual_seed(0)
    model = lenet5()
    textbook = nn.Sequential(model.conv1, nn.ReLU(), nn.MaxPool2d(2), model.conv2, nn.ReLU(), nn.MaxPool2d(2),
                             *list(model.children())[6:])
    opt = optim.SGD(textbook.parameters(), lr=0.01, momentum=0.9)
    x, y = lenet_batch(64)

    def step_relu_first() -> None:
        opt.zero_grad()
        F.cross_entropy(textbook(Tensor(x)), y).backward()
        opt.step()

    compare("LeNet training step, batch 64", ("conv, ReLU, pool", step_relu_first),
            ("conv, pool, ReLU", step_pool_first))


def grad_norm_variants(rng: np.random.Generator) -> None:
    g = rng.standard_normal(64 * 6 * 24 * 24, dtype=np.float32)  # conv1's output gradient, batch 64
    compare("norm of a gradient (conv1 output, batch 64)", ("einsum", lambda: np.einsum("i,i->", g, g)),
            ("BLAS dot", lambda: np.dot(g, g)))


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
    weight_grad_variants(generator)
    chunk_variants(generator)
    conv_bias_variants(generator)
    max_pool_variants(generator)
    pool_inference_variants(generator)
    relu_order_variants()
    grad_norm_variants(generator)
    try:
        gc_variants()
    except ImportError:
        print("torch is not installed: skipping the garbage-collector comparison")
