"""The conv kernel levers of issue 16, each timed against the kernel the library chose, in one process.

    python benchmarks/conv_variants.py [--forwards-only]

On the CIFAR-style network's 3x3 layers (batch 64, padding 1): forward + dW + dx of `kernels.conv` with
each plan forced (flat shifts or window views, chunk sizes), on our threads or BLAS's; and, on one
core each, two forward kernels the library does not use: Winograd F(2x2, 3x3) and nine shifted GEMMs
without im2col (`--forwards-only`: just those). Every variant is checked against the reference kernel
first; times are interleaved medians.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tinygrad_cnn.kernels import conv, reference
from tinygrad_cnn.runtime import threads
from tinygrad_cnn.runtime.memory import freeze_gc, tune_malloc
from tinygrad_cnn.tools.bench import interleaved_medians, on_threads

LAYERS = ((32, 32, 32), (64, 64, 16))  # (C, O, size): the CIFAR-style step's two biggest convs
PARAMS = ((1, 1), (1, 1), (1, 1), 1)                 # stride, padding, dilation, groups


def with_plan(forced: conv.ConvPlan | None, fn: Callable[[], object]) -> Callable[[], object]:
    """`fn` run with every layer on the `forced` plan (None: the library's own choice)."""
    def run() -> object:
        chosen = conv.plan
        if forced is not None:
            conv.plan = lambda *args: forced
        try:
            return fn()
        finally:
            conv.plan = chosen
    return run


def three_kernels(x: np.ndarray, w: np.ndarray, g: np.ndarray) -> Callable[[], None]:
    def run() -> None:
        conv.conv2d(x, w, None, *PARAMS)
        conv.conv2d_weight_grad(x, g, (3, 3), *PARAMS)
        conv.conv2d_input_grad(g, w, x.shape[2:], *PARAMS)
    return run


# B^T, G and A^T of F(2x2, 3x3) (Lavin & Gray 2016): output tile = A^T [(G g G^T) * (B^T d B)] A.
WINOGRAD_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


def winograd_forward(x: np.ndarray, w: np.ndarray, chunk: int = 16) -> np.ndarray:
    """3x3, stride 1, padding 1 by Winograd F(2x2, 3x3): 16 GEMMs of (O, C) @ (C, tiles) per chunk instead
    of 36 multiplies per 4 outputs; the input and output transforms are elementwise numpy passes."""
    n, c, h, wd = x.shape
    o = w.shape[0]
    u = np.einsum("ai,ocij,bj->abco", WINOGRAD_G, w, WINOGRAD_G).astype(x.dtype)  # (4, 4, C, O)
    u = np.ascontiguousarray(u.reshape(16, c, o).transpose(0, 2, 1))               # (16, O, C)
    th, tw = (h + 1) // 2, (wd + 1) // 2
    xp = np.zeros((n, c, 2 * th + 2, 2 * tw + 2), dtype=x.dtype)
    xp[:, :, 1:h + 1, 1:wd + 1] = x
    y = np.empty((n, o, h, wd), dtype=x.dtype)
    for start in range(0, n, chunk):
        xb = xp[start:start + chunk]
        b = xb.shape[0]
        sn, sc, sh, sw = xb.strides
        d = as_strided(xb, (4, 4, c, b, th, tw), (sh, sw, sc, sn, 2 * sh, 2 * sw))  # d[a, b]: tile element (a, b)
        rows = (d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3])                    # B^T d
        v = np.empty((4, 4, c, b, th, tw), dtype=x.dtype)
        for a, r in enumerate(rows):                                                  # (B^T d) B
            np.subtract(r[0], r[2], out=v[a, 0])
            np.add(r[1], r[2], out=v[a, 1])
            np.subtract(r[2], r[1], out=v[a, 2])
            np.subtract(r[1], r[3], out=v[a, 3])
        m = np.matmul(u, v.reshape(16, c, -1)).reshape(4, 4, o, b, th, tw)           # (4, 4, O, B, th, tw)
        out = np.empty((b, o, th, 2, tw, 2), dtype=x.dtype)
        for a, t in enumerate((m[0] + m[1] + m[2], m[1] - m[2] - m[3])):              # A^T m, then (.) A
            out[:, :, :, a, :, 0] = (t[0] + t[1] + t[2]).transpose(1, 0, 2, 3)
            out[:, :, :, a, :, 1] = (t[1] - t[2] - t[3]).transpose(1, 0, 2, 3)
        y[start:start + chunk] = out.reshape(b, o, 2 * th, 2 * tw)[:, :, :h, :wd]
    return y


def shifted_gemms_forward(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """3x3, stride 1, padding 1 without im2col: nine GEMMs of (O, C) @ (C, Ho*Wp) on shifted views of the
    flattened padded input, accumulated (numpy's matmul cannot add into its output)."""
    n, c, h, wd = x.shape
    hp, wp = h + 2, wd + 2
    flat = np.zeros((n, c, hp * wp + 2), dtype=x.dtype)
    flat[:, :, :hp * wp].reshape(n, c, hp, wp)[:, :, 1:-1, 1:-1] = x
    span = h * wp
    acc = np.matmul(w[:, :, 0, 0], flat[:, :, :span])
    for i in range(3):
        for j in range(3):
            if i or j:
                acc += np.matmul(w[:, :, i, j], flat[:, :, i * wp + j: i * wp + j + span])
    return acc.reshape(n, -1, h, wp)[..., :wd]


def measure_layer(c: int, o: int, size: int, plans: bool = True) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, c, size, size), dtype=np.float32)
    w = rng.standard_normal((o, c, 3, 3), dtype=np.float32)
    g = rng.standard_normal((64, o, size, size), dtype=np.float32)
    shape = conv.ConvShape(c, o, (size, size), (3, 3), *PARAMS)
    chosen = conv.plan(shape, 4, conv.CHUNK_BYTES)
    variants: dict[str, Callable[[], object]] = {
        f"chosen {chosen}, our 2 threads": on_threads(with_plan(None, three_kernels(x, w, g)), ours=2),
        "chosen, 1 thread + BLAS's 2 threads": on_threads(with_plan(None, three_kernels(x, w, g)), ours=1)}
    for flat in (True, False):
        for images in (1, 4, 16, 64):
            variants[f"{'flat' if flat else 'windows'}, chunks of {images}, our 2 threads"] = \
                on_threads(with_plan(conv.ConvPlan(images, flat), three_kernels(x, w, g)), ours=2)
    ref = reference.conv2d(x, w, None, *PARAMS)
    alternatives = {"Winograd F(2x2,3x3)": winograd_forward, "nine shifted GEMMs": shifted_gemms_forward}
    # One core each (our threads off, OpenBLAS pinned to one thread): the algorithms, not the threading.
    forwards = {"chosen": functools.partial(conv.conv2d, x, w, None, *PARAMS)}
    for name, forward in alternatives.items():
        np.testing.assert_allclose(forward(x, w), ref, rtol=1e-3, atol=1e-3)
        forwards[name] = functools.partial(forward, x, w)
    flops = 2 * 64 * o * size * size * c * 9
    print(f"\nconv {c}->{o}, {size}x{size}, 3x3 pad 1, batch 64: forward + dW + dx ({3 * flops / 1e9:.2f} GFLOP)")
    if plans:
        times = interleaved_medians(list(variants.values()), repeats=5, inner=3, pause=0.1, warmup=1, settle=1)
        for name, t in sorted(zip(variants, times), key=lambda nt: nt[1]):
            print(f"  {t * 1e3:8.2f} ms  {3 * flops / t / 1e9:5.0f} GFLOP/s  {name}")
    threads.set_num_threads(1)
    pinned = threads.pin_blas("conv_variants")
    try:
        times = interleaved_medians(list(forwards.values()), repeats=5, inner=3, pause=0.1, warmup=1, settle=1)
    finally:
        threads.unpin_blas("conv_variants")
    for name, t in zip(forwards, times):
        core = "one core" if pinned else "one thread, BLAS not pinned"
        print(f"  {t * 1e3:8.2f} ms  {flops / t / 1e9:5.0f} GFLOP/s  forward alone, {core}: {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forwards-only", action="store_true", help="only the one-core forward comparison")
    args = parser.parse_args()
    tune_malloc()
    freeze_gc()
    print(f"numpy's BLAS: {threads.blas_description()}")
    for layer in LAYERS:
        measure_layer(*layer, plans=not args.forwards_only)
    threads.set_num_threads(1)


if __name__ == "__main__":
    main()
