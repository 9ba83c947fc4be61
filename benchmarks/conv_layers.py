"""LeNet's two convolutions, forward + backward (dx and dw), tinygrad_cnn against PyTorch in one process.

    python benchmarks/conv_layers.py

conv1: (64, 1, 28, 28) * (6, 1, 5, 5); conv2: (64, 6, 12, 12) * (16, 6, 5, 5); float32, with bias.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from tinygrad_cnn.perf import freeze_gc, tune_malloc

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor
from tinygrad_cnn.tools.bench import interleaved_medians


def layer(n: int, c: int, hw: int, o: int) -> tuple[Callable[[], None], Callable[[], None]]:
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s, dtype=np.float32) for s in ((n, c, hw, hw), (o, c, 5, 5), (o,)))
    g = rng.standard_normal((n, o, hw - 4, hw - 4), dtype=np.float32)
    ours = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    g_torch = torch.from_numpy(g)

    def run_ours() -> None:
        F.conv2d(*ours).backward(Tensor(g))

    def run_torch() -> None:
        torch.nn.functional.conv2d(*theirs).backward(g_torch)

    return run_ours, run_torch


if __name__ == "__main__":
    tune_malloc()
    torch.set_num_threads(2)
    freeze_gc()
    for name, shape in (("conv1 1->6, 28x28", (64, 1, 28, 6)), ("conv2 6->16, 12x12", (64, 6, 12, 16))):
        n, c, hw, o = shape
        ours, theirs = interleaved_medians(list(layer(n, c, hw, o)), repeats=15)
        print(f"{name}, batch 64, forward+backward: tinygrad_cnn {ours * 1e3:.2f} ms, "
              f"PyTorch {theirs * 1e3:.2f} ms, ratio {ours / theirs:.2f}")
