"""The README's define-by-run example runs as written and learns."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_runs_and_the_loss_falls(capsys: pytest.CaptureFixture[str]) -> None:
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    assert len(code.strip().splitlines()) <= 12, "the README promises a ~10-line example"
    np.random.seed(0)  # the example draws its data with np.random
    exec(compile(code, str(README), "exec"), {})
    losses = [float(line.split()[1]) for line in capsys.readouterr().out.splitlines()]
    assert len(losses) == 5 and all(np.isfinite(losses))
    assert losses[-1] < losses[0]  # five steps on one fixed batch: it must fit it better
