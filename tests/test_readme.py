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


def test_readme_data_parallel_snippet_runs_and_steps() -> None:
    """The training-script snippet with DataParallel, given a model, a loader and an optimizer."""
    import tinygrad_cnn.functional as F
    from tinygrad_cnn import Tensor
    from tinygrad_cnn.models import lenet5
    from tinygrad_cnn.optim import SGD

    code = next(block for block in re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
                if "DataParallel(" in block)
    model = lenet5()
    before = [p.data.copy() for p in model.parameters()]
    rng = np.random.default_rng(0)
    loader = [(rng.standard_normal((8, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 8)) for _ in range(2)]
    scope = {"model": model, "loader": loader, "optimizer": SGD(model.parameters(), lr=0.1), "F": F,
             "Tensor": Tensor}
    exec(compile(code, str(README), "exec"), scope)
    assert isinstance(scope["loss"], float) and np.isfinite(scope["loss"])
    assert scope["dp"]._workers == []  # the with block closed them
    assert all(not np.array_equal(p.data, b) for p, b in zip(model.parameters(), before))
