"""Adversarial command-line misuse: every mistake a user can make with a subcommand's arguments or files
exits with 2 and one `tinygrad-cnn <command>: error: ...` line on stderr naming the problem -- never a
traceback, never exit 0 or 1 -- and writes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import nn
from tinygrad_cnn.cli import main


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding the files the cases point at; no MNIST anywhere, no downloads."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(tmp_path / "no-mnist-here"))
    (tmp_path / "text.pt").write_text("hello\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir.svg").mkdir()
    tg.save(nn.Linear(2, 2).state_dict(), tmp_path / "linear.pt")
    tg.save({"a": 1}, tmp_path / "dict.pt")
    (tmp_path / "empty.npz").write_bytes(b"")
    return tmp_path


MISUSE = [
    # (argv, fragment of the error line)
    ([], "required: COMMAND"),
    (["nope"], "invalid choice: 'nope'"),
    (["summary"], "required: MODEL"),
    (["summary", "resnet9000"], "invalid choice: 'resnet9000'"),
    (["summary", "lenet5", "--input", "0x28x28"], "CxHxW"),
    (["summary", "lenet5", "--input", "abc"], "CxHxW"),
    (["summary", "lenet5", "--input", "1x28"], "CxHxW"),
    (["summary", "lenet5", "--input", "1x-28x28"], "CxHxW"),
    (["summary", "lenet5", "--input", "1x2x2"], "conv1"),
    (["summary", "vgg16", "--input", "3x8x8"], "MaxPool2d"),
    (["eval", "--checkpoint", "missing.pt"], "no checkpoint at missing.pt"),
    (["eval", "--checkpoint", "text.pt"], "text.pt"),
    (["eval", "--checkpoint", "empty.npz"], "empty.npz"),
    (["eval", "--checkpoint", "adir"], "is a directory"),
    (["eval", "--checkpoint", "linear.pt"], "kind"),
    (["eval", "--checkpoint", "dict.pt"], "kind"),
    (["export", "--checkpoint", "linear.pt", "-o", "x.onnx"], "kind"),
    (["export", "--checkpoint", "text.pt", "-o", "x.onnx"], "text.pt"),
    (["export", "--checkpoint", "missing.pt", "-o", "x.onnx"], "no checkpoint"),
    (["export", "--checkpoint", "linear.pt", "-o", "x.onnx", "--opset", "1"], "--opset"),
    (["export", "--checkpoint", "linear.pt", "-o", "x.onnx", "--fixed-batch", "0"], "--fixed-batch"),
    (["gradcheck", "--op", "nope"], "unknown op 'nope'"),
    (["bench", "--repeats", "0"], "--repeats"),
    (["bench", "--threads", "0"], "--threads"),
    (["bench", "--model", "nope"], "invalid choice"),
    (["graph", "-o", "text.pt/g.svg"], "text.pt is a file, not a directory"),
    (["graph", "-o", "adir.svg"], "is a directory"),
    (["graph", "-o", "adir"], "unsupported file suffix"),
    (["graph", "--batch-size", "0", "-o", "g.svg"], "--batch-size"),
    (["graph", "--seed", "x", "-o", "g.svg"], "--seed"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--lr", "inf"], "--lr: must be > 0, got inf"),
    (["train", "--lr", "-inf"], "--lr"),
    (["train", "--lr", "1e999"], "--lr"),
    (["train", "--momentum", "2"], "--momentum"),
    (["train", "--momentum", "nan"], "--momentum"),
    (["train", "--limit-train", "0"], "--limit-train"),
    (["train", "--resume", "--out", "adir/none"], "no checkpoint"),
    (["train", "--resume", "--out", "text.pt/run"], "text.pt/run/checkpoint.npz"),
    (["train", "--resume", "--out", "adir"], "no checkpoint"),
    (["train", "--out", "text.pt"], "text.pt is a file, not a directory"),
    (["train", "--out", "text.pt/run"], "text.pt is a file, not a directory"),
    (["train", "--optimizer", "lbfgs"], "invalid choice"),
    (["train", "--epochs"], "expected one argument"),
]


@pytest.mark.parametrize("argv, fragment", MISUSE, ids=[" ".join(a) or "(nothing)" for a, _ in MISUSE])
def test_misuse_exits_2_with_one_line_and_no_traceback(argv, fragment, files: Path, capsys) -> None:
    before = sorted(p.relative_to(files) for p in files.rglob("*"))
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    out, err = capsys.readouterr()
    assert code == 2, f"exit code {code}; stderr: {err}"
    assert "Traceback" not in err + out
    error_lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(error_lines) == 1 and error_lines[0].startswith("tinygrad-cnn"), err
    assert fragment in error_lines[0], error_lines[0]
    after = sorted(p.relative_to(files) for p in files.rglob("*"))
    assert after == before, f"a refused command wrote {set(after) - set(before)}"


def test_the_module_entry_point_reports_misuse_the_same_way(files: Path) -> None:
    """One real process: `python -m tinygrad_cnn` exits 2 with the message and no traceback."""
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-m", "tinygrad_cnn", "graph", "-o", "text.pt/g.svg"], cwd=files,
                            capture_output=True, text=True, timeout=300, env={**os.environ})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "text.pt is a file, not a directory" in result.stderr
