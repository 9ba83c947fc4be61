"""Adversarial data-pipeline cases: DataLoader batch counts and shapes for every batch size / drop_last
against torch.utils.data, collation of nested and mixed samples, dataset indexing at the edges,
random_split lengths, samplers, vision transforms at the edges, and crafted IDX files (every one must be
an MNISTError naming the problem, never a MemoryError, numpy error or silently wrong array)."""

from __future__ import annotations

import contextlib
import gzip

import numpy as np
import pytest

import tinygrad_cnn as tg
import tinygrad_cnn.utils.data as D
import tinygrad_cnn.vision.transforms as T
from tinygrad_cnn.data.mnist import MNISTError, read_idx

torch = pytest.importorskip("torch")
TD = torch.utils.data

X = np.arange(20, dtype=np.float32).reshape(10, 2)
Y = np.arange(10)


def _shapes(loader) -> list:
    return [tuple(tuple(t.shape) for t in batch) for batch in loader]


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("batch_size", [1, 3, 4, 10, 11])
def test_batches_have_pytorchs_count_and_shapes(batch_size: int, drop_last: bool) -> None:
    ours = D.DataLoader(D.TensorDataset(tg.tensor(X), tg.tensor(Y)), batch_size=batch_size, drop_last=drop_last)
    theirs = TD.DataLoader(TD.TensorDataset(torch.tensor(X), torch.tensor(Y)), batch_size=batch_size,
                           drop_last=drop_last)
    assert len(ours) == len(theirs)
    assert _shapes(ours) == _shapes(theirs)
    for (ox, oy), (tx, ty) in zip(ours, theirs):
        np.testing.assert_array_equal(ox.data, tx.numpy())
        np.testing.assert_array_equal(oy.data, ty.numpy())


def _as_plain(batch):
    """Collated batches of both libraries as nested lists/dicts of numpy arrays."""
    if isinstance(batch, dict):
        return {k: _as_plain(v) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return [_as_plain(v) for v in batch]
    if isinstance(batch, tg.Tensor):
        return ("tensor", batch.data.dtype.name, batch.data.tolist())
    if isinstance(batch, torch.Tensor):
        return ("tensor", str(batch.dtype).replace("torch.", ""), batch.numpy().tolist())
    return batch


SAMPLES = {
    "dict-of-tuple": [{"a": np.float32(1.5), "b": (np.zeros(2), 3)}] * 4,
    "python-scalars": [(True, 1, 1.5)] * 4,
    "strings": ["a", "b", "c", "d"],
    "numpy-images": [np.full((1, 2, 2), i, np.uint8) for i in range(4)],
    "nested-lists": [[np.float64(i), [i, i + 1]] for i in range(4)],
    "int32-arrays": [np.array([i, -i], np.int32) for i in range(4)],
}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_default_collate_matches_pytorch(name: str) -> None:
    samples = SAMPLES[name]
    ours = next(iter(D.DataLoader(samples, batch_size=3)))
    theirs = next(iter(TD.DataLoader(samples, batch_size=3)))
    assert _as_plain(ours) == _as_plain(theirs)


def test_collating_ragged_samples_raises_like_pytorch() -> None:
    samples = [np.zeros(2), np.zeros(3)]
    with pytest.raises(RuntimeError):
        next(iter(TD.DataLoader(samples, batch_size=2)))
    with pytest.raises(RuntimeError, match="equal size"):
        next(iter(D.DataLoader(samples, batch_size=2)))


def test_batch_size_none_yields_samples_like_pytorch() -> None:
    assert [int(v) for v in D.DataLoader(range(3), batch_size=None)] == [
        int(v) for v in TD.DataLoader(range(3), batch_size=None)]


@pytest.mark.parametrize("n, lengths", [(10, [0.3, 0.3, 0.4]), (7, [0.5, 0.5]), (5, [0.1, 0.1, 0.8]), (10, [3, 7]),
                                        (3, [0.34, 0.33, 0.33]), (0, [0.5, 0.5])])
def test_random_split_lengths_match_pytorch(n: int, lengths) -> None:
    ours = D.random_split(range(n), lengths)
    with pytest.warns(UserWarning) if 0 in [len(s) for s in ours] else contextlib.nullcontext():
        theirs = TD.random_split(range(n), lengths, generator=torch.Generator().manual_seed(0))
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    assert sorted(i for s in ours for i in s) == list(range(n))


@pytest.mark.parametrize("lengths", [[3, 3], [11, -1], [0.5, 0.6], [0.5, 0.4]])
def test_random_split_bad_lengths_raise(lengths) -> None:
    """As PyTorch, except that a negative length (which PyTorch accepts when the sum fits) is refused too."""
    if min(lengths) >= 0:
        with pytest.raises(ValueError):
            TD.random_split(range(10), lengths)
    with pytest.raises(ValueError, match="random_split"):
        D.random_split(range(10), lengths)


INDEXING = {
    "concat-last": (lambda lib: lib.ConcatDataset([range(3), range(4)])[-1]),
    "concat-first-of-second": (lambda lib: lib.ConcatDataset([range(3), range(4)])[3]),
    "concat-with-empty": (lambda lib: lib.ConcatDataset([range(0), range(2), range(0), range(3)])[2]),
    "subset-negative": (lambda lib: lib.Subset(range(10), [4, 2])[-1]),
    "subset-len": (lambda lib: len(lib.Subset(range(10), [4, 2, 2]))),
}


@pytest.mark.parametrize("name", list(INDEXING))
def test_dataset_indexing_at_the_edges_matches_pytorch(name: str) -> None:
    assert INDEXING[name](D) == INDEXING[name](TD)


@pytest.mark.parametrize("index", [7, -8, 100])
def test_concat_dataset_out_of_range_raises_index_error(index: int) -> None:
    with pytest.raises((IndexError, ValueError)):
        TD.ConcatDataset([range(3), range(4)])[index]
    with pytest.raises(IndexError, match="out of range"):
        D.ConcatDataset([range(3), range(4)])[index]


def test_tensor_dataset_of_mismatched_lengths_is_refused() -> None:
    with pytest.raises(AssertionError):
        TD.TensorDataset(torch.tensor(X), torch.tensor(Y[:5]))
    with pytest.raises(ValueError, match="size mismatch"):
        D.TensorDataset(tg.tensor(X), tg.tensor(Y[:5]))


def test_batch_sampler_and_random_sampler_counts_match_pytorch() -> None:
    assert list(D.BatchSampler(D.SequentialSampler(range(7)), 3, False)) == list(
        TD.BatchSampler(TD.SequentialSampler(range(7)), 3, False))
    assert list(D.BatchSampler(D.SequentialSampler(range(7)), 3, True)) == list(
        TD.BatchSampler(TD.SequentialSampler(range(7)), 3, True))
    ours = list(D.RandomSampler(range(5), num_samples=12))
    assert len(ours) == len(list(TD.RandomSampler(range(5), num_samples=12))) == 12
    assert sorted(ours[:5]) == list(range(5)) and sorted(ours[5:10]) == list(range(5))  # whole permutations
    assert set(D.RandomSampler(range(5), replacement=True, num_samples=50)) <= set(range(5))


def test_shuffling_visits_every_sample_once_per_epoch() -> None:
    loader = D.DataLoader(D.TensorDataset(tg.tensor(Y)), batch_size=3, shuffle=True)
    for _ in range(3):
        seen = np.concatenate([b[0].data for b in loader])
        assert sorted(seen.tolist()) == list(range(10))


# ---- transforms ---------------------------------------------------------------------------------------------------

def test_to_tensor_scales_uint8_and_moves_channels_first() -> None:
    image = np.arange(24, dtype=np.uint8).reshape(2, 3, 4) * 10
    out = T.ToTensor()(image)
    assert out.shape == (4, 2, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out.data, image.transpose(2, 0, 1).astype(np.float32) / np.float32(255))
    assert T.ToTensor()(np.full((2, 3), 255, np.uint8)).shape == (1, 2, 3)


@pytest.mark.parametrize("mean, std, channels, error", [([0.5], [0.0], 1, ValueError),
                                                        ([0.5, 0.5], [1.0, 1.0], 3, ValueError)])
def test_normalize_refuses_zero_std_and_wrong_channel_counts(mean, std, channels, error) -> None:
    with pytest.raises(error):
        T.Normalize(mean, std)(tg.tensor(np.ones((channels, 2, 2), np.float32)))


def test_normalize_matches_the_formula_per_channel_on_batches() -> None:
    x = np.random.default_rng(0).random((5, 2, 3, 3)).astype(np.float32)
    out = T.Normalize([0.5, 0.1], [0.25, 2.0])(tg.tensor(x)).data
    expected = (x - np.array([0.5, 0.1], np.float32)[:, None, None]) / np.array([0.25, 2.0], np.float32)[:, None, None]
    np.testing.assert_allclose(out, expected, rtol=1e-6)


# ---- crafted IDX files ------------------------------------------------------------------------------------------

def _idx(type_code: int, shape, payload: bytes | None = None, dtype=np.uint8) -> bytes:
    header = bytes([0, 0, type_code, len(shape)]) + b"".join(int(d).to_bytes(4, "big") for d in shape)
    if payload is None:
        payload = np.zeros(int(np.prod(shape)), dtype=np.dtype(dtype).newbyteorder(">")).tobytes()
    return header + payload


GOOD = _idx(0x08, (2, 3, 3))
CRAFTED = {
    "empty-file": b"",
    "three-bytes": b"\0\0\x08",
    "non-zero-magic-prefix": b"\x01" + GOOD[1:],
    "unknown-type-code": _idx(0x07, (2, 3)),
    "truncated-header": GOOD[:9],
    "truncated-data": GOOD[:-1],
    "trailing-bytes": GOOD + b"\0",
    "huge-declared-shape": _idx(0x08, (2**32 - 1, 2**32 - 1, 2**32 - 1), payload=b"\0" * 16),
    "255-dimensions": bytes([0, 0, 0x08, 255]) + b"\0\0\0\x01" * 10,
    "corrupt-gzip": gzip.compress(GOOD)[:-6] + b"\xff" * 6,
    "truncated-gzip": gzip.compress(GOOD)[:20],
    "gzip-of-garbage": gzip.compress(b"not an idx file at all"),
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_idx_files_raise_mnist_error(name: str, tmp_path) -> None:
    path = tmp_path / "crafted-idx"
    path.write_bytes(CRAFTED[name])
    with pytest.raises(MNISTError, match="crafted-idx"):
        read_idx(path)


@pytest.mark.parametrize("type_code, dtype", [(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32),
                                              (0x0D, np.float32), (0x0E, np.float64)])
def test_every_idx_element_type_round_trips_big_endian(type_code: int, dtype, tmp_path) -> None:
    values = (np.arange(12).reshape(3, 4) - 5).astype(dtype)
    path = tmp_path / "x.idx.gz"
    big_endian = values.astype(np.dtype(dtype).newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(_idx(type_code, values.shape, big_endian)))
    out = read_idx(path)
    assert out.dtype == dtype and out.flags.writeable
    np.testing.assert_array_equal(out, values)


def test_wrong_expected_magic_and_shape_are_named(tmp_path) -> None:
    path = tmp_path / "images"
    path.write_bytes(GOOD)
    with pytest.raises(MNISTError, match="magic"):
        read_idx(path, expected_magic=2049)
    with pytest.raises(MNISTError, match="dimensions"):
        read_idx(path, expected_shape=(2, 3, 4))
    with pytest.raises(MNISTError, match="checksum"):
        read_idx(path, expected_md5="0" * 32)
