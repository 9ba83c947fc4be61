"""A real Ctrl-C to a real `tinygrad-cnn train` process, then `--resume`: the run ends bit-identical to one that
was never interrupted.

test_training.py interrupts the loop in-process (SIGINT raised at a chosen step) and test_cli_train.py checks
the exit code and messages of an interrupted program; here the whole path runs as a user would: separate
processes, the signal from outside at whatever point the first epoch's checkpoint is seen, and the final
checkpoints of the two runs compared array by array.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn import CheckpointError
from tinygrad_cnn.app import training
from tinygrad_cnn.data.mnist import ENV_VAR, MNIST_FILES

DATA = os.environ.get(ENV_VAR)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.name == "nt", reason="needs POSIX signals"),
    pytest.mark.skipif(not DATA or not all(any((Path(DATA) / f"{spec.name}{ext}").is_file() for ext in ("", ".gz"))
                                           for spec in MNIST_FILES),
                       reason=f"needs the MNIST files in ${ENV_VAR}"),
]

EPOCHS = 4  # after epoch 1 is saved, three more (~1 s) must pass before the run could end on its own
# A small subset; SGD with momentum so that the optimizer state (momentum buffers) must be restored exactly.
RUN = ["--limit-train", "2000", "--limit-test", "500", "--batch-size", "32", "--optimizer", "sgd", "--lr", "0.05",
       "--seed", "3", "--no-progress"]
TIMEOUT = 120  # seconds per process; a healthy one takes a few


def train(out: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "tinygrad_cnn", "train", "--out", str(out), *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=TIMEOUT)
    return process.returncode, out, err


def wait_for_epoch(path: Path, epoch: int, process: subprocess.Popen) -> None:
    """Poll the checkpoint (replaced atomically after every epoch) until it holds `epoch` completed epochs."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, f"train exited early with code {process.returncode}: {process.stderr.read()}"
        try:
            if training.load_checkpoint(path).epoch >= epoch:
                return
        except CheckpointError:  # not written yet
            pass
        time.sleep(0.01)
    raise AssertionError(f"no checkpoint of epoch {epoch} at {path} after {TIMEOUT} s")


def assert_identical(a: object, b: object, where: str) -> None:
    """Nested dicts and lists of arrays and plain values, equal to the bit (whatever the state dict's layout)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_identical(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), f"{where} differs after resuming"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_sigint_then_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path: Path) -> None:
    straight, split = tmp_path / "straight", tmp_path / "split"
    reference = train(straight, "--epochs", str(EPOCHS), *RUN)  # runs alongside the interrupted one

    interrupted = train(split, "--epochs", str(EPOCHS), *RUN)
    wait_for_epoch(split / training.CHECKPOINT_FILE, 1, interrupted)
    interrupted.send_signal(signal.SIGINT)
    code, out, err = finish(interrupted)
    assert code == 130, f"exit code {code}, expected 130 (interrupted)\n{err}"
    assert "Traceback" not in err and f"--out {split} --resume" in err
    stopped = training.load_checkpoint(split / training.CHECKPOINT_FILE)
    assert 1 <= stopped.epoch < EPOCHS and len(stopped.history) == stopped.epoch == out.count("epoch ")

    code, out, err = finish(train(split, "--resume", "--no-progress"))  # every option from the checkpoint
    assert code == 0, err
    assert out.startswith(f"resuming from {split / training.CHECKPOINT_FILE} after epoch {stopped.epoch} of {EPOCHS}")
    code, _, err = finish(reference)
    assert code == 0, err

    a, b = (training.load_checkpoint(run / training.CHECKPOINT_FILE) for run in (straight, split))
    assert a.epoch == b.epoch == EPOCHS
    assert a.model.keys() == b.model.keys()
    for name, weights in a.model.items():
        assert np.array_equal(weights, b.model[name]), f"{name} differs after resuming"
    assert len(a.optimizer["state"]) == len(a.model), "SGD with momentum keeps a buffer per parameter"
    assert_identical(a.optimizer, b.optimizer, "optimizer")  # momentum buffers, hyperparameters
    assert a.rng == b.rng and a.loader == b.loader
    deterministic = ("epoch", "train_loss", "test_loss", "test_accuracy")  # not the timings
    assert [[row[c] for c in deterministic] for row in a.history] == [[row[c] for c in deterministic]
                                                                      for row in b.history]
