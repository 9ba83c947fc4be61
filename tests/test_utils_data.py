"""tinygrad_cnn.utils.data: collation, datasets, samplers, DataLoader and random_split.

torch.utils.data is the oracle where it can be (collated structure and dtypes, batch counts, split lengths);
the rest is checked against hand-computed expectations.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np
import pytest

import tinygrad_cnn
from tinygrad_cnn import Tensor
from tinygrad_cnn.rng import get_rng_state
from tinygrad_cnn.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    default_collate,
    random_split,
)

Pair = namedtuple("Pair", "a b")


def as_plain(batch: Any) -> Any:
    """A collated batch with every tensor (ours or torch's) as a numpy array, to compare structure and values."""
    if isinstance(batch, Tensor):
        return batch.numpy()
    if type(batch).__module__.startswith("torch"):
        return batch.numpy()
    if isinstance(batch, dict):
        return {k: as_plain(v) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(as_plain(v) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(as_plain(v) for v in batch)
    return batch


def assert_same(ours: Any, theirs: Any) -> None:
    assert type(ours) is type(theirs), (ours, theirs)
    if isinstance(ours, np.ndarray):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        np.testing.assert_array_equal(ours, theirs)
    elif isinstance(ours, dict):
        assert ours.keys() == theirs.keys()
        for k in ours:
            assert_same(ours[k], theirs[k])
    elif isinstance(ours, (list, tuple)):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            assert_same(a, b)
    else:
        assert ours == theirs


def rows(n: int = 10) -> TensorDataset:
    """Sample i is (a float32 row [i, -i], the int64 label i)."""
    x = np.stack([np.arange(n), -np.arange(n)], axis=1).astype(np.float32)
    return TensorDataset(Tensor(x), Tensor(np.arange(n)))


def labels_of(loader: DataLoader) -> list[list[int]]:
    return [yb.numpy().tolist() for _, yb in loader]


# --- default_collate ------------------------------------------------------------------------------------

SAMPLES = {
    "tuple of array and int": [(np.full((2, 3), i, dtype=np.uint8), i) for i in range(4)],
    "floats and bools": [(float(i) / 3, i % 2 == 0) for i in range(3)],
    "numpy scalars": [np.float32(i) / 7 for i in range(3)],
    "dict with string": [{"x": np.arange(3.0) * i, "name": f"s{i}"} for i in range(2)],
    "namedtuple": [Pair(np.int16(i), [i, 2 * i]) for i in range(3)],
    "nested lists": [[[i, i + 1], np.ones(2, dtype=np.float64) * i] for i in range(3)],
}


@pytest.mark.parametrize("samples", SAMPLES.values(), ids=SAMPLES.keys())
def test_default_collate_matches_torch(samples: list[Any]) -> None:
    torch_data = pytest.importorskip("torch.utils.data")
    assert_same(as_plain(default_collate(samples)), as_plain(torch_data.default_collate(samples)))


def test_default_collate_stacks_tensors_and_python_numbers() -> None:
    images, labels, weights = default_collate([(Tensor(np.full((1, 2), i, np.float32)), i, 0.5) for i in range(3)])
    assert images.shape == (3, 1, 2) and images.dtype == np.float32
    np.testing.assert_array_equal(images.numpy()[:, 0, 0], [0, 1, 2])
    assert labels.dtype == np.int64 and labels.numpy().tolist() == [0, 1, 2]
    assert weights.dtype == np.float64  # Python floats are doubles, as in torch's default_collate


def test_default_collate_errors() -> None:
    with pytest.raises(RuntimeError, match=r"equal size, but got \[2\] at entry 0 and \[3\] at entry 1"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(RuntimeError, match=r"equal size, got sizes \[1, 2\]"):
        default_collate([(1,), (1, 2)])
    with pytest.raises(TypeError, match="found NoneType"):
        default_collate([None, None])
    with pytest.raises(ValueError, match="non-empty"):
        default_collate([])


# --- datasets ---------------------------------------------------------------------------------------------

def test_tensor_dataset_items_and_errors() -> None:
    ds = rows(5)
    x, y = ds[3]
    assert x.numpy().tolist() == [3.0, -3.0] and y.item() == 3 and y.dtype == np.int64
    assert ds[-1][1].item() == 4 and len(ds) == 5
    with pytest.raises(IndexError, match="TensorDataset: index 5 is out of range for a dataset of 5 samples"):
        ds[5]
    with pytest.raises(IndexError, match="index -6"):
        ds[-6]
    with pytest.raises(ValueError, match="TensorDataset: size mismatch.*tensor 0: 3, tensor 1: 2"):
        TensorDataset(np.zeros((3, 1)), np.zeros(2))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()
    with pytest.raises(TypeError, match="tensor 1 is a list"):
        TensorDataset(np.zeros(2), [1, 2])


def test_subset_and_concat() -> None:
    ds = rows(6)
    sub = Subset(ds, [4, 0, 2])
    assert [sub[i][1].item() for i in range(3)] == [4, 0, 2] and len(sub) == 3
    with pytest.raises(IndexError, match="Subset: index 3"):
        sub[3]
    both = ds + sub
    assert isinstance(both, ConcatDataset) and len(both) == 9
    assert [both[i][1].item() for i in (5, 6, 8, -1)] == [5, 4, 2, 2]
    with pytest.raises(IndexError, match="ConcatDataset: index 9"):
        both[9]


def test_dataset_without_getitem() -> None:
    with pytest.raises(NotImplementedError, match="Plain: subclasses of Dataset must define __getitem__"):
        type("Plain", (Dataset,), {})()[0]


# --- DataLoader ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, batch_size, drop_last", [(10, 3, False), (10, 3, True), (9, 3, False), (2, 5, False),
                                                       (2, 5, True), (1, 1, False)])
def test_loader_batch_counts_and_order(n: int, batch_size: int, drop_last: bool) -> None:
    loader = DataLoader(rows(n), batch_size=batch_size, drop_last=drop_last)
    full, rest = divmod(n, batch_size)
    expected = [list(range(b * batch_size, (b + 1) * batch_size)) for b in range(full)]
    if rest and not drop_last:
        expected.append(list(range(full * batch_size, n)))
    assert labels_of(loader) == expected and len(loader) == len(expected)
    assert loader.dataset is not None and loader.batch_size == batch_size


def test_loader_len_matches_torch() -> None:
    torch_data = pytest.importorskip("torch.utils.data")
    for n, bs, drop in [(60000, 64, False), (10000, 1000, True), (7, 2, True)]:
        ours = DataLoader(rows(n), batch_size=bs, drop_last=drop)
        theirs = torch_data.DataLoader(range(n), batch_size=bs, drop_last=drop)
        assert len(ours) == len(theirs)


def test_loader_batches_have_torch_dtypes() -> None:
    images = np.random.default_rng(0).random((8, 1, 4, 4)).astype(np.float32)
    xb, yb = next(iter(DataLoader(TensorDataset(images, np.arange(8)), batch_size=4)))
    assert isinstance(xb, Tensor) and xb.dtype == np.float32 and xb.shape == (4, 1, 4, 4)
    assert isinstance(yb, Tensor) and yb.dtype == np.int64
    np.testing.assert_array_equal(xb.numpy(), images[:4])


def test_shuffle_visits_each_sample_once_with_its_label() -> None:
    seen = []
    for xb, yb in DataLoader(rows(23), batch_size=4, shuffle=True):
        np.testing.assert_array_equal(xb.numpy()[:, 0], yb.numpy())
        seen += yb.numpy().tolist()
    assert sorted(seen) == list(range(23)) and seen != list(range(23))


def test_shuffle_follows_manual_seed() -> None:
    def two_epochs(seed: int) -> list[list[list[int]]]:
        tinygrad_cnn.manual_seed(seed)
        loader = DataLoader(rows(20), batch_size=5, shuffle=True)
        return [labels_of(loader), labels_of(loader)]

    first = two_epochs(1)
    assert first == two_epochs(1)
    assert first[0] != first[1]  # every epoch a new order
    assert first != two_epochs(2)


def test_generator_drives_shuffle_and_leaves_the_library_generator_alone() -> None:
    tinygrad_cnn.manual_seed(0)
    before = get_rng_state()
    a = labels_of(DataLoader(rows(20), batch_size=5, shuffle=True, generator=np.random.default_rng(7)))
    assert get_rng_state() == before
    b = labels_of(DataLoader(rows(20), batch_size=5, shuffle=True, generator=tinygrad_cnn.Generator().manual_seed(7)))
    assert a == b  # torch.Generator's counterpart draws numpy's stream for its seed


def test_vectorised_batches_equal_item_by_item() -> None:
    """A custom collate_fn disables __getbatch__: both paths must give the same batches."""
    ds = rows(11)
    sub = Subset(ds, [10, 3, 3, 7, 0, -1])
    for dataset in (ds, sub):
        for shuffle in (False, True):
            tinygrad_cnn.manual_seed(3)
            fast = list(DataLoader(dataset, batch_size=4, shuffle=shuffle))
            tinygrad_cnn.manual_seed(3)
            slow = list(DataLoader(dataset, batch_size=4, shuffle=shuffle, collate_fn=lambda b: default_collate(b)))
            assert_same(as_plain(fast), as_plain(slow))


def test_overridden_getitem_is_used() -> None:
    class Doubled(TensorDataset):
        def __getitem__(self, index: int) -> tuple[Tensor, ...]:
            x, y = super().__getitem__(index)
            return x, Tensor(y.numpy() * 2)

    ds = Doubled(np.zeros((4, 1), np.float32), np.arange(4))
    assert labels_of(DataLoader(ds, batch_size=4)) == [[0, 2, 4, 6]]
    assert labels_of(DataLoader(Subset(ds, [3, 1]), batch_size=2)) == [[6, 2]]


def test_getitems_is_used_for_a_batch() -> None:
    class Squares(Dataset):
        calls: list[list[int]] = []

        def __len__(self) -> int:
            return 5

        def __getitems__(self, indices: list[int]) -> list[int]:
            self.calls.append(list(indices))
            return [i * i for i in indices]

    assert [b.numpy().tolist() for b in DataLoader(Squares(), batch_size=3)] == [[0, 1, 4], [9, 16]]
    assert Squares.calls == [[0, 1, 2], [3, 4]]


def test_batch_size_none_and_custom_sampler_and_collate() -> None:
    samples = list(DataLoader(rows(3), batch_size=None))
    assert [y.item() for _, y in samples] == [0, 1, 2]
    loader = DataLoader(rows(6), batch_size=2, sampler=[5, 1, 4], collate_fn=lambda b: [y.item() for _, y in b])
    assert list(loader) == [[5, 1], [4]] and len(loader) == 2
    batches = DataLoader(rows(6), batch_sampler=[[0, 5], [2]])
    assert labels_of(batches) == [[0, 5], [2]]


def test_workers_and_pin_memory_are_accepted() -> None:
    loader = DataLoader(rows(7), batch_size=3, num_workers=2, pin_memory=True, persistent_workers=True,
                        prefetch_factor=2)
    assert labels_of(loader) == [[0, 1, 2], [3, 4, 5], [6]]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"batch_size": 0}, ValueError, "DataLoader: batch_size must be a positive integer or None, got 0"),
    ({"batch_size": -2}, ValueError, "got -2"),
    ({"batch_size": True}, ValueError, "got True"),
    ({"batch_size": 2.0}, ValueError, "got 2.0"),
    ({"num_workers": -1}, ValueError, "num_workers must be a non-negative integer, got -1"),
    ({"sampler": [0], "shuffle": True}, ValueError, "mutually exclusive with shuffle"),
    ({"batch_sampler": [[0]], "batch_size": 2}, ValueError, "batch_sampler option is mutually exclusive"),
    ({"batch_size": None, "drop_last": True}, ValueError, "mutually exclusive with drop_last"),
    ({"prefetch_factor": 2}, ValueError, "prefetch_factor=2 needs num_workers > 0"),
    ({"shuffle": True, "generator": 3}, TypeError, "DataLoader: generator must be a numpy.random.Generator"),
    ({"collate_fn": 3}, TypeError, "collate_fn must be callable"),
])
def test_loader_rejects_bad_arguments_before_drawing(kwargs: dict[str, Any], error: type, message: str) -> None:
    tinygrad_cnn.manual_seed(0)
    before = get_rng_state()
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        DataLoader(rows(4), **kwargs)
    assert get_rng_state() == before


def test_out_of_range_sampler_index_names_the_dataset() -> None:
    with pytest.raises(IndexError, match="TensorDataset: index 9 is out of range for a dataset of 4 samples"):
        list(DataLoader(rows(4), batch_size=2, sampler=[0, 9]))


# --- samplers -------------------------------------------------------------------------------------------

def test_samplers() -> None:
    data = range(5)
    assert list(SequentialSampler(data)) == [0, 1, 2, 3, 4]
    chained = list(RandomSampler(data, num_samples=12, generator=np.random.default_rng(0)))
    assert len(chained) == 12 and sorted(chained[:5]) == sorted(chained[5:10]) == [0, 1, 2, 3, 4]
    drawn = list(RandomSampler(data, replacement=True, num_samples=50, generator=np.random.default_rng(0)))
    assert len(drawn) == 50 and set(drawn) <= set(data) and len(set(drawn)) < 50
    assert sorted(SubsetRandomSampler([7, 3, 9], generator=np.random.default_rng(1))) == [3, 7, 9]
    assert list(BatchSampler(data, 2, drop_last=True)) == [[0, 1], [2, 3]]
    assert len(BatchSampler(data, 2, drop_last=False)) == 3
    with pytest.raises(ValueError, match="BatchSampler: batch_size must be a positive integer, got 0"):
        BatchSampler(data, 0, False)
    with pytest.raises(ValueError, match="RandomSampler: num_samples must be a positive integer, got 0"):
        RandomSampler([])


# --- random_split ---------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:Length of split")
@pytest.mark.parametrize("n, lengths, expected", [
    (10, [3, 7], [3, 7]),
    (10, [0.33, 0.33, 0.34], [4, 3, 3]),  # floors 3, 3, 3; the one left over goes to the first split
    (7, [0.5, 0.5], [4, 3]),
    (5, [1.0, 0.0], [5, 0]),  # torch warns of the empty split
])
def test_random_split_lengths(n: int, lengths: list[float], expected: list[int]) -> None:
    parts = random_split(rows(n), lengths, generator=np.random.default_rng(0))
    assert [len(p) for p in parts] == expected
    labels = [p[i][1].item() for p in parts for i in range(len(p))]
    assert sorted(labels) == list(range(n))
    torch_data = pytest.importorskip("torch.utils.data")
    assert [len(p) for p in torch_data.random_split(range(n), lengths)] == expected


def test_random_split_is_seeded() -> None:
    tinygrad_cnn.manual_seed(5)
    a = [p.indices for p in random_split(rows(12), [0.5, 0.5])]
    tinygrad_cnn.manual_seed(5)
    assert a == [p.indices for p in random_split(rows(12), [0.5, 0.5])]
    g = [p.indices for p in random_split(rows(12), [6, 6], generator=tinygrad_cnn.Generator().manual_seed(1))]
    assert g == [p.indices for p in random_split(rows(12), [6, 6], generator=tinygrad_cnn.Generator().manual_seed(1))]
    assert g != [p.indices for p in random_split(rows(12), [6, 6], generator=tinygrad_cnn.Generator().manual_seed(2))]


@pytest.mark.parametrize("lengths, message", [
    ([3, 3], r"the lengths \[3, 3\] sum to 6, but the dataset has 10 samples"),
    ([11, -1], r"lengths must not be negative, got \[11, -1\]"),
    ([0.5, 0.4], "sample counts .ints. or fractions summing to 1, got"),
    ([1.5, -0.5], "fraction 1.5 is not between 0 and 1"),
    ([], "at least one length"),
])
def test_random_split_rejects_bad_lengths_before_drawing(lengths: list[float], message: str) -> None:
    tinygrad_cnn.manual_seed(0)
    before = get_rng_state()
    with pytest.raises(ValueError, match=f"^random_split: .*{message}"):
        random_split(rows(10), lengths)
    assert get_rng_state() == before
