"""Train LeNet-5 on MNIST with tinygrad_cnn, written the way a PyTorch script is.

    python examples/train_lenet.py                         # 500 steps of 64 images, then the test set
    python examples/train_lenet.py --steps 50 --limit 500  # a quick look

MNIST is read from --data-dir, else $TINYGRAD_CNN_DATA, else ~/.cache/tinygrad_cnn/mnist (downloaded
there if missing). For full runs with checkpoints and metrics, see `tinygrad-cnn train`.
"""

from __future__ import annotations

import argparse

import numpy as np

import tinygrad_cnn as tc
import tinygrad_cnn.functional as F
from tinygrad_cnn.data import DataLoader, MNISTError, load_mnist, normalize
from tinygrad_cnn.models import lenet5
from tinygrad_cnn.optim import Adam
from tinygrad_cnn.rng import manual_seed
from tinygrad_cnn.runtime.memory import tune_malloc
from tinygrad_cnn.runtime.threads import available_cores, set_num_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=500, help="optimizer steps (default 500)")
    parser.add_argument("--limit", type=int, default=10000, help="test images to evaluate on (default all 10000)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    tune_malloc()  # reuse big buffers instead of page-faulting them every step (see docs/performance.md)
    set_num_threads(available_cores())  # split the convolutions' batch over the cores (runtime.threads)
    manual_seed(0)
    try:
        x_train, y_train, x_test, y_test = load_mnist(args.data_dir)
    except MNISTError as e:
        parser.exit(2, f"error: {e}\n")
    train_loader = DataLoader(x_train, y_train, batch_size=args.batch_size, shuffle=True, seed=0, transform=normalize)
    test_loader = DataLoader(x_test[:args.limit], y_test[:args.limit], batch_size=1000, transform=normalize)

    model = lenet5()
    optimizer = Adam(model.parameters(), lr=args.lr)

    step = 0
    while step < args.steps:  # as many epochs (passes over the loader) as the steps need
        for images, labels in train_loader:
            logits = model(tc.Tensor(images))  # the graph is recorded as the forward runs
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step % 50 == 0 or step == args.steps:
                print(f"step {step}: loss {loss.item():.4f}")
            if step == args.steps:
                break

    model.eval()
    correct = 0
    with tc.no_grad():  # evaluation records no graph
        for images, labels in test_loader:
            correct += int(np.sum(model(tc.Tensor(images)).numpy().argmax(axis=1) == labels))
    print(f"test accuracy: {100 * correct / len(test_loader.x):.2f}% on {len(test_loader.x)} images")


if __name__ == "__main__":
    main()
