"""`tinygrad-cnn bench`: the performance tables of docs/performance.md."""

from __future__ import annotations

import argparse
import sys

from ..runtime import threads as parallel
from ..runtime.memory import freeze_gc, tune_malloc
from ..tools.bench import has_torch, machine_busy, profile_train_step, run_benchmarks, run_model_benchmarks
from .args import add_processes_option, add_threads_option, apply_threads, bounded

# Other tenants' CPU share above which the two frameworks' timings swing too much to trust one run.
BUSY = 0.25


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="time a model's training step and memory against PyTorch",
                              description="Time a model's training step (and inference, memory) against PyTorch, "
                                          "interleaved in one process; see docs/performance.md.")
    p.add_argument("--model", choices=("lenet5", "cifar_vgg", "vgg16"), default="lenet5",
                   help="lenet5: the LeNet table (default); cifar_vgg: issue 16's 3x3-conv network; vgg16: its "
                        "memory at batch 2")
    p.add_argument("--repeats", type=bounded(int, 1), default=15, help="timed blocks per workload (default 15)")
    p.add_argument("--quick", action="store_true", help="fewer repetitions, under 30 s, for a fast look")
    p.add_argument("--profile", action="store_true",
                   help="also print where a training step's time goes, on one thread: batch 64, and the slice of "
                        "it that each of --processes computes")
    p.add_argument("--default-malloc", action="store_true",
                   help="keep glibc's default allocator thresholds (slower; see docs/performance.md)")
    add_threads_option(p)
    add_processes_option(p, "processes for ours in the LeNet training-step rows, one thread each, as "
                            "`tinygrad-cnn train` runs")
    p.set_defaults(run=run)


def progress(what: str) -> None:
    print(f"bench: {what} ...", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    busy = machine_busy()
    if busy is not None and busy > BUSY:
        print(f"bench: warning: the machine looks busy ({busy:.0%} of its CPU time went to other work just now); "
              f"timings and ratios will swing more than usual", file=sys.stderr)
    tuned = False if args.default_malloc else tune_malloc()
    if has_torch():
        import torch  # noqa: F401  (imported before freezing, as a training script would)
    freeze_gc()
    threads = apply_threads(args)
    print(f"allocator thresholds raised: {tuned}; imports frozen out of the garbage collector "
          f"(both apply to both frameworks in this process); tinygrad_cnn threads: {threads}, "
          f"processes: {args.processes}; numpy's BLAS: {parallel.blas_description()}")
    if args.model == "lenet5":
        print(run_benchmarks(args.repeats, args.quick, tuned, threads=threads, processes=args.processes,
                             progress=progress))
    else:
        print(run_model_benchmarks(args.model, args.repeats, args.quick, tuned, threads, progress))
    if args.profile:
        parallel.set_num_threads(1)
        for batch in dict.fromkeys((64, max(1, 64 // args.processes))):
            print()
            print(profile_train_step(batch, steps=100 if args.model == "lenet5" else 20, model=args.model))
    return 0
