"""Benchmarks of tinygrad_cnn against PyTorch (when installed) and a textbook loop convolution.

Timings on a shared machine swing by tens of percent between runs, so every comparison here is a
ratio measured in one process: the workloads are interleaved (A, B, A, B, ...), each after a warm-up,
and the medians are compared. Nothing here is asserted in tests.
"""

from __future__ import annotations

import contextlib
import functools
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import functional as F
from .. import nn, optim
from ..autograd import Tensor, no_grad
from ..models import lenet5
from ..models.vgg import VGG16_LAYOUT
from ..ops import PRIMITIVES
from ..rng import manual_seed
from ..runtime import threads as parallel
from ..runtime.data_parallel import DataParallel


@dataclass
class Row:
    workload: str
    ours: float  # seconds (median)
    reference: float | None = None  # PyTorch or the loop baseline, seconds (median)
    reference_name: str = "torch"
    note: str = ""
    unit: str = "s"  # "s": times, formatted in ms; "MiB": memory

    @property
    def ratio(self) -> float | None:
        return None if self.reference is None else self.ours / self.reference


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{'workload':<44} {'tinygrad_cnn':>13} {'reference':>19} {'ratio':>8}  note"]
        for r in self.rows:
            ref = "-" if r.reference is None else f"{_fmt(r.reference, r.unit)} {r.reference_name}"
            ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x" if r.ratio >= 0.01 else f"{r.ratio:.0e}x"
            lines.append(f"{r.workload:<44} {_fmt(r.ours, r.unit):>13} {ref:>19} {ratio:>8}  {r.note}")
        return "\n".join(lines)


def _fmt(value: float, unit: str = "s") -> str:
    if unit == "MiB":
        return f"{value:.1f} MiB"
    return f"{value * 1e3:.2f} ms" if value < 10 else f"{value:.1f} s"


# --quick: 3 timed blocks of 3 calls, 1 untimed call before each.
QUICK_BLOCKS = {"repeats": 3, "inner": 3, "settle": 1}


def interleaved_medians(fns: list[Callable[[], object]], repeats: int, inner: int = 20, pause: float = 0.3,
                        warmup: int = 3, settle: int = 5) -> list[float]:
    """Median seconds per call of each function, timed in alternating blocks of `inner` calls so that
    drifts in machine load hit all alike. Each block starts after a `pause` and `settle` untimed calls.
    The pause: the BLAS and OpenMP threads of whatever ran before keep spinning for a while after it
    returns, and without the pause that spinning is billed to the next block (in our measurement it
    made PyTorch's LeNet step look ~2x slower right after a numpy step). The untimed calls: after the
    pause the second core has gone idle, and the first hand-offs to a sleeping thread are slow; a
    training loop runs its steps back to back, so the blocks time that steady state."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times):
            time.sleep(pause)
            for _ in range(settle):
                fn()
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            bucket.append((time.perf_counter() - start) / inner)
    return [float(np.median(t)) for t in times]


def lenet_layers(nn: Any) -> Any:
    """LeNet-5 as `models.lenet5()` builds it, from either framework's `nn` (the APIs agree)."""
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(6, 16, 5), nn.MaxPool2d(2),
                         nn.ReLU(), nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84),
                         nn.ReLU(), nn.Linear(84, 10))


def cifar_vgg_layers(nn: Any) -> Any:
    """The CIFAR-style network of issue 16: 3x3 convs (padding 1) 3->32->32, pool, 32->64->64, pool, 4096->256->10."""
    def conv(c: int, o: int) -> list:
        return [nn.Conv2d(c, o, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*conv(3, 32), *conv(32, 32), nn.MaxPool2d(2), *conv(32, 64), *conv(64, 64), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4096, 256), nn.ReLU(), nn.Linear(256, 10))


def vgg16_layers(nn: Any) -> Any:
    """VGG16 (torchvision's configuration D) at 224x224."""
    layers: list = []
    channels = 3
    for item in VGG16_LAYOUT:
        layers += [nn.MaxPool2d(2)] if item == "M" else [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU()]
        channels = channels if item == "M" else item
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten(), nn.Linear(512 * 7 * 7, 4096),
                         nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000))


# name -> (layers built from an `nn` namespace, one input's shape, classes)
MODELS: dict[str, tuple[Callable[[Any], Any], tuple[int, int, int], int]] = {
    "lenet5": (lenet_layers, (1, 28, 28), 10), "cifar_vgg": (cifar_vgg_layers, (3, 32, 32), 10),
    "vgg16": (vgg16_layers, (3, 224, 224), 1000)}


def batch_of(model: str, batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random batch for `model`: float32 (N, C, H, W) images, int64 labels."""
    _, shape, classes = MODELS[model]
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, *shape), dtype=np.float32), rng.integers(0, classes, batch)


def lenet_batch(batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random MNIST-shaped batch: float32 (N, 1, 28, 28) images, int64 labels."""
    return batch_of("lenet5", batch, seed)


def our_train_step(batch: int, processes: int = 1, stack: contextlib.ExitStack | None = None,
                   model: str = "lenet5", momentum: float = 0.9) -> Callable[[], None]:
    """One SGD momentum step of `model` on a fixed batch; with `processes` > 1, as `tinygrad-cnn train` takes
    it: the batch's gradient computed by a `DataParallel`, whose workers `stack` closes (else garbage collection)."""
    manual_seed(0)
    net = MODELS[model][0](nn)
    opt = optim.SGD(net.parameters(), lr=0.01, momentum=momentum)
    x, y = batch_of(model, batch)
    if processes > 1:
        dp = DataParallel(net, lambda xs, ys: F.cross_entropy(net(Tensor(xs)), ys), processes)
        if stack is not None:
            stack.enter_context(dp)
        gradient = functools.partial(dp.value_and_grad, x, y)
    else:
        def gradient() -> None:
            F.cross_entropy(net(Tensor(x)), y).backward()

    def step() -> None:
        opt.zero_grad()
        gradient()
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


def torch_train_step(batch: int, model: str = "lenet5", momentum: float = 0.9) -> Callable[[], None]:
    import torch

    torch.manual_seed(0)
    net = MODELS[model][0](torch.nn)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=momentum)
    x, y = (torch.from_numpy(a) for a in batch_of(model, batch))

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()

    return step


def torch_inference(images: int) -> Callable[[], object]:
    import torch

    torch.manual_seed(0)
    model = lenet_layers(torch.nn).eval()
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


def loop_conv2d_step(x: np.ndarray, w: np.ndarray, grad: np.ndarray) -> tuple[np.ndarray, ...]:
    """The textbook convolution the seed notebook starts from, forward and backward: Python loops over
    every output pixel. (N, C, H, W), (O, C, K, K), (N, O, Ho, Wo) -> y, dx, dw"""
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    y = np.zeros((n, o, h - kh + 1, wd - kw + 1), dtype=x.dtype)
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for i in range(n):
        for j in range(o):
            for r in range(h - kh + 1):
                for s in range(wd - kw + 1):
                    window = x[i, :, r:r + kh, s:s + kw]
                    y[i, j, r, s] = np.sum(window * w[j])
                    dw[j] += grad[i, j, r, s] * window
                    dx[i, :, r:r + kh, s:s + kw] += grad[i, j, r, s] * w[j]
    return y, dx, dw


def conv1_step(x: np.ndarray, w: Tensor, grad: np.ndarray) -> Callable[[], None]:
    """The same work as `loop_conv2d_step` through the library: conv2d forward, dx and dw."""
    def run() -> None:
        xt = Tensor(x, requires_grad=True)
        F.conv2d(xt, w).backward(Tensor(grad))

    return run


_MEMORY_PROBE = """
import contextlib, json, sys
from tinygrad_cnn.runtime.memory import freeze_gc, tune_malloc
from tinygrad_cnn.tools import bench
framework, model, batch, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
tuned, processes, momentum = sys.argv[5] == "tuned", int(sys.argv[6]), float(sys.argv[7])
if tuned:
    tune_malloc()
freeze_gc()
with contextlib.ExitStack() as stack:
    if framework == "ours":
        step = bench.our_train_step(batch, processes, stack, model, momentum)
    else:
        step = bench.torch_train_step(batch, model, momentum)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the kernel's peak-RSS mark (VmHWM), so imports and setup do not count
    before = bench.status_kib("VmRSS")
    rss = []
    for i in range(steps):
        step()
        if i + 1 in (min(100, steps), steps):
            rss.append([bench.status_kib("VmRSS", pid) for pid in ["self", *bench.worker_pids()]])
    # A forked worker starts with our pages (shared until written): its rise counts from our RSS before.
    peaks = [bench.status_kib("VmHWM", pid) - before for pid in ["self", *bench.worker_pids()]]
print(json.dumps({"step_peak_kib": peaks, "rss_kib": rss}))
"""


def status_kib(field: str, pid: str | int = "self") -> int:
    """A memory figure of a process from /proc/<pid>/status (Linux), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def worker_pids() -> list[int]:
    """The child processes of this one that are alive (the data-parallel workers)."""
    import multiprocessing

    return [p.pid for p in multiprocessing.active_children()]


def step_memory(framework: str, batch: int, steps: int, tuned_malloc: bool, processes: int = 1,
                model: str = "lenet5", momentum: float = 0.9) -> dict:
    """Run `steps` training steps of `model` in a fresh process (ours on `processes`); return, per process,
    how far its peak RSS rose above the RSS before the first step (the step's working memory), and the
    RSS after 100 (or `steps`) and after `steps` steps (a leak shows as growth between the two)."""
    out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, framework, model, str(batch), str(steps),
                          "tuned" if tuned_malloc else "default", str(processes), str(momentum)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def on_threads(fn: Callable[[], object], ours: int | None = None, torch: int | None = None) -> Callable[[], object]:
    """`fn` run with tinygrad_cnn's and/or PyTorch's thread count switched first if it differs, so that
    variants on different thread counts can be interleaved (the switch lands in a block's untimed calls)."""
    torch_module = None
    if torch is not None:
        import torch as torch_module

    def run() -> object:
        if ours is not None and parallel.get_num_threads() != ours:
            parallel.set_num_threads(ours)
        if torch_module is not None and torch_module.get_num_threads() != torch:
            torch_module.set_num_threads(torch)
        return fn()

    return run


def run_benchmarks(repeats: int = 15, quick: bool = False, tuned_malloc: bool = False,
                   rss_probe: bool = True, threads: int = 1, processes: int = 1,
                   progress: Callable[[str], None] = lambda what: None) -> Report:
    """The issue-6 workloads: the per-op engine overhead and conv1 against the textbook loop (a
    single-threaded Python loop; so is ours here); LeNet training steps (batch 64, 256) as
    `tinygrad-cnn train` takes them (`processes`, one thread each) against PyTorch on 2 threads,
    interleaved with ours on `threads` threads in one process and with both on one thread; inference
    on 1,000 images (ours on `threads`); and memory (in subprocesses)."""
    report = Report()
    torch_ok = has_torch()
    torch_threads = 2
    blocks = QUICK_BLOCKS if quick else {"repeats": repeats}
    parallel.set_num_threads(1)
    progress("engine overhead and conv1 against the textbook loop")
    (chain,) = interleaved_medians([op_chain(1000)], **blocks)
    report.rows.append(Row("engine: 1,000 tiny ops forward+backward", chain, None,
                           note=f"{chain / 1000 * 1e6:.1f} us per op"))
    x, _ = lenet_batch(64)
    manual_seed(0)
    w = lenet5().conv1.weight
    grad = np.random.default_rng(1).standard_normal((64, 6, 24, 24), dtype=np.float32)
    # The loop on one image, scaled to the batch (it is linear in N), interleaved with ours so that
    # both see the same machine.
    ours, one_image = interleaved_medians([conv1_step(x, w, grad),
                                           lambda: loop_conv2d_step(x[:1], w.data, grad[:1])], **blocks)
    loop = one_image * 64
    report.rows.append(Row("conv1 forward+backward, batch 64, one thread", ours, loop, "loop",
                           note=f"{loop / ours:,.0f}x faster than the loop"))

    note = f"processes: {processes} vs threads: {torch_threads}" if torch_ok else f"processes: {processes}"
    for batch in (64, 256):
        progress(f"LeNet training step, batch {batch}")
        with contextlib.ExitStack() as workers:
            fns = [on_threads(our_train_step(batch, processes, workers), ours=1),
                   on_threads(our_train_step(batch), ours=threads), on_threads(our_train_step(batch), ours=1)]
            if torch_ok:
                fns += [on_threads(torch_train_step(batch), torch=torch_threads),
                        on_threads(torch_train_step(batch), torch=1)]
            times = interleaved_medians(fns, **blocks)
        (ours, ours_threads, ours_one), (theirs, theirs_one) = times[:3], times[3:] or (None, None)
        report.rows.append(Row(f"LeNet train step, batch {batch}", ours, theirs, note=note))
        report.rows.append(Row(f"  ... ours on {threads} threads in one process", ours_threads, theirs,
                               note=f"threads: {threads} vs {torch_threads}"))
        report.rows.append(Row("  ... one thread each", ours_one, theirs_one))
    parallel.set_num_threads(threads)
    note = f"threads: {threads} vs {torch_threads}" if torch_ok else f"threads: {threads}"
    progress("LeNet inference")
    fns = [our_inference(1000, 100)] + ([on_threads(torch_inference(1000), torch=torch_threads)] if torch_ok else [])
    times = interleaved_medians(fns, **blocks)
    report.rows.append(Row("LeNet inference, 1,000 images (chunks of 100)", times[0],
                           times[1] if torch_ok else None, note=note))
    if rss_probe and sys.platform == "linux":
        progress("memory, each framework in its own process")
        report.rows += memory_rows(tuned_malloc, processes, torch_ok, 200 if quick else 1000)
    return report


def machine_busy(seconds: float = 0.5) -> float | None:
    """The share of all CPU time that went to something other than idling over the next `seconds`
    (Linux /proc/stat; None elsewhere): other tenants' load, sampled before a benchmark starts."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
        return sum(ticks), ticks[3] + ticks[4]  # all, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except OSError:
        return None
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


# What `bench --model` measures beyond LeNet: the batches whose training steps are timed against PyTorch,
# and the (batch, SGD momentum, steps) of the peak-memory probe. VGG16's step is too slow here to time
# in interleaved blocks: its row is memory alone, forward + backward + a plain SGD step (no optimizer state).
MODEL_WORKLOADS: dict[str, tuple[tuple[int, ...], tuple[int, float, int]]] = {
    "cifar_vgg": ((64, 128), (64, 0.9, 50)), "vgg16": ((), (2, 0.0, 2))}


def run_model_benchmarks(model: str, repeats: int = 15, quick: bool = False, tuned_malloc: bool = False,
                         threads: int = 1, progress: Callable[[str], None] = lambda what: None) -> Report:
    """`model`'s training steps (MODEL_WORKLOADS): ours on `threads` threads and, unless `quick`, on one
    thread (numpy's BLAS on its own threads) against PyTorch on 2 threads, interleaved; then the peak
    memory of a step, each framework in a fresh process."""
    report = Report()
    torch_ok = has_torch()
    blocks = QUICK_BLOCKS if quick else {"repeats": repeats}
    batches, (memory_batch, momentum, steps) = MODEL_WORKLOADS[model]
    for batch in batches:
        progress(f"{model} training step, batch {batch}")
        fns = [on_threads(our_train_step(batch, model=model), ours=threads)]
        if not quick:
            fns.append(on_threads(our_train_step(batch, model=model), ours=1))
        if torch_ok:
            fns.append(on_threads(torch_train_step(batch, model), torch=2))
        times = interleaved_medians(fns, **blocks)
        theirs = times[-1] if torch_ok else None
        report.rows.append(Row(f"{model} train step, batch {batch}", times[0], theirs,
                               note=f"threads: {threads} vs 2"))
        if not quick:
            report.rows.append(Row("  ... ours on 1 thread, BLAS on its own", times[1], theirs,
                                   note="threads: 1 (+ BLAS's) vs 2"))
    parallel.set_num_threads(threads)
    if sys.platform == "linux":
        progress(f"peak memory of a {model} batch-{memory_batch} step, each framework in its own process")
        steps = min(steps, 5) if quick else steps

        def peak_mib(framework: str) -> float:
            probe = step_memory(framework, memory_batch, steps, tuned_malloc, model=model, momentum=momentum)
            return probe["step_peak_kib"][0] / 1024

        what = "training step" if momentum else "fwd + bwd + plain SGD"
        report.rows.append(Row(f"peak memory, {model} {what}, batch {memory_batch}", peak_mib("ours"),
                               peak_mib("torch") if torch_ok else None, unit="MiB",
                               note="peak RSS while stepping minus RSS before the first step"))
    return report
    probes = [(model, 64, 0.9, 10 if quick else 50)] + ([] if quick else [("vgg16", 2, 0.0, 2)])
    for name, batch, momentum, steps in probes:
        progress(f"peak memory of a {name} batch-{batch} step, each framework in its own process")
        ours = step_memory("ours", batch, steps, tuned_malloc, model=name, momentum=momentum)["step_peak_kib"][0]
        theirs = (step_memory("torch", batch, steps, tuned_malloc, model=name, momentum=momentum)["step_peak_kib"][0]
                  if torch_ok else None)
        what = "training step" if momentum else "forward + backward + plain SGD"
        report.rows.append(Row(f"peak memory, {name} {what}, batch {batch}", ours / 1024,
                               None if theirs is None else theirs / 1024, unit="MiB",
                               note="peak RSS while stepping minus RSS before the first step"))
    return report


def memory_rows(tuned_malloc: bool, processes: int, torch_ok: bool, steps: int) -> list[Row]:
    """Peak working memory of a batch-256 step (ours: all processes together) and RSS over `steps` steps."""
    ours = step_memory("ours", 256, steps, tuned_malloc, processes)
    theirs = step_memory("torch", 256, steps, tuned_malloc) if torch_ok else None
    peaks = [kib / 1024 for kib in ours["step_peak_kib"]]
    split = " + ".join(f"{mib:.1f}" for mib in peaks)
    rows = [Row("peak memory of a batch-256 step (MiB)", sum(peaks),
                theirs["step_peak_kib"][0] / 1024 if theirs else None, unit="MiB",
                note=f"peak RSS while stepping minus RSS before the first step; ours: {split} "
                     f"({len(peaks)} process{'es' if len(peaks) > 1 else ''})")]
    (first, last) = ([kib / 1024 for kib in snapshot] for snapshot in ours["rss_kib"])
    growth = ", ".join(f"{b - a:+.1f}" for a, b in zip(first, last))
    rows.append(Row(f"RSS after step 100 -> step {steps} (MiB)", first[0], None, unit="MiB",
                    note=f"{last[0]:.1f} MiB at the end; growth per process: {growth} MiB"))
    return rows


@contextlib.contextmanager
def forwards_replaced(replacement: Callable[[type, Callable], Callable]) -> Iterator[None]:
    """Inside the block, every primitive's forward is `replacement(op, its original forward)`; the
    originals come back afterwards, also after an error."""
    originals = {op: op.__dict__["forward"] for op in PRIMITIVES}
    for op, forward in originals.items():
        op.forward = staticmethod(replacement(op, forward.__func__))
    try:
        yield
    finally:
        for op, forward in originals.items():
            op.forward = forward


def profile_train_step(batch: int = 64, steps: int = 100, model: str = "lenet5") -> str:
    """Where a training step's time goes: wall-clock milliseconds per step in each primitive's numpy
    forward, timed by wrapping every primitive (about 1 us of timing overhead per op), and the rest:
    the engine, the VJPs' Python, the loss's and the optimizer's bookkeeping."""
    step = our_train_step(batch, model=model)
    for _ in range(5):
        step()
    spent: dict[str, float] = {}
    calls: dict[str, int] = {}

    def timed(op: type, forward: Callable) -> Callable:
        def run(ctx: object, *args: object, **attrs: object) -> np.ndarray:
            start = time.perf_counter()
            try:
                return forward(ctx, *args, **attrs)
            finally:
                spent[op.__name__] = spent.get(op.__name__, 0.0) + time.perf_counter() - start
                calls[op.__name__] = calls.get(op.__name__, 0) + 1
        return run

    with forwards_replaced(timed):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        total = time.perf_counter() - start
    lines = [f"{'ms/step':>8}  primitive forwards (numpy work), batch {batch}, {parallel.get_num_threads()} thread(s)"]
    lines += [f"{t / steps * 1e3:8.3f}  {name} (x{calls[name] // steps})"
              for name, t in sorted(spent.items(), key=lambda kv: -kv[1])[:16]]
    kernels = sum(spent.values())
    lines.append(f"{kernels / steps * 1e3:8.3f}  all primitive forwards")
    lines.append(f"{(total - kernels) / steps * 1e3:8.3f}  everything else (engine, VJP and loss Python, optimizer)")
    lines.append(f"{total / steps * 1e3:8.3f}  total per step")
    return "\n".join(lines)
