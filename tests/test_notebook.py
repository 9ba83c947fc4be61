"""examples/notebooks/lessons.ipynb runs top to bottom in a fresh Jupyter kernel, and its outputs say what it claims;
graph drawings display inline in Jupyter, with or without Graphviz's `dot` program.

The kernel is this interpreter (a kernel spec written to a temporary JUPYTER_PATH), so the notebook runs against the
tinygrad_cnn under test and nothing is installed into the user's Jupyter folders.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn.data.mnist import MNIST_FILES, has_idx_files, resolve_data_dir

NOTEBOOKS = Path(__file__).resolve().parent.parent / "examples" / "notebooks"
LESSONS = NOTEBOOKS / "lessons.ipynb"
CELL_TIMEOUT = 900    # seconds; the whole notebook takes about a minute on 2 idle cores, training included
KERNEL_NAME = "tinygrad-cnn-test"

# One line per agreement the notebook asserts, printed only after its asserts passed.
AGREEMENTS = [
    "OK: F.conv2d agrees with the loops, stride=1, padding=0",
    "OK: F.conv2d agrees with the loops, stride=2, padding=1",
    "OK: same output (16, 6, 24, 24)",
    "OK: dX, dW and db from backward() agree with the loops",
    "OK: dX by backward() == by loops == by hand",
    "OK: db sums over the batch; conv2d passes gradcheck and gradgradcheck",
    "OK: output sizes and parameter counts agree with the formulas",
    "OK: max and average pooling 2x2 stride 2 agree with the loops",
    "OK: max and average pooling 3x3 stride 1 agree with the loops",
    "OK: Swish passes gradcheck and gradgradcheck",
]
# The seed notebook's three layers: output size and parameter count.
LAYER_ROWS = [r"layer 1 +144x144x3 +142x142x6 +168\b", r"layer 2 +60x60x24 +58x58x48 +10,416\b",
              r"layer 3 +20x20x10 +9x9x20 +1,820\b"]
IMAGE_TYPES = ("image/png", "image/svg+xml")


def test_committed_without_outputs() -> None:
    """Kept small and diffable: the test below runs it and checks the outputs, so they are not stored."""
    nb = json.loads(LESSONS.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code), (
        f"clear the outputs before committing: jupyter nbconvert --clear-output --inplace {LESSONS}")


def _text(output: dict) -> str:
    if output["output_type"] == "stream":
        return output["text"]
    if output["output_type"] in ("execute_result", "display_data"):
        return output["data"].get("text/plain", "")
    return ""


@pytest.fixture
def kernel_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernel spec that starts this interpreter, on a JUPYTER_PATH of its own."""
    pytest.importorskip("ipykernel", reason="needs ipykernel: pip install 'tinygrad_cnn[notebook]'")
    from ipykernel.kernelspec import install

    install(kernel_name=KERNEL_NAME, prefix=str(tmp_path))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share" / "jupyter"))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # an Agg backend from the environment would hide the plots
    return KERNEL_NAME


@pytest.mark.slow
def test_lessons_notebook_runs_in_a_kernel(kernel_name: str) -> None:
    nbformat = pytest.importorskip("nbformat", reason="needs nbformat: pip install 'tinygrad_cnn[notebook]'")
    nbclient = pytest.importorskip("nbclient", reason="needs nbclient: pip install 'tinygrad_cnn[notebook]'")
    pytest.importorskip("matplotlib", reason="needs matplotlib: pip install 'tinygrad_cnn[app]'")
    pytest.importorskip("graphviz", reason="needs the graphviz package: pip install 'tinygrad_cnn[viz]'")
    if not os.environ.get("TINYGRAD_CNN_DATA") or not has_idx_files(resolve_data_dir(), MNIST_FILES):
        pytest.skip("needs real MNIST: point TINYGRAD_CNN_DATA at a folder with the four MNIST files")

    nb = nbformat.read(LESSONS, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=kernel_name,
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    start = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as e:
        pytest.fail(f"a notebook cell failed:\n{e}")
    seconds = time.perf_counter() - start
    print(f"lessons.ipynb ran in {seconds:.1f} s")

    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    errors = [o for o in outputs if o["output_type"] == "error"]
    assert not errors, [f"{e['ename']}: {e['evalue']}" for e in errors]
    assert not [o for o in outputs if o["output_type"] == "stream" and o["name"] == "stderr"
                and "Traceback" in o["text"]]
    text = "".join(_text(o) for o in outputs)

    for line in AGREEMENTS:
        assert line in text, f"missing {line!r} in the notebook's output"
    for row in LAYER_ROWS:
        assert re.search(row, text), f"missing a line like {row!r}"
    assert "the last 1 of the 20 input rows/columns are silently ignored" in text  # layer 3, strict=True
    assert "the original's expected dX differs at" in text
    assert "gradcheck passes; gradgradcheck: False" in text
    assert re.search(r"\b1111\.", text)  # max pooling, overlapping windows: one element gets 1 + 10 + 100 + 1000

    epochs = re.findall(r"epoch (\d): train loss (\d+\.\d+), test accuracy (\d+\.\d+)%", text)
    assert [int(e[0]) for e in epochs] == [1, 2], text
    accuracy = float(re.search(r"final test accuracy: (\d+\.\d+)%", text)[1])
    assert accuracy >= 98.0, f"LeNet reached {accuracy}% (< 98 %)"
    print(f"LeNet test accuracy: {accuracy:.2f}%")

    images = [t for o in outputs if o["output_type"] in ("display_data", "execute_result")
              for t in IMAGE_TYPES if t in o["data"]]
    assert images.count("image/png") >= 1, images          # the loss curve
    if shutil.which("dot"):
        assert images.count("image/svg+xml") >= 2, images  # LeNet's backward graph and the small conv graph
        svg = "".join(o["data"]["image/svg+xml"] for o in outputs if "image/svg+xml" in o.get("data", {}))
        assert "Conv2d" in svg and "conv1.weight.grad" in svg
    else:  # the graph cells still run, and show the DOT source
        assert "digraph backward" in text and "digraph forward" in text
    assert len(images) >= (3 if shutil.which("dot") else 1)


# ---- graph objects display inline in Jupyter -----------------------------------------------------------------
def _small_graph():
    pytest.importorskip("graphviz", reason="needs the graphviz package: pip install 'tinygrad_cnn[viz]'")
    from tinygrad_cnn.viz import draw_graph

    x = tc.Tensor(np.ones((2, 3)), requires_grad=True)
    return draw_graph((x * 2).sum(), names={"x": x})


def _ipython_formats(obj: object) -> dict:
    """What IPython's display machinery (a Jupyter kernel's) sends to the frontend for `obj`."""
    formatters = pytest.importorskip("IPython.core.formatters", reason="needs IPython (ipykernel brings it)")
    data, _ = formatters.DisplayFormatter().format(obj)
    return data


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot program")
def test_graph_displays_as_svg_inline() -> None:
    data = _ipython_formats(_small_graph())
    assert data["image/svg+xml"].lstrip().startswith("<?xml") and "Mul" in data["image/svg+xml"]


def test_graph_without_dot_displays_its_source(monkeypatch: pytest.MonkeyPatch) -> None:
    graph = _small_graph()
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    data = _ipython_formats(graph)
    assert "image/svg+xml" not in data
    assert "apt-get install graphviz" in data["text/plain"] and graph.source in data["text/plain"]


def test_graph_is_still_a_graphviz_digraph() -> None:
    import graphviz

    graph = _small_graph()
    assert isinstance(graph, graphviz.Digraph) and isinstance(graph.copy(), type(graph))
