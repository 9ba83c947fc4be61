"""Where a one-thread LeNet-5 training step spends its time: forward, backward, optimizer step (medians).

    python benchmarks/lenet_step_parts.py [CHECKOUT] [--steps 200] [--ops]

CHECKOUT is a directory holding a tinygrad_cnn package (default: this repository), so two releases can be
compared in alternating processes, e.g. with `git worktree add /tmp/prev <commit>`:

    for i in 1 2 3; do python benchmarks/lenet_step_parts.py /tmp/prev; python benchmarks/lenet_step_parts.py; done

Only names that every release has are used (`tinygrad_cnn.parallel`, `tinygrad_cnn.perf`, `models.lenet5`).

--ops also times every op's `forward` and `backward` (each subclass of `Function`) inside the step and prints
the mean per step of each, largest first (a backward that calls other ops, as conv2d's calls its adjoints,
includes their time). With this repository's kernels (`tinygrad_cnn.kernels.conv`), the conv weight
gradient's parts are timed too: building its im2col columns and widening g to the columns' layout.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

WARM_UP = 20


def timed(spent: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn, adding the seconds of each call to spent[name]."""
    def run(*a: Any, **k: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            spent[name] += time.perf_counter() - start
    return run


def time_ops(spent: dict[str, float]) -> None:
    """Wrap every op's forward and backward, and the conv weight gradient's parts where they exist."""
    from tinygrad_cnn.autograd import Function

    def subclasses(cls: type) -> Iterator[type]:
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in set(subclasses(Function)):
        for kind in ("forward", "backward"):
            if kind in cls.__dict__:
                setattr(cls, kind, staticmethod(timed(spent, f"{cls.__name__}.{kind}", cls.__dict__[kind].__func__)))
    try:
        from tinygrad_cnn.kernels import conv as conv_kernels
    except ImportError:  # a release before the kernels module
        return
    if not hasattr(conv_kernels, "_grad_matrix"):
        return
    # Only the weight gradient widens g, so `_columns` called while it runs is the weight gradient's.
    in_weight_grad = [False]
    columns, weight_grad = conv_kernels._columns, conv_kernels.conv2d_weight_grad

    def columns_timed(*a: Any) -> Any:
        name = "  weight gradient: im2col columns" if in_weight_grad[0] else "  forward: im2col columns"
        return timed(spent, name, columns)(*a)

    def weight_grad_flagged(*a: Any, **k: Any) -> Any:
        in_weight_grad[0] = True
        try:
            return weight_grad(*a, **k)
        finally:
            in_weight_grad[0] = False

    conv_kernels._columns = columns_timed
    conv_kernels._grad_matrix = timed(spent, "  weight gradient: g widened", conv_kernels._grad_matrix)
    conv_kernels.conv2d_weight_grad = weight_grad_flagged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", nargs="?", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--ops", action="store_true", help="also the mean time per step of every op")
    args = parser.parse_args()
    sys.path.insert(0, args.checkout)

    import numpy as np
    from tinygrad_cnn.perf import freeze_gc, tune_malloc

    import tinygrad_cnn as tc
    import tinygrad_cnn.functional as F
    from tinygrad_cnn.models import lenet5
    from tinygrad_cnn.optim import Adam

    tc.parallel.set_num_threads(1)
    tune_malloc()
    freeze_gc()
    spent: dict[str, float] = collections.defaultdict(float)
    if args.ops:
        time_ops(spent)
    tc.manual_seed(0)
    model, rng = lenet5(), np.random.default_rng(0)
    optimizer = Adam(model.parameters(), lr=1e-3)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    parts: dict[str, list[float]] = {"forward": [], "backward": [], "step": []}
    for i in range(args.steps + WARM_UP):
        if i == WARM_UP:
            spent.clear()
        t0 = time.perf_counter()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(tc.Tensor(x)), y)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        t3 = time.perf_counter()
        if i >= WARM_UP:
            for name, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2)):
                parts[name].append(seconds)
    print(f"{args.checkout}: " + "  ".join(f"{name} {statistics.median(v) * 1e3:.2f} ms" for name, v in parts.items()))
    for name, seconds in sorted(spent.items(), key=lambda item: -item[1])[:14]:
        print(f"  {seconds / args.steps * 1e3:7.3f} ms  {name}")


if __name__ == "__main__":
    main()
