"""Datasets with the constructors of ``torchvision.datasets``, read from the verified files of
:mod:`tinygrad_cnn.data`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..autograd import Tensor
from ..data.mnist import ENV_VAR, MNIST_FILES, has_idx_files, load_idx_files, resolve_data_dir
from ..utils.data import Dataset
from ..utils.data._checks import check_index, check_indices
from .transforms import batch_form


class MNIST(Dataset):
    """The MNIST digits: ``dataset[i]`` is ``(image, label)``, 60000 training or 10000 test samples.

    Without a transform the image is a uint8 numpy array of shape (28, 28) (torchvision gives a PIL image;
    ``transforms.ToTensor()`` turns either into a float32 Tensor (1, 28, 28) in [0, 1]); the label is an int.

    The four files are looked for (raw or ``.gz``) in ``$TINYGRAD_CNN_DATA`` if set, then ``root/MNIST/raw``
    (torchvision's layout), then ``root``, then the download cache of ``tinygrad-cnn train``; every file is
    verified (dimensions and MD5) before use. With ``download=True`` missing files are downloaded into
    ``root/MNIST/raw``.

    With ``transform`` None or a ``Compose`` of ``ToTensor`` and ``Normalize``, and no ``target_transform``,
    a :class:`~tinygrad_cnn.utils.data.DataLoader` builds each batch in one vectorised step: images (B, 1, 28,
    28), labels int64 (B,), equal to collating the samples one by one.

    Attributes:
        data: uint8 Tensor (N, 28, 28) of all images.
        targets: int64 Tensor (N,) of all labels.

    Raises:
        RuntimeError: The files are in none of those places and ``download`` is False.
        MNISTError: A file found is invalid, or downloading failed.
    """

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]

    def __init__(self, root: str | os.PathLike[str] | None, train: bool = True,
                 transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[int], Any] | None = None, download: bool = False) -> None:
        for name, fn in (("transform", transform), ("target_transform", target_transform)):
            if fn is not None and not callable(fn):
                raise TypeError(f"MNIST: {name} must be callable or None, got {fn!r}")
        self.root = root
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        specs = MNIST_FILES[:2] if train else MNIST_FILES[2:]
        directory = self._find(specs, download)
        images, labels = load_idx_files(directory, specs)
        self.data = Tensor(images)
        self.targets = Tensor(labels.astype(np.int64))

    def _find(self, specs: Any, download: bool) -> Path:
        """The first place holding the files, or ``root/MNIST/raw`` to download into."""
        raw = None if self.root is None else Path(self.root).expanduser() / "MNIST" / "raw"
        places = [Path(os.environ[ENV_VAR]).expanduser()] if os.environ.get(ENV_VAR) else []
        places += [] if raw is None else [raw, raw.parent.parent]
        places.append(resolve_data_dir())
        for place in places:
            if has_idx_files(place, specs):
                return place
        if download and raw is not None:
            return raw
        names = ", ".join(spec.name for spec in specs)
        raise RuntimeError(f"MNIST: dataset not found: {names} (raw or .gz) are in none of "
                           f"{', '.join(str(p) for p in places)}. Use download=True (with a root) to download "
                           f"it, or point {ENV_VAR} at a directory holding the files")

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        i = check_index("MNIST", index, len(self))
        img: Any = self.data.numpy()[i]
        target: Any = int(self.targets.numpy()[i])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __getbatch__(self, indices: np.ndarray) -> list[Tensor] | Any:
        """``[images, labels]`` for the samples at ``indices`` (int array (B,)) in one step, as collating
        ``self[i]`` one by one gives; ``NotImplemented`` when a transform must run sample by sample."""
        transform = (lambda batch: batch) if self.transform is None else batch_form(self.transform)
        if transform is None or self.target_transform is not None or type(self).__getitem__ is not \
                MNIST.__getitem__:
            return NotImplemented
        check_indices("MNIST", indices, len(self))
        images = transform(self.data.numpy()[indices])
        return [images if isinstance(images, Tensor) else Tensor(images), Tensor(self.targets.numpy()[indices])]

    def __repr__(self) -> str:
        split = "Train" if self.train else "Test"
        return (f"Dataset MNIST\n    Number of datapoints: {len(self)}\n    Root location: {self.root}\n"
                f"    Split: {split}\n    Transform: {self.transform!r}")
