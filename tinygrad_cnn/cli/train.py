"""`tinygrad-cnn train`: train LeNet-5 on MNIST (the loop itself is `tinygrad_cnn.app.training`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..app import training
from ..data import MNISTError, load_mnist
from ..runtime.memory import freeze_gc, tune_malloc
from ..serialization import CheckpointError
from .args import add_processes_option, add_threads_option, apply_threads, bounded, usage_error

INTERRUPTED = 130  # the shell's code for a process stopped by SIGINT


def register(subparsers: argparse._SubParsersAction) -> None:
    d = training.TrainConfig()
    p = subparsers.add_parser(
        "train", help="train LeNet-5 on MNIST",
        description="Train LeNet-5 on MNIST, saving a checkpoint and the metrics into --out after every epoch. "
                    "Ctrl-C stops after the last completed epoch (exit code 130); --resume continues from there "
                    "with the same result as an uninterrupted run. Options not given on --resume are taken "
                    "from the checkpoint.")
    p.add_argument("--epochs", type=bounded(int, 1), help=f"total number of epochs (default {d.epochs})")
    p.add_argument("--batch-size", type=bounded(int, 1), help=f"images per step (default {d.batch_size})")
    p.add_argument("--lr", type=bounded(float, 0, open_low=True), help=f"learning rate (default {d.lr:g})")
    p.add_argument("--optimizer", choices=training.OPTIMIZERS, help=f"(default {d.optimizer})")
    p.add_argument("--momentum", type=bounded(float, 0, 1, open_high=True),
                   help=f"SGD momentum (default {d.momentum:g})")
    p.add_argument("--lr-decay", type=bounded(float, 0, 1, open_low=True),
                   help=f"multiply the learning rate by this after every epoch (default {d.lr_decay:g})")
    p.add_argument("--seed", type=bounded(int, 0), help=f"initialisation and shuffling seed (default {d.seed})")
    p.add_argument("--limit-train", type=bounded(int, 1), metavar="N",
                   help="train on the first N training images only (quick runs)")
    p.add_argument("--limit-test", type=bounded(int, 1), metavar="N",
                   help="evaluate on the first N test images only (quick runs)")
    p.add_argument("--data-dir", help="MNIST directory (default: $TINYGRAD_CNN_DATA, else "
                                      "~/.cache/tinygrad_cnn/mnist; downloaded there if missing)")
    p.add_argument("--out", type=Path, default=Path("runs/lenet5"),
                   help=f"output directory for {training.CHECKPOINT_FILE}, {training.METRICS_CSV}, "
                        f"{training.METRICS_JSON} and {training.PLOT_FILE} (default runs/lenet5)")
    p.add_argument("--resume", action="store_true",
                   help=f"continue the run whose {training.CHECKPOINT_FILE} is in --out")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it is off anyway when stderr is not a terminal)")
    add_processes_option(p, "processes that share each batch's gradient, one thread each (with more than one, "
                            "--threads applies to the test-set evaluation only)")
    add_threads_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    tune_malloc()  # before the big arrays are allocated (tinygrad_cnn.runtime.memory)
    freeze_gc()
    apply_threads(args)
    given = {name: getattr(args, name) for name in ("epochs", "batch_size", "lr", "optimizer", "momentum",
                                                    "lr_decay", "seed", "limit_train", "limit_test")}
    try:  # what the user can fix is reported before the data is loaded (a checkpoint's shapes: before training)
        # A resumed run's checkpoint first: a refused --resume creates no directory.
        checkpoint = training.load_checkpoint(args.out / training.CHECKPOINT_FILE) if args.resume else None
        training.prepare_output_dir(args.out)
        if not args.no_progress:
            training.progress_bar_class()
        config = training.resolve_config(given, checkpoint.config if checkpoint else None)
        data = load_mnist(args.data_dir)
    except (MNISTError, CheckpointError, training.ResumeError, training.OutputDirError, ImportError) as e:
        return usage_error("train", e)
    except KeyboardInterrupt:
        print("\ninterrupted before training started", file=sys.stderr)
        return INTERRUPTED
    try:
        result = training.train(config, data, args.out, checkpoint, progress=not args.no_progress,
                                processes=args.processes)
    except CheckpointError as e:  # the checkpoint's weights or optimizer state do not fit; nothing was written
        return usage_error("train", e)
    except KeyboardInterrupt:  # a second Ctrl-C: every file in --out is still from a completed epoch
        result = None
    if result is None or result.interrupted:
        print(f"\ninterrupted: {args.out / training.CHECKPOINT_FILE} holds the last completed epoch; continue with "
              f"`tinygrad-cnn train --out {args.out} --resume`", file=sys.stderr)
        return INTERRUPTED
    if not result.plotted:
        print("matplotlib is not installed: skipped the plot (pip install 'tinygrad_cnn[app]')")
    return 0
