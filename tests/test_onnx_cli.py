"""`tinygrad-cnn export`: a train checkpoint's LeNet-5 as ONNX, run in onnxruntime; user errors exit 2 with one line."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn import Tensor, manual_seed, optim, save
from tinygrad_cnn.app import training
from tinygrad_cnn.cli import main
from tinygrad_cnn.models import lenet5


@pytest.fixture
def checkpoint(tmp_path: Path) -> tuple[Path, object]:
    manual_seed(3)
    model = lenet5()
    optimizer = optim.Adam(model.parameters())
    state = training.Checkpoint(1, training.TrainConfig(), [], model.state_dict(), optimizer.state_dict(), {}, {})
    path = tmp_path / training.CHECKPOINT_FILE
    save(state.to_dict(), path)
    return path, model


def test_export_writes_an_onnx_file_that_onnxruntime_runs(checkpoint: tuple[Path, object], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    ort = pytest.importorskip("onnxruntime")
    path, model = checkpoint
    out = tmp_path / "lenet5.onnx"
    assert main(["export", "--checkpoint", str(path), "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x})[0]
    np.testing.assert_allclose(got, model.eval()(Tensor(x)).data, rtol=1e-4, atol=1e-5)
    assert main(["export", "--checkpoint", str(path), "-o", str(out), "--fixed-batch", "4", "--opset", "13"]) == 0
    assert session.get_inputs()[0].shape[0] == "batch"
    assert ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).get_inputs()[0].shape[0] == 4


@pytest.mark.parametrize("case", ["missing", "directory_checkpoint", "not_a_checkpoint", "output_dir_missing",
                                  "output_is_dir", "no_onnx", "bad_opset"])
def test_user_errors_exit_2_with_one_line(case: str, checkpoint: tuple[Path, object], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = checkpoint
    out = tmp_path / "m.onnx"
    args = ["export", "--checkpoint", str(path), "-o", str(out)]
    if case == "missing":
        args[2] = str(tmp_path / "nothing.npz")
    elif case == "directory_checkpoint":
        args[2] = str(tmp_path)
    elif case == "not_a_checkpoint":
        (tmp_path / "junk.npz").write_bytes(b"junk")
        args[2] = str(tmp_path / "junk.npz")
    elif case == "output_dir_missing":
        args[4] = str(tmp_path / "no" / "m.onnx")
    elif case == "output_is_dir":
        args[4] = str(tmp_path)
    elif case == "no_onnx":
        monkeypatch.setitem(sys.modules, "onnx", None)
    elif case == "bad_opset":
        args += ["--opset", "7"]
    if case == "bad_opset":
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 2
        return
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinygrad-cnn export: error: ") and err.count("\n") == 1, err
    if case == "no_onnx":
        assert "pip install 'tinygrad_cnn[interop]'" in err
    assert not out.exists()


def test_bench_row_puts_onnxruntime_beside_our_lenet_inference() -> None:
    pytest.importorskip("onnxruntime")
    from tinygrad_cnn.onnx.bench import onnxruntime_rows

    (row,) = onnxruntime_rows(repeats=1, quick=True, images=40, chunk=20)
    assert row.reference_name == "onnxruntime" and row.ours > 0 and row.reference > 0
    assert "onnxruntime" in row.workload and "not a target" in row.note


def test_bench_row_without_onnxruntime_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from tinygrad_cnn.onnx.bench import onnxruntime_rows

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    (row,) = onnxruntime_rows(repeats=1)
    assert row.reference is None and "pip install 'tinygrad_cnn[interop]'" in row.note
