"""The conv kernels' chunk budget (`kernels.conv.CHUNK_BYTES`) against training-step time, in one process.

    python benchmarks/chunk_budget.py [--budgets 1 2 3] [--rounds 15]

For each network, batch and thread count below, blocks of training steps (forward, loss, backward, optimizer
step) run with each budget in turn, round after round, so a drifting machine affects every budget alike;
the table gives the median block per budget (milliseconds per step). Networks, on random images: LeNet-5
with Adam; the MNIST example's network (two 3x3 convolutions 1->32->64, max pool, dropout, Linear
9216->128->10) with Adadelta; the CIFAR-style network of `tinygrad-cnn bench --model cifar_vgg` with SGD.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import tinygrad_cnn.nn.functional as F

import tinygrad_cnn as tc
import tinygrad_cnn.nn as nn
from tinygrad_cnn.kernels import conv
from tinygrad_cnn.models import lenet5
from tinygrad_cnn.tools.bench import cifar_vgg_layers


def mnist_example_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(128, 10), nn.LogSoftmax(dim=1))


def case(name: str, batch: int, threads: int, budgets: list[int], rounds: int, steps: int) -> None:
    tc.set_num_threads(threads)
    tc.manual_seed(0)
    model, shape = {"LeNet-5": (lenet5, (1, 28, 28)), "MNIST example": (mnist_example_net, (1, 28, 28)),
                    "CIFAR-style": (lambda: cifar_vgg_layers(nn), (3, 32, 32))}[name]
    model = model()
    optimizer = {"LeNet-5": lambda p: tc.optim.Adam(p, lr=1e-3), "MNIST example": lambda p: tc.optim.Adadelta(p),
                 "CIFAR-style": lambda p: tc.optim.SGD(p, lr=0.01, momentum=0.9)}[name](model.parameters())
    loss_fn = F.nll_loss if name == "MNIST example" else F.cross_entropy
    rng = np.random.default_rng(0)
    x = tc.Tensor(rng.standard_normal((batch, *shape)).astype(np.float32))
    y = tc.Tensor(rng.integers(0, 10, batch))
    blocks: dict[int, list[float]] = {b: [] for b in budgets}
    for _ in range(rounds):
        for budget in budgets:
            conv.CHUNK_BYTES = budget
            times = []
            for i in range(steps + 2):  # the first two after a change of budget are not timed
                start = time.perf_counter()
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                optimizer.step()
                if i >= 2:
                    times.append(time.perf_counter() - start)
            blocks[budget].append(statistics.median(times))
    cells = "  ".join(f"{b / (1 << 20):g} MiB {statistics.median(v) * 1e3:6.2f}" for b, v in blocks.items())
    print(f"{name:<15} batch {batch:<3} threads {threads}:  {cells}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[1, 2, 3], help="MiB")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    budgets = [int(b * (1 << 20)) for b in args.budgets]
    print(f"ms per training step, median of {args.rounds} blocks per budget; {tc.threads.blas_description()}")
    for name, batch, threads, steps in (("LeNet-5", 64, 1, 20), ("LeNet-5", 32, 1, 20), ("LeNet-5", 64, 2, 20),
                                        ("MNIST example", 64, 2, 4), ("CIFAR-style", 64, 2, 4)):
        case(name, batch, threads, budgets, args.rounds if name == "LeNet-5" else max(3, args.rounds // 3), steps)


if __name__ == "__main__":
    main()
