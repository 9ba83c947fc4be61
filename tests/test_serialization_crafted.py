"""Crafted and damaged checkpoint files: every one must raise CheckpointError with a message that names the file
and the problem, before allocating what the file declares and without unpickling anything.

The files are built byte by byte here (zip entries, .npy headers, metadata JSON), the way an attacker or a
broken disk would produce them, not by the code under test.
"""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinygrad_cnn import serialization
from tinygrad_cnn.serialization import META, CheckpointError, load, save
from tinygrad_cnn.serialization import npz as npz_format

F8_DIGEST = "0" * 64  # a SHA-256 that no array has: files that reach the digest check fail it


# ---- building files by hand ---------------------------------------------------------------------------
def npy(descr: str = "<f8", shape: Any = (2,), data: bytes = b"\0" * 16, *, fortran: Any = False,
        version: int = 1, header: str | None = None, header_length: int | None = None) -> bytes:
    """An .npy entry: magic, version, header length, header dict (padded as numpy pads it), data."""
    text = header if header is not None else (
        f"{{'descr': {descr!r}, 'fortran_order': {fortran!r}, 'shape': {shape!r}, }}")
    length_format = "<H" if version == 1 else "<I"
    prefix = 6 + 2 + struct.calcsize(length_format)
    text += " " * (-(prefix + len(text) + 1) % 64) + "\n"
    length = len(text) if header_length is None else header_length
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(length_format, length) + text.encode("latin1") + data


def meta_entry(tree: Any, **extra: Any) -> bytes:
    meta = {"format": "tinygrad_cnn.checkpoint", "version": 1, "tree": tree, **extra}
    return npy_of_text(json.dumps(meta))


def npy_of_text(text: str) -> bytes:
    """What np.save writes for np.array(text): a 0-d little-endian UTF-32 string."""
    data = text.encode("utf-32-le")
    return npy(f"<U{max(len(text), 1)}", (), data or b"\0" * 4)


def array_node(dtype: str = "<f8", shape: list[int] | None = None, sha256: str = F8_DIGEST) -> dict[str, Any]:
    return {"array": {"dtype": dtype, "shape": [2] if shape is None else shape, "sha256": sha256}}


def zip_bytes(entries: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": some crafted files repeat an entry on purpose
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def checkpoint_with(entry: bytes, node: dict[str, Any] | None = None) -> bytes:
    """A checkpoint whose metadata lists one array "w", stored as `entry`."""
    return zip_bytes([(META + ".npy", meta_entry({"dict": {"w": node or array_node()}})), ("w.npy", entry)])


def patch_sizes(data: bytes, name: str, *, compressed: int | None = None, uncompressed: int | None = None) -> bytes:
    """Overwrite the sizes an entry declares, in its local header and in the central directory (non-zip64)."""
    out = bytearray(data)
    for signature, offsets in ((b"PK\x03\x04", (18, 22, 26, 30)), (b"PK\x01\x02", (20, 24, 28, 46))):
        start = 0
        while (start := out.find(signature, start)) >= 0:
            compressed_at, uncompressed_at, name_length_at, name_at = (start + o for o in offsets)
            (name_length,) = struct.unpack_from("<H", out, name_length_at)
            if out[name_at:name_at + name_length] == name.encode():
                if compressed is not None:
                    struct.pack_into("<I", out, compressed_at, compressed)
                if uncompressed is not None:
                    struct.pack_into("<I", out, uncompressed_at, uncompressed)
            start += 4
    return bytes(out)


def set_flag(data: bytes, flag: int) -> bytes:
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (start := out.find(signature, start)) >= 0:
            struct.pack_into("<H", out, start + offset, struct.unpack_from("<H", out, start + offset)[0] | flag)
            start += 4
    return bytes(out)


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def valid_checkpoint() -> bytes:
    buffer = io.BytesIO()
    npz_format._write_npz(buffer, *_meta_and_arrays({"w": np.arange(6.0).reshape(2, 3), "epoch": 3}))
    return buffer.getvalue()


def _meta_and_arrays(obj: dict[str, Any]) -> tuple[str, dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    tree = npz_format._encode(obj, (), arrays)
    return json.dumps({"format": "tinygrad_cnn.checkpoint", "version": 1, "tree": tree}), arrays


# ---- the cases -----------------------------------------------------------------------------------------
CASES: list[Any] = [
    # the two of the issue: a ~200-byte file that made numpy allocate 8 PB, metadata that overflowed the stack
    pytest.param(lambda: checkpoint_with(npy(shape=(10**15,), data=b"\0" * 8)),
                 r"entry 'w' declares shape \(1000000000000000,\) of dtype <f8 \(8000000000000000 bytes\), but holds "
                 r"8 bytes", id="shape-1e15"),
    pytest.param(lambda: zip_bytes([(META + ".npy", npy_of_text(deep_json(100_000)))]),
                 r"metadata nested 100000 levels deep, more than the limit of 100", id="meta-100000-deep"),
    pytest.param(lambda: zip_bytes([(META + ".npy", npy_of_text('{"a": ' * 5000 + "1" + "}" * 5000))]),
                 r"metadata nested 5000 levels deep", id="meta-deep-objects"),
    pytest.param(lambda: zip_bytes([(META + ".npy", npy_of_text('["\\"[[[", ' + deep_json(200) + "]"))]),
                 r"metadata nested 201 levels deep", id="meta-deep-after-escaped-quote"),
    # the zip container
    pytest.param(lambda: b"GIF89a" + bytes(100), r"starts with b'GIF89a', not with the zip signature",
                 id="wrong-magic"),
    pytest.param(lambda: b"", r"the file is empty", id="empty-file"),
    pytest.param(lambda: b"PK\x03\x04" + bytes(40), r"not a readable checkpoint \(truncated or corrupted\?\)",
                 id="zip-signature-then-zeros"),
    pytest.param(lambda: valid_checkpoint()[:-30], r"not a readable checkpoint \(truncated or corrupted\?\)",
                 id="truncated-directory"),
    pytest.param(lambda: zip_bytes([]), r"has no '__meta__' entry", id="empty-zip"),
    pytest.param(lambda: zip_bytes([(META + ".npy", meta_entry({"dict": {}})), (META + ".npy", npy_of_text("{}"))]),
                 r"the zip holds two entries named '__meta__.npy'", id="duplicate-meta"),
    pytest.param(lambda: zip_bytes([(META + ".npy", meta_entry({"dict": {"w": array_node()}})),
                                    ("w.npy", npy()), ("w.npy", npy(data=b"\1" * 16))]),
                 r"the zip holds two entries named 'w.npy'", id="duplicate-array"),
    pytest.param(lambda: zip_bytes([(META + ".npy", meta_entry({"dict": {}})), ("notes.txt", b"hi")]),
                 r"entry 'notes.txt' is not an .npy array", id="entry-not-npy"),
    pytest.param(lambda: zip_bytes([("archive/data.pkl", b"\x80\x02}q\x00.")]),
                 r"holds pickled Python objects \('archive/data.pkl': a file written by torch.save\?\); refused",
                 id="torch-save-pickle"),
    pytest.param(lambda: set_flag(checkpoint_with(npy()), 0x1), r"entry '__meta__.npy' is encrypted", id="encrypted"),
    pytest.param(lambda: zip_bytes([(META + ".npy", meta_entry({"dict": {}}))], zipfile.ZIP_BZIP2),
                 r"uses zip compression method 12; only stored .* and deflated entries are read", id="bzip2"),
    pytest.param(lambda: patch_sizes(zip_bytes([(META + ".npy", meta_entry({"dict": {}}))], zipfile.ZIP_DEFLATED),
                                     META + ".npy", uncompressed=2**32 - 1),
                 r"claims to inflate \d+ bytes to 4294967295, beyond deflate's maximum ratio", id="zip-bomb-ratio"),
    pytest.param(lambda: patch_sizes(checkpoint_with(npy()), "w.npy", compressed=2**31, uncompressed=2**31),
                 r"its entries claim \d+ bytes, more than the file's \d+", id="sizes-beyond-the-file"),
    pytest.param(lambda: patch_sizes(checkpoint_with(npy()), "w.npy", uncompressed=10**9),
                 r"stored entry 'w.npy' declares 1000000000 bytes but occupies \d+", id="stored-size-mismatch"),
    # the .npy header
    pytest.param(lambda: checkpoint_with(npy(header_length=65535)),
                 r"entry 'w' declares an .npy header of 65535 bytes, more than the limit of 10000", id="huge-header"),
    pytest.param(lambda: checkpoint_with(npy(version=2, header_length=2**31)),
                 r"entry 'w' declares an .npy header of 2147483648 bytes", id="huge-header-v2"),
    pytest.param(lambda: checkpoint_with(b"\x93NUMPY\x01\x00\x50"), r"entry 'w' is truncated inside its .npy header",
                 id="truncated-header"),
    pytest.param(lambda: checkpoint_with(npy(version=9)), r"unknown .npy format version \(9, 0\)", id="npy-version"),
    pytest.param(lambda: checkpoint_with(npy(descr="|O")), r"entry 'w' holds pickled Python objects.*refused",
                 id="object-dtype"),
    pytest.param(lambda: checkpoint_with(npy(header="{'descr': [('a', '<f8')], 'fortran_order': False, "
                                                    "'shape': (1,), }")),
                 r"structured dtype", id="structured-dtype"),
    pytest.param(lambda: checkpoint_with(npy(descr="<c16", data=b"\0" * 32)),
                 r"entry 'w' has dtype <c16; checkpoints hold bool, integer or floating-point", id="complex-dtype"),
    pytest.param(lambda: checkpoint_with(npy(descr="<U2")), r"entry 'w' has dtype <U2", id="unicode-array"),
    pytest.param(lambda: checkpoint_with(npy(descr="<q99")), r"entry 'w' declares the unknown dtype '<q99'",
                 id="unknown-dtype"),
    pytest.param(lambda: checkpoint_with(npy(descr="|V0", shape=(10**15,), data=b"")),
                 r"declares the dtype '\|V0', whose elements have no size", id="zero-size-dtype"),
    pytest.param(lambda: checkpoint_with(npy(shape=(-1,))), r"declares the shape \(-1,\), not a tuple of sizes >= 0",
                 id="negative-shape"),
    pytest.param(lambda: checkpoint_with(npy(shape=(2**62, 2**62))),
                 r"declares shape \(4611686018427387904, 4611686018427387904\) of dtype <f8", id="absurd-shape"),
    pytest.param(lambda: checkpoint_with(npy(shape=(True, 2))), r"not a tuple of sizes >= 0", id="bool-in-shape"),
    pytest.param(lambda: checkpoint_with(npy(shape=[2])), r"declares the shape \[2\], not a tuple", id="list-shape"),
    pytest.param(lambda: checkpoint_with(npy(fortran="yes")), r"declares fortran_order 'yes', not a bool",
                 id="fortran-not-bool"),
    pytest.param(lambda: checkpoint_with(npy(header="__import__('os').system('echo pwned')")),
                 r"entry 'w' has an unreadable .npy header", id="header-code"),
    pytest.param(lambda: checkpoint_with(npy(header="-" * 9000 + "1")), r"entry 'w' has an unreadable .npy header",
                 id="header-parser-overflow"),
    pytest.param(lambda: checkpoint_with(npy(header="{'descr': '<f8', 'shape': (2,)}")),
                 r"an .npy header that is not the dict of 'descr', 'fortran_order' and 'shape'", id="header-keys"),
    pytest.param(lambda: checkpoint_with(npy(data=b"\0" * 8)),
                 r"declares shape \(2,\) of dtype <f8 \(16 bytes\), but holds 8 bytes", id="short-data"),
    pytest.param(lambda: checkpoint_with(npy(data=b"\0" * 24)), r"but holds 24 bytes", id="long-data"),
    pytest.param(lambda: checkpoint_with(b"not an npy"), r"entry 'w' is not an .npy array", id="raw-bytes"),
    # the metadata
    pytest.param(lambda: zip_bytes([(META + ".npy", npy("|S4", (), b"\xff\xfe{}"))]),
                 r"the '__meta__' entry is a \|S4 array of shape \(\), expected a 0-d unicode array", id="meta-bytes"),
    pytest.param(lambda: zip_bytes([(META + ".npy", npy("<U1", (), struct.pack("<I", 0x110000)))]),
                 r"the '__meta__' entry is not valid text", id="meta-invalid-code-point"),
    pytest.param(lambda: zip_bytes([(META + ".npy", npy("<U1", (), struct.pack("<I", 0xD800)))]),
                 r"the '__meta__' entry is not valid text", id="meta-surrogate"),
    pytest.param(lambda: zip_bytes([(META + ".npy", npy("<U2", (2,), bytes(16)))]),
                 r"the '__meta__' entry is a <U2 array of shape \(2,\)", id="meta-not-0d"),
    pytest.param(lambda: zip_bytes([(META + ".npy", npy(f"<U{10**8}", (), b"{}"))]),
                 r"entry '__meta__' declares shape \(\) of dtype <U100000000 \(400000000 bytes\), but holds 2",
                 id="meta-declares-400MB"),
    pytest.param(lambda: zip_bytes([(META + ".npy", npy_of_text("{not json"))]), r"is not valid JSON",
                 id="meta-not-json"),
    pytest.param(lambda: zip_bytes([(META + ".npy", npy_of_text("[1, 2]"))]),
                 r"has metadata \[1, 2\], expected format 'tinygrad_cnn.checkpoint' version 1", id="meta-a-list"),
    pytest.param(lambda: zip_bytes([(META + ".npy", meta_entry({"dict": {}}, version=2))]),
                 r"expected format 'tinygrad_cnn.checkpoint' version 1", id="meta-version"),
    pytest.param(lambda: zip_bytes([(META + ".npy", npy_of_text(
        '{"format": "tinygrad_cnn.checkpoint", "version": 1, "tree": {"dict": {}}, "tree": {"value": 1}}'))]),
                 r"a JSON object in the metadata repeats the keys \['tree'\]", id="meta-duplicate-keys"),
    pytest.param(lambda: zip_bytes([(META + ".npy", meta_entry({"dict": {"w": array_node()}}))]),
                 r"the array entry 'w' listed in the metadata is missing", id="meta-missing-array"),
    pytest.param(lambda: zip_bytes([(META + ".npy", meta_entry({"dict": {META: array_node()}}))]),
                 r"the array entry '__meta__' listed in the metadata is missing", id="meta-array-is-meta"),
    pytest.param(lambda: zip_bytes([(META + ".npy", meta_entry({"dict": {"a/b": {"value": 1}}}))]),
                 r"key 'a/b' in the top level is empty or contains '/'", id="meta-key-with-separator"),
    pytest.param(lambda: zip_bytes([(META + ".npy", meta_entry({"value": 1}))]),
                 r"the top level of the checkpoint is not a dict", id="meta-root-not-dict"),
    pytest.param(lambda: zip_bytes([(META + ".npy", meta_entry({"dict": {"w": {"tuple": [1]}}}))]),
                 r"malformed metadata at w", id="meta-unknown-node"),
    pytest.param(lambda: checkpoint_with(npy(), array_node(shape=[3])),
                 r"entry 'w' has dtype <f8 and shape \[2\], the metadata records <f8 and \[3\]", id="meta-shape"),
    pytest.param(lambda: checkpoint_with(npy()), r"entry 'w' fails its SHA-256 check", id="digest"),
    pytest.param(lambda: zip_bytes([(META + ".npy", meta_entry({"dict": {}})), ("x.npy", npy())]),
                 r"has entries its metadata does not describe: \['x'\]", id="unlisted-entry"),
]


@pytest.mark.parametrize(("make", "message"), CASES)
def test_a_crafted_file_raises_checkpoint_error_naming_file_and_problem(tmp_path: Path, make: Callable[[], bytes],
                                                                        message: str) -> None:
    path = tmp_path / "crafted.npz"
    path.write_bytes(make())
    with pytest.raises(CheckpointError, match=rf"^load: {path}\b.*{message}"):
        load(path)


def test_the_two_crafted_files_of_the_issue_are_small() -> None:
    """The file that asked numpy for 8 PB is about 200 bytes of array entry; the deep metadata 200 kB."""
    assert len(npy(shape=(10**15,), data=b"\0" * 8)) <= 200
    assert len(npy_of_text(deep_json(100_000))) < 1_000_000


# ---- what is legitimate still loads ---------------------------------------------------------------------
def test_a_deflated_checkpoint_loads_even_at_deflates_highest_ratio(tmp_path: Path) -> None:
    """np.savez_compressed-style entries are read; 8 MB of zeros deflate about 1000-fold, within the bound."""
    path = tmp_path / "c.npz"
    zeros, weights = np.zeros(1_000_000), np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    save({"zeros": zeros, "w": weights, "epoch": 2}, path)
    with zipfile.ZipFile(path) as archive:
        entries = [(name, archive.read(name)) for name in archive.namelist()]
    path.write_bytes(zip_bytes(entries, zipfile.ZIP_DEFLATED))
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("zeros.npy")
        assert info.file_size > 900 * info.compress_size  # the case the ratio bound must not refuse
    loaded = load(path)
    np.testing.assert_array_equal(loaded["zeros"], zeros)
    np.testing.assert_array_equal(loaded["w"], weights)
    assert loaded["epoch"] == 2


def test_whatever_save_accepts_load_reads_and_deeper_nesting_is_refused_at_save(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    for depth in range(1, 200):
        obj: dict[str, Any] = {"leaf": np.ones(1), "list": [[1]]}
        for _ in range(depth):
            obj = {"d": obj}
        try:
            save(obj, path)
        except ValueError as e:
            assert "too large to be read back" in str(e) or "nests dicts more than" in str(e)
            assert depth > 10  # checkpoints of ordinary depth are never refused
            break
        loaded = load(path)
        for _ in range(depth):
            loaded = loaded["d"]
        assert loaded["list"] == [[1]] and loaded["leaf"].tolist() == [1.0]
    else:
        pytest.fail("no depth was refused")


def test_metadata_over_the_size_limit_is_refused_at_save_and_at_load(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.npz"
    save({"notes": "x" * 5000}, path)
    monkeypatch.setattr(npz_format, "MAX_META_CHARS", 1000)
    with pytest.raises(CheckpointError, match=r"the '__meta__' entry declares \d+ characters, more than the limit "
                                              r"of 1000"):
        load(path)
    with pytest.raises(ValueError, match=r"save: .*too large to be read back: \d+ characters of metadata"):
        save({"notes": "x" * 5000}, tmp_path / "d.npz")
    assert not (tmp_path / "d.npz").exists()


def test_a_dict_that_contains_itself_is_refused_at_save(tmp_path: Path) -> None:
    loop: dict[str, Any] = {"w": np.ones(1)}
    loop["self"] = loop
    with pytest.raises(ValueError, match=r"nests dicts more than \d+ deep \(does a dict contain itself\?\)"):
        save(loop, tmp_path / "c.npz")
    cycle: list[Any] = [1]
    cycle.append(cycle)
    with pytest.raises(ValueError, match=r"nests lists more than \d+ deep \(does a list contain itself\?\)"):
        save({"history": cycle}, tmp_path / "c.npz")
    assert os.listdir(tmp_path) == []


# ---- every damage to a real file: CheckpointError or the same data, never anything else -------------------
def _load_or_error(path: Path, data: bytes) -> dict[str, Any] | None:
    path.write_bytes(data)
    try:
        return load(path)
    except CheckpointError:
        return None


def _assert_same(loaded: dict[str, Any]) -> None:
    assert set(loaded) == {"w", "epoch"} and loaded["epoch"] == 3
    np.testing.assert_array_equal(loaded["w"], np.arange(6.0).reshape(2, 3))


@pytest.mark.slow
def test_every_truncation_and_every_flipped_byte_is_refused_or_harmless(tmp_path: Path) -> None:
    original = valid_checkpoint()
    path = tmp_path / "c.npz"
    refused = 0
    for cut in range(len(original)):
        assert _load_or_error(path, original[:cut]) is None, f"truncated to {cut} bytes and still loaded"
    for position in range(len(original)):
        damaged = bytearray(original)
        damaged[position] ^= 0xFF
        loaded = _load_or_error(path, bytes(damaged))
        if loaded is None:
            refused += 1
        else:
            _assert_same(loaded)  # e.g. a timestamp: harmless
    assert refused > len(original) // 2


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8))
def test_random_byte_changes_are_refused_or_harmless(tmp_path: Path, changes: list[tuple[int, int]]) -> None:
    damaged = bytearray(valid_checkpoint())
    for position, value in changes:
        damaged[position % len(damaged)] = value
    loaded = _load_or_error(tmp_path / "c.npz", bytes(damaged))
    if loaded is not None:
        _assert_same(loaded)


# ---- paths that are not files ------------------------------------------------------------------------------
@pytest.fixture
def alarm() -> Iterator[None]:
    """Fail instead of hanging if a load blocks (e.g. on a FIFO)."""
    if not hasattr(signal, "SIGALRM"):
        pytest.skip("needs SIGALRM")

    def timeout(*_: Any) -> None:
        raise TimeoutError("load blocked")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_a_directory_is_refused(tmp_path: Path, suffix: str) -> None:
    (tmp_path / f"d{suffix}").mkdir()
    with pytest.raises(CheckpointError, match=rf"load: {tmp_path / f'd{suffix}'} is a directory, not a checkpoint"):
        load(tmp_path / f"d{suffix}")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path, alarm: None) -> None:
    os.mkfifo(tmp_path / "pipe.npz")
    with pytest.raises(CheckpointError, match=r"pipe.npz is not a regular file \(a FIFO, socket or device\)"):
        load(tmp_path / "pipe.npz")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_is_refused_without_reading_it(alarm: None) -> None:
    with pytest.raises(CheckpointError, match=r"load: /dev/zero is not a regular file"):
        load("/dev/zero")


@pytest.mark.skipif(os.name != "posix", reason="POSIX symlinks")
def test_symlinks_are_followed_to_files_and_refused_otherwise(tmp_path: Path) -> None:
    save({"w": np.ones(2)}, tmp_path / "real.npz")
    (tmp_path / "link.npz").symlink_to(tmp_path / "real.npz")
    np.testing.assert_array_equal(load(tmp_path / "link.npz")["w"], np.ones(2))
    (tmp_path / "to-dir.npz").symlink_to(tmp_path)
    with pytest.raises(CheckpointError, match=r"to-dir.npz is a directory"):
        load(tmp_path / "to-dir.npz")
    (tmp_path / "loop.npz").symlink_to(tmp_path / "loop.npz")
    with pytest.raises(CheckpointError, match=r"loop.npz cannot be opened as a checkpoint file: Too many levels"):
        load(tmp_path / "loop.npz")
    (tmp_path / "dangling.npz").symlink_to(tmp_path / "absent.npz")
    with pytest.raises(FileNotFoundError):  # as open() and torch.load: nothing there
        load(tmp_path / "dangling.npz")


def test_the_public_module_names_stay_importable() -> None:
    import tinygrad_cnn

    assert tinygrad_cnn.load is serialization.load and tinygrad_cnn.save is serialization.save
    assert tinygrad_cnn.CheckpointError is serialization.CheckpointError and serialization.META == "__meta__"
    assert issubclass(CheckpointError, ValueError)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\u00e9\n', max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(alphabet='[{"\\}]x'), inner,
                                                                                 max_size=4), max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_the_linear_depth_scan_agrees_with_the_parsed_structure(value: Any) -> None:
    """Brackets, quotes and backslashes inside strings (escaped by json.dumps) must not count."""
    assert npz_format._json_depth(json.dumps(value)) == _depth(value)
    assert npz_format._json_depth(json.dumps(value, ensure_ascii=False, indent=1)) == _depth(value)
