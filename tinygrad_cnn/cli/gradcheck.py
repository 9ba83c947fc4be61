"""`tinygrad-cnn gradcheck [--op NAME] [--quick]`: the built-in gradient checks of every op, as a table.

Runs gradcheck (first derivatives) and gradgradcheck (second derivatives) on each configuration in
`tools.opsuite` (the same cases as the test suite) and prints, per op, the worst errors found.
"""

from __future__ import annotations

import argparse
import sys

from ..tools.doctor import text_table
from ..tools.gradcheck import InputError
from .args import usage_error


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gradcheck", help="check every op's gradients against finite differences",
        description="Run gradcheck and gradgradcheck (float64 central differences) on the built-in configurations "
                    "of every primitive op and composite function and print the worst errors per op. "
                    "Exits with 1 if any check fails.")
    parser.add_argument("--op", metavar="NAME", help="only this op (e.g. conv2d, matmul, cross_entropy)")
    parser.add_argument("--quick", action="store_true", help="one configuration per op")
    parser.set_defaults(run=run)


def _worst(errors: list[InputError]) -> tuple[str, str]:
    return (f"{max((e.max_abs for e in errors), default=0.0):.1e}",
            f"{max((e.max_rel for e in errors), default=0.0):.1e}")


def run(args: argparse.Namespace) -> int:
    from ..tools import opsuite  # building the catalogue runs ops: only for this command, not on every CLI start

    cases = opsuite.CASES
    if args.op is not None:
        cases = [c for c in cases if c.op == args.op.lower()]
        if not cases:
            return usage_error("gradcheck", f"unknown op {args.op!r}; known ops: {', '.join(opsuite.OPS)}")
    if args.quick:
        cases = opsuite.quick(cases)
    print(f"checking {len(cases)} configurations to first and second order...", file=sys.stderr, flush=True)
    rows, failures = [], []
    for op in dict.fromkeys(c.op for c in cases):
        results = [opsuite.run_case(c) for c in cases if c.op == op]
        failed = [r for r in results if not r.passed]
        failures += failed
        rows.append([op, str(len(results)), *_worst([e for r in results for e in r.first]),
                     *_worst([e for r in results for e in r.second]), "FAIL" if failed else "PASS"])
    print(text_table(["op", "configs", "grad abs err", "grad rel err", "gradgrad abs err", "gradgrad rel err",
                      "result"], rows, right=(1, 2, 3, 4, 5)))
    for r in failures:
        for order, errors in (("gradcheck", r.first), ("gradgradcheck", r.second)):
            for e in errors:
                if not e.passed:
                    print(f"FAIL {r.case.id}: {order}: input {e.input} (shape {e.shape}) is wrong at index "
                          f"{e.worst}: analytic {e.analytic:.10g} vs numeric {e.numeric:.10g}")
    print(f"{len(cases)} configurations of {len(rows)} op{'s' * (len(rows) != 1)}, each checked to first and "
          f"second order: {len(failures)} failed")
    return 1 if failures else 0
