"""Construction and one-image forward of AlexNet and VGG16 at 224x224: time and memory, and the ratio to
PyTorch running the same weights (when torch is installed).

    python benchmarks/zoo_forward.py [--models alexnet vgg16] [--repeats 10]

Each model is measured in a fresh subprocess, so its peak resident memory (ru_maxrss) is its own:
  build_s       constructing the model (default initialisation of every parameter)
  forward_s     median of --repeats forward passes of one image, eval mode, no_grad (interleaved with
                PyTorch's, and the ratio is the median of the per-pair ratios)
  forward_peak  tracemalloc's peak of the numpy buffers allocated during one forward (the working memory
                on top of the parameters)
  maxrss        peak resident memory of the whole process (import + build + forwards)
  torch_s       PyTorch's median on the same weights (2 threads), and ours / PyTorch's
  rel. diff     max |ours - PyTorch's| over max |PyTorch's| of the output logits
The machine is shared and noisy: trust the ratio more than the absolute times.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from tinygrad_cnn import Tensor, models, nn, no_grad
from tinygrad_cnn.models.alexnet import FeaturesClassifier

BUILDERS: dict[str, Callable[[], nn.Module]] = {"alexnet": models.alexnet, "vgg16": models.vgg16}


def to_torch(module: nn.Module):  # -> torch.nn.Module
    """The same network in torch.nn, sharing our parameter arrays (built on the meta device: no init cost)."""
    import torch

    def shared(p: nn.Parameter | None) -> torch.nn.Parameter | None:
        return None if p is None else torch.nn.Parameter(torch.from_numpy(p.data), requires_grad=False)

    if isinstance(module, FeaturesClassifier):
        return torch.nn.Sequential(to_torch(module.features), to_torch(module.avgpool), torch.nn.Flatten(1),
                                   to_torch(module.classifier))
    if isinstance(module, nn.Sequential):
        return torch.nn.Sequential(*map(to_torch, module.children()))
    if isinstance(module, nn.Conv2d):
        layer = torch.nn.Conv2d(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                                module.padding, module.dilation, module.groups, module.bias is not None, device="meta")
    elif isinstance(module, nn.Linear):
        layer = torch.nn.Linear(module.in_features, module.out_features, module.bias is not None, device="meta")
    else:
        simple = {nn.ReLU: lambda m: torch.nn.ReLU(), nn.Dropout: lambda m: torch.nn.Dropout(m.p),
                  nn.MaxPool2d: lambda m: torch.nn.MaxPool2d(m.kernel_size, m.stride, m.padding),
                  nn.AdaptiveAvgPool2d: lambda m: torch.nn.AdaptiveAvgPool2d(m.output_size)}
        return simple[type(module)](module)
    layer.weight, layer.bias = shared(module.weight), shared(module.bias)
    return layer


def measure(name: str, repeats: int) -> dict[str, float]:
    start = time.perf_counter()
    model = BUILDERS[name]().eval()
    result = {"build_s": time.perf_counter() - start}
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)

    def ours() -> np.ndarray:
        with no_grad():
            return model(Tensor(x)).data

    runs = {"ours": ours}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        reference = to_torch(model).eval()

        def theirs() -> np.ndarray:
            with torch.no_grad():
                return reference(torch.from_numpy(x)).numpy()

        runs["torch"] = theirs
    outputs = {key: run() for key, run in runs.items()}  # also the warm-up
    times: dict[str, list[float]] = {key: [] for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():  # interleaved, so that a busy neighbour slows both alike
            start = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - start)
    result["forward_s"] = statistics.median(times["ours"])
    if torch is not None:
        result["torch_s"] = statistics.median(times["torch"])
        result["ratio"] = statistics.median(o / t for o, t in zip(times["ours"], times["torch"]))
        result["max_rel_diff"] = float(np.abs(outputs["ours"] - outputs["torch"]).max()
                                       / np.abs(outputs["torch"]).max())
    tracemalloc.start()
    ours()
    result["forward_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(BUILDERS), default=sorted(BUILDERS))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--child", choices=sorted(BUILDERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.repeats)))
        return
    print(f"{'model':8} {'build s':>8} {'forward s':>10} {'fwd peak MB':>12} {'maxrss MB':>10} {'torch s':>8} "
          f"{'ours/torch':>11} {'rel. diff':>10}")
    for name in args.models:
        child = subprocess.run([sys.executable, __file__, "--child", name, "--repeats", str(args.repeats)],
                               capture_output=True, text=True, check=True)
        r = json.loads(child.stdout.splitlines()[-1])
        nan = float("nan")
        print(f"{name:8} {r['build_s']:8.2f} {r['forward_s']:10.3f} {r['forward_peak_mb']:12.1f} "
              f"{r['maxrss_mb']:10.0f} {r.get('torch_s', nan):8.3f} {r.get('ratio', nan):11.2f} "
              f"{r.get('max_rel_diff', nan):10.1e}")


if __name__ == "__main__":
    main()
