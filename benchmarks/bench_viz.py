"""How long `draw_graph` takes to produce the DOT source of a big graph (no Graphviz layout involved).

The graph is a deep, narrow MLP (Linear + ReLU blocks, 4 recorded ops each) after one backward pass, so every
view has something to draw: forward, backward, backward with gradient colours, and modules collapsed.
Reported: seconds at --ops ops (the target is well under a second for 10,000), and the ratio of the time at
2x the ops to the time at 1x: about 2 for linear cost, 4 for quadratic.

    python benchmarks/bench_viz.py [--ops 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.rng import manual_seed
from tinygrad_cnn.viz import draw_graph

VIEWS: dict[str, dict[str, bool]] = {
    "forward": {},
    "backward": {"backward": True},
    "backward + grads": {"backward": True, "show_grads": True},
    "forward, collapsed": {"collapse_modules": True},
}


def deep_mlp_step(ops: int) -> tuple[nn.Module, Tensor]:
    """A model recording about `ops` ops (Linear: Permute, MatMul, Add; ReLU), after loss.backward()."""
    manual_seed(0)
    blocks = max(1, ops // 4)
    model = nn.Sequential(*[layer for _ in range(blocks) for layer in (nn.Linear(4, 4), nn.ReLU())])
    loss = model(Tensor(np.ones((2, 4), dtype=np.float32))).sum()
    loss.backward()
    return model, loss


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of `repeat` runs: the least disturbed by other work on a shared machine."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def dot_source(model: nn.Module, loss: Tensor, options: dict[str, bool]) -> Callable[[], str]:
    return lambda: draw_graph(loss, params=model, **options).source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    steps = {n: deep_mlp_step(n) for n in (args.ops, 2 * args.ops)}
    print(f"{'view':<20} {'ops':>7} {'seconds':>8} {'us/op':>6} {'2x ops / 1x ops':>16}")
    for view, options in VIEWS.items():
        times = {n: best_time(dot_source(model, loss, options), args.repeat) for n, (model, loss) in steps.items()}
        ops = len(steps[args.ops][1]._topo())
        print(f"{view:<20} {ops:>7} {times[args.ops]:>8.3f} {1e6 * times[args.ops] / ops:>6.1f} "
              f"{times[2 * args.ops] / times[args.ops]:>16.2f}")


if __name__ == "__main__":
    main()
