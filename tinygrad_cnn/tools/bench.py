"""Benchmarks of tinygrad_cnn against PyTorch (when installed) and a textbook loop convolution.

Timings on a shared machine swing by tens of percent between runs, so every comparison here is a
ratio measured in one process: the workloads are interleaved (A, B, A, B, ...), each after a warm-up,
and the medians are compared. Nothing here is asserted in tests.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import functional as F
from .. import optim
from ..autograd import Tensor, no_grad
from ..models import lenet5
from ..ops import PRIMITIVES
from ..rng import manual_seed


@dataclass
class Row:
    workload: str
    ours: float  # seconds (median)
    reference: float | None = None  # PyTorch or the loop baseline, seconds (median)
    reference_name: str = "torch"
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if self.reference is None else self.ours / self.reference


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{'workload':<44} {'tinygrad_cnn':>13} {'reference':>19} {'ratio':>8}  note"]
        for r in self.rows:
            ref = "-" if r.reference is None else f"{_fmt(r.reference)} {r.reference_name}"
            ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
            lines.append(f"{r.workload:<44} {_fmt(r.ours):>13} {ref:>19} {ratio:>8}  {r.note}")
        return "\n".join(lines)


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 10 else f"{seconds:.1f} s"


def interleaved_medians(fns: list[Callable[[], object]], repeats: int, inner: int = 1,
                        warmup: int = 3) -> list[float]:
    """Median seconds per call of each function, timed in alternation so drifts in load hit all alike."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times):
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            bucket.append((time.perf_counter() - start) / inner)
    return [float(np.median(t)) for t in times]


def lenet_batch(batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random MNIST-shaped batch: float32 (N, 1, 28, 28) images, int64 labels."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, batch)


def our_train_step(batch: int) -> Callable[[], None]:
    manual_seed(0)
    model = lenet5()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = lenet_batch(batch)

    def step() -> None:
        opt.zero_grad()
        F.cross_entropy(model(Tensor(x)), y).backward()
        opt.step()

    return step


def our_inference(images: int, chunk: int) -> Callable[[], np.ndarray]:
    manual_seed(0)
    model = lenet5().eval()
    x, _ = lenet_batch(images)

    @no_grad()
    def infer() -> np.ndarray:
        return np.concatenate([model(Tensor(x[i:i + chunk])).data for i in range(0, images, chunk)])

    return infer


def torch_lenet():  # noqa: ANN201 (torch types are optional)
    import torch

    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84),
                         nn.ReLU(), nn.Linear(84, 10))


def torch_train_step(batch: int) -> Callable[[], None]:
    import torch

    model = torch_lenet()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = (torch.from_numpy(a) for a in lenet_batch(batch))

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def torch_inference(images: int) -> Callable[[], object]:
    import torch

    model = torch_lenet().eval()
    x = torch.from_numpy(lenet_batch(images)[0])

    def infer() -> object:
        with torch.no_grad():
            return model(x)

    return infer


def op_chain(length: int) -> Callable[[], None]:
    """`length` tiny elementwise ops forward, then backward: what the engine itself costs per op."""
    x = Tensor(np.ones(4, dtype=np.float32), requires_grad=True)

    def run() -> None:
        y = x
        for _ in range(length):
            y = y * 1.0001
        y.sum().backward()

    return run


def loop_conv2d(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The textbook convolution the seed notebook starts from: Python loops over every output pixel."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    y = np.zeros((n, o, h - kh + 1, wd - kw + 1), dtype=x.dtype)
    for i in range(n):
        for j in range(o):
            for r in range(h - kh + 1):
                for s in range(wd - kw + 1):
                    y[i, j, r, s] = np.sum(x[i, :, r:r + kh, s:s + kw] * w[j])
    return y


def has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def run_benchmarks(repeats: int = 30, quick: bool = False) -> Report:
    """The issue-6 workloads: LeNet training steps (batch 64, 256), inference on 1,000 images, the
    per-op engine overhead, and conv1 against the textbook loop."""
    report = Report()
    torch_ok = has_torch()
    if torch_ok:
        import torch

        torch.set_num_threads(2)
    repeats = max(5, repeats // 3) if quick else repeats
    for batch in (64, 256):
        fns = [our_train_step(batch)] + ([torch_train_step(batch)] if torch_ok else [])
        times = interleaved_medians(fns, repeats if batch == 64 else max(5, repeats // 2))
        report.rows.append(Row(f"LeNet train step, batch {batch}", times[0], times[1] if torch_ok else None))
    fns = [our_inference(1000, 100)] + ([torch_inference(1000)] if torch_ok else [])
    times = interleaved_medians(fns, max(5, repeats // 2))
    report.rows.append(Row("LeNet inference, 1,000 images (chunks of 100)", times[0],
                           times[1] if torch_ok else None))
    (chain,) = interleaved_medians([op_chain(1000)], max(5, repeats // 3))
    report.rows.append(Row("engine: 1,000 tiny ops forward+backward", chain, None,
                           note=f"{chain / 1000 * 1e6:.1f} us per op"))
    x, _ = lenet_batch(64)
    manual_seed(0)
    w = lenet5().conv1.weight
    (ours,) = interleaved_medians([lambda: F.conv2d(Tensor(x), w)], repeats)
    start = time.perf_counter()
    with no_grad():
        loop_conv2d(x[:1], w.data)
    loop = (time.perf_counter() - start) * 64  # one image, scaled to the batch: the loop is linear in N
    report.rows.append(Row("conv1 forward, batch 64", ours, loop, "loop", note=f"{loop / ours:,.0f}x faster"))
    return report


def profile_train_step(batch: int = 64, steps: int = 50) -> str:
    """Where a training step's time goes: cumulative seconds per primitive forward and per VJP."""
    step = our_train_step(batch)
    step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # {(file, line, name): (calls, ncalls, tottime, cumtime, callers)}
    total = sum(v[2] for v in stats.values())
    methods = {}
    for op in PRIMITIVES:
        for kind, role in (("forward", "forward"), ("backward", "VJP")):
            code = getattr(op, kind).__code__
            methods[(code.co_filename, code.co_firstlineno, kind)] = f"{op.__name__} {role}"
    rows = sorted(((v[3] / steps, methods[k]) for k, v in stats.items() if k in methods), reverse=True)
    lines = [f"{'ms/step':>8}  primitive (a VJP's time includes the ops it calls)"]
    lines += [f"{t * 1e3:8.3f}  {name}" for t, name in rows[:20]]
    lines.append(f"{total / steps * 1e3:8.3f}  total per step under the profiler (its overhead included)")
    return "\n".join(lines)
