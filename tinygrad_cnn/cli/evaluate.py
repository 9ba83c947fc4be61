"""`tinygrad-cnn eval`: test accuracy, confusion matrix and per-class accuracy of a `train` checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..app import training
from ..app.metrics import confusion_matrix
from ..data import MNISTError, load_mnist, normalize
from ..models import lenet5
from ..serialization import CheckpointError
from .args import add_threads_option, apply_threads, usage_error


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate a checkpoint written by `train` on the MNIST test set",
                              description="Print the test accuracy of a checkpoint written by `tinygrad-cnn "
                                          "train`, its confusion matrix and the accuracy of each class.")
    p.add_argument("--checkpoint", type=Path, required=True, metavar="PATH",
                   help=f"the {training.CHECKPOINT_FILE} in a train --out directory")
    p.add_argument("--data-dir", help="MNIST directory (default: $TINYGRAD_CNN_DATA, else "
                                      "~/.cache/tinygrad_cnn/mnist; downloaded there if missing)")
    add_threads_option(p)
    p.set_defaults(run=run)


def format_confusion(matrix: np.ndarray) -> str:
    """The matrix (rows = true class, columns = predicted class) with each row's total and accuracy."""
    classes = range(len(matrix))
    width = max(5, len(str(matrix.max())) + 1)
    lines = ["true\\pred" + "".join(f"{c:>{width}}" for c in classes) + "    total  accuracy"]
    for c in classes:
        total = matrix[c].sum()
        recall = f"{100 * matrix[c, c] / total:8.2f}%" if total else "       -"
        lines.append(f"{c:>9}" + "".join(f"{n:>{width}}" for n in matrix[c]) + f"{total:>9}  {recall}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    apply_threads(args)
    model = lenet5()
    try:
        checkpoint = training.load_checkpoint(args.checkpoint)
        training.restore(checkpoint, model)
        _, _, x_test, y_test = load_mnist(args.data_dir)
    except (MNISTError, CheckpointError) as e:
        return usage_error("eval", e)
    result = training.evaluate(model, normalize(x_test), y_test)
    matrix = confusion_matrix(result.predictions, y_test, 10)
    correct = int(np.trace(matrix))
    config = checkpoint.config
    print(f"checkpoint {args.checkpoint}: after epoch {checkpoint.epoch} (optimizer {config.optimizer}, "
          f"lr {config.lr:g}, batch size {config.batch_size}, seed {config.seed})")
    print(f"test accuracy: {100 * result.accuracy:.2f}% ({correct}/{len(y_test)}), test loss {result.loss:.4f}")
    print("\nconfusion matrix (rows = true class, columns = predicted class):")
    print(format_confusion(matrix))
    return 0
