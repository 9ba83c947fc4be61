"""How long loading a batch takes next to a LeNet training step, PyTorch-style loading (issue 15).

    TINYGRAD_CNN_DATA=/path/to/mnist python benchmarks/data_loading.py [--rounds 5] [--batch-size 64]

Loads shuffled MNIST training batches through `utils.data.DataLoader` over
`vision.datasets.MNIST(transform=Compose([ToTensor(), Normalize(...)]))`, two ways: the vectorised path
(the dataset's `__getbatch__`, what the loader uses by default) and the per-sample path (forced by a custom
`collate_fn`, as any per-sample transform would be). Both are timed per batch over whole epochs, interleaved
with single-process LeNet-5 training steps (Adam, cross-entropy) on the same batch size; each row gives the
median over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import tinygrad_cnn
import tinygrad_cnn.functional as F
from tinygrad_cnn.models import lenet5
from tinygrad_cnn.optim import Adam
from tinygrad_cnn.utils.data import DataLoader, default_collate
from tinygrad_cnn.vision import datasets, transforms


def per_batch_seconds(batches: Iterator[Any], count: int) -> float:
    """Seconds per batch to draw ``count`` batches from ``batches``."""
    start = time.perf_counter()
    for _ in zip(range(count), batches, strict=False):
        pass
    return (time.perf_counter() - start) / count


def train_step_seconds(loader: DataLoader, steps: int) -> float:
    """Seconds per LeNet-5 training step (forward, backward, Adam) on pre-loaded batches of the loader."""
    model = lenet5()
    optimizer = Adam(model.parameters(), lr=1e-3)
    batches = [b for _, b in zip(range(steps), loader, strict=False)]
    start = time.perf_counter()
    for images, labels in batches:
        loss = F.cross_entropy(model(images), labels.numpy())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100, help="training steps timed per round")
    args = parser.parse_args()

    tinygrad_cnn.manual_seed(0)
    start = time.perf_counter()
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train = datasets.MNIST("data", train=True, transform=tf)
    print(f"MNIST training set read and verified in {time.perf_counter() - start:.2f} s")

    per_sample_collate: Callable[[list[Any]], Any] = lambda samples: default_collate(samples)  # noqa: E731
    vectorised = DataLoader(train, batch_size=args.batch_size, shuffle=True)
    per_sample = DataLoader(train, batch_size=args.batch_size, shuffle=True, collate_fn=per_sample_collate)
    rows: dict[str, list[float]] = {"load, vectorised (default)": [], "load, per sample": [],
                                    "LeNet-5 train step": []}
    for _ in range(args.rounds):
        rows["load, vectorised (default)"].append(per_batch_seconds(iter(vectorised), len(vectorised)))
        rows["load, per sample"].append(per_batch_seconds(iter(per_sample), 200))
        rows["LeNet-5 train step"].append(train_step_seconds(vectorised, args.steps))
    step = statistics.median(rows["LeNet-5 train step"])
    print(f"batch {args.batch_size}, median of {args.rounds} rounds (1 process, "
          f"{tinygrad_cnn.parallel.get_num_threads()} conv thread(s)):")
    for name, times in rows.items():
        t = statistics.median(times)
        print(f"  {name:28s} {t * 1e3:8.3f} ms per batch  ({100 * t / step:5.1f} % of a train step)")


if __name__ == "__main__":
    main()
