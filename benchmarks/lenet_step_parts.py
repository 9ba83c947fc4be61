"""Where a one-thread LeNet-5 training step spends its time: forward, backward, optimizer step (medians).

    python benchmarks/lenet_step_parts.py [CHECKOUT] [--steps 200]

CHECKOUT is a directory holding a tinygrad_cnn package (default: this repository), so two releases can be
compared in alternating processes, e.g. with `git worktree add /tmp/prev <commit>`:

    for i in 1 2 3; do python benchmarks/lenet_step_parts.py /tmp/prev; python benchmarks/lenet_step_parts.py; done

Only names that every release has are used (`tinygrad_cnn.parallel`, `tinygrad_cnn.perf`, `models.lenet5`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", nargs="?", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--steps", type=int, default=200)
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
    tc.manual_seed(0)
    model, rng = lenet5(), np.random.default_rng(0)
    optimizer = Adam(model.parameters(), lr=1e-3)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    parts: dict[str, list[float]] = {"forward": [], "backward": [], "step": []}
    for i in range(args.steps + 20):  # the first 20 warm up
        t0 = time.perf_counter()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(tc.Tensor(x)), y)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        t3 = time.perf_counter()
        if i >= 20:
            for name, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2)):
                parts[name].append(seconds)
    print(f"{args.checkout}: " + "  ".join(f"{name} {statistics.median(v) * 1e3:.2f} ms" for name, v in parts.items()))


if __name__ == "__main__":
    main()
