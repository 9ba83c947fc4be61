"""Tests for tinygrad_cnn.data: IDX reading, MNIST loading/downloading, DataLoader."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tracemalloc
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn.data import (
    MNIST_MEAN,
    MNIST_STD,
    DataLoader,
    MNISTError,
    load_mnist,
    mnist,
    normalize,
    read_idx,
    resolve_data_dir,
)
from tinygrad_cnn.data.mnist import IdxSpec, load_idx_files

_TYPE_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode ``array`` (uint8 or int32) as IDX content."""
    header = bytes([0, 0, _TYPE_CODES[array.dtype], array.ndim])
    header += b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly instead of downloading if a test forgets to stub the fetch."""

    def refuse(url: str) -> bytes:
        raise AssertionError(f"test tried to fetch {url}")

    monkeypatch.setattr(mnist, "_fetch", refuse)


@pytest.fixture
def images() -> np.ndarray:
    return np.arange(2 * 28 * 28, dtype=np.uint32).reshape(2, 28, 28).astype(np.uint8)


# --- read_idx --------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_raw_and_gzip(
    tmp_path: Path, images: np.ndarray, compress: bool
) -> None:
    data = idx_bytes(images)
    path = tmp_path / ("f.gz" if compress else "f")
    path.write_bytes(gzip.compress(data) if compress else data)
    got = read_idx(
        path, expected_magic=2051, expected_shape=(2, 28, 28), expected_md5=md5(data)
    )
    assert got.dtype == np.uint8
    assert got.shape == (2, 28, 28)
    np.testing.assert_array_equal(got, images)
    assert got.flags.writeable


def test_read_idx_multibyte_big_endian(tmp_path: Path) -> None:
    values = np.array([[1, -2, 70000], [0, 2**31 - 1, -(2**31)]], dtype=np.int32)
    path = tmp_path / "ints"
    path.write_bytes(idx_bytes(values))
    got = read_idx(path)
    assert got.dtype == np.int32
    assert got.dtype.isnative
    np.testing.assert_array_equal(got, values)


def test_md5_is_of_decompressed_content(tmp_path: Path, images: np.ndarray) -> None:
    data = idx_bytes(images)
    fast, best = (
        gzip.compress(data, compresslevel=1),
        gzip.compress(data, compresslevel=9),
    )
    assert fast != best  # otherwise this test proves nothing
    for name, blob in [("fast.gz", fast), ("best.gz", best)]:
        (tmp_path / name).write_bytes(blob)
        np.testing.assert_array_equal(
            read_idx(tmp_path / name, expected_md5=md5(data)), images
        )


def test_read_idx_truncated_payload(tmp_path: Path, images: np.ndarray) -> None:
    data = idx_bytes(images)
    path = tmp_path / "short"
    path.write_bytes(data[:-10])
    with pytest.raises(MNISTError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert "truncated" in message
    assert f"implies {len(data)} bytes, found {len(data) - 10}" in message


def test_read_idx_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "header"
    path.write_bytes(bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big"))
    with pytest.raises(MNISTError, match="truncated header") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_truncated_gzip(tmp_path: Path, images: np.ndarray) -> None:
    blob = gzip.compress(idx_bytes(images))
    path = tmp_path / "short.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(MNISTError, match="truncated or corrupted gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_trailing_bytes(tmp_path: Path, images: np.ndarray) -> None:
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(images) + b"\0\0\0")
    with pytest.raises(
        MNISTError, match="trailing bytes: .* implies 1584 bytes, found 1587"
    ):
        read_idx(path)


def test_read_idx_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.zeros(5, dtype=np.uint8)))
    with pytest.raises(MNISTError) as info:
        read_idx(path, expected_magic=2051)
    message = str(info.value)
    assert str(path) in message
    assert (
        "wrong magic number: expected 2051 (0x00000803), found 2049 (0x00000801)"
        in message
    )


def test_read_idx_not_idx(tmp_path: Path) -> None:
    path = tmp_path / "html"
    path.write_bytes(b"<html>Not Found</html>")
    with pytest.raises(MNISTError, match="not an IDX file") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_wrong_dims(tmp_path: Path) -> None:
    path = tmp_path / "narrow"
    path.write_bytes(idx_bytes(np.zeros((2, 28, 27), dtype=np.uint8)))
    with pytest.raises(MNISTError) as info:
        read_idx(path, expected_shape=(2, 28, 28))
    message = str(info.value)
    assert str(path) in message
    assert "wrong dimensions: expected 2x28x28, found 2x28x27" in message


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_wrong_checksum(
    tmp_path: Path, images: np.ndarray, compress: bool
) -> None:
    good = idx_bytes(images)
    corrupted = bytearray(good)
    corrupted[-1] ^= 0xFF  # same length and header: only the checksum can catch it
    path = tmp_path / ("bad.gz" if compress else "bad")
    path.write_bytes(gzip.compress(bytes(corrupted)) if compress else bytes(corrupted))
    with pytest.raises(MNISTError) as info:
        read_idx(path, expected_md5=md5(good))
    message = str(info.value)
    assert str(path) in message
    assert (
        f"checksum mismatch (MD5 of the decompressed content): expected {md5(good)}"
        in message
    )
    assert f"found {md5(bytes(corrupted))}" in message


def test_mnist_error_is_value_error() -> None:
    assert issubclass(MNISTError, ValueError)


# --- data directory resolution -----------------------------------------------


def test_resolve_data_dir_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    assert resolve_data_dir() == tmp_path / "home" / ".cache" / "tinygrad_cnn" / "mnist"

    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert resolve_data_dir() == tmp_path / "home" / ".cache" / "tinygrad_cnn" / "mnist"

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir() == tmp_path / "xdg" / "tinygrad_cnn" / "mnist"

    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"

    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir(str(tmp_path / "arg")) == tmp_path / "arg"


# --- finding and downloading files -----------------------------------------------


@pytest.fixture
def tiny() -> tuple[IdxSpec, bytes, np.ndarray]:
    """A small IDX file with its spec, standing in for an MNIST file."""
    array = np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4)
    data = idx_bytes(array)
    return IdxSpec("tiny-images-idx3-ubyte", 2051, (3, 4, 4), md5(data)), data, array


def serve(monkeypatch: pytest.MonkeyPatch, responses: dict[str, bytes]) -> list[str]:
    """Serve ``responses`` (URL -> body, any other URL fails as offline).

    Returns the list of URLs requested, filled in as the stub is called.
    """
    requested: list[str] = []

    def fetch(url: str) -> bytes:
        requested.append(url)
        if url not in responses:
            raise urllib.error.URLError("no network in tests")
        return responses[url]

    monkeypatch.setattr(mnist, "_fetch", fetch)
    monkeypatch.setattr(
        mnist, "MIRRORS", ["https://a.test/mnist/", "https://b.test/mnist/"]
    )
    return requested


def test_offline_error_lists_missing_files_and_remedy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requested = serve(monkeypatch, {})
    with pytest.raises(MNISTError) as info:
        load_mnist(tmp_path)
    message = str(info.value)
    for name in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]:
        assert name in message
    assert str(tmp_path) in message
    assert "TINYGRAD_CNN_DATA" in message
    assert (
        "https://a.test/mnist/train-images-idx3-ubyte.gz: <urlopen error no network"
        in message
    )
    # One failed file is enough evidence of being offline: no waiting on the rest.
    assert requested == [
        "https://a.test/mnist/train-images-idx3-ubyte.gz",
        "https://b.test/mnist/train-images-idx3-ubyte.gz",
    ]
    assert os.listdir(tmp_path) == []


def test_download_installs_verified_file_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tiny: tuple[IdxSpec, bytes, np.ndarray],
) -> None:
    spec, data, array = tiny
    blob = gzip.compress(data)
    requested = serve(monkeypatch, {f"https://a.test/mnist/{spec.name}.gz": blob})
    directory = tmp_path / "new" / "dir"

    [got] = load_idx_files(directory, [spec])
    np.testing.assert_array_equal(got, array)
    assert os.listdir(directory) == [f"{spec.name}.gz"]
    assert (directory / f"{spec.name}.gz").read_bytes() == blob

    [again] = load_idx_files(directory, [spec])
    np.testing.assert_array_equal(again, array)
    assert len(requested) == 1


def test_download_falls_back_past_corrupted_mirror(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tiny: tuple[IdxSpec, bytes, np.ndarray],
) -> None:
    spec, data, array = tiny
    serve(
        monkeypatch,
        {
            f"https://a.test/mnist/{spec.name}.gz": gzip.compress(data[:-1]),
            f"https://b.test/mnist/{spec.name}.gz": gzip.compress(data),
        },
    )
    [got] = load_idx_files(tmp_path, [spec])
    np.testing.assert_array_equal(got, array)
    assert os.listdir(tmp_path) == [f"{spec.name}.gz"]


def test_corrupted_download_leaves_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tiny: tuple[IdxSpec, bytes, np.ndarray],
) -> None:
    spec, data, _ = tiny
    corrupted = bytearray(data)
    corrupted[-1] ^= 0xFF
    url = f"https://a.test/mnist/{spec.name}.gz"
    serve(monkeypatch, {url: gzip.compress(bytes(corrupted))})
    with pytest.raises(MNISTError) as info:
        load_idx_files(tmp_path, [spec])
    assert f"{url}: checksum mismatch" in str(info.value)
    assert os.listdir(tmp_path) == []


def test_interrupted_write_leaves_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tiny: tuple[IdxSpec, bytes, np.ndarray],
) -> None:
    spec, data, _ = tiny
    serve(monkeypatch, {f"https://a.test/mnist/{spec.name}.gz": gzip.compress(data)})

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        load_idx_files(tmp_path, [spec])
    assert os.listdir(tmp_path) == []


def test_local_uncompressed_file_is_used(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tiny: tuple[IdxSpec, bytes, np.ndarray],
) -> None:
    spec, data, array = tiny
    (tmp_path / spec.name).write_bytes(data)
    [got] = load_idx_files(tmp_path, [spec])  # the autouse fixture forbids fetching
    np.testing.assert_array_equal(got, array)


def test_invalid_local_file_raises_and_is_kept(
    tmp_path: Path, tiny: tuple[IdxSpec, bytes, np.ndarray]
) -> None:
    spec, data, _ = tiny
    path = tmp_path / f"{spec.name}.gz"
    path.write_bytes(gzip.compress(data[:-5]))
    with pytest.raises(MNISTError, match="truncated") as info:
        load_idx_files(tmp_path, [spec])
    assert str(path) in str(info.value)
    assert path.exists()


# --- real MNIST ----------------------------------------------------------------


@pytest.fixture(scope="module")
def real_mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    root = os.environ.get("TINYGRAD_CNN_DATA")
    if not root:
        pytest.skip("TINYGRAD_CNN_DATA is not set")
    for spec in mnist.MNIST_FILES:
        if not any((Path(root) / f"{spec.name}{ext}").is_file() for ext in ("", ".gz")):
            pytest.skip(f"{spec.name} not found in {root}")
    return load_mnist(root)


def test_real_mnist_contents(real_mnist: tuple[np.ndarray, ...]) -> None:
    x_train, y_train, x_test, y_test = real_mnist
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and x_test.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.int64
    assert y_test.shape == (10000,) and y_test.dtype == np.int64
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(y_train).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert np.bincount(y_test).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]


def test_real_mnist_normalized_is_standardised(
    real_mnist: tuple[np.ndarray, ...],
) -> None:
    x = normalize(real_mnist[0])
    assert x.dtype == np.float32 and x.shape == (60000, 1, 28, 28)
    # MNIST_MEAN/STD are the training statistics rounded to 4 digits, so the
    # result is standardised to within that rounding.
    assert abs(float(x.mean(dtype=np.float64))) < 1e-3
    assert abs(float(x.std(dtype=np.float64)) - 1.0) < 1e-3


# --- normalize ------------------------------------------------------------------


def test_normalize_values_and_shape() -> None:
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    out = normalize(images)
    assert out.dtype == np.float32 and out.shape == (1, 1, 2, 2)
    expected = (images.astype(np.float64) / 255 - MNIST_MEAN) / MNIST_STD
    np.testing.assert_allclose(out[:, 0], expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        normalize(images, mean=0.5, std=0.5)[0, 0, 0], [-1.0, 1.0], atol=1e-6
    )


def test_normalize_has_no_float64_temporaries() -> None:
    images = np.zeros((2000, 28, 28), dtype=np.uint8)
    tracemalloc.start()
    try:
        out = normalize(images)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A float64 copy alone would be twice the float32 output.
    assert peak < 1.5 * out.nbytes


@pytest.mark.parametrize(
    "bad", [np.zeros((2, 28, 28), np.float32), np.zeros((28, 28), np.uint8)]
)
def test_normalize_rejects_bad_input(bad: np.ndarray) -> None:
    with pytest.raises(
        ValueError, match=r"images: expected a uint8 array of shape \(N, H, W\)"
    ):
        normalize(bad)


# --- DataLoader --------------------------------------------------------------------


def epoch(loader: DataLoader) -> list[int]:
    return np.concatenate([xb for xb, _ in loader]).tolist()


@pytest.mark.parametrize(
    ("n", "drop_last", "sizes"),
    [
        (10, False, [3, 3, 3, 1]),
        (10, True, [3, 3, 3]),
        (9, False, [3, 3, 3]),
        (9, True, [3, 3, 3]),
        (2, True, []),
        (0, False, []),
    ],
)
def test_loader_batch_counts(n: int, drop_last: bool, sizes: list[int]) -> None:
    loader = DataLoader(np.arange(n), np.arange(n), batch_size=3, drop_last=drop_last)
    assert len(loader) == len(sizes)
    assert [len(xb) for xb, _ in loader] == sizes


def test_loader_unshuffled_order_and_transform() -> None:
    x = np.arange(7)
    loader = DataLoader(x, x * 10, batch_size=4, transform=lambda xb: xb + 100)
    batches = list(loader)
    assert [xb.tolist() for xb, _ in batches] == [[100, 101, 102, 103], [104, 105, 106]]
    assert [yb.tolist() for _, yb in batches] == [[0, 10, 20, 30], [40, 50, 60]]


def test_loader_shuffled_epoch_sees_every_sample_once_with_its_label() -> None:
    x = np.arange(103)
    loader = DataLoader(x, x * 2, batch_size=10, shuffle=True, seed=0)
    seen = []
    for xb, yb in loader:
        np.testing.assert_array_equal(yb, xb * 2)
        seen.extend(xb.tolist())
    assert sorted(seen) == x.tolist()
    assert seen != x.tolist()


def test_loader_seeded_order_is_reproducible_and_changes_per_epoch() -> None:
    def run(seed: int) -> list[list[int]]:
        loader = DataLoader(
            np.arange(50), np.arange(50), batch_size=8, shuffle=True, seed=seed
        )
        return [epoch(loader) for _ in range(3)]

    first = run(1)
    assert run(1) == first
    assert run(2) != first
    assert first[0] != first[1] != first[2]


def test_loader_state_dict_round_trip_resumes_identically() -> None:
    x = np.arange(40)
    loader = DataLoader(x, x, batch_size=6, shuffle=True, seed=3)
    epoch(loader)
    saved = json.dumps(loader.state_dict())  # must be storable without pickle
    expected = [epoch(loader) for _ in range(2)]

    resumed = DataLoader(x, x, batch_size=6, shuffle=True, seed=99)
    resumed.load_state_dict(json.loads(saved))
    assert [epoch(resumed) for _ in range(2)] == expected


def test_loader_state_advances_when_iteration_starts() -> None:
    loader = DataLoader(
        np.arange(10), np.arange(10), batch_size=4, shuffle=True, seed=0
    )
    before = loader.state_dict()
    iter(loader)
    assert loader.state_dict() != before


def test_loader_rejects_foreign_state() -> None:
    loader = DataLoader(np.arange(4), np.arange(4), shuffle=True, seed=0)
    state = np.random.Generator(np.random.MT19937(0)).bit_generator.state
    with pytest.raises(
        ValueError, match="state: expected the state of a PCG64 generator"
    ):
        loader.load_state_dict(state)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, "8"])
def test_loader_rejects_bad_batch_size(batch_size: object) -> None:
    with pytest.raises(ValueError) as info:
        DataLoader(np.arange(4), np.arange(4), batch_size=batch_size)  # type: ignore[arg-type]
    assert f"batch_size: expected an integer >= 1, got {batch_size!r}" in str(
        info.value
    )


def test_loader_rejects_length_mismatch() -> None:
    with pytest.raises(ValueError) as info:
        DataLoader(np.zeros((5, 2)), np.zeros(4))
    assert (
        "x, y: expected the same number of samples, got len(x)=5 and len(y)=4"
        in str(info.value)
    )
