""".safetensors files: round trips, refusals, crafted files, the missing optional package, and PyTorch as the
oracle (its safetensors.torch reads our LeNet weights bit-exactly into a torch LeNet, and we read its file)."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_lenet import torch_lenet as torch_lenet_of

from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.models import lenet5
from tinygrad_cnn.serialization import CheckpointError, load, save

pytest.importorskip("safetensors")

DTYPES = ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float16", "float32",
          "float64"]


def arrays() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    result: dict[str, Any] = {f"a.{name}": (rng.standard_normal((2, 3)) * 100).astype(name) for name in DTYPES}
    result.update({
        "tensor": Tensor(rng.standard_normal((4, 1, 3, 3)).astype(np.float32)),
        "parameter": nn.Parameter(rng.standard_normal(5).astype(np.float32)),
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "fortran": np.asfortranarray(rng.standard_normal((3, 4))),
        "strided": rng.standard_normal((4, 6))[:, ::2],
        "big_endian": np.array([1.0, -2.5], dtype=">f8"),
        "extremes": np.array([np.inf, -np.inf, np.nan, -0.0, 5e-324, np.finfo(np.float64).max]),
    })
    return result


def bits(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def test_round_trip_is_bit_exact_for_every_dtype_and_layout(tmp_path: Path) -> None:
    original = arrays()
    save(original, tmp_path / "w.safetensors")
    loaded = load(tmp_path / "w.safetensors")
    assert set(loaded) == set(original)
    for key, value in original.items():
        expected = value.data if isinstance(value, Tensor) else value
        assert isinstance(loaded[key], np.ndarray), key
        assert loaded[key].dtype == expected.dtype.newbyteorder("<") and loaded[key].shape == expected.shape, key
        assert bits(loaded[key]) == bits(expected), key
        assert loaded[key].flags.writeable, key


def test_the_extension_picks_the_format_in_any_case(tmp_path: Path) -> None:
    save({"w": np.ones(2)}, tmp_path / "W.SafeTensors")
    (length,) = struct.unpack("<Q", (tmp_path / "W.SafeTensors").read_bytes()[:8])
    header = json.loads((tmp_path / "W.SafeTensors").read_bytes()[8:8 + length])
    assert header["w"]["dtype"] == "F64" and header["w"]["shape"] == [2]
    np.testing.assert_array_equal(load(tmp_path / "W.SafeTensors")["w"], np.ones(2))


def test_an_npz_checkpoint_named_safetensors_gets_a_hint(tmp_path: Path) -> None:
    save({"w": np.ones(2)}, tmp_path / "c.npz")
    os.replace(tmp_path / "c.npz", tmp_path / "c.safetensors")
    with pytest.raises(CheckpointError, match=r"is a zip file: an .npz checkpoint\? load picks the format by the file"):
        load(tmp_path / "c.safetensors")


def test_a_safetensors_file_under_another_name_gets_a_hint(tmp_path: Path) -> None:
    save({"w": np.ones(2)}, tmp_path / "w.safetensors")
    os.replace(tmp_path / "w.safetensors", tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match=r"it looks like a safetensors file: name it \*.safetensors"):
        load(tmp_path / "w.pt")


@pytest.mark.parametrize(("obj", "error", "message"), [
    ({"model": {"w": np.ones(2)}}, TypeError, r"'model' is a nested dict; a .safetensors file holds one flat dict"),
    ({"epoch": 3}, TypeError, r"'epoch' is a int; a .safetensors file holds one flat dict of arrays"),
    ({"note": "lenet"}, TypeError, r"'note' is a str"),
    ({"z": np.ones(2, dtype=complex)}, TypeError, r"'z' is an array of dtype complex128; .safetensors files here hold"),
    ({"s": np.array(["a"])}, TypeError, r"'s' is an array of dtype <U1"),
    ({1: np.ones(2)}, TypeError, r"key 1 is a int; keys must be str"),
    ({"__metadata__": np.ones(2)}, ValueError, r"the key '__metadata__' is reserved"),
    ([np.ones(2)], TypeError, r"expected a dict of arrays \(a state_dict\), got list"),
], ids=["nested", "int", "str", "complex", "str-array", "int-key", "reserved", "not-a-dict"])
def test_what_safetensors_cannot_hold_is_refused_before_writing(tmp_path: Path, obj: Any, error: type[Exception],
                                                                message: str) -> None:
    with pytest.raises(error, match=f"^save: {message}"):
        save(obj, tmp_path / "w.safetensors")
    assert os.listdir(tmp_path) == []


def test_a_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.safetensors"
    save({"w": np.ones(2)}, path)

    def failing_replace(*_: Any) -> None:
        raise OSError("simulated failure mid-save")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated failure"):
        save({"w": np.zeros(3)}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["w.safetensors"]
    np.testing.assert_array_equal(load(path)["w"], np.ones(2))


# ---- crafted files ---------------------------------------------------------------------------------------
def safetensors_bytes(header: Any, data: bytes = b"\0" * 8, length: int | None = None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def entry(dtype: str = "F32", shape: Any = (2,), offsets: Any = (0, 8)) -> dict[str, Any]:
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


@pytest.mark.parametrize(("content", "message"), [
    (b"", r"header too small"),
    (b"\x01\x02", r"header too small"),
    (safetensors_bytes(b"{}", length=10**15), r"header too large"),
    (safetensors_bytes({"w": entry()}, length=4000), r"not a readable .safetensors file"),
    (safetensors_bytes(b"not json"), r"invalid JSON in header"),
    (safetensors_bytes(b"\xff\xfe{}"), r"invalid UTF-8 in header"),
    (safetensors_bytes(b"[" * 100_000 + b"]" * 100_000), r"invalid JSON in header"),
    (safetensors_bytes({"w": entry(offsets=(0, 800))}), r"invalid shape, data type, or offset for tensor"),
    (safetensors_bytes({"w": entry(shape=(3,))}), r"invalid shape, data type, or offset for tensor"),
    (safetensors_bytes({"w": entry(shape=(10**15,))}), r"invalid shape, data type, or offset for tensor"),
    (safetensors_bytes({"w": entry(shape=(-2,))}), r"invalid JSON in header: invalid value: integer `-2`"),
    (safetensors_bytes({"w": entry(), "v": entry()}), r"invalid offset for tensor `[vw]`"),
    (safetensors_bytes({"w": entry()}, b"\0" * 16), r"incomplete metadata, file not fully covered"),
    (safetensors_bytes({"w": entry(dtype="Q99")}), r"invalid JSON in header: unknown variant `Q99`"),
    (safetensors_bytes({"__metadata__": {"a": 1}, "w": entry()}), r"invalid type: integer `1`, expected a string"),
    (safetensors_bytes({"w": entry(dtype="BF16", shape=(4,))}),
     r"tensor 'w' has dtype BF16, which numpy cannot hold \(readable: BOOL, .*\); convert it first"),
    (safetensors_bytes({"w": entry(dtype="C64", shape=(1,))}), r"tensor 'w' has dtype C64, which numpy cannot hold"),
], ids=["empty", "short", "header-length-1e15", "header-length-past-the-end", "garbage-json", "non-utf8", "deep-json",
        "offsets-out-of-range", "shape-vs-offsets", "huge-shape", "negative-shape", "overlapping", "trailing-bytes",
        "unknown-dtype", "metadata-not-str", "bf16", "complex"])
def test_a_crafted_safetensors_file_raises_checkpoint_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=rf"^load: {path}\b.*{message}"):
        load(path)


# ---- the optional package --------------------------------------------------------------------------------
@pytest.mark.parametrize("operation", ["save", "load"])
def test_without_the_package_safetensors_asks_for_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            operation: str) -> None:
    path = tmp_path / "w.safetensors"
    save({"w": np.ones(2)}, path)
    for module in [name for name in sys.modules if name == "safetensors" or name.startswith("safetensors.")]:
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError, as when not installed
    with pytest.raises(ImportError, match=r"needs the safetensors package: pip install 'tinygrad_cnn\[interop\]'"):
        save({"w": np.zeros(3)}, path) if operation == "save" else load(path)
    monkeypatch.undo()
    np.testing.assert_array_equal(load(path)["w"], np.ones(2))  # nothing was written


def test_the_core_does_not_import_safetensors() -> None:
    code = ("import sys, numpy as np, tinygrad_cnn as tg, tempfile, os; "
            "p = os.path.join(tempfile.mkdtemp(), 'm.pt'); tg.save({'w': np.ones(2)}, p); tg.load(p); "
            "print('safetensors' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# ---- PyTorch as the oracle ---------------------------------------------------------------------------------
def torch_lenet() -> Any:
    """tests/test_lenet.py's LeNet-5, written independently in PyTorch with the names of models.lenet5."""
    return torch_lenet_of(pytest.importorskip("torch"))


def digits() -> np.ndarray:
    return np.random.default_rng(1).random((3, 1, 28, 28), dtype=np.float32)


def test_lenet5_has_the_parameter_names_and_shapes_of_a_torch_lenet() -> None:
    ours = {k: tuple(v.shape) for k, v in lenet5().state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in torch_lenet().state_dict().items()}
    assert ours == theirs


def test_pytorch_loads_our_lenet_weights_bit_exactly(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    ours = lenet5()
    save(ours.state_dict(), tmp_path / "lenet5.safetensors")
    theirs = torch_lenet()
    result = theirs.load_state_dict(load_file(tmp_path / "lenet5.safetensors"), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for name, param in ours.named_parameters():
        tensor = theirs.state_dict()[name]
        assert tensor.dtype == torch.float32
        assert tensor.numpy().tobytes() == param.data.tobytes(), name
    with torch.no_grad():
        expected = theirs(torch.from_numpy(digits())).numpy()
    np.testing.assert_allclose(ours(Tensor(digits())).data, expected, rtol=1e-5, atol=1e-6)


def test_we_load_a_lenet_file_written_by_pytorch_bit_exactly(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    theirs = torch_lenet()
    save_file(theirs.state_dict(), tmp_path / "torch_lenet.safetensors", metadata={"format": "pt"})
    ours = lenet5()
    ours.load_state_dict(load(tmp_path / "torch_lenet.safetensors"))
    for name, tensor in theirs.state_dict().items():
        param = dict(ours.named_parameters())[name]
        assert param.dtype == np.float32
        assert param.data.tobytes() == tensor.numpy().tobytes(), name
    with torch.no_grad():
        expected = theirs(torch.from_numpy(digits())).numpy()
    np.testing.assert_allclose(ours(Tensor(digits())).data, expected, rtol=1e-5, atol=1e-6)


def test_our_file_is_byte_identical_to_pytorchs_for_the_same_weights(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    state = lenet5().state_dict()
    save(state, tmp_path / "ours.safetensors")
    save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, tmp_path / "theirs.safetensors")
    assert (tmp_path / "ours.safetensors").read_bytes() == (tmp_path / "theirs.safetensors").read_bytes()


def test_pytorch_dtypes_round_trip_through_both_frameworks(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    original = {name: value for name, value in arrays().items() if isinstance(value, np.ndarray)}
    save(original, tmp_path / "ours.safetensors")
    in_torch = load_file(tmp_path / "ours.safetensors")
    save_file(in_torch, tmp_path / "theirs.safetensors")
    back = load(tmp_path / "theirs.safetensors")
    for key, value in original.items():
        assert str(in_torch[key].dtype) == f"torch.{value.dtype.name}", key
        assert bits(back[key]) == bits(value), key


def test_a_bfloat16_file_from_pytorch_is_refused_with_the_remedy(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    save_file({"w": torch.ones(3, dtype=torch.bfloat16)}, tmp_path / "bf16.safetensors")
    with pytest.raises(CheckpointError, match=r"tensor 'w' has dtype BF16.*tensor.float\(\) in PyTorch"):
        load(tmp_path / "bf16.safetensors")


def test_the_interop_docs_examples_run_and_move_lenet_both_ways(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/interop.md's code blocks of the saving and safetensors sections, run in order in one namespace."""
    torch = pytest.importorskip("torch")
    text = (Path(__file__).resolve().parent.parent / "docs" / "interop.md").read_text()
    sections = [section for section in re.split(r"\n(?=## )", text)
                if section.startswith(("## Saving and loading", "## safetensors"))]
    blocks = [block for section in sections for block in re.findall(r"```python\n(.*?)```", section, re.S)]
    assert len(blocks) == 5
    monkeypatch.chdir(tmp_path)
    scope: dict[str, Any] = {}
    for block in blocks:
        exec(compile(block, "docs/interop.md", "exec"), scope)
    theirs = {k: v.numpy() for k, v in scope["lenet"].state_dict().items()}
    assert {k: v.tobytes() for k, v in scope["model"].state_dict().items()} == {k: v.tobytes() for k, v in
                                                                               theirs.items()}
    assert sorted(os.listdir(tmp_path)) == ["from_torch.safetensors", "lenet5.safetensors", "model.pt"]
    assert isinstance(scope["lenet"], torch.nn.Module)


def test_a_torch_batchnorm_state_dict_keeps_its_0d_counter_and_dtypes(tmp_path: Path) -> None:
    """BatchNorm's num_batches_tracked is a 0-d int64 tensor: it must not come back with shape (1,)."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    bn = torch.nn.BatchNorm2d(3)
    bn(torch.randn(4, 3, 2, 2))  # one training step updates the running statistics and the counter
    save_file(bn.state_dict(), tmp_path / "bn.safetensors")
    loaded = load(tmp_path / "bn.safetensors")
    for name, tensor in bn.state_dict().items():
        assert loaded[name].shape == tuple(tensor.shape) and str(tensor.dtype) == f"torch.{loaded[name].dtype}", name
        assert loaded[name].tobytes() == tensor.numpy().tobytes(), name
    save(loaded, tmp_path / "ours.safetensors")
    back = load_file(tmp_path / "ours.safetensors")
    assert back["num_batches_tracked"].shape == () and back["num_batches_tracked"].item() == 1
    torch.nn.BatchNorm2d(3).load_state_dict(back)
