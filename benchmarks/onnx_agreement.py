"""The onnxruntime agreement table of docs/interop.md: LeNet-5, AlexNet and VGG16 exported with
tinygrad_cnn.onnx, run on one image in onnxruntime and here, with the largest difference of the outputs and
the time per image of each.

    python benchmarks/onnx_agreement.py [--models lenet5 alexnet vgg16] [--repeats 5] [--threads 2]

  max |diff|    max |ours - onnxruntime's| over the output logits (float32)
  rel. diff     that over max |ours|
  ours / ort    median seconds per one-image forward (eval mode, no_grad; onnxruntime with --threads intra-op
                threads, ours with --threads BLAS/kernel threads), measured in alternating blocks
  export        seconds to export (the forward recorded twice, graph built, onnx.checker full_check)
The machine is shared and noisy: the times are information, the agreement is the result.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from tinygrad_cnn import Tensor, manual_seed, models, no_grad
from tinygrad_cnn.onnx import export
from tinygrad_cnn.runtime.threads import set_num_threads
from tinygrad_cnn.tools.bench import interleaved_medians

SHAPES = {"lenet5": (1, 1, 28, 28), "alexnet": (1, 3, 224, 224), "vgg16": (1, 3, 224, 224)}


def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure(name: str, repeats: int, threads: int, directory: Path) -> dict[str, float]:
    manual_seed(0)
    model = getattr(models, name)().eval()
    x = np.random.default_rng(0).standard_normal(SHAPES[name]).astype(np.float32)
    path = directory / f"{name}.onnx"
    start = time.perf_counter()
    export(model, x, path)
    exported = time.perf_counter() - start
    runtime = session(path, threads)
    with no_grad():
        ours = model(Tensor(x)).data
    theirs = runtime.run(None, {"input": x})[0]
    diff = float(np.abs(ours - theirs).max())

    @no_grad()
    def ours_forward() -> object:
        return model(Tensor(x))

    inner = 20 if name == "lenet5" else 2
    t_ours, t_ort = interleaved_medians([ours_forward, lambda: runtime.run(None, {"input": x})], repeats,
                                        inner=inner, settle=1 if inner == 2 else 5, warmup=1)
    return {"diff": diff, "rel": diff / float(np.abs(ours).max()), "ours": t_ours, "ort": t_ort,
            "export": exported}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    set_num_threads(args.threads)
    print(f"onnxruntime {ort.__version__}, {args.threads} thread(s) each, one image, float32")
    print("| model | max abs diff | rel. diff | ours per image | onnxruntime per image | ours / ort | export |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            r = measure(name, args.repeats, args.threads, Path(tmp))
            print(f"| {name} | {r['diff']:.1e} | {r['rel']:.1e} | {r['ours'] * 1e3:.2f} ms | {r['ort'] * 1e3:.2f} ms "
                  f"| {r['ours'] / r['ort']:.1f}x | {r['export']:.1f} s |", flush=True)


if __name__ == "__main__":
    main()
