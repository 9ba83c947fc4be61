"""`tinygrad-cnn summary MODEL [--input CxHxW] [--receptive-field]`: the layer table of a ready-made model."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .. import models, nn
from ..tools.summary import receptive_field, summary
from .args import usage_error

# name -> (constructor, the input (C, H, W) it was designed for)
MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, int, int]]] = {
    "lenet5": (models.lenet5, (1, 28, 28)),
    "alexnet": (models.alexnet, (3, 224, 224)),
    "vgg16": (models.vgg16, (3, 224, 224)),
}


def parse_shape(text: str) -> tuple[int, ...]:
    """"3x224x224" -> (3, 224, 224)"""
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected CxHxW with three positive ints, e.g. 3x224x224, got {text!r}")
    return shape


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "summary", help="print a model's layers, output shapes, parameters and multiply-adds",
        description="Run MODEL once on a zero image and print each layer's output shape, parameter count and "
                    "multiply-accumulates (per image), with the totals.")
    parser.add_argument("model", choices=sorted(MODELS), metavar="MODEL", help=f"one of {', '.join(MODELS)}")
    parser.add_argument("--input", type=parse_shape, metavar="CxHxW",
                        help="input shape without the batch axis (default: 1x28x28 for lenet5, 3x224x224 otherwise)")
    parser.add_argument("--receptive-field", action="store_true",
                        help="also print the receptive field and jump after each convolution and pooling layer")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    build, default_input = MODELS[args.model]
    shape = args.input or default_input
    model = build()
    try:
        table = summary(model, shape)
        fields = receptive_field(model, shape[1:]) if args.receptive_field else None
    except (RuntimeError, ValueError) as e:  # e.g. an input too small or with the wrong channels
        return usage_error("summary", e)
    table.model_name = args.model
    print(table)
    if fields is not None:
        print(fields)
    return 0
