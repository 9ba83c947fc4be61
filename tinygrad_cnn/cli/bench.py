"""`tinygrad-cnn bench`: the performance table of docs/performance.md."""

from __future__ import annotations

import argparse

from ..runtime import threads as parallel
from ..runtime.memory import freeze_gc, tune_malloc
from ..tools.bench import has_torch, profile_train_step, run_benchmarks
from .args import add_processes_option, add_threads_option, apply_threads, bounded


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="time LeNet training/inference against PyTorch and a loop conv")
    p.add_argument("--repeats", type=bounded(int, 1), default=15, help="timed blocks per workload (default 15)")
    p.add_argument("--quick", action="store_true", help="fewer repetitions, for a fast look")
    p.add_argument("--profile", action="store_true",
                   help="also print where a training step's time goes, on one thread: batch 64, and the slice of "
                        "it that each of --processes computes")
    p.add_argument("--default-malloc", action="store_true",
                   help="keep glibc's default allocator thresholds (slower; see docs/performance.md)")
    add_threads_option(p)
    add_processes_option(p, "processes for ours in the training-step rows, one thread each, as `tinygrad-cnn train` "
                            "runs")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    tuned = False if args.default_malloc else tune_malloc()
    if has_torch():
        import torch  # noqa: F401  (imported before freezing, as a training script would)
    freeze_gc()
    threads = apply_threads(args)
    print(f"allocator thresholds raised: {tuned}; imports frozen out of the garbage collector "
          f"(both apply to both frameworks in this process); tinygrad_cnn threads: {threads}, "
          f"processes: {args.processes}")
    print(run_benchmarks(args.repeats, args.quick, tuned, threads=threads, processes=args.processes))
    if args.profile:
        parallel.set_num_threads(1)
        for batch in dict.fromkeys((64, max(1, 64 // args.processes))):
            print()
            print(profile_train_step(batch))
    return 0
