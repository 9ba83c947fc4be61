"""`tinygrad-cnn export`: a `train` checkpoint's LeNet-5 as an ONNX file (needs the `interop` extra)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..app import training
from ..models import lenet5
from ..onnx import OnnxExportError, export
from ..onnx._common import DEFAULT_OPSET, OPSETS
from ..serialization import CheckpointError
from .args import bounded, usage_error


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="write a checkpoint's LeNet-5 as an ONNX model",
                              description="Write the LeNet-5 of a checkpoint saved by `tinygrad-cnn train` as an ONNX "
                                          "file (input (batch, 1, 28, 28) normalised images, output logits), "
                                          "checked by onnx.checker. Needs: pip install 'tinygrad_cnn[interop]'.")
    p.add_argument("--checkpoint", type=Path, required=True, metavar="PATH",
                   help=f"the {training.CHECKPOINT_FILE} in a train --out directory")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="the .onnx file to write")
    p.add_argument("--opset", type=bounded(int, OPSETS[0], OPSETS[-1]), default=DEFAULT_OPSET,
                   help=f"ONNX opset version (default {DEFAULT_OPSET})")
    p.add_argument("--fixed-batch", type=bounded(int, 1), default=None, metavar="N",
                   help="a batch size written into the graph (default: a dynamic batch axis)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model = lenet5()
    try:
        training.restore(training.load_checkpoint(args.checkpoint), model)
    except CheckpointError as e:
        return usage_error("export", e)
    if args.output.is_dir():
        return usage_error("export", f"{args.output} is a directory; give the .onnx file to write")
    if not args.output.parent.is_dir():
        return usage_error("export", f"the directory of {args.output} does not exist")
    example = np.zeros((args.fixed_batch or 1, 1, 28, 28), dtype=np.float32)
    try:
        proto = export(model, example, args.output, opset=args.opset, dynamic_batch=args.fixed_batch is None)
    except (ImportError, OnnxExportError) as e:
        return usage_error("export", e)
    except OSError as e:  # e.g. a read-only directory
        return usage_error("export", f"cannot write {args.output}: {e.strerror or e}")
    print(f"wrote {args.output}: LeNet-5 from {args.checkpoint} as ONNX opset {args.opset}, "
          f"{len(proto.graph.node)} nodes, {sum(p.data.size for p in model.parameters()):,} parameters, "
          f"input {'(batch' if args.fixed_batch is None else f'({args.fixed_batch}'}, 1, 28, 28)")
    return 0
