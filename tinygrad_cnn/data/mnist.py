"""MNIST: IDX parsing, verified loading, download on first use, normalisation.

Every file is checked twice before its data is used: structurally (IDX magic
number, dimensions, payload length) and by the MD5 of its *decompressed*
content, so a copy that was recompressed with different gzip settings is still
accepted while a truncated or corrupted one is rejected with an
:class:`MNISTError` that names the file and what was expected.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..serialization.files import write_atomically

MNIST_MEAN = 0.1307
"""Mean of the MNIST training pixels after scaling to [0, 1]."""
MNIST_STD = 0.3081
"""Standard deviation of the MNIST training pixels after scaling to [0, 1]."""

ENV_VAR = "TINYGRAD_CNN_DATA"
"""Environment variable naming the MNIST directory when no root is given."""

MIRRORS: list[str] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]
"""Base URLs (ending in ``/``) tried in order for ``<file name>.gz``."""

DOWNLOAD_TIMEOUT = 30.0
"""Seconds before a stalled connection to a mirror is given up."""

_GZIP_MAGIC = b"\x1f\x8b"
# IDX type code (third byte of the magic number) -> big-endian element dtype.
_IDX_DTYPES = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


class MNISTError(ValueError):
    """A data file is missing, truncated, corrupted or not the file expected."""


@dataclass(frozen=True)
class IdxSpec:
    """What a valid copy of one IDX data file looks like.

    Attributes:
        name: File name without the ``.gz`` suffix.
        magic: Expected IDX magic number (encodes element type and rank).
        shape: Expected dimensions from the header.
        md5: Hex MD5 of the decompressed file content.
    """

    name: str
    magic: int
    shape: tuple[int, ...]
    md5: str


MNIST_FILES: tuple[IdxSpec, ...] = (
    IdxSpec(
        "train-images-idx3-ubyte",
        2051,
        (60000, 28, 28),
        "6bbc9ace898e44ae57da46a324031adb",
    ),
    IdxSpec(
        "train-labels-idx1-ubyte", 2049, (60000,), "a25bea736e30d166cdddb491f175f624"
    ),
    IdxSpec(
        "t10k-images-idx3-ubyte",
        2051,
        (10000, 28, 28),
        "2646ac647ad5339dbf082846283269ea",
    ),
    IdxSpec(
        "t10k-labels-idx1-ubyte", 2049, (10000,), "27ae3e4e09519cfbb04c329615203637"
    ),
)
"""The four MNIST files, in the order :func:`load_mnist` returns them."""


def _fmt_magic(magic: int) -> str:
    return f"{magic} (0x{magic:08X})"


def _fmt_shape(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def _declared_size(head: bytes) -> int:
    """Bytes of IDX content that the header at the start of ``head`` declares (len(head) while the header is
    incomplete or not an IDX header: `_parse_idx` then reports what is wrong with it)."""
    if len(head) < 4 or head[2] not in _IDX_DTYPES or len(head) < 4 + 4 * head[3]:
        return len(head)
    shape = [int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(head[3])]
    return 4 + 4 * head[3] + math.prod(shape) * np.dtype(_IDX_DTYPES[head[2]]).itemsize


def _decompress(data: bytes, source: str) -> bytes:
    """Gunzip ``data`` if it is gzip (IDX content starts with two zero bytes), never past the size its IDX
    header declares: a small crafted file must not expand into gigabytes before it is refused."""
    if not data.startswith(_GZIP_MAGIC):
        return data
    stream = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # the gzip container
    try:
        out = stream.decompress(data, 4 + 4 * 255)  # room for the longest IDX header
        limit = _declared_size(out)
        out += stream.decompress(stream.unconsumed_tail, max(limit - len(out), 0) + 1)
    except zlib.error as exc:
        raise MNISTError(f"{source}: truncated or corrupted gzip data ({exc})") from exc
    if len(out) > limit or stream.unconsumed_tail or stream.unused_data:
        raise MNISTError(f"{source}: the gzip data holds more than the {limit} bytes its IDX header declares")
    if not stream.eof:
        raise MNISTError(f"{source}: truncated or corrupted gzip data (the compressed stream ends early)")
    return out


def _parse_idx(
    data: bytes,
    source: str,
    *,
    expected_magic: int | None = None,
    expected_shape: Sequence[int] | None = None,
    expected_md5: str | None = None,
) -> np.ndarray:
    """Check decompressed IDX ``data`` and return its array; errors name ``source``."""

    def error(problem: str) -> MNISTError:
        return MNISTError(f"{source}: {problem}")

    # Structural checks come before the checksum so that a damaged file is
    # reported by what is wrong with it, not just as a checksum mismatch.
    if len(data) < 4:
        raise error(f"truncated: {len(data)} bytes, too short for an IDX magic number")
    magic = int.from_bytes(data[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise error(
            f"wrong magic number: expected {_fmt_magic(expected_magic)}, "
            f"found {_fmt_magic(magic)}"
        )
    type_code, ndim = data[2], data[3]
    if data[:2] != b"\0\0" or type_code not in _IDX_DTYPES:
        raise error(
            f"not an IDX file: magic number {_fmt_magic(magic)} is not of the form "
            f"0x0000TTNN with a known element type TT"
        )
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise error(
            f"truncated header: {ndim} dimensions need {header_len} header bytes, "
            f"found {len(data)} bytes"
        )
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    if expected_shape is not None and shape != tuple(expected_shape):
        raise error(
            f"wrong dimensions: expected {_fmt_shape(expected_shape)}, "
            f"found {_fmt_shape(shape)}"
        )
    dtype = np.dtype(_IDX_DTYPES[type_code])
    count = math.prod(shape)
    expected_len = header_len + count * dtype.itemsize
    if len(data) != expected_len:
        problem = "truncated" if len(data) < expected_len else "trailing bytes"
        raise error(
            f"{problem}: the header ({_fmt_shape(shape)} of {dtype.name}) implies "
            f"{expected_len} bytes, found {len(data)}"
        )
    if expected_md5 is not None:
        _check_md5(data, expected_md5, error)
    # astype copies, giving a writable native-endian array rather than a
    # read-only big-endian view of the file buffer.
    raw = np.frombuffer(data, dtype=dtype, count=count, offset=header_len)
    return raw.astype(dtype.newbyteorder("=")).reshape(shape)


def _check_md5(
    data: bytes, expected_md5: str, error: Callable[[str], MNISTError]
) -> None:
    found = hashlib.md5(data, usedforsecurity=False).hexdigest()
    if found != expected_md5.lower():
        raise error(
            f"checksum mismatch (MD5 of the decompressed content): "
            f"expected {expected_md5.lower()}, found {found}"
        )


def read_idx(
    path: str | os.PathLike[str],
    *,
    expected_magic: int | None = None,
    expected_shape: Sequence[int] | None = None,
    expected_md5: str | None = None,
) -> np.ndarray:
    """Read an IDX file, gzipped or raw (detected from its content, not its name).

    The header is always checked against the file length; the ``expected_*``
    arguments add checks of the magic number, the dimensions and the MD5 of
    the decompressed content.

    Args:
        path: File to read.
        expected_magic: Required magic number, e.g. 2051 for MNIST images.
        expected_shape: Required dimensions, e.g. ``(60000, 28, 28)``.
        expected_md5: Required hex MD5 of the decompressed content.

    Returns:
        A writable array in native byte order with the header's shape.

    Raises:
        MNISTError: The file is truncated, corrupted or fails a check; the
            message names the file and what was expected versus found.
    """
    source = str(path)
    data = _decompress(Path(path).read_bytes(), source)
    return _parse_idx(
        data,
        source,
        expected_magic=expected_magic,
        expected_shape=expected_shape,
        expected_md5=expected_md5,
    )


def resolve_data_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Return the directory to look for MNIST in (it need not exist yet).

    Precedence: ``root`` if given, else ``$TINYGRAD_CNN_DATA`` if set, else the
    per-user cache ``$XDG_CACHE_HOME/tinygrad_cnn/mnist`` (falling back to
    ``~/.cache`` when ``XDG_CACHE_HOME`` is unset or, per the XDG spec, relative).
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache) if cache and os.path.isabs(cache) else Path.home() / ".cache"
    return base / "tinygrad_cnn" / "mnist"


def _fetch(url: str) -> bytes:
    """Return the body served at ``url``; tests replace this to stay off the network."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
        return response.read()


def _write_atomically(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that ``path`` is either absent or complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(os.fspath(path), lambda file: file.write(payload))


def _download(spec: IdxSpec, directory: Path, failures: list[str]) -> np.ndarray | None:
    """Install ``spec`` from the first mirror serving a valid copy and return its array.

    Returns None if every mirror failed, after appending one reason per mirror
    to ``failures``. The payload is verified in memory before anything is
    written, so a bad download never reaches the directory.
    """
    for mirror in MIRRORS:
        url = f"{mirror}{spec.name}.gz"
        try:
            payload = _fetch(url)
        except (OSError, http.client.HTTPException) as exc:
            failures.append(f"{url}: {exc}")
            continue
        try:
            array = _parse_idx(
                _decompress(payload, url),
                url,
                expected_magic=spec.magic,
                expected_shape=spec.shape,
                expected_md5=spec.md5,
            )
        except MNISTError as exc:
            failures.append(str(exc))
            continue
        suffix = ".gz" if payload.startswith(_GZIP_MAGIC) else ""
        _write_atomically(directory / f"{spec.name}{suffix}", payload)
        return array
    return None


def _missing_message(
    directory: Path,
    specs: Sequence[IdxSpec],
    missing: Sequence[IdxSpec],
    failures: Sequence[str],
) -> str:
    where = (
        f"{directory}" if directory.is_dir() else f"{directory} (which does not exist)"
    )
    reasons = "".join(f"\n  {reason}" for reason in failures)
    return (
        f"MNIST files missing from {where}: {', '.join(s.name for s in missing)} "
        f"(looked for each with and without .gz), and downloading failed:{reasons}\n"
        f"Put the files {', '.join(s.name + '.gz' for s in specs)} "
        f"(gzipped or not) in {directory}, or point the {ENV_VAR} environment variable "
        f"(or the data directory argument, --data-dir) at a directory holding them."
    )


def _find_local(directory: Path, spec: IdxSpec) -> Path | None:
    # Uncompressed first: it is faster to read than the .gz.
    for path in (directory / spec.name, directory / f"{spec.name}.gz"):
        if path.is_file():
            return path
    return None


def has_idx_files(directory: str | os.PathLike[str], specs: Sequence[IdxSpec]) -> bool:
    """True if ``directory`` holds a file (raw or ``.gz``) for every spec; their contents are not checked."""
    return all(_find_local(Path(directory), spec) is not None for spec in specs)


def load_idx_files(
    directory: str | os.PathLike[str], specs: Sequence[IdxSpec]
) -> list[np.ndarray]:
    """Load and verify each spec's file from ``directory``, downloading missing ones.

    A file is looked for uncompressed first, then as ``.gz``.
    A local file that fails verification raises rather than being replaced,
    so a user's data is never overwritten. Downloading stops at the first file
    no mirror can supply, since that usually means there is no network.

    Raises:
        MNISTError: A file is invalid, or missing and could not be downloaded;
            the message says which files, where, and how to supply them.
    """
    directory = Path(directory)
    local = {spec.name: _find_local(directory, spec) for spec in specs}
    missing = [spec for spec in specs if local[spec.name] is None]
    downloaded: dict[str, np.ndarray] = {}
    for i, spec in enumerate(missing):
        failures: list[str] = []
        array = _download(spec, directory, failures)
        if array is None:
            raise MNISTError(_missing_message(directory, specs, missing[i:], failures))
        downloaded[spec.name] = array
    return [
        downloaded[spec.name]
        if spec.name in downloaded
        else read_idx(
            local[spec.name],
            expected_magic=spec.magic,
            expected_shape=spec.shape,
            expected_md5=spec.md5,
        )
        for spec in specs
    ]


def load_mnist(
    root: str | os.PathLike[str] | None = None,
) -> tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.uint8], NDArray[np.int64]]:
    """Load MNIST as ``(x_train, y_train, x_test, y_test)``, downloading it if needed.

    Images are uint8 arrays of shape (N, 28, 28), labels int64 arrays of shape
    (N,), with N = 60000 for training and 10000 for test. The directory is
    chosen by :func:`resolve_data_dir`; every file is verified as described
    in :func:`load_idx_files` and parsed once per call.

    Raises:
        MNISTError: A file is invalid, or missing and could not be downloaded.
    """
    x_train, y_train, x_test, y_test = load_idx_files(
        resolve_data_dir(root), MNIST_FILES
    )
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


def normalize(
    images: NDArray[np.uint8], mean: float = MNIST_MEAN, std: float = MNIST_STD
) -> NDArray[np.float32]:
    """Scale uint8 images to [0, 1], standardise, and add a channel axis.

    Args:
        images: uint8 array of shape (N, H, W).
        mean: Mean subtracted after scaling to [0, 1].
        std: Standard deviation divided by after subtracting ``mean``.

    Returns:
        float32 array of shape (N, 1, H, W) equal to ``(images / 255 - mean) / std``.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(
            f"images: expected a uint8 array of shape (N, H, W), "
            f"got a {images.dtype} array of shape {images.shape}"
        )
    if not std > 0:
        raise ValueError(f"std: expected a positive number, got {std!r}")
    # Folded into one in-place scale and shift on a float32 copy: a float64
    # intermediate of the full training set would need 8x its uint8 size.
    out = images.astype(np.float32)
    out *= np.float32(1.0 / (255.0 * std))
    out -= np.float32(mean / std)
    return out[:, np.newaxis]
