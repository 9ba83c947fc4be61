"""What the subcommands share: argument types, the --threads/--processes options, and how a user error is reported."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

from ..runtime import threads as parallel

USAGE_ERROR = 2  # the exit code of a mistake the user can fix (as argparse's own errors)


def usage_error(command: str, error: Exception | str) -> int:
    """Print `error` as one line on stderr, as argparse does, and return USAGE_ERROR."""
    print(f"tinygrad-cnn {command}: error: {error}", file=sys.stderr)
    return USAGE_ERROR


def bounded(kind: type, low: float, high: float = math.inf, open_low: bool = False,
            open_high: bool = False) -> Callable[[str], int | float]:
    """An argparse type: an int or float (`kind`) within [low, high], each end open if asked, or a clear error."""
    interval = (f"{'>' if open_low else '>='} {low:g}" if high == math.inf else
                f"in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}")

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        above = value > low if open_low else value >= low
        below = value < high if open_high else value <= high
        if not (above and below) or (kind is float and not math.isfinite(value)):  # also rejects NaN and inf
            raise argparse.ArgumentTypeError(f"must be {interval}, got {text}")
        return value

    return parse


def _add_cores_option(p: argparse.ArgumentParser, flag: str, what: str) -> None:
    cores = parallel.available_cores()
    p.add_argument(flag, type=bounded(int, 1), default=cores,
                   help=f"{what} (default: the cores available, at most 4: {cores} here)")


def add_threads_option(p: argparse.ArgumentParser) -> None:
    _add_cores_option(p, "--threads", "threads for the convolutions; 1 turns batch parallelism off and leaves "
                                      "numpy's BLAS alone")


def apply_threads(args: argparse.Namespace) -> int:
    """Switch on batch parallelism as asked (see tinygrad_cnn.parallel); the number in effect."""
    return parallel.set_num_threads(args.threads)


def add_processes_option(p: argparse.ArgumentParser, what: str) -> None:
    _add_cores_option(p, "--processes", f"{what} (data parallel: each process takes a slice of the batch; 1: "
                                        "this process alone)")
