"""Tests for tinygrad_cnn.serialization: round trips, refusing pickles, detecting truncation and tampering,
and atomic writes (simulated failures and a process killed mid-save)."""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinygrad_cnn
from tinygrad_cnn import Tensor
from tinygrad_cnn.optim import SGD
from tinygrad_cnn.serialization import META, CheckpointError, load, save


def state_dict() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "conv.weight": Tensor(rng.standard_normal((4, 1, 3, 3)).astype(np.float32)),
        "conv.bias": rng.standard_normal(4).astype(np.float32),
        "fc.weight": rng.standard_normal((3, 5)),
        "steps": np.arange(-3, 3, dtype=np.int64),
        "mask": np.array([True, False, True]),
        "pixels": np.array([[0, 255]], dtype=np.uint8),
        "half": np.array([1.5, -2.25], dtype=np.float16),
        "big_endian": np.array([1.0, 2.0], dtype=">f8"),
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "fortran": np.asfortranarray(rng.standard_normal((3, 4))),
        "strided": rng.standard_normal((4, 6))[:, ::2],
    }


def as_array(value: Any) -> np.ndarray:
    return value.data if isinstance(value, Tensor) else value


def assert_same_arrays(loaded: dict[str, Any], original: dict[str, Any]) -> None:
    assert list(loaded) == list(original)
    for key, value in original.items():
        expected = as_array(value)
        assert isinstance(loaded[key], np.ndarray), key
        assert loaded[key].dtype == expected.dtype and loaded[key].shape == expected.shape, key
        np.testing.assert_array_equal(loaded[key], expected)


def test_state_dict_round_trip_keeps_dtypes_shapes_and_values(tmp_path: Path) -> None:
    sd = state_dict()
    save(sd, tmp_path / "model.npz")
    assert_same_arrays(load(tmp_path / "model.npz"), sd)


def test_nested_checkpoint_round_trip_keeps_plain_value_types(tmp_path: Path) -> None:
    rng_state = np.random.default_rng(123).bit_generator.state  # PCG64: 128-bit ints
    checkpoint = {
        "model": state_dict(),
        "epoch": 3, "lr": 0.1, "name": "lenet ✓ / ünïcode", "done": False, "best": None,
        "huge": 2**127 + 1, "negative_huge": -(2**100), "tiny": 5e-324, "negative_zero": -0.0,
        "inf": math.inf, "history": [0.5, 0.25, [1, "a", None, True]], "pair": (1, 2),
        "numpy_scalars": {"f": np.float32(0.5), "i": np.int64(7), "b": np.bool_(True)},
        "rng": rng_state, "empty": {},
    }
    path = tmp_path / "checkpoint.npz"
    save(checkpoint, path)
    loaded = load(path)

    assert_same_arrays(loaded["model"], checkpoint["model"])
    expected = {k: v for k, v in checkpoint.items() if k not in ("model", "pair", "numpy_scalars")}
    assert {k: loaded[k] for k in expected} == expected
    for key, kind in [("epoch", int), ("lr", float), ("name", str), ("done", bool), ("huge", int), ("tiny", float)]:
        assert type(loaded[key]) is kind, key
    assert math.copysign(1.0, loaded["negative_zero"]) == -1.0
    assert loaded["pair"] == [1, 2]
    assert loaded["numpy_scalars"] == {"f": 0.5, "i": 7, "b": True}
    assert [type(v) for v in loaded["numpy_scalars"].values()] == [float, int, bool]
    restored = np.random.default_rng()
    restored.bit_generator.state = loaded["rng"]
    np.testing.assert_array_equal(restored.random(5), np.random.default_rng(123).random(5))


def test_lists_of_plain_dicts_round_trip(tmp_path: Path) -> None:
    history = [{"epoch": 1, "loss": 0.5, "tags": ["warmup"]}, {"epoch": 2, "loss": 0.25, "best": {"acc": 0.99}}]
    save({"history": history}, tmp_path / "c.pt")
    assert load(tmp_path / "c.pt") == {"history": history}


def test_nan_survives(tmp_path: Path) -> None:
    save({"loss": math.nan, "values": [math.nan]}, tmp_path / "c.npz")
    loaded = load(tmp_path / "c.npz")
    assert math.isnan(loaded["loss"]) and math.isnan(loaded["values"][0])


def test_file_is_a_plain_npz_with_entries_named_by_key_path(tmp_path: Path) -> None:
    save({"model": {"fc.weight": np.ones(2)}, "epoch": 1}, tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == [META, "model/fc.weight"]
        assert npz[META].dtype.kind == "U"


def test_the_exact_path_is_used_and_an_old_file_replaced(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint"  # np.savez would write checkpoint.npz
    save({"v": 1}, str(path))
    save({"v": 2}, path)
    assert os.listdir(tmp_path) == ["checkpoint"]
    assert load(path) == {"v": 2}


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_saved_file_gets_the_usual_permissions_not_the_private_temp_file_mode(tmp_path: Path) -> None:
    save({"v": 1}, tmp_path / "c.npz")
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(tmp_path / "c.npz").st_mode & 0o777 == 0o666 & ~umask


def test_optimizer_resumes_bit_identically_from_a_saved_checkpoint(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    start = [rng.standard_normal((3, 2)).astype(np.float32), rng.standard_normal(2).astype(np.float32)]
    grads = [[rng.standard_normal(a.shape).astype(np.float32) for a in start] for _ in range(6)]

    def run(params: list[Tensor], opt: SGD, steps: list[list[np.ndarray]]) -> None:
        for step in steps:
            for p, g in zip(params, step):
                p.grad = Tensor(g)
            opt.step()

    straight = [Tensor(a.copy(), requires_grad=True) for a in start]
    run(straight, SGD(straight, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3), grads)

    first = [Tensor(a.copy(), requires_grad=True) for a in start]
    opt = SGD(first, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
    run(first, opt, grads[:3])
    save({"params": {str(i): p for i, p in enumerate(first)}, "optimizer": opt.state_dict(), "step": 3},
         tmp_path / "c.npz")

    checkpoint = load(tmp_path / "c.npz")
    resumed = [Tensor(checkpoint["params"][str(i)], requires_grad=True) for i in range(2)]
    fresh = SGD(resumed, lr=1.0)
    fresh.load_state_dict(checkpoint["optimizer"])
    run(resumed, fresh, grads[checkpoint["step"]:])
    for p, q in zip(resumed, straight):
        assert p.dtype == np.float32
        np.testing.assert_array_equal(p.data, q.data)


# ---- refusing what cannot be stored ---------------------------------------------------------------
@pytest.mark.parametrize(("obj", "error", "message"), [
    ({"model": {"w": object()}}, TypeError, r"save: model/w is a object; expected a Tensor"),
    ({"a": {1: np.ones(2)}}, TypeError, r"save: key 1 in a is a int; keys must be str"),
    ({"a": {"conv/w": np.ones(2)}}, ValueError, r"save: key 'conv/w' in a is empty or contains '/'"),
    ({"": 1}, ValueError, r"save: key '' in the top level is empty"),
    ({META: 1}, ValueError, r"the top-level key '__meta__' is reserved"),
    ({"history": [1.0, np.ones(2)]}, TypeError, r"save: history\[1\] is a ndarray; .*arrays go in dicts"),
    ({"tags": {"a", "b"}}, TypeError, r"save: tags is a set"),
    ({"history": [{"w": np.ones(2)}]}, TypeError, r"save: history\[0\]/w is a ndarray; .*arrays go in dicts"),
    ({"history": [{1: 0.5}]}, TypeError, r"save: key 1 in history\[0\] is a int; keys must be str"),
    ({"z": np.ones(2, dtype=complex)}, TypeError, r"save: z is an array of dtype complex128; expected bool"),
    ({"s": np.array(["a", "b"])}, TypeError, r"save: s is an array of dtype <U1"),
    ([np.ones(2)], TypeError, r"save: expected a dict .*, got list"),
], ids=["object", "int-key", "separator", "empty-key", "reserved", "array-in-list", "set", "array-in-dict-in-list",
        "int-key-in-list", "complex", "str-array", "not-a-dict"])
def test_unsupported_content_is_rejected_before_writing(tmp_path: Path, obj: Any, error: type[Exception],
                                                        message: str) -> None:
    with pytest.raises(error, match=message):
        save(obj, tmp_path / "c.npz")
    assert os.listdir(tmp_path) == []


# ---- refusing pickles, detecting damage -----------------------------------------------------------
unpickled: list[str] = []


def _record_unpickling(tag: str) -> str:
    unpickled.append(tag)
    return tag


class Payload:
    """Unpickling it runs `_record_unpickling`: a stand-in for the arbitrary code a pickle can run."""

    def __reduce__(self) -> tuple:
        return (_record_unpickling, ("payload",))


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def rewrite_entries(path: Path, change: Callable[[dict[str, bytes]], None]) -> None:
    """Rewrite the zip with edited entries; zipfile recomputes the CRCs, as a careful forger would."""
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    change(entries)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def edit_meta(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, bytes]], None]:
    def edit(entries: dict[str, bytes]) -> None:
        meta = json.loads(np.lib.format.read_array(io.BytesIO(entries[META + ".npy"])).item())
        change(meta)
        entries[META + ".npy"] = npy_bytes(np.array(json.dumps(meta)))
    return edit


def test_an_entry_holding_pickled_objects_is_refused_without_unpickling(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    save({"w": np.zeros(2)}, path)
    rewrite_entries(path, lambda e: e.update({"w.npy": npy_bytes(np.array([Payload()], dtype=object))}))
    unpickled.clear()
    with pytest.raises(CheckpointError, match=rf"{path}: entry 'w' holds pickled Python objects.*refused"):
        load(path)
    assert unpickled == []


def test_a_pickle_file_is_refused_without_unpickling(tmp_path: Path) -> None:
    path = tmp_path / "c.pkl"
    path.write_bytes(pickle.dumps({"w": Payload()}))
    unpickled.clear()
    with pytest.raises(CheckpointError, match=rf"load: {path} holds pickled Python objects .*refused"):
        load(path)
    assert unpickled == []


@pytest.mark.parametrize("keep", [0.5, 0.9, -1, 100, 3, 0])
def test_a_truncated_file_gives_a_clear_error_naming_it(tmp_path: Path, keep: float) -> None:
    path = tmp_path / "c.npz"
    save(state_dict(), path)
    data = path.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep if keep >= 0 else len(data) + keep
    path.write_bytes(data[:cut])
    with pytest.raises(CheckpointError, match=rf"load: {path}"):
        load(path)


def test_a_flipped_byte_in_array_data_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    sd = state_dict()
    save(sd, path)
    data = bytearray(path.read_bytes())
    offset = data.find(sd["fc.weight"].tobytes())
    assert offset > 0
    data[offset + 17] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=rf"load: {path}"):
        load(path)


def test_modified_array_data_with_a_valid_zip_fails_the_sha256_check(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    sd = state_dict()
    save(sd, path)
    forged = sd["fc.weight"].copy()
    forged[0, 0] += 1.0
    rewrite_entries(path, lambda e: e.update({"fc.weight.npy": npy_bytes(forged)}))
    with pytest.raises(CheckpointError, match=rf"{path}: entry 'fc.weight' fails its SHA-256 check"):
        load(path)


@pytest.mark.parametrize(("change", "message"), [
    (edit_meta(lambda m: m["tree"]["dict"]["w"]["array"].update(shape=[3])),
     r"entry 'w' has dtype <f8 and shape \[2\], the metadata records <f8 and \[3\]"),
    (edit_meta(lambda m: m["tree"]["dict"].update(w={"pickle": 1})), r"malformed metadata at w"),
    (edit_meta(lambda m: m.update(version=99)), r"expected format 'tinygrad_cnn.checkpoint' version 1"),
    (edit_meta(lambda m: m["tree"]["dict"].update(v={"array": {}})), r"the array entry 'v' listed in the metadata "
                                                                      r"is missing"),
    (lambda e: e.update({"extra.npy": npy_bytes(np.ones(1))}), r"entries its metadata does not describe: \['extra'\]"),
    (lambda e: e.update({"w.npy": b"not an npy"}), r"entry 'w' is not an .npy array"),
    (lambda e: e.pop(META + ".npy"), r"has no '__meta__' entry"),
    (lambda e: e.update({META + ".npy": npy_bytes(np.array("{not json"))}), r"the '__meta__' entry is not valid JSON"),
], ids=["shape", "node", "version", "missing", "extra", "raw-bytes", "no-meta", "bad-json"])
def test_inconsistent_files_are_rejected(tmp_path: Path, change: Callable[[dict[str, bytes]], None],
                                         message: str) -> None:
    path = tmp_path / "c.npz"
    save({"w": np.zeros(2), "v": 1}, path)
    rewrite_entries(path, change)
    with pytest.raises(CheckpointError, match=rf"load: {path}.*{message}"):
        load(path)


def test_other_files_are_not_checkpoints(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.ones(2))
    with pytest.raises(CheckpointError, match=r"holds a single .npy array, not an .npz checkpoint"):
        load(tmp_path / "a.npy")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"is not a readable checkpoint"):
        load(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")


# ---- atomic writes ---------------------------------------------------------------------------------
def _failing_on_call(real: Callable, failing_call: int) -> Callable:
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == failing_call:
            raise OSError("simulated failure mid-save")
        return real(*args, **kwargs)
    return wrapper


@pytest.mark.parametrize(("module", "name", "failing_call"), [
    (np.lib.format, "write_array", 2),  # the metadata entry is written, the first array is not
    (os, "fsync", 1),
    (os, "replace", 1),
], ids=["write", "fsync", "replace"])
def test_a_failure_during_save_keeps_the_old_file_and_leaves_no_temp_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: Any, name: str, failing_call: int) -> None:
    path = tmp_path / "c.npz"
    old = state_dict()
    save(old, path)
    monkeypatch.setattr(module, name, _failing_on_call(getattr(module, name), failing_call))
    with pytest.raises(OSError, match="simulated failure mid-save"):
        save({"w": np.ones(3), "epoch": 4}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["c.npz"]
    assert_same_arrays(load(path), old)


_SAVE_FOREVER = textwrap.dedent("""
    import sys
    import numpy as np
    from tinygrad_cnn.serialization import save
    big = np.empty(1_000_000)  # 8 MB: most of the loop is spent writing
    i = 0
    while True:
        i += 1
        big.fill(i)
        save({"i": i, "big": big}, sys.argv[1])
        if i == 1:
            print("saved", flush=True)
""")


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_process_killed_mid_save_leaves_a_loadable_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    save({"i": 0, "big": np.zeros(10)}, path)
    rng = np.random.default_rng(0)
    for _ in range(12):
        child = subprocess.Popen([sys.executable, "-c", _SAVE_FOREVER, str(path)], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline() == "saved\n"
            time.sleep(rng.uniform(0.0, 0.3))
        finally:
            child.kill()  # SIGKILL: no cleanup handlers run
            child.wait()
            child.stdout.close()
        checkpoint = load(path)
        assert checkpoint["i"] >= 1
        np.testing.assert_array_equal(checkpoint["big"], np.full(1_000_000, checkpoint["i"], dtype=np.float64))
        kills_while_writing = len(os.listdir(tmp_path)) - 1  # each leaves its temp file behind
        if kills_while_writing >= 2:
            break
    assert kills_while_writing >= 1, "no kill landed while a temp file was being written: the test proved nothing"


# ---- the torch.save / torch.load habits --------------------------------------------------------------
@pytest.mark.parametrize("name", ["model.pt", "model.pth", "weights.bin", "checkpoint", "dots.in.name.ckpt"])
def test_any_file_name_is_written_exactly_and_read_back(tmp_path: Path, name: str) -> None:
    from tinygrad_cnn.models import lenet5

    model = lenet5()
    save(model.state_dict(), tmp_path / name)
    assert os.listdir(tmp_path) == [name]
    with np.load(tmp_path / name, allow_pickle=False) as npz:  # still the pickle-free .npz inside
        assert "conv1.weight" in npz.files
    fresh = lenet5()
    fresh.load_state_dict(load(str(tmp_path / name)))
    for (key, p), q in zip(model.named_parameters(), fresh.parameters()):
        np.testing.assert_array_equal(q.data, p.data, err_msg=key)


def test_tensors_and_parameters_are_saved_as_arrays_that_load_state_dict_accepts(tmp_path: Path) -> None:
    from tinygrad_cnn import nn

    model = nn.Linear(3, 2)
    state = {name: p for name, p in model.named_parameters()}  # Parameters, as torch's state_dict holds tensors
    assert all(isinstance(p, nn.Parameter) for p in state.values())
    save(state, tmp_path / "linear.pt")
    loaded = load(tmp_path / "linear.pt")
    assert all(type(v) is np.ndarray for v in loaded.values())
    other = nn.Linear(3, 2)
    other.load_state_dict(loaded)
    np.testing.assert_array_equal(other.weight.data, model.weight.data)
    np.testing.assert_array_equal(other.bias.data, model.bias.data)


class _CPU:
    """A device object as torch.device('cpu') is: its str is the device's name."""

    def __str__(self) -> str:
        return "cpu"


@pytest.mark.parametrize("kwargs", [{}, {"map_location": None}, {"map_location": "cpu"}, {"map_location": "cpu:0"},
                                    {"map_location": _CPU()}, {"map_location": tinygrad_cnn.device("cpu")},
                                    {"weights_only": True}, {"weights_only": False},
                                    {"map_location": "cpu", "weights_only": True}])
def test_torch_load_keyword_arguments_are_accepted(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    save({"w": np.ones(2)}, tmp_path / "m.pt")
    np.testing.assert_array_equal(load(tmp_path / "m.pt", **kwargs)["w"], np.ones(2))


def test_map_location_is_the_second_positional_argument_as_in_torch(tmp_path: Path) -> None:
    save({"w": np.ones(2)}, tmp_path / "m.pt")
    np.testing.assert_array_equal(load(tmp_path / "m.pt", "cpu")["w"], np.ones(2))
    with pytest.raises(ValueError, match=r"map_location='cuda'"):
        load(tmp_path / "m.pt", "cuda")


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"map_location": "cuda:0"}, ValueError, r"load: map_location='cuda:0': tinygrad_cnn keeps every array on the "
                                             r"CPU; pass map_location='cpu' or None"),
    ({"map_location": "mps"}, ValueError, r"map_location='mps'"),
    ({"map_location": "cpux"}, ValueError, r"map_location='cpux'"),
    ({"map_location": {"cuda:0": "cpu"}}, ValueError, r"map_location=\{'cuda:0': 'cpu'\}"),
    ({"map_location": lambda storage, loc: storage}, ValueError, r"map_location=<function"),
    ({"weights_only": "yes"}, TypeError, r"load: weights_only must be None, True or False, got 'yes'"),
], ids=["cuda", "mps", "cpux", "dict", "callable", "weights_only-str"])
def test_other_devices_and_odd_arguments_are_refused_clearly(tmp_path: Path, kwargs: dict[str, Any],
                                                             error: type[Exception], message: str) -> None:
    save({"w": np.ones(2)}, tmp_path / "m.pt")
    with pytest.raises(error, match=message):
        load(tmp_path / "m.pt", **kwargs)


def test_torch_devices_are_understood(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    save({"w": np.ones(2)}, tmp_path / "m.pt")
    np.testing.assert_array_equal(load(tmp_path / "m.pt", map_location=torch.device("cpu"))["w"], np.ones(2))
    with pytest.raises(ValueError, match=r"map_location=device\(type='meta'\)"):
        load(tmp_path / "m.pt", map_location=torch.device("meta"))


def test_a_torch_save_file_is_refused_without_unpickling(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2)}, tmp_path / "torch.pt")  # a zip holding data.pkl
    with pytest.raises(CheckpointError, match=r"torch.pt holds pickled Python objects \('[^']*data.pkl': a file "
                                              r"written by torch.save\?\); refused.*safetensors.torch.save_file"):
        load(tmp_path / "torch.pt")


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_saving_a_whole_model_asks_for_its_state_dict(tmp_path: Path, suffix: str) -> None:
    from tinygrad_cnn.models import lenet5

    with pytest.raises(TypeError, match=r"save: got a Sequential; save its state_dict\(\) and restore it with "
                                        r"load_state_dict\(\) \(a whole object cannot be saved without pickle\)"):
        save(lenet5(), tmp_path / f"model{suffix}")
    assert os.listdir(tmp_path) == []


def test_saving_over_a_directory_fails_and_leaves_it_alone(tmp_path: Path) -> None:
    (tmp_path / "model.pt").mkdir()
    (tmp_path / "model.pt" / "keep").write_text("x")
    with pytest.raises(OSError):
        save({"w": np.ones(2)}, tmp_path / "model.pt")
    assert os.listdir(tmp_path) == ["model.pt"] and (tmp_path / "model.pt" / "keep").read_text() == "x"
