"""The gradient doctor on LeNet-5: a clean report, one with a planted wrong VJP, why float64, and
detect_anomaly on a forward NaN and a backward-only Inf.

    python examples/check_graph_demo.py            # the two reports, the float32/float64 table, two anomalies
    python examples/check_graph_demo.py --timing   # also: check_graph's cost against one training step

The reports and numbers in docs/gradcheck.md come from this script.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import tinygrad_cnn.functional as F
from tinygrad_cnn import Function, Tensor, check_graph, detect_anomaly, manual_seed, models, nn
from tinygrad_cnn.tools.doctor import AnomalyError, record_sites

BATCH = 8


class ScaledRelu(Function):
    """scale * relu(x), with a planted bug: the VJP forgets the scale."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        return np.maximum(x, 0) * np.asarray(scale, dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * Tensor._make((x.data > 0).astype(x.dtype))  # should be times scale


class ScaledReluLayer(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return ScaledRelu.apply(x, scale=2.0)


def lenet_batch(model: nn.Module, seed: int = 0) -> Tensor:
    """Cross-entropy of LeNet-5 on a random batch of 1x28x28 float32 images, recorded with creation sites."""
    rng = np.random.default_rng(seed)
    images = Tensor(rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32))
    labels = rng.integers(0, 10, BATCH)
    with record_sites():
        loss = F.cross_entropy(model(images), labels)
    return loss


def lenet(planted_bug: bool = False) -> nn.Module:
    manual_seed(0)
    model = models.lenet5()
    if planted_bug:
        model.relu2 = ScaledReluLayer()  # after conv2's pooling
    return model


def finite_difference_errors(dtype: type, eps: float, seed: int = 0) -> float:
    """Relative error of the central difference of s(x) = <v, exp(x)> along a random d, computed in
    `dtype`, against the exact directional derivative <v * exp(x), d> (in float64)."""
    rng = np.random.default_rng(seed)
    x, v, d = (rng.standard_normal(1000) for _ in range(3))
    exact = float(np.dot(v * np.exp(x), d))
    x, v, d = (a.astype(dtype) for a in (x, v, d))
    step = dtype(eps)

    def s(t: np.ndarray) -> float:
        return np.dot(v, np.exp(t))  # computed, and rounded, in dtype

    numeric = float((s(x + step * d) - s(x - step * d)) / (2 * step))
    return abs(numeric - exact) / abs(exact)


def forward_nan() -> None:
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    with detect_anomaly():
        (x - 10).log()  # log of a negative number


def backward_inf() -> None:
    x = Tensor(np.array([0.0, 1.0, 4.0]), requires_grad=True)
    with detect_anomaly():
        y = x ** 0.5  # sqrt: fine at 0 ...
        y.sum().backward()  # ... but its derivative 0.5 / sqrt(x) is not


def median_seconds(run: callable, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timing", action="store_true", help="time check_graph against one forward+backward")
    args = parser.parse_args()

    print(f"== LeNet-5, batch {BATCH}, float32 ==")
    print(check_graph(lenet_batch(lenet())))
    print("\n== the same with ScaledRelu (wrong VJP) in place of relu2 ==")
    print(check_graph(lenet_batch(lenet(planted_bug=True))))

    print("\n== relative error of a central difference of <v, exp(x)>, 1000 elements ==")
    print(f"{'eps':>8}  {'float32':>9}  {'float64':>9}")
    for eps in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-10):
        print(f"{eps:8.0e}  {finite_difference_errors(np.float32, eps):9.1e}  "
              f"{finite_difference_errors(np.float64, eps):9.1e}")

    print("\n== detect_anomaly ==")
    for example in (forward_nan, backward_inf):
        try:
            with np.errstate(all="ignore"):  # numpy's own warnings would say less, earlier
                example()
        except AnomalyError as e:
            print(f"{example.__name__}: AnomalyError: {e}")

    if args.timing:
        model = lenet()
        step = median_seconds(lambda: lenet_batch(model).backward(), repeats=21)
        check = median_seconds(lambda: check_graph(lenet_batch(model)))
        nodes = len(check_graph(lenet_batch(model)).nodes)
        print(f"\nforward+backward: {1e3 * step:.1f} ms; check_graph: {1e3 * check:.0f} ms "
              f"({check / step:.0f}x one training step, {1e3 * check / nodes:.1f} ms per node, {nodes} nodes)")


if __name__ == "__main__":
    main()
