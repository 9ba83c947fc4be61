"""Training throughput (images/s) of LeNet-5: tinygrad_cnn against PyTorch, on the same machine, in one process.

Both frameworks train the same architecture with the same optimizer, learning rate and batch size (the
defaults of `tinygrad-cnn train`) on the same batches of normalised MNIST (random images with --synthetic
or when MNIST is absent). A shared machine's speed drifts, so the two run in alternating rounds of
--steps steps after a warm-up (each after a pause: spinning threads of the other framework must not be
billed to it), and the medians over the rounds are compared. Each step is what the training loop does:
forward, cross-entropy, zero_grad, backward, optimizer step, loss to a Python float. tinygrad_cnn runs as
`tinygrad-cnn train` does: the batch split over --our-processes processes (`DataParallel`).

    python benchmarks/torch_lenet_train.py                      # 5 rounds of 100 steps each
    python benchmarks/torch_lenet_train.py --rounds 3 --threads 1 --our-processes 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from tinygrad_cnn.data_parallel import DataParallel
from tinygrad_cnn.parallel import available_cores
from tinygrad_cnn.perf import tune_malloc

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor
from tinygrad_cnn.app.training import TrainConfig
from tinygrad_cnn.data import MNISTError, load_mnist, normalize
from tinygrad_cnn.models import lenet5
from tinygrad_cnn.optim import SGD, Adam
from tinygrad_cnn.rng import manual_seed


def batches(config: TrainConfig, count: int, synthetic: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` shuffled (images (B, 1, 28, 28) float32, labels (B,) int64) batches."""
    rng = np.random.default_rng(0)
    n = count * config.batch_size
    images, labels = None, None
    if not synthetic:
        try:
            images, labels, _, _ = load_mnist()
        except MNISTError:
            print("MNIST not found: timing random images instead")
    if images is None:
        images, labels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)
    order = rng.permutation(len(images))[:n]
    x, y = normalize(images[order]), labels[order]
    return [(x[i:i + config.batch_size], y[i:i + config.batch_size]) for i in range(0, n, config.batch_size)]


def ours(config: TrainConfig, processes: int) -> tuple[Callable[[np.ndarray, np.ndarray], float], DataParallel]:
    manual_seed(0)
    model = lenet5()
    optimizer = (SGD(model.parameters(), config.lr, momentum=config.momentum) if config.optimizer == "sgd"
                 else Adam(model.parameters(), config.lr))
    dp = DataParallel(model, lambda x, y: F.cross_entropy(model(Tensor(x)), y), processes)

    def step(x: np.ndarray, y: np.ndarray) -> float:
        optimizer.zero_grad()
        loss = dp.value_and_grad(x, y)
        optimizer.step()
        return loss

    return step, dp


def pytorch(config: TrainConfig) -> Callable[[np.ndarray, np.ndarray], float]:
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(6, 16, 5), nn.MaxPool2d(2),
                          nn.ReLU(), nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84),
                          nn.ReLU(), nn.Linear(84, 10))
    optimizer = (torch.optim.SGD(model.parameters(), config.lr, momentum=config.momentum)
                 if config.optimizer == "sgd" else torch.optim.Adam(model.parameters(), config.lr))

    def step(x: np.ndarray, y: np.ndarray) -> float:
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def images_per_second(step: Callable[[np.ndarray, np.ndarray], float],
                      data: list[tuple[np.ndarray, np.ndarray]]) -> float:
    start = time.perf_counter()
    for x, y in data:
        step(x, y)
    return sum(len(y) for _, y in data) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100, help="steps per round and framework")
    parser.add_argument("--threads", type=int, default=None, help="PyTorch threads (default: its own choice)")
    parser.add_argument("--our-processes", type=int, default=available_cores(),
                        help="tinygrad_cnn processes (default: as `tinygrad-cnn train`, the cores available)")
    parser.add_argument("--synthetic", action="store_true", help="time random images instead of MNIST")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tune_malloc()  # as `tinygrad-cnn train` does
    config = TrainConfig()
    data = batches(config, args.steps, args.synthetic)
    our_step, dp = ours(config, args.our_processes)
    runners = {"tinygrad_cnn": our_step, "pytorch": pytorch(config)}
    with dp:
        for step in runners.values():  # warm-up: first-touch allocations, lazy initialisation, forking
            images_per_second(step, data[:10])
        rates: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(args.rounds):
            for name, step in runners.items():
                time.sleep(0.3)
                rates[name].append(images_per_second(step, data))

    print(f"LeNet-5 training, batch {config.batch_size}, {config.optimizer} (lr {config.lr:g}), "
          f"{args.rounds} rounds of {args.steps} steps, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"with {torch.get_num_threads()} threads, tinygrad_cnn with {dp.processes} processes")
    for name, values in rates.items():
        print(f"  {name:>12}: {statistics.median(values):8.0f} images/s (median; rounds: "
              f"{', '.join(f'{v:.0f}' for v in values)})")
    ratio = statistics.median(rates["pytorch"]) / statistics.median(rates["tinygrad_cnn"])
    print(f"  PyTorch is {ratio:.2f}x as fast")


if __name__ == "__main__":
    main()
