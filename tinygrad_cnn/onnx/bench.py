"""`tinygrad-cnn bench`'s onnxruntime row: LeNet-5 inference on the same 1,000 images, ours beside the exported
graph run in onnxruntime (information, not a target)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..models import lenet5
from ..rng import manual_seed
from ..tools.bench import Row, interleaved_medians, lenet_batch, our_inference
from ._common import INSTALL_HINT


def onnxruntime_rows(repeats: int, quick: bool = False, threads: int = 1, images: int = 1000,
                     chunk: int = 100) -> list[Row]:
    """One Row: our LeNet inference over `images` (chunks of `chunk`) against onnxruntime running the graph
    `tinygrad_cnn.onnx.export` writes for the same model, with `threads` intra-op threads."""
    workload = f"  ... its ONNX export in onnxruntime ({images:,})"
    try:
        import onnxruntime as ort
    except ImportError:
        return [Row(workload, float("nan"), None, note=f"onnxruntime is not installed: {INSTALL_HINT}")]
    from .export import export

    ours = our_inference(images, chunk)
    manual_seed(0)  # the same LeNet-5 as our_inference's
    model = lenet5().eval()
    x, _ = lenet_batch(images)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lenet5.onnx"
        export(model, x[:1], path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def theirs() -> object:
        return [session.run(None, {"input": x[i:i + chunk]}) for i in range(0, images, chunk)]

    ours_time, theirs_time = interleaved_medians([ours, theirs], max(3, repeats // 3) if quick else repeats,
                                                 inner=5)
    return [Row(workload, ours_time, theirs_time, "onnxruntime",
                note=f"threads: {threads} each; information, not a target")]
