"""A gzipped IDX file is never decompressed past the size its header declares (a crafted file of a few
KiB must not expand into gigabytes before it is refused), and a well-formed one still reads."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn.data import MNISTError, read_idx


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(">u1").tobytes()


def test_a_gzipped_file_reads_as_its_raw_twin(tmp_path: Path) -> None:
    array = np.arange(60, dtype=np.uint8).reshape(5, 3, 4)
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), array)


def test_a_gzip_bomb_is_refused_without_expanding_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    header = bytes([0, 0, 0x08, 1]) + (10).to_bytes(4, "big")  # declares 10 bytes of content
    bomb = gzip.compress(header + bytes(10) + bytes(200_000_000), compresslevel=9)  # ~200 KB on disk
    (tmp_path / "bomb.gz").write_bytes(bomb)
    assert len(bomb) < 1_000_000
    sizes = []
    decompressobj = __import__("zlib").decompressobj

    class Counting:
        def __init__(self, *args: object, **kwargs: object) -> None:
            self.inner = decompressobj(*args, **kwargs)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            out = self.inner.decompress(data, max_length)
            sizes.append(len(out))
            return out

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

    monkeypatch.setattr("tinygrad_cnn.data.mnist.zlib.decompressobj", Counting)
    with pytest.raises(MNISTError, match="more than the 18 bytes its IDX header declares"):
        read_idx(tmp_path / "bomb.gz")
    assert sum(sizes) <= 18 + 1 + 4 + 4 * 255


def test_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    data = gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint8) % 7))
    (tmp_path / "cut.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(MNISTError, match="cut.gz: .*truncated or corrupted gzip"):
        read_idx(tmp_path / "cut.gz")
