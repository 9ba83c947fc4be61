"""Where a one-thread LeNet-5 training step spends its time, op by op, for any checkout.

    python benchmarks/lenet_op_times.py [CHECKOUT] [--steps 400]

Every op's `forward` and `backward` (each subclass of `Function`) is wrapped in a timer, and the mean time
per training step (batch 64, Adam) of each is printed, largest first, after the step's forward / backward /
optimizer split. A backward that calls other ops (conv2d's calls its two adjoints) includes their time.
With this repository's kernels (`tinygrad_cnn.kernels.conv`), the weight gradient's parts are timed too:
building its im2col columns and widening g to the columns' layout. CHECKOUT works as in
`lenet_step_parts.py`: run it on two worktrees, alternating, to compare releases.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", nargs="?", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args()
    sys.path.insert(0, args.checkout)

    import numpy as np
    from tinygrad_cnn.perf import freeze_gc, tune_malloc

    import tinygrad_cnn as tc
    import tinygrad_cnn.functional as F
    from tinygrad_cnn.autograd import Function
    from tinygrad_cnn.models import lenet5
    from tinygrad_cnn.optim import Adam

    tc.parallel.set_num_threads(1)
    tune_malloc()
    freeze_gc()
    spent: dict[str, float] = collections.defaultdict(float)

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*a: Any, **k: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - start
        return run

    def subclasses(cls: type) -> Iterator[type]:
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in set(subclasses(Function)):
        for kind in ("forward", "backward"):
            if kind in cls.__dict__:
                setattr(cls, kind, staticmethod(timed(f"{cls.__name__}.{kind}", cls.__dict__[kind].__func__)))
    try:
        from tinygrad_cnn.kernels import conv as conv_kernels
    except ImportError:  # a release before the kernels module
        conv_kernels = None
    if conv_kernels is not None and hasattr(conv_kernels, "_grad_matrix"):
        # Only the weight gradient widens g, so `_columns` called while it runs is the weight gradient's.
        in_weight_grad = [False]
        columns, weight_grad = conv_kernels._columns, conv_kernels.conv2d_weight_grad

        def columns_timed(*a: Any) -> Any:
            return timed("  weight gradient: im2col columns" if in_weight_grad[0] else "  forward: im2col columns",
                         columns)(*a)

        def weight_grad_flagged(*a: Any, **k: Any) -> Any:
            in_weight_grad[0] = True
            try:
                return weight_grad(*a, **k)
            finally:
                in_weight_grad[0] = False

        conv_kernels._columns = columns_timed
        conv_kernels._grad_matrix = timed("  weight gradient: g widened", conv_kernels._grad_matrix)
        conv_kernels.conv2d_weight_grad = weight_grad_flagged

    tc.manual_seed(0)
    model, rng = lenet5(), np.random.default_rng(0)
    optimizer = Adam(model.parameters(), lr=1e-3)
    x, y = rng.standard_normal((64, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 64)
    parts: dict[str, float] = collections.defaultdict(float)
    for i in range(args.steps + 30):  # the first 30 warm up
        if i == 30:
            spent.clear()
            parts.clear()
        t0 = time.perf_counter()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(tc.Tensor(x)), y)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        t3 = time.perf_counter()
        for name, seconds in zip(("forward", "backward", "optimizer"), (t1 - t0, t2 - t1, t3 - t2)):
            parts[name] += seconds
    print(f"{args.checkout}: " + "  ".join(f"{k} {v / args.steps * 1e3:.3f} ms" for k, v in parts.items()))
    for name, seconds in sorted(spent.items(), key=lambda item: -item[1])[:14]:
        print(f"  {seconds / args.steps * 1e3:7.3f} ms  {name}")


if __name__ == "__main__":
    main()
