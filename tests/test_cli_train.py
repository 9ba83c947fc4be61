"""Tests for the `tinygrad-cnn train` and `tinygrad-cnn eval` commands: arguments, messages, exit codes, output."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_training import SigintAtStep, synthetic_mnist, torch_lenet

from tinygrad_cnn.app import training
from tinygrad_cnn.cli import evaluate as eval_cli
from tinygrad_cnn.cli import main
from tinygrad_cnn.cli import train as train_cli
from tinygrad_cnn.data import mnist, normalize
from tinygrad_cnn.models import lenet5

QUICK = ["--limit-train", "256", "--limit-test", "100", "--batch-size", "32", "--no-progress"]


@pytest.fixture
def data(monkeypatch: pytest.MonkeyPatch) -> training.MNISTArrays:
    """Both commands get synthetic MNIST-shaped data instead of reading files."""
    arrays = synthetic_mnist(n_train=256, n_test=300)
    monkeypatch.setattr(train_cli, "load_mnist", lambda data_dir: arrays)
    monkeypatch.setattr(eval_cli, "load_mnist", lambda data_dir: arrays)
    return arrays


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(url: str) -> bytes:
        raise OSError("network disabled by the test")

    monkeypatch.setattr(mnist, "_fetch", refuse)


# ---- arguments ----------------------------------------------------------------------------------
@pytest.mark.parametrize("option, value, message", [
    ("--epochs", "-1", "argument --epochs: must be >= 1, got -1"),
    ("--epochs", "0", "argument --epochs: must be >= 1, got 0"),
    ("--epochs", "two", "argument --epochs: expected an integer, got 'two'"),
    ("--lr", "0", "argument --lr: must be > 0, got 0"),
    ("--lr", "-0.1", "argument --lr: must be > 0, got -0.1"),
    ("--lr", "nan", "argument --lr: must be > 0, got nan"),
    ("--batch-size", "0", "argument --batch-size: must be >= 1, got 0"),
    ("--momentum", "1", r"argument --momentum: must be in [0, 1), got 1"),
    ("--optimizer", "rmsprop", "argument --optimizer: invalid choice: 'rmsprop'"),
    ("--threads", "0", "argument --threads: must be >= 1, got 0"),
    ("--threads", "2.5", "argument --threads: expected an integer, got '2.5'"),
    ("--processes", "0", "argument --processes: must be >= 1, got 0"),
])
def test_bad_arguments_are_rejected_by_argparse(option: str, value: str, message: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--out", str(tmp_path), option, value])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir()), "nothing may be written for rejected arguments"


@pytest.mark.parametrize("command", [["train", "--out", "{tmp}/run"], ["eval", "--checkpoint", "{tmp}/c.npz"]])
def test_missing_data_gives_the_data_modules_message_and_exit_code_2(
        command: list[str], offline: None, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    if command[0] == "eval":
        training.save_run(tmp_path, training.Checkpoint(0, training.TrainConfig(), [], lenet5().state_dict(), {}, {},
                                                        {}))
        os.replace(tmp_path / training.CHECKPOINT_FILE, tmp_path / "c.npz")
    missing = tmp_path / "no-mnist-here"
    code = main([arg.format(tmp=tmp_path) for arg in command] + ["--data-dir", str(missing)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"MNIST files missing from {missing} (which does not exist)" in err
    assert "network disabled by the test" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 6, "one clear message, not a traceback"


def test_resume_without_a_checkpoint_is_an_error(data: training.MNISTArrays, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--out", str(tmp_path), "--resume"]) == 2
    assert f"no checkpoint at {tmp_path / training.CHECKPOINT_FILE}" in capsys.readouterr().err


# ---- train --------------------------------------------------------------------------------------
def test_train_then_resume_with_the_checkpoints_options(data: training.MNISTArrays, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    out = str(tmp_path / "run")
    assert main(["train", "--out", out, "--epochs", "1", "--lr", "0.003", *QUICK]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"epoch 1/1: train loss \d+\.\d{4}, test loss \d+\.\d{4}, test accuracy \d+\.\d\d%, "
                        r"\d+\.\d s \(\d+ images/s\)", lines[0]), lines

    # a different learning rate would not continue the same run
    assert main(["train", "--out", out, "--epochs", "2", "--lr", "0.01", "--resume"]) == 2
    assert "lr=0.01 (the checkpoint has 0.003)" in capsys.readouterr().err

    # options left out are the checkpoint's (lr 0.003, limit 256, ...), only --epochs grows
    assert main(["train", "--out", out, "--epochs", "2", "--resume", "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"resuming from {Path(out) / training.CHECKPOINT_FILE} after epoch 1 of 2")
    assert lines[1].startswith("epoch 2/2: ")
    checkpoint = training.load_checkpoint(Path(out) / training.CHECKPOINT_FILE)
    assert checkpoint.epoch == 2 and checkpoint.config.lr == 0.003 and checkpoint.config.limit_train == 256


def test_one_epoch_plus_resume_equals_two_epochs_bit_for_bit(data: training.MNISTArrays, tmp_path: Path) -> None:
    common = ["--optimizer", "sgd", "--lr", "0.02", "--momentum", "0.5", "--seed", "4", *QUICK]
    assert main(["train", "--out", str(tmp_path / "straight"), "--epochs", "2", *common]) == 0
    assert main(["train", "--out", str(tmp_path / "split"), "--epochs", "1", *common]) == 0
    assert main(["train", "--out", str(tmp_path / "split"), "--epochs", "2", "--resume", "--no-progress"]) == 0
    straight, split = (training.load_checkpoint(tmp_path / run / training.CHECKPOINT_FILE)
                       for run in ("straight", "split"))
    assert straight.model.keys() == split.model.keys()
    for name, weights in straight.model.items():
        assert np.array_equal(weights, split.model[name]), name
    for i, state in straight.optimizer["state"].items():
        assert np.array_equal(state["momentum_buffer"], split.optimizer["state"][i]["momentum_buffer"])
    assert straight.loader == split.loader and straight.rng == split.rng


@pytest.mark.skipif(os.name == "nt", reason="needs POSIX signals")
def test_ctrl_c_exits_130_and_says_how_to_resume(data: training.MNISTArrays, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(training, "make_optimizer", SigintAtStep(12))  # in the 2nd epoch of 8 steps
    assert main(["train", "--out", str(tmp_path), "--epochs", "3", *QUICK]) == 130
    captured = capsys.readouterr()
    assert captured.out.count("epoch ") == 1
    assert f"tinygrad-cnn train --out {tmp_path} --resume" in captured.err
    assert training.load_checkpoint(tmp_path / training.CHECKPOINT_FILE).epoch == 1


@pytest.mark.skipif(os.name == "nt" or not os.environ.get("TINYGRAD_CNN_DATA"),
                    reason="needs POSIX signals and real MNIST (TINYGRAD_CNN_DATA)")
def test_real_sigint_to_the_command_line_program(tmp_path: Path) -> None:
    """The installed program, a real Ctrl-C from outside: exit code 130 and a consistent checkpoint."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "tinygrad_cnn", "train", "--out", str(tmp_path), "--epochs", "1000",
               "--limit-train", "320", "--limit-test", "100", "--no-progress"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as process:
        first = process.stdout.readline()
        assert first.startswith("epoch 1/1000: "), first + process.stderr.read()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    epochs = 1 + out.count("epoch ")
    checkpoint = training.load_checkpoint(tmp_path / training.CHECKPOINT_FILE)
    assert checkpoint.epoch == epochs == len(checkpoint.history)
    assert "Traceback" not in err and "--resume" in err


# ---- eval ---------------------------------------------------------------------------------------
def test_eval_prints_accuracy_and_a_confusion_matrix_that_add_up(data: training.MNISTArrays, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    torch = pytest.importorskip("torch")
    assert main(["train", "--out", str(tmp_path), "--epochs", "1", *QUICK]) == 0
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(tmp_path / training.CHECKPOINT_FILE)]) == 0
    out = capsys.readouterr().out
    _, _, x_test, y_test = data

    stated = re.search(r"test accuracy: (\d+\.\d\d)% \((\d+)/(\d+)\)", out)
    header = out.index("true\\pred")
    rows = [line.split() for line in out[header:].splitlines()[1:11]]
    assert [int(r[0]) for r in rows] == list(range(10))
    matrix = np.array([[int(n) for n in r[1:11]] for r in rows])
    assert matrix.sum() == len(y_test) == int(stated[3])
    assert np.trace(matrix) == int(stated[2])
    assert float(stated[1]) == pytest.approx(100 * np.trace(matrix) / len(y_test), abs=0.005)
    np.testing.assert_array_equal(matrix.sum(axis=1), np.bincount(y_test, minlength=10))  # rows = true class
    np.testing.assert_array_equal([int(r[11]) for r in rows], matrix.sum(axis=1))
    for c, r in enumerate(rows):  # per-class accuracy column
        if matrix[c].sum():
            assert float(r[12].rstrip("%")) == pytest.approx(100 * matrix[c, c] / matrix[c].sum(), abs=0.005)

    # the same matrix from PyTorch's predictions with the checkpoint's weights
    weights = training.load_checkpoint(tmp_path / training.CHECKPOINT_FILE).model
    with torch.no_grad():
        predicted = torch_lenet(weights)(torch.from_numpy(normalize(x_test))).argmax(1).numpy()
    expected = np.zeros((10, 10), dtype=np.int64)
    np.add.at(expected, (y_test, predicted), 1)
    np.testing.assert_array_equal(matrix, expected)


def test_eval_of_a_file_that_is_not_a_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    assert main(["eval", "--checkpoint", str(tmp_path / "junk.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tinygrad-cnn eval: error: load: {tmp_path / 'junk.npz'} ") and "Traceback" not in err


# ---- user errors: exit code 2, one line on stderr, no traceback, nothing written -------------------
def assert_one_line_error(code: int, err: str, command: str, *fragments: str) -> None:
    assert code == 2, err
    assert err.startswith(f"tinygrad-cnn {command}: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture
def no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the data is a test failure: the error must come first."""
    def refuse(data_dir: str | None) -> training.MNISTArrays:
        pytest.fail("the data was loaded before the user error was reported")

    monkeypatch.setattr(train_cli, "load_mnist", refuse)
    monkeypatch.setattr(eval_cli, "load_mnist", refuse)


def misfit_checkpoint(out: Path) -> Path:
    """A `train` checkpoint in `out` whose conv1 has 3 filters instead of LeNet-5's 6."""
    model = lenet5().state_dict()
    model["conv1.weight"], model["conv1.bias"] = np.zeros((3, 1, 5, 5), np.float32), np.zeros(3, np.float32)
    out.mkdir(parents=True, exist_ok=True)
    training.save_run(out, training.Checkpoint(1, training.TrainConfig(), [], model, {}, {}, {}))
    return out / training.CHECKPOINT_FILE


def test_eval_of_a_directory_names_it_and_the_checkpoint_inside(no_data: None, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    code = main(["eval", "--checkpoint", str(tmp_path)])
    assert_one_line_error(code, capsys.readouterr().err, "eval", f"{tmp_path} is a directory")
    misfit_checkpoint(tmp_path)
    code = main(["eval", "--checkpoint", str(tmp_path)])
    assert_one_line_error(code, capsys.readouterr().err, "eval", f"did you mean {tmp_path / training.CHECKPOINT_FILE}")


def test_eval_of_a_checkpoint_that_does_not_fit_lenet(no_data: None, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    path = misfit_checkpoint(tmp_path)
    code = main(["eval", "--checkpoint", str(path)])
    assert_one_line_error(code, capsys.readouterr().err, "eval", str(path), "conv1.weight", "(3, 1, 5, 5)",
                          "(6, 1, 5, 5)")


def test_resume_from_a_checkpoint_that_does_not_fit_changes_nothing(data: training.MNISTArrays, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    path = misfit_checkpoint(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    code = main(["train", "--out", str(tmp_path), "--resume", "--epochs", "2", "--no-progress"])
    assert_one_line_error(code, capsys.readouterr().err, "train", str(path), "conv1.weight", "(3, 1, 5, 5)")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize("out", ["file.txt", "file.txt/run"])
def test_train_out_at_or_under_a_regular_file(out: str, no_data: None, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "file.txt").write_text("my notes")
    code = main(["train", "--out", str(tmp_path / out), *QUICK])
    assert_one_line_error(code, capsys.readouterr().err, "train", f"{tmp_path / 'file.txt'} is a file, not a directory")
    assert (tmp_path / "file.txt").read_text() == "my notes" and os.listdir(tmp_path) == ["file.txt"]


def test_train_out_on_a_read_only_filesystem(tmp_path: Path) -> None:
    """A real read-only mount (a private mount namespace, as root), and `tinygrad-cnn train` in it; the data
    directory is missing, so an error about the data would mean it was read before --out was checked."""
    mount = tmp_path / "ro"
    mount.mkdir()
    mount_it = f'mount -t tmpfs -o ro,size=1m tmpfs "{mount}"'
    if os.geteuid() != 0 or shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-m", "sh", "-c", mount_it], capture_output=True).returncode != 0:
        pytest.skip("needs root and unshare(1) to mount a read-only filesystem")
    script = (f'{mount_it} && exec "{sys.executable}" -m tinygrad_cnn train --out "{mount}/run" '
              f'--data-dir "{tmp_path}/no-mnist-here" --no-progress')
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    assert_one_line_error(done.returncode, done.stderr, "train", f"output directory {mount}/run",
                          "Read-only file system")


def test_graph_without_the_dot_program_writes_the_source_and_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture) -> None:
    from tinygrad_cnn.viz import graph as viz_graph
    monkeypatch.setattr(viz_graph.shutil, "which", lambda name: None)
    code = main(["graph", "--data-dir", str(tmp_path / "no-mnist"), "-o", str(tmp_path / "g.svg")])
    err = capsys.readouterr().err
    assert code == 2
    assert "apt-get install graphviz" in err and f"dot -Tsvg {tmp_path / 'g.dot'} -o {tmp_path / 'g.svg'}" in err
    assert (tmp_path / "g.dot").read_text().startswith("digraph") and not (tmp_path / "g.svg").exists()
