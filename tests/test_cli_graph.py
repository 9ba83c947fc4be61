"""`tinygrad-cnn graph` and the pictures of docs/visualisation.md: the numbers the page quotes are those of its
picture, and the documented command on real MNIST makes both."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tinygrad_cnn.cli import main
from tinygrad_cnn.data.mnist import ENV_VAR, MNIST_FILES

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGE = DOCS / "visualisation.md"
PICTURE = DOCS / "lenet_grads.svg"
COMMAND = ["graph", "--backward", "--show-grads", "--collapse"]  # as the page runs it, with -o the picture
NORM = re.compile(r"\d\.\d\de-\d\d")


def quoted_block() -> str:
    """The output of the picture's command that the page shows (its code block starting "gradient norms:")."""
    return re.search(r"```\n(gradient norms: .*?)\n```", PAGE.read_text(encoding="utf-8"), re.S).group(1)


def drawn_norms(svg_or_dot: str) -> list[str]:
    """Every norm label of a drawing as text ("7.00e-03"); SVG escapes the minus sign."""
    return NORM.findall(svg_or_dot.replace("&#45;", "-"))


def test_the_page_quotes_the_norms_of_its_picture() -> None:
    quoted = NORM.findall(quoted_block())
    assert len(quoted) == 11, "the logits and LeNet-5's 10 parameters"
    drawn = set(drawn_norms(PICTURE.read_text(encoding="utf-8")))
    assert not set(quoted) - drawn, f"quoted on the page but not in {PICTURE.name}: {sorted(set(quoted) - drawn)}"
    section = PAGE.read_text(encoding="utf-8").split("## Gradient magnitudes")[1].split("\n## ")[0]
    in_prose = set(NORM.findall(section)) - set(quoted)
    assert not in_prose, f"numbers in the text that are not the command's output: {sorted(in_prose)}"


def test_the_documented_command_on_mnist_gives_the_page_and_the_picture(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = os.environ.get(ENV_VAR)
    if not data or not all(any((Path(data) / f"{spec.name}{ext}").is_file() for ext in ("", ".gz"))
                           for spec in MNIST_FILES):
        pytest.skip(f"needs the MNIST files in ${ENV_VAR}")
    assert main([*COMMAND, "-o", str(tmp_path / "g.dot")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("data: the first 8 MNIST training images")
    assert out[out.index("gradient norms: "):].strip() == quoted_block()
    assert sorted(drawn_norms((tmp_path / "g.dot").read_text())) == sorted(drawn_norms(PICTURE.read_text(
        encoding="utf-8"))), f"{PICTURE.name} is not the picture of this run"
