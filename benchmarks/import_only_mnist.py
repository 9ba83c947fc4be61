"""A PyTorch script run with only its import lines changed: its time and accuracy on both frameworks.

    python benchmarks/import_only_mnist.py PATH/TO/main.py [--rounds 2] [--epochs 1]

PATH/TO/main.py is a PyTorch training script that prints `Test set: ... Accuracy: K/N (...)`, such as
pytorch/examples' mnist/main.py (not part of this repository: clone or download it). The script is run
as it is on PyTorch, and on tinygrad_cnn with its `import torch...`/`from torch...`/`from torchvision...`
lines replaced by the import block of docs/porting-from-pytorch.md; nothing else in it changes. Each
round runs both, one after the other in separate processes (ours first, then PyTorch's), and the table
gives each run's wall time and test accuracy, and the ratio of the medians. MNIST is read from
$TINYGRAD_CNN_DATA (required). Without torchvision, the PyTorch runs take `datasets.MNIST` and the
transforms from examples/pytorch_style/torchvision_fallback.py (the same files and arithmetic).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# PyTorch's import lines (whole lines, as scripts write them) -> ours.
IMPORTS = {
    "import torch": "import tinygrad_cnn as torch",
    "import torch.nn as nn": "import tinygrad_cnn.nn as nn",
    "import torch.nn.functional as F": "import tinygrad_cnn.nn.functional as F",
    "import torch.optim as optim": "import tinygrad_cnn.optim as optim",
    "from torchvision import datasets, transforms": "from tinygrad_cnn.vision import datasets, transforms",
    "from torch.optim.lr_scheduler import StepLR": "from tinygrad_cnn.optim.lr_scheduler import StepLR",
}
ACCURACY = re.compile(r"Test set: .*Accuracy: (\d+)/(\d+)")


def ported(source: str) -> str:
    """The script with each PyTorch import line replaced; an import line we do not know is an error."""
    lines = []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped in IMPORTS:
            line = line.replace(stripped, IMPORTS[stripped])
        elif re.match(r"(import|from)\s+(torch|torchvision)\b", stripped):
            raise SystemExit(f"import_only_mnist: no replacement for the import line {stripped!r}")
        lines.append(line)
    return "\n".join(lines) + "\n"


def run(script: Path, args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and the last test accuracy (%) of one run."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(script), *args], env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"import_only_mnist: {script.name} failed:\n{done.stderr[-3000:]}")
    found = ACCURACY.findall(done.stdout)
    if not found:
        raise SystemExit(f"import_only_mnist: {script.name} printed no 'Test set: ... Accuracy' line")
    correct, total = map(int, found[-1])
    return seconds, 100.0 * correct / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script", type=Path, help="the PyTorch script, e.g. pytorch/examples' mnist/main.py")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    if not os.environ.get("TINYGRAD_CNN_DATA"):
        raise SystemExit("import_only_mnist: set TINYGRAD_CNN_DATA to the directory of the MNIST files")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        original = work / "theirs.py"
        original.write_text(args.script.read_text())
        ours = work / "ours.py"
        ours.write_text(ported(original.read_text()))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        torch_env = dict(env)
        try:
            import torchvision  # noqa: F401
        except ImportError:
            shim = work / "shim" / "torchvision"
            shim.mkdir(parents=True)
            shim.joinpath("__init__.py").write_text("from torchvision_fallback import datasets, transforms\n")
            torch_env["PYTHONPATH"] = os.pathsep.join([str(shim.parent), str(REPO / "examples" / "pytorch_style"),
                                                       env["PYTHONPATH"]])
        script_args = ["--epochs", str(args.epochs)]
        times: dict[str, list[float]] = {"tinygrad_cnn": [], "PyTorch": []}
        print(f"{args.script} with --epochs {args.epochs}, {args.rounds} rounds")
        for i in range(args.rounds):
            for name, script, run_env in (("tinygrad_cnn", ours, env), ("PyTorch", original, torch_env)):
                seconds, accuracy = run(script, script_args, run_env, work)
                times[name].append(seconds)
                print(f"round {i + 1}  {name:<13} {seconds:7.1f} s  test accuracy {accuracy:.2f} %", flush=True)
    ours_s, theirs_s = (statistics.median(v) for v in times.values())
    print(f"median: tinygrad_cnn {ours_s:.1f} s, PyTorch {theirs_s:.1f} s, ratio {ours_s / theirs_s:.2f}")


if __name__ == "__main__":
    main()
