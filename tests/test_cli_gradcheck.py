"""`tinygrad-cnn gradcheck`: the op catalogue's checks as a table, with exit codes; and the error numbers
(`gradient_errors`) the table reports."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_cnn import Tensor, ops
from tinygrad_cnn.cli import main
from tinygrad_cnn.tools import opsuite
from tinygrad_cnn.tools.gradcheck import gradient_errors


def table_rows(out: str) -> dict[str, list[str]]:
    """op -> the cells of its row (configs, 4 errors, result)."""
    return {line.split()[0]: line.split()[1:] for line in out.splitlines()
            if line.split() and line.split()[0] in opsuite.OPS}


def test_quick_run_passes_with_one_row_per_op(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gradcheck", "--quick"]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert list(rows) == opsuite.OPS
    for op, cells in rows.items():
        assert cells[0] == "1" and cells[-1] == "PASS", (op, cells)
        assert all(float(e) < 1e-3 for e in cells[1:5]), (op, cells)
    assert "FAIL" not in out


def test_op_filter_runs_every_configuration_of_that_op(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gradcheck", "--op", "MatMul"]) == 0  # names are case-insensitive
    rows = table_rows(capsys.readouterr().out)
    assert list(rows) == ["matmul"]
    assert int(rows["matmul"][0]) == sum(c.op == "matmul" for c in opsuite.CASES) > 1


def test_a_wrong_primitive_vjp_fails_with_exit_code_1(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    def wrong_exp_vjp(ctx, grad):  # exp' = exp, planted as 1.1 exp
        (y,) = ctx.saved_tensors
        return grad * y * 1.1

    monkeypatch.setattr(ops.Exp, "backward", staticmethod(wrong_exp_vjp))
    assert main(["gradcheck", "--quick"]) == 1
    out = capsys.readouterr().out
    rows = table_rows(out)
    # exp and everything built on it fails; ops without an Exp in their graph still pass
    failed = {op for op, row in rows.items() if row[-1] == "FAIL"}
    assert {"exp", "softmax", "log_softmax", "cross_entropy"} <= failed
    assert float(rows["exp"][2]) == pytest.approx(0.1, abs=0.005)  # |1.1 n - n| / |n|, to the 2 digits shown
    without_exp = {"add", "mul", "matmul", "relu", "conv2d", "max_pool2d"}
    assert without_exp <= rows.keys() and not failed & without_exp
    assert "FAIL exp: gradcheck: input 0" in out and f": {len(failed)} failed" in out  # --quick: one config per op


def test_unknown_op_exits_2_listing_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gradcheck", "--op", "convolution"]) == 2
    err = capsys.readouterr().err
    assert "unknown op 'convolution'" in err and "conv2d" in err and "cross_entropy" in err


# ---- the catalogue ------------------------------------------------------------------------------------

# That every primitive has a case is tested with the cases themselves, in test_ops_gradcheck.py.
def test_catalogue_covers_the_composites() -> None:
    assert {"linear", "log_softmax", "softmax", "cross_entropy", "nll_loss", "mean", "flatten"} <= set(opsuite.OPS)


def test_case_ids_are_unique_and_inputs_reproducible() -> None:
    assert len({c.id for c in opsuite.CASES}) == len(opsuite.CASES)
    conv = next(c for c in opsuite.CASES if c.op == "conv2d")
    for a, b in zip(conv.arrays(), conv.arrays()):
        np.testing.assert_array_equal(a, b)
    x, w = conv.arrays()[:2]
    assert x.dtype == w.dtype == np.float64 and not np.isin(x, w).any()


def test_quick_takes_the_first_configuration_of_each_op() -> None:
    chosen = opsuite.quick(opsuite.CASES)
    assert [c.op for c in chosen] == opsuite.OPS
    assert all(c is next(d for d in opsuite.CASES if d.op == c.op) for c in chosen)


# ---- the error numbers ---------------------------------------------------------------------------------

def test_gradient_errors_measures_a_known_wrong_vjp() -> None:
    """d/dx sum(x^3) = 3x^2, computed as 2x^2: |analytic - numeric| = x^2, relative error 1/3."""
    x = np.array([0.5, -1.2, 2.0, 0.7])

    def wrong_cube(t: Tensor) -> Tensor:
        return (t.detach() ** 3 + (t - t.detach()) * Tensor(2 * x ** 2)).sum()  # value x^3, slope 2x^2

    (error,) = gradient_errors(wrong_cube, [Tensor(x.copy(), requires_grad=True)])
    weight = np.random.default_rng(0).standard_normal()  # gradient_errors' output weighting, seed 0
    assert not error.passed and error.worst == (2,)
    assert error.max_abs == pytest.approx(abs(weight) * 4.0, rel=1e-6)
    assert error.max_rel == pytest.approx(1 / 3, rel=1e-6)
    assert (error.analytic, error.numeric) == pytest.approx((weight * 8.0, weight * 12.0), rel=1e-6)


def test_gradient_errors_of_a_right_vjp_are_at_rounding_level() -> None:
    (error,) = gradient_errors(lambda t: t.exp(), [Tensor(np.linspace(-1, 1, 5), requires_grad=True)])
    assert error.passed and error.max_abs < 1e-8 and error.max_rel < 1e-7
