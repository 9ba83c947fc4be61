"""The .npz checkpoint format: nested dicts of arrays and plain values in one zip of .npy entries, no pickle.

The file is a zip of .npy entries, as `np.savez` writes: one entry per array, named by its key path
("model/conv1.weight"), and `__meta__`, a 0-d unicode array holding JSON with the nested structure, the plain
values (ints of any size, floats, strings, bools, None, lists of these and dicts inside such lists) and every
array's dtype, shape and SHA-256. Plain values live in JSON so that ints stay ints (128-bit generator states
included) and floats stay floats.

Reading trusts nothing in the file. The zip directory and every .npy header are parsed here (not by `np.load`),
and every size they declare is checked against the bytes actually present before anything is allocated: a
stored entry holds exactly the bytes its header's shape and dtype need, a deflated one claims no more than
deflate can produce, and the entries together fit in the file. Object arrays (pickles) are refused unread, the
metadata is bounded in size and nesting depth, and every array is checked against its recorded digest. Any
problem is a `CheckpointError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import math
import re
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

import numpy as np

from ..autograd import Tensor
from .files import CheckpointError, write_atomically

SEP = "/"  # joins nested keys into entry names; rejected inside keys, so names are unambiguous
META = "__meta__"
FORMAT = "tinygrad_cnn.checkpoint"
VERSION = 1
ZIP_MAGIC, EMPTY_ZIP_MAGIC, NPY_MAGIC, PICKLE_MAGIC = b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY", b"\x80"
MAX_META_CHARS = 16 * 2**20  # of metadata JSON; a training checkpoint's is a few kB
MAX_META_DEPTH = 100  # nesting of the metadata JSON: 2 levels per nested dict, so ~45 dicts deep
MAX_NPY_HEADER = 10_000  # bytes of an .npy header dict; numpy's own default limit
MAX_DEFLATE_RATIO = 1032  # deflate never expands data more than ~1032-fold; an entry claiming more is lying
_READ_CHUNK = 2**24
_ESCAPE, _STRING = re.compile(r"\\.", re.S), re.compile(r'"[^"]*"')  # neither can backtrack
_OPENERS, _CLOSERS = np.frombuffer(b"[{", dtype=np.uint8), np.frombuffer(b"]}", dtype=np.uint8)
_ARRAY_KINDS = "biuf"  # bool, signed and unsigned integers, floating point


def save_npz(obj: Mapping[str, Any], path: str) -> None:
    """Check `obj` completely, then write it to `path` atomically (see `tinygrad_cnn.save`)."""
    if not isinstance(obj, Mapping):
        raise TypeError(f"save: expected a dict (a state_dict or a checkpoint of them), got {type(obj).__name__}")
    if META in obj:
        raise ValueError(f"save: the top-level key {META!r} is reserved for the checkpoint's metadata")
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(obj, (), arrays)
    meta = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree}, ensure_ascii=False)
    problem = _meta_problem(meta)
    if problem:
        raise ValueError(f"save: the checkpoint's structure is too large to be read back: {problem}")
    write_atomically(path, lambda file: _write_npz(file, meta, arrays))


def load_npz(file: IO[bytes], path: str) -> dict[str, Any]:
    """Read a checkpoint written by `save_npz` from the open `file` (named `path` in errors)."""
    head = file.read(len(NPY_MAGIC) + 3)
    file.seek(0)
    if not head:
        raise CheckpointError(f"load: {path} is not a readable checkpoint: the file is empty")
    if head.startswith(PICKLE_MAGIC):
        raise CheckpointError(f"load: {path} holds pickled Python objects (a torch.save or pickle file?); refused: "
                              "unpickling can run arbitrary code")
    if head.startswith(NPY_MAGIC):
        raise CheckpointError(f"load: {path} holds a single .npy array, not an .npz checkpoint written by save()")
    if not head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
        hint = " (it looks like a safetensors file: name it *.safetensors)" if head[8:9] == b"{" else ""
        raise CheckpointError(f"load: {path} is not a readable checkpoint: it starts with {head[:6]!r}, not with "
                              f"the zip signature {ZIP_MAGIC!r} of an .npz file written by save(){hint}")
    size = file.seek(0, 2)
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as archive:
            return _read_archive(archive, size, path)
    except CheckpointError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, struct.error, NotImplementedError) as e:
        raise CheckpointError(f"load: {path} is not a readable checkpoint (truncated or corrupted?): "
                              f"{type(e).__name__}: {e}") from e


# ---- writing -------------------------------------------------------------------------------------
def _where(path: tuple[str, ...]) -> str:
    return SEP.join(path) or "the top level"


def _encode(value: Any, path: tuple[str, ...], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The JSON node for `value`: {"dict": {key: node}}, {"array": {dtype, shape, sha256}} or {"value": v};
    arrays are collected into `arrays` under their entry name."""
    if isinstance(value, Mapping):
        if len(path) > MAX_META_DEPTH // 2:
            raise ValueError(f"save: {_where(path)} nests dicts more than {MAX_META_DEPTH // 2} deep (does a dict "
                             "contain itself?)")
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
        if value.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(f"save: {_where(path)} is an array of dtype {value.dtype}; expected bool, integer or "
                            "floating-point data")
        arrays[SEP.join(path)] = value
        return {"array": {"dtype": value.dtype.str, "shape": list(value.shape), "sha256": _digest(value)}}
    return {"value": _plain(value, path, 0)}


def _plain(value: Any, path: tuple[str, ...], depth: int) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in _ARRAY_KINDS:
        return value.item()
    if isinstance(value, (list, tuple)):
        if depth > MAX_META_DEPTH:
            raise ValueError(f"save: {_where(path)} nests lists more than {MAX_META_DEPTH} deep (does a list "
                             "contain itself?)")
        return [_plain(item, (*path[:-1], f"{path[-1]}[{i}]"), depth + 1) for i, item in enumerate(value)]
    if isinstance(value, Mapping) and depth > 0:  # a dict inside a list, e.g. [{"epoch": 1, "loss": 0.5}]
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"save: key {key!r} in {_where(path)} is a {type(key).__name__}; keys must be str")
        return {key: _plain(item, (*path, key), depth + 1) for key, item in value.items()}
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


# ---- the metadata's bounds -------------------------------------------------------------------------
def _meta_problem(text: str) -> str | None:
    """Why the metadata JSON `text` is too large or too deeply nested to parse, or None if it is fine."""
    if len(text) > MAX_META_CHARS:
        return f"{len(text)} characters of metadata, more than the limit of {MAX_META_CHARS}"
    depth = _json_depth(text)
    if depth > MAX_META_DEPTH:
        return f"metadata nested {depth} levels deep, more than the limit of {MAX_META_DEPTH}"
    return None


def _json_depth(text: str) -> int:
    """The deepest nesting of [ and { in `text` outside JSON strings, in linear time without recursion (the
    parser is only called on what passes). Escapes are dropped first, so every quote left opens or closes a
    string. For text that is not valid JSON this is exact up to the first error, as far as json.loads reads."""
    bare = _STRING.sub("", _ESCAPE.sub("", text)).encode("utf-8", "surrogatepass")
    codes = np.frombuffer(bare, dtype=np.uint8)  # multi-byte UTF-8 holds no ASCII bytes
    steps = np.isin(codes, _OPENERS).astype(np.int8) - np.isin(codes, _CLOSERS)
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        repeated = sorted(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
        raise CheckpointError(f"a JSON object in the metadata repeats the keys {repeated}")
    return result


# ---- reading -------------------------------------------------------------------------------------
def _read_archive(archive: zipfile.ZipFile, size: int, path: str) -> dict[str, Any]:
    entries: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        entry = info.filename
        if entry.endswith(".pkl"):
            raise CheckpointError(f"load: {path} holds pickled Python objects ({entry!r}: a file written by "
                                  "torch.save?); refused: unpickling can run arbitrary code. In PyTorch, write the "
                                  "state_dict with safetensors.torch.save_file to a .safetensors file and load that")
        if not entry.endswith(".npy"):
            raise CheckpointError(f"load: {path}: entry {entry!r} is not an .npy array (save() names entries *.npy)")
        name = entry[:-len(".npy")]
        if name in entries:
            raise CheckpointError(f"load: {path}: the zip holds two entries named {entry!r}")
        if info.flag_bits & 0x1:
            raise CheckpointError(f"load: {path}: entry {entry!r} is encrypted")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise CheckpointError(f"load: {path}: stored entry {entry!r} declares {info.file_size} bytes but "
                                  f"occupies {info.compress_size}")
        if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > MAX_DEFLATE_RATIO * info.compress_size:
            raise CheckpointError(f"load: {path}: entry {entry!r} claims to inflate {info.compress_size} bytes to "
                                  f"{info.file_size}, beyond deflate's maximum ratio (a zip bomb, or a corrupted "
                                  "zip directory)")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CheckpointError(f"load: {path}: entry {entry!r} uses zip compression method {info.compress_type}; "
                                  "only stored (as save() writes) and deflated entries are read")
        entries[name] = info
    claimed = sum(info.compress_size for info in entries.values())
    if claimed > size:
        raise CheckpointError(f"load: {path}: its entries claim {claimed} bytes, more than the file's {size} "
                              "(overlapping entries, as in a zip bomb, or a corrupted zip directory)")
    if META not in entries:
        raise CheckpointError(f"load: {path} has no {META!r} entry: not a checkpoint written by save()")
    meta = _read_meta(archive, entries[META], path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        found = {k: meta.get(k) for k in ("format", "version")} if isinstance(meta, dict) else str(meta)[:100]
        raise CheckpointError(f"load: {path} has metadata {found}, expected format {FORMAT!r} version {VERSION}")
    names: list[str] = []

    def read(name: str) -> np.ndarray:
        if name not in entries or name == META:
            raise CheckpointError(f"load: {path}: the array entry {name!r} listed in the metadata is missing")
        names.append(name)
        return _read_array(archive, entries[name], name, path)

    result = _decode(meta.get("tree"), (), read, path)
    unlisted = sorted(set(entries) - set(names) - {META})
    if unlisted:
        raise CheckpointError(f"load: {path} has entries its metadata does not describe: {unlisted}")
    if not isinstance(result, dict):
        raise CheckpointError(f"load: {path}: the top level of the checkpoint is not a dict")
    return result


@contextlib.contextmanager
def _npy_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str,
               path: str) -> Iterator[tuple[IO[bytes], np.dtype, tuple[int, ...], bool]]:
    """Open an .npy entry and parse its header (without np.load, which allocates whatever the header says):
    yields the entry positioned at its data, the dtype, shape and Fortran order, once the data's size implied
    by the header is checked to be exactly what the entry holds."""
    where = f"load: {path}: entry {name!r}"
    with archive.open(info) as entry:
        if entry.read(len(NPY_MAGIC)) != NPY_MAGIC:
            raise CheckpointError(f"{where} is not an .npy array (no .npy signature)")
        version = entry.read(2)
        if len(version) < 2 or version[0] not in (1, 2, 3):
            raise CheckpointError(f"{where} has an unknown .npy format version {tuple(version)}")
        length_format, encoding = ("<H", "latin1") if version[0] == 1 else ("<I", "latin1" if version[0] == 2
                                                                             else "utf8")
        length_bytes = entry.read(struct.calcsize(length_format))
        if len(length_bytes) < struct.calcsize(length_format):
            raise CheckpointError(f"{where} is truncated inside its .npy header")
        (length,) = struct.unpack(length_format, length_bytes)
        if length > MAX_NPY_HEADER:
            raise CheckpointError(f"{where} declares an .npy header of {length} bytes, more than the limit of "
                                  f"{MAX_NPY_HEADER}")
        header = entry.read(length)
        if len(header) < length:
            raise CheckpointError(f"{where} is truncated inside its .npy header")
        dtype, shape, fortran = _parse_npy_header(header, encoding, where)
        data_size = info.file_size - (len(NPY_MAGIC) + 2 + len(length_bytes) + length)
        needed = math.prod(shape) * dtype.itemsize
        if needed != data_size:
            raise CheckpointError(f"{where} declares shape {shape} of dtype {dtype.str} ({needed} bytes), but holds "
                                  f"{data_size} bytes of data")
        yield entry, dtype, shape, fortran


def _parse_npy_header(header: bytes, encoding: str, where: str) -> tuple[np.dtype, tuple[int, ...], bool]:
    try:
        fields = ast.literal_eval(header.decode(encoding))  # literals only: no names, calls or attributes
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:  # the parser reports a
        # stack overflow (e.g. 9000 nested unary minuses) as MemoryError or RecursionError
        raise CheckpointError(f"{where} has an unreadable .npy header ({type(e).__name__}: {e})") from None
    if not isinstance(fields, dict) or set(fields) != {"descr", "fortran_order", "shape"}:
        raise CheckpointError(f"{where} has an .npy header that is not the dict of 'descr', 'fortran_order' and "
                              f"'shape': {str(fields)[:100]}")
    descr, fortran, shape = fields["descr"], fields["fortran_order"], fields["shape"]
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        raise CheckpointError(f"{where} declares the shape {str(shape)[:100]}, not a tuple of sizes >= 0")
    if not isinstance(fortran, bool):
        raise CheckpointError(f"{where} declares fortran_order {fortran!r}, not a bool")
    if descr in ("|O", "O") or not isinstance(descr, str):  # object arrays (or structured ones) are pickles
        raise CheckpointError(f"{where} holds pickled Python objects (or a structured dtype {str(descr)[:50]}); "
                              "refused: unpickling can run arbitrary code")
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where} declares the unknown dtype {descr[:50]!r} ({e})") from None
    if dtype.itemsize == 0:
        raise CheckpointError(f"{where} declares the dtype {descr[:50]!r}, whose elements have no size")
    return dtype, shape, fortran


def _read_data(entry: IO[bytes], count: int, dtype: np.dtype, where: str) -> np.ndarray:
    """The entry's remaining bytes as a flat array, read in chunks straight into it (the size is checked)."""
    array = np.empty(count, dtype=dtype)
    buffer = memoryview(array.view(np.uint8))
    position = 0
    while position < len(buffer):
        read = entry.readinto(buffer[position:position + _READ_CHUNK])
        if not read:
            raise CheckpointError(f"{where} is truncated: {position} of {len(buffer)} bytes of data")
        position += read
    return array


def _read_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, path: str) -> np.ndarray:
    with _npy_entry(archive, info, name, path) as (entry, dtype, shape, fortran):
        where = f"load: {path}: entry {name!r}"
        if dtype.kind not in _ARRAY_KINDS:
            raise CheckpointError(f"{where} has dtype {dtype.str}; checkpoints hold bool, integer or "
                                  "floating-point arrays")
        flat = _read_data(entry, math.prod(shape), dtype, where)
    return flat.reshape(shape, order="F" if fortran else "C")


def _read_meta(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str) -> Any:
    """The parsed metadata JSON, after checking its declared size and nesting depth."""
    with _npy_entry(archive, info, META, path) as (entry, dtype, shape, _):
        if dtype.kind != "U" or shape != ():
            raise CheckpointError(f"load: {path}: the {META!r} entry is a {dtype.str} array of shape {shape}, "
                                  "expected a 0-d unicode array")
        if dtype.itemsize > 4 * MAX_META_CHARS:
            raise CheckpointError(f"load: {path}: the {META!r} entry declares {dtype.itemsize // 4} characters, "
                                  f"more than the limit of {MAX_META_CHARS}")
        raw = _read_data(entry, dtype.itemsize, np.dtype(np.uint8), f"load: {path}: entry {META!r}").tobytes()
    try:  # numpy's unicode is UTF-32 padded with NULs; decoding it here refuses invalid code points
        text = raw.decode("utf-32-be" if dtype.byteorder == ">" else "utf-32-le").rstrip("\0")
    except UnicodeDecodeError as e:
        raise CheckpointError(f"load: {path}: the {META!r} entry is not valid text: {e}") from None
    problem = _meta_problem(text)
    if problem:
        raise CheckpointError(f"load: {path}: {problem}")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except CheckpointError as e:
        raise CheckpointError(f"load: {path}: {e}") from None
    except ValueError as e:
        raise CheckpointError(f"load: {path}: the {META!r} entry is not valid JSON: {e}") from None


def _decode(node: Any, path: tuple[str, ...], read: Callable[[str], np.ndarray], file: str) -> Any:
    kind, body = next(iter(node.items())) if isinstance(node, dict) and len(node) == 1 else (None, None)
    if kind == "value":
        return body
    if kind == "dict" and isinstance(body, dict):
        for key in body:
            if not key or SEP in key:
                raise CheckpointError(f"load: {file}: malformed metadata: key {key!r} in {_where(path)} is empty or "
                                      f"contains {SEP!r}")
        return {key: _decode(item, (*path, key), read, file) for key, item in body.items()}
    if kind == "array" and isinstance(body, dict):
        name = SEP.join(path)
        array = read(name)
        recorded = (body.get("dtype"), body.get("shape"))
        if recorded != (array.dtype.str, list(array.shape)):
            raise CheckpointError(f"load: {file}: entry {name!r} has dtype {array.dtype.str} and shape "
                                  f"{list(array.shape)}, the metadata records {recorded[0]} and {recorded[1]}")
        if _digest(array) != body.get("sha256"):
            raise CheckpointError(f"load: {file}: entry {name!r} fails its SHA-256 check: the array data was "
                                  "modified or corrupted")
        return array
    raise CheckpointError(f"load: {file}: malformed metadata at {_where(path)}: {str(node)[:100]}")
