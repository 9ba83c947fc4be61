"""The library needs numpy alone: graphviz, tqdm and matplotlib are extras, imported only by the tool that uses
them, and a missing one is an ImportError that names the extra to install.

Each test runs a fresh interpreter in which importing any of the three fails, as on a machine with only
`pip install tinygrad_cnn`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

BLOCKED = ("graphviz", "tqdm", "matplotlib")

BLOCKER = f"""
import importlib.abc, sys

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, Blocker())
"""


def run_blocked(code: str) -> dict:
    """Run `code` after the blocker in a new interpreter; it prints one JSON line, returned parsed."""
    done = subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_library_and_training_a_lenet_step_need_numpy_only() -> None:
    result = run_blocked("""
        import json, sys
        import numpy as np
        import tinygrad_cnn
        from tinygrad_cnn import Tensor, optim
        import tinygrad_cnn.functional as F
        from tinygrad_cnn.app import training
        from tinygrad_cnn.cli import build_parser
        from tinygrad_cnn.models import lenet5

        build_parser()  # every subcommand's module
        tinygrad_cnn.manual_seed(0)
        model = lenet5()
        opt = optim.SGD(model.parameters(), lr=0.1)
        rng = np.random.default_rng(0)
        x, y = rng.random((8, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 8)
        before = model.fc3.weight.data.copy()
        losses = []
        for _ in range(3):
            opt.zero_grad()
            loss = F.cross_entropy(model(Tensor(x)), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        losses.append(training.train_step(model, opt, x, y))
        print(json.dumps({"losses": losses, "moved": bool(np.any(model.fc3.weight.data != before)),
                          "imported": sorted({m.split(".")[0] for m in sys.modules} & {"graphviz", "tqdm",
                                                                                      "matplotlib"})}))
    """)
    assert result["imported"] == []
    assert result["moved"] and result["losses"][-1] < result["losses"][0]


def test_the_training_loop_runs_without_tqdm_and_matplotlib(tmp_path) -> None:
    """`train` without a progress bar writes the checkpoint and metrics, and skips the plot."""
    result = run_blocked(f"""
        import json
        import numpy as np
        from tinygrad_cnn.app import training
        rng = np.random.default_rng(0)
        data = (rng.integers(0, 255, (64, 28, 28)).astype(np.uint8), rng.integers(0, 10, 64),
                rng.integers(0, 255, (20, 28, 28)).astype(np.uint8), rng.integers(0, 10, 20))
        config = training.TrainConfig(epochs=1, batch_size=32)
        result = training.train(config, data, {str(tmp_path)!r}, progress=False, log=lambda line: None)
        print(json.dumps({{"epochs": len(result.history), "plotted": result.plotted}}))
    """)
    assert result == {"epochs": 1, "plotted": False}
    assert (tmp_path / "checkpoint.npz").is_file() and (tmp_path / "metrics.csv").is_file()
    assert not (tmp_path / "curves.png").exists()


def test_a_missing_extra_is_an_import_error_naming_it() -> None:
    result = run_blocked("""
        import json
        from tinygrad_cnn import Tensor
        from tinygrad_cnn.app import training
        from tinygrad_cnn.viz import draw_graph
        messages = {}
        for name, call in (("viz", lambda: draw_graph((Tensor([1.0], requires_grad=True) * 2).sum())),
                           ("app", training.progress_bar_class)):
            try:
                call()
            except ImportError as e:
                messages[name] = str(e)
        print(json.dumps(messages))
    """)
    assert "pip install 'tinygrad_cnn[viz]'" in result["viz"]
    assert "pip install 'tinygrad_cnn[app]'" in result["app"] and "--no-progress" in result["app"]


def test_train_without_tqdm_says_which_extra_before_loading_data(tmp_path) -> None:
    """`tinygrad-cnn train` with a progress bar but no tqdm: exit 2, one line, nothing loaded or written."""
    out = tmp_path / "run"
    argv = ["train", "--out", str(out), "--data-dir", str(tmp_path / "none")]
    done = subprocess.run([sys.executable, "-c", BLOCKER + f"import sys\nfrom tinygrad_cnn.cli import main\n"
                           f"sys.exit(main({argv!r}))"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "tinygrad_cnn[app]" in done.stderr and "--no-progress" in done.stderr
    assert list(out.iterdir()) == []
