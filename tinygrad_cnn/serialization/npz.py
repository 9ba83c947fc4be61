"""`save` / `load`: state dicts and checkpoints as one .npz file, without pickle.

The file is a zip of .npy entries, as `np.savez` writes: one entry per array, named by its key path
("model/conv1.weight"), and `__meta__`, a 0-d unicode array holding JSON with the nested structure, the plain
values (ints of any size, floats, strings, bools, None, lists of these) and every array's dtype, shape and
SHA-256. Plain values live in JSON so that ints stay ints (128-bit generator states included) and floats stay
floats. `load` reads with `allow_pickle=False` and checks every array against its recorded digest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from typing import IO, Any

import numpy as np

from .autograd import Tensor

SEP = "/"  # joins nested keys into entry names; rejected inside keys, so names are unambiguous
META = "__meta__"
FORMAT = "tinygrad_cnn.checkpoint"
VERSION = 1
ZIP_MAGIC, NPY_MAGIC, PICKLE_MAGIC = b"PK\x03\x04", b"\x93NUMPY", b"\x80"  # the formats np.load tells apart


class CheckpointError(ValueError):
    """The file is not a readable checkpoint: truncated, corrupted, modified, or holding pickled objects."""


def save(obj: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write `obj` to `path` (the exact name: no suffix is added), atomically.

    `obj` is a dict with str keys whose values are Tensors or bool/int/float ndarrays, dicts of the same kind,
    numbers, strings, bools, None, or lists of those plain values: e.g. a state_dict, or a checkpoint
    {"model": sd, "optimizer": opt_sd, "epoch": 3, "rng": {...}}. Everything is checked before anything is
    written; the file is written beside `path` and renamed over it, so a crash leaves the old file intact.
    """
    if not isinstance(obj, Mapping):
        raise TypeError(f"save: expected a dict (a state_dict or a checkpoint of them), got {type(obj).__name__}")
    if META in obj:
        raise ValueError(f"save: the top-level key {META!r} is reserved for the checkpoint's metadata")
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(obj, (), arrays)
    meta = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree}, ensure_ascii=False)
    _write_atomically(os.fspath(path), meta, arrays)


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a file written by `save`: the same nested dict, with numpy arrays where Tensors or arrays were
    (tuples come back as lists, numpy scalars as Python numbers). Raises `CheckpointError` for a file that is
    not an intact checkpoint; never unpickles."""
    path = os.fspath(path)
    with open(path, "rb") as file:  # a missing or unreadable file raises its own OSError
        try:
            return _read(file, path)
        except CheckpointError:
            raise
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, NotImplementedError) as e:
            raise CheckpointError(f"load: {path} is not a readable checkpoint (truncated or corrupted?): "
                                  f"{type(e).__name__}: {e}") from e


# ---- writing -------------------------------------------------------------------------------------
def _where(path: tuple[str, ...]) -> str:
    return SEP.join(path) or "the top level"


def _encode(value: Any, path: tuple[str, ...], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The JSON node for `value`: {"dict": {key: node}}, {"array": {dtype, shape, sha256}} or {"value": v};
    arrays are collected into `arrays` under their entry name."""
    if isinstance(value, Mapping):
        nodes = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"save: key {key!r} in {_where(path)} is a {type(key).__name__}; keys must be str")
            if not key or SEP in key:
                raise ValueError(f"save: key {key!r} in {_where(path)} is empty or contains {SEP!r}, which "
                                 "separates nested keys in the file")
            nodes[key] = _encode(item, (*path, key), arrays)
        return {"dict": nodes}
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"save: {_where(path)} is an array of dtype {value.dtype}; expected bool, integer or "
                            "floating-point data")
        arrays[SEP.join(path)] = value
        return {"array": {"dtype": value.dtype.str, "shape": list(value.shape), "sha256": _digest(value)}}
    return {"value": _plain(value, path)}


def _plain(value: Any, path: tuple[str, ...]) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(item, (*path[:-1], f"{path[-1]}[{i}]")) for i, item in enumerate(value)]
    raise TypeError(f"save: {_where(path)} is a {type(value).__name__}; expected a Tensor, an ndarray, a dict, or a "
                    "number, string, bool, None or list of those (arrays go in dicts, not lists)")


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def _write_npz(file: IO[bytes], meta: str, arrays: dict[str, np.ndarray]) -> None:
    # what np.savez does, written out because np.savez takes names as keyword arguments ("file" would clash)
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in {META: np.array(meta), **arrays}.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, array, allow_pickle=False)


def _write_atomically(path: str, meta: str, arrays: dict[str, np.ndarray]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    tmp = tempfile.NamedTemporaryFile(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                      delete=False)
    try:
        with tmp:
            _write_npz(tmp, meta, arrays)
            tmp.flush()
            os.fsync(tmp.fileno())  # the data must be on disk before the rename makes it the checkpoint
        os.chmod(tmp.name, 0o666 & ~_umask())  # temporary files are private (0600); a saved file should not be
        os.replace(tmp.name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp.name)
        raise
    _fsync_directory(directory)


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read the umask is to set it
    os.umask(mask)
    return mask


def _fsync_directory(directory: str) -> None:
    """Make the rename durable; skipped where directories cannot be opened or synced (e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---- reading -------------------------------------------------------------------------------------
@contextlib.contextmanager
def _refusing_pickles(what: str) -> Iterator[None]:
    """Turn numpy's refusal to unpickle (allow_pickle=False) into a clear CheckpointError."""
    try:
        yield
    except ValueError as e:
        if "pickle" not in str(e):
            raise
        raise CheckpointError(f"load: {what} holds pickled Python objects (or is truncated so that numpy takes it "
                              "for a pickle); refused: unpickling can run arbitrary code") from None


def _read(file: IO[bytes], path: str) -> dict[str, Any]:
    head = file.read(len(NPY_MAGIC))
    file.seek(0)
    if head and not head.startswith((ZIP_MAGIC, NPY_MAGIC, PICKLE_MAGIC)):  # else numpy calls it a pickle
        raise CheckpointError(f"load: {path} is not a readable checkpoint: it starts with {head!r}, not with the "
                              f"zip signature {ZIP_MAGIC!r} of an .npz file written by save()")
    with _refusing_pickles(path):
        npz = np.load(file, allow_pickle=False)
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise CheckpointError(f"load: {path} holds a single .npy array, not an .npz checkpoint written by save()")
    with npz:
        if META not in npz.files:
            raise CheckpointError(f"load: {path} has no {META!r} entry: not a checkpoint written by save()")
        meta = _read_entry(npz, META, path)
        if meta.dtype.kind != "U" or meta.ndim != 0:
            raise CheckpointError(f"load: {path}: the {META!r} entry is a {meta.dtype} array of shape {meta.shape}, "
                                  "expected a 0-d unicode array")
        meta = json.loads(meta.item())
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
            found = {k: meta.get(k) for k in ("format", "version")} if isinstance(meta, dict) else meta
            raise CheckpointError(f"load: {path} has metadata {found}, expected format {FORMAT!r} version {VERSION}")
        names: list[str] = []
        result = _decode(meta.get("tree"), (), npz, path, names)
        unlisted = sorted(set(npz.files) - set(names) - {META})
        if unlisted:
            raise CheckpointError(f"load: {path} has entries its metadata does not describe: {unlisted}")
    if not isinstance(result, dict):
        raise CheckpointError(f"load: {path}: the top level of the checkpoint is not a dict")
    return result


def _read_entry(npz: np.lib.npyio.NpzFile, name: str, path: str) -> np.ndarray:
    with _refusing_pickles(f"{path}: entry {name!r}"):
        array = npz[name]
    if not isinstance(array, np.ndarray):  # NpzFile hands back the raw bytes of an entry that is not .npy
        raise CheckpointError(f"load: {path}: entry {name!r} is not an .npy array")
    return array


def _decode(node: Any, path: tuple[str, ...], npz: np.lib.npyio.NpzFile, file: str, names: list[str]) -> Any:
    kind, body = next(iter(node.items())) if isinstance(node, dict) and len(node) == 1 else (None, None)
    if kind == "value":
        return body
    if kind == "dict" and isinstance(body, dict):
        return {key: _decode(item, (*path, key), npz, file, names) for key, item in body.items()}
    if kind == "array" and isinstance(body, dict):
        name = SEP.join(path)
        if name not in npz.files:
            raise CheckpointError(f"load: {file}: the array entry {name!r} listed in the metadata is missing")
        names.append(name)
        array = _read_entry(npz, name, file)
        recorded = (body.get("dtype"), body.get("shape"))
        if recorded != (array.dtype.str, list(array.shape)):
            raise CheckpointError(f"load: {file}: entry {name!r} has dtype {array.dtype.str} and shape "
                                  f"{list(array.shape)}, the metadata records {recorded[0]} and {recorded[1]}")
        if _digest(array) != body.get("sha256"):
            raise CheckpointError(f"load: {file}: entry {name!r} fails its SHA-256 check: the array data was "
                                  "modified or corrupted")
        return array
    raise CheckpointError(f"load: {file}: malformed metadata at {_where(path)}: {str(node)[:100]}")
