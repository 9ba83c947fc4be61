"""tinygrad_cnn.vision: transforms (against hand-computed values and torch's float32 arithmetic), the batched
transform path against the per-sample one, and datasets.MNIST (file lookup on stand-in files, the real data
when TINYGRAD_CNN_DATA has it)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from test_data import idx_bytes, md5

import tinygrad_cnn
from tinygrad_cnn import Tensor
from tinygrad_cnn.data import mnist
from tinygrad_cnn.data.mnist import IdxSpec
from tinygrad_cnn.utils.data import DataLoader, Subset, default_collate
from tinygrad_cnn.vision import datasets, transforms
from tinygrad_cnn.vision.transforms import batch_form

MEAN, STD = (0.1307,), (0.3081,)


def rgb(n: int = 3) -> np.ndarray:
    """n random uint8 HxWxC images, shape (n, 5, 4, 3)."""
    return np.random.default_rng(0).integers(0, 256, size=(n, 5, 4, 3), dtype=np.uint8)


# --- transforms -----------------------------------------------------------------------------------------

def test_to_tensor_scales_uint8_and_moves_channels_first() -> None:
    gray = np.array([[0, 255], [51, 102]], dtype=np.uint8)
    t = transforms.ToTensor()(gray)
    assert t.shape == (1, 2, 2) and t.dtype == np.float32
    np.testing.assert_array_equal(t.numpy()[0], np.array([[0, 1], [0.2, 0.4]], dtype=np.float32))
    img = rgb(1)[0]
    t = transforms.ToTensor()(img)
    assert t.shape == (3, 5, 4) and t.numpy().flags.c_contiguous
    assert t.numpy()[2, 4, 1] == np.float32(img[4, 1, 2]) / np.float32(255)


def test_to_tensor_keeps_other_dtypes_unscaled() -> None:
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = transforms.ToTensor()(x)
    assert t.dtype == np.float64 and t.shape == (1, 2, 3)
    np.testing.assert_array_equal(t.numpy()[0], x)


def test_to_tensor_rejects_bad_input() -> None:
    with pytest.raises(TypeError, match="ToTensor: pic should be a PIL Image or ndarray, got list"):
        transforms.ToTensor()([[1, 2]])
    with pytest.raises(ValueError, match=r"ToTensor: pic should be 2 or 3 dimensional.*\(1, 2, 3, 4\)"):
        transforms.ToTensor()(np.zeros((1, 2, 3, 4), np.uint8))


def test_normalize_per_channel() -> None:
    x = Tensor(np.arange(12, dtype=np.float32).reshape(3, 2, 2))
    out = transforms.Normalize((1.0, 2.0, 3.0), (2.0, 4.0, 0.5))(x).numpy()
    np.testing.assert_array_equal(out[0], (np.arange(4).reshape(2, 2) - 1) / 2)
    np.testing.assert_array_equal(out[2], (np.arange(8, 12).reshape(2, 2) - 3) / 0.5)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(x.numpy(), np.arange(12, dtype=np.float32).reshape(3, 2, 2))  # not in place
    same = transforms.Normalize((1.0,), (2.0,), inplace=True)(x)
    assert same is x and x.numpy()[0, 0, 0] == -0.5


def test_normalize_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"std \(1.0, 0.0\) evaluated to zero"):
        transforms.Normalize((0.0, 0.0), (1.0, 0.0))(Tensor(np.ones((2, 1, 1), np.float32)))
    with pytest.raises(TypeError, match="should be a float tensor, got uint8"):
        transforms.Normalize(MEAN, STD)(Tensor(np.ones((1, 2, 2), np.uint8)))
    with pytest.raises(ValueError, match=r"shape \(..., C, H, W\), got shape \(2, 2\)"):
        transforms.Normalize(MEAN, STD)(Tensor(np.ones((2, 2), np.float32)))
    with pytest.raises(ValueError, match="mean has 2 values for 3 channels"):
        transforms.Normalize((0.0, 1.0), (1.0,))(Tensor(np.ones((3, 2, 2), np.float32)))
    with pytest.raises(TypeError, match="Normalize: expected a Tensor, got ndarray"):
        transforms.Normalize(MEAN, STD)(np.ones((1, 2, 2), np.float32))


def test_to_tensor_normalize_bit_equal_to_torch_float32() -> None:
    """torchvision computes img.float().div(255), then sub(mean).div(std) with mean, std as float32."""
    torch = pytest.importorskip("torch")
    imgs = rgb(4)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    ours = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)]).apply_batch(imgs)
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div(255)
    theirs = x.sub(torch.tensor(mean).view(-1, 1, 1)).div(torch.tensor(std).view(-1, 1, 1))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_apply_batch_equals_stacked_samples() -> None:
    imgs = rgb(5)
    compose = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5, 0.4, 0.3), (0.2, 0.3, 0.4))])
    batched = batch_form(compose)
    assert batched is not None
    per_sample = np.stack([compose(img).numpy() for img in imgs])
    np.testing.assert_array_equal(batched(imgs).numpy(), per_sample)
    gray = imgs[..., 0]
    np.testing.assert_array_equal(transforms.ToTensor().apply_batch(gray).numpy(),
                                  np.stack([transforms.ToTensor()(g).numpy() for g in gray]))


def test_batch_form_only_for_known_exact_transforms() -> None:
    class Brighter(transforms.ToTensor):
        def __call__(self, pic: np.ndarray) -> Tensor:
            return Tensor(super().__call__(pic).numpy() * 2)

    double = transforms.Lambda(lambda t: t)
    assert batch_form(transforms.ToTensor()) is not None
    assert batch_form(double) is None and batch_form(Brighter()) is None
    assert batch_form(transforms.Compose([transforms.ToTensor(), double])) is None
    with pytest.raises(TypeError, match="Lambda"):
        transforms.Compose([double]).apply_batch(rgb())
    with pytest.raises(TypeError, match="Lambda: argument should be callable, got int"):
        transforms.Lambda(3)
    with pytest.raises(TypeError, match="Compose: transform 1 is not callable"):
        transforms.Compose([double, 3])


# --- MNIST on stand-in files ----------------------------------------------------------------------------

def stand_in(directory: Path, n: int = 7, seed: int = 1) -> tuple[list[IdxSpec], np.ndarray, np.ndarray]:
    """Write n random 28x28 images and labels as gzip-less IDX files standing in for MNIST's training pair."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    specs = []
    for name, magic, array in (("train-images-idx3-ubyte", 2051, images), ("train-labels-idx1-ubyte", 2049, labels)):
        data = idx_bytes(array)
        (directory / name).write_bytes(data)
        specs.append(IdxSpec(name, magic, array.shape, md5(data)))
    return specs, images, labels


@pytest.fixture
def fake_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, np.ndarray, np.ndarray]:
    """Stand-in training files in tmp_path/root/MNIST/raw, and no TINYGRAD_CNN_DATA, cache or network."""
    specs, images, labels = stand_in(tmp_path / "root" / "MNIST" / "raw")
    monkeypatch.setattr(datasets, "MNIST_FILES", (*specs, *mnist.MNIST_FILES[2:]))
    monkeypatch.delenv(mnist.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(mnist, "_fetch", lambda url: pytest.fail(f"tried to fetch {url}"))
    return tmp_path / "root", images, labels


def test_mnist_items(fake_mnist: tuple[Path, np.ndarray, np.ndarray]) -> None:
    root, images, labels = fake_mnist
    ds = datasets.MNIST(root, train=True)
    img, target = ds[2]
    assert isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.shape == (28, 28)
    np.testing.assert_array_equal(img, images[2])
    assert type(target) is int and target == labels[2] and len(ds) == 7
    assert ds.data.dtype == np.uint8 and ds.targets.dtype == np.int64
    with pytest.raises(IndexError, match="MNIST: index 7 is out of range for a dataset of 7 samples"):
        ds[7]
    ds = datasets.MNIST(root, transform=transforms.ToTensor(), target_transform=lambda y: y + 10)
    img, target = ds[-1]
    assert img.shape == (1, 28, 28) and img.dtype == np.float32 and target == labels[-1] + 10


@pytest.mark.parametrize("transform", [None, transforms.ToTensor(),
                                       transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])])
def test_mnist_vectorised_batches_equal_per_sample(fake_mnist: tuple[Path, np.ndarray, np.ndarray],
                                                   transform: transforms.Compose | None) -> None:
    ds = datasets.MNIST(fake_mnist[0], transform=transform)
    for dataset in (ds, Subset(ds, [6, 0, 3, 3, 5])):
        fast = list(DataLoader(dataset, batch_size=3))
        slow = list(DataLoader(dataset, batch_size=3, collate_fn=lambda b: default_collate(b)))
        assert len(fast) == len(slow)
        for (xf, yf), (xs, ys) in zip(fast, slow, strict=True):
            assert xf.dtype == xs.dtype and yf.dtype == ys.dtype == np.int64
            np.testing.assert_array_equal(xf.numpy(), xs.numpy())
            np.testing.assert_array_equal(yf.numpy(), ys.numpy())


def test_mnist_per_sample_transforms_still_run(fake_mnist: tuple[Path, np.ndarray, np.ndarray]) -> None:
    root, images, labels = fake_mnist
    calls = []
    flip = transforms.Lambda(lambda t: calls.append(1) or Tensor(t.numpy()[:, :, ::-1].copy()))
    ds = datasets.MNIST(root, transform=transforms.Compose([transforms.ToTensor(), flip]),
                        target_transform=lambda y: y * 2)
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert len(calls) == 4 and xb.shape == (4, 1, 28, 28)
    np.testing.assert_array_equal(xb.numpy()[:, 0], images[:4, :, ::-1] / np.float32(255))
    np.testing.assert_array_equal(yb.numpy(), labels[:4].astype(np.int64) * 2)


def test_mnist_lookup_order(fake_mnist: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    root, images, _ = fake_mnist
    assert (datasets.MNIST(root).data.numpy() == images).all()  # root/MNIST/raw
    flat = tmp_path / "flat"
    specs, flat_images, _ = stand_in(flat, seed=2)
    monkeypatch.setattr(datasets, "MNIST_FILES", (*specs, *mnist.MNIST_FILES[2:]))
    monkeypatch.setenv(mnist.ENV_VAR, str(flat))  # comes first: root/MNIST/raw's files would fail the checksums
    assert (datasets.MNIST(root).data.numpy() == flat_images).all()
    monkeypatch.delenv(mnist.ENV_VAR)
    assert (datasets.MNIST(flat).data.numpy() == flat_images).all()  # root itself


def test_mnist_missing_and_download(fake_mnist: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root, images, labels = fake_mnist
    empty = tmp_path / "empty"
    with pytest.raises(RuntimeError, match=r"MNIST: dataset not found.*empty.*download=True"):
        datasets.MNIST(empty)
    served = {f"https://a.test/{p.name}.gz": p.read_bytes() for p in (root / "MNIST" / "raw").iterdir()}
    monkeypatch.setattr(mnist, "MIRRORS", ["https://a.test/"])
    monkeypatch.setattr(mnist, "_fetch", served.__getitem__)
    ds = datasets.MNIST(empty, download=True)
    assert (ds.data.numpy() == images).all() and (empty / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_mnist_rejects_bad_transform(fake_mnist: tuple[Path, np.ndarray, np.ndarray]) -> None:
    with pytest.raises(TypeError, match="MNIST: transform must be callable or None, got 3"):
        datasets.MNIST(fake_mnist[0], transform=3)


# --- the real MNIST -------------------------------------------------------------------------------------

def real_data_dir() -> str:
    directory = os.environ.get(mnist.ENV_VAR, "")
    if not directory or not mnist.has_idx_files(directory, mnist.MNIST_FILES):
        pytest.skip(f"set {mnist.ENV_VAR} to a directory with the MNIST files")
    return directory


def test_real_mnist_batches() -> None:
    real_data_dir()
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    train, test = datasets.MNIST("unused", transform=tf), datasets.MNIST("unused", train=False, transform=tf)
    assert (len(train), len(test)) == (60000, 10000)
    assert train[0][1] == 5 and test[0][1] == 7  # the first digits of each file, as widely documented
    x = tf.apply_batch(train.data.numpy()).numpy()
    assert abs(x.mean()) < 1e-3 and abs(x.std() - 1) < 1e-3  # mean and std are the training set's own
    np.testing.assert_allclose(x[:100], mnist.normalize(train.data.numpy()[:100]), atol=1e-5)
    tinygrad_cnn.manual_seed(0)
    loader = DataLoader(train, batch_size=64, shuffle=True)
    xb, yb = next(iter(loader))
    assert (xb.shape, xb.dtype, yb.shape, yb.dtype) == ((64, 1, 28, 28), np.float32, (64,), np.int64)
    assert len(loader) == 938
    np.testing.assert_array_equal(default_collate([train[i] for i in [0, 1]])[0].numpy(), x[:2])
