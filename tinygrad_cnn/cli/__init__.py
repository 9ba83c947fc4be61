"""The `tinygrad-cnn` command: one module per subcommand, each with `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module defines register(subparsers), which adds its parser and sets `run=` to a function
# taking the parsed arguments and returning the exit code.
SUBCOMMANDS = ("train", "evaluate", "graph", "summary", "bench", "gradcheck", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinygrad-cnn",
                                     description="Train, inspect and check CNNs with tinygrad_cnn.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
