"""`tinygrad-cnn graph`: run one training step of a model and draw its forward graph, backward graph or gradients."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .. import functional as F
from .. import models
from ..app.training import OutputDirError, prepare_output_dir
from ..autograd import Tensor
from ..data import load_mnist, normalize, resolve_data_dir
from ..data.mnist import MNIST_FILES
from ..nn import Module
from ..rng import manual_seed
from ..tools.record import grad_norm_of
from ..viz import SUPPORTED_FORMATS, draw_graph, record, render
from .args import USAGE_ERROR, bounded, usage_error

# The models that take MNIST's (1, 28, 28) images: the batch is MNIST (or random data of that shape).
MODELS = {"lenet5": models.lenet5}


def _output_path(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in SUPPORTED_FORMATS:
        raise argparse.ArgumentTypeError(f"unsupported file suffix {path.suffix or '(none)'!r} in {text!r}; "
                                         f"supported: {', '.join(SUPPORTED_FORMATS)}")
    return path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "graph", help="draw the graph of one forward/backward step of a model",
        description="Build the model (seeded), run one forward and backward pass on a batch (MNIST if found, "
                    "else random data) and draw the graph to a file; the format follows the suffix of -o. "
                    "Without Graphviz's `dot` program it writes the DOT source beside -o and exits with 2.")
    parser.add_argument("--model", default="lenet5", choices=sorted(MODELS), help="model to draw (default: lenet5)")
    parser.add_argument("--backward", action="store_true",
                        help="draw the backward pass (one VJP per op, in the order reverse mode runs them)")
    parser.add_argument("--show-grads", action="store_true",
                        help="label and colour every gradient by its norm (log scale; NaN/Inf in red), and print "
                             "the norms of the logits' gradient and of each parameter's .grad")
    parser.add_argument("--collapse", action="store_true", help="draw each module (Conv2d, Linear, ...) as one node")
    parser.add_argument("--batch-size", type=bounded(int, 1), default=8, help="images in the batch (default: 8)")
    parser.add_argument("--data-dir", default=None,
                        help="MNIST directory (default: $TINYGRAD_CNN_DATA, else the user cache); never downloads")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model's initialisation (default: 0)")
    parser.add_argument("-o", "--output", type=_output_path, required=True,
                        help=f"file to write: {', '.join(SUPPORTED_FORMATS)}")
    parser.set_defaults(run=run)


def _batch(size: int, data_dir: str | None, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(images (N, 1, 28, 28) float32, labels (N,) int64, where they came from)."""
    directory = resolve_data_dir(data_dir)
    # Only local files: drawing a graph should not start a download.
    if all(any((directory / f"{spec.name}{ext}").is_file() for ext in ("", ".gz")) for spec in MNIST_FILES):
        x_train, y_train, _, _ = load_mnist(directory)
        size = min(size, len(x_train))
        return normalize(x_train[:size]), y_train[:size], f"the first {size} MNIST training images from {directory}"
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((size, 1, 28, 28)).astype(np.float32)
    return images, rng.integers(0, 10, size), (f"{size} random normal images and labels (MNIST not found in "
                                                f"{directory}; pass --data-dir or set TINYGRAD_CNN_DATA)")


def gradient_norms(model: Module, logits: Tensor) -> str:
    """The norms a --show-grads drawing labels, as it writes them: the gradient that reached the logits,
    and each parameter's .grad. docs/visualisation.md quotes this text beside the picture it came with."""
    received = grad_norm_of(logits._ctx)
    lines = ["gradient norms: logits " + ("not recorded" if received is None else f"{received:.2e}")]
    names = [f"{name}.grad" for name, _ in model.named_parameters()]
    width = max(map(len, names))
    for name, p in zip(names, model.parameters()):
        norm = None if p.grad is None else float(np.linalg.norm(p.grad.data.astype(np.float64).ravel()))
        lines.append(f"  {name:<{width}}  " + ("no gradient" if norm is None else f"{norm:.2e}"))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    # Before any work: a regular file where a directory of -o should be, or -o itself a directory.
    try:
        prepare_output_dir(args.output.parent)
    except OutputDirError as e:
        return usage_error("graph", e)
    if args.output.is_dir():
        return usage_error("graph", f"{args.output} is a directory, not a file to write")
    manual_seed(args.seed)
    model = MODELS[args.model]()
    images, labels, source = _batch(args.batch_size, args.data_dir, args.seed)
    print(f"data: {source}")
    x = Tensor(images)
    with record():  # which module ran each op, and the gradient norms, for the drawing
        logits = model(x)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
    try:
        graph = draw_graph(loss, backward=args.backward, params=model, show_grads=args.show_grads,
                           collapse_modules=args.collapse, names={"images": x, "logits": logits, "loss": loss})
    except ImportError as e:  # the graphviz Python package is missing
        return usage_error("graph", e)
    written = render(graph, args.output)
    view = "backward" if args.backward else "forward"
    print(f"{args.model}: loss {loss.item():.4f}, {len(loss._topo())} recorded ops; "
          f"wrote the {view} graph to {written}")
    if args.show_grads:
        print(gradient_norms(model, logits))
    # Without Graphviz's `dot` program render wrote the DOT source instead, with a hint on stderr: not a success.
    return 0 if written == args.output else USAGE_ERROR
