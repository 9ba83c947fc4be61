"""torchvision's ``datasets.MNIST`` and ``transforms`` (Compose, ToTensor, Normalize) for PyTorch runs of these
examples on machines without torchvision.

Same files and checks as ``tinygrad_cnn.vision.datasets.MNIST``, and torchvision's arithmetic: uint8 images to
float32 divided by 255, then ``(x - mean) / std`` in float32. One difference: images are numpy arrays, where
torchvision makes a PIL image of each first, which costs it some time per image.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from tinygrad_cnn.vision import datasets as tinygrad_datasets


class MNIST(torch.utils.data.Dataset):
    """``torchvision.datasets.MNIST``: ``dataset[i]`` is ``(image, label)``; ``data`` (N, 28, 28) uint8 and
    ``targets`` (N,) int64 are torch tensors."""

    def __init__(self, root: str | os.PathLike[str], train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = False) -> None:
        source = tinygrad_datasets.MNIST(root, train=train, download=download)
        self.data = torch.from_numpy(source.data.numpy())
        self.targets = torch.from_numpy(source.targets.numpy())
        self.transform, self.target_transform = transform, target_transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        img, target = self.data[index].numpy(), int(self.targets[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target


class Compose:
    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)

    def __call__(self, img: Any) -> Any:
        for t in self.transforms:
            img = t(img)
        return img


class ToTensor:
    """(H, W) or (H, W, C) numpy array to a (C, H, W) tensor, uint8 scaled to float32 in [0, 1]."""

    def __call__(self, pic: np.ndarray) -> torch.Tensor:
        img = torch.from_numpy(pic[:, :, None] if pic.ndim == 2 else pic).permute(2, 0, 1).contiguous()
        return img.float().div(255) if img.dtype == torch.uint8 else img


class Normalize:
    """``(x - mean[c]) / std[c]`` per channel of a (..., C, H, W) tensor."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = mean, std

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        mean = torch.as_tensor(self.mean, dtype=tensor.dtype).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=tensor.dtype).view(-1, 1, 1)
        return tensor.sub(mean).div(std)


datasets = SimpleNamespace(MNIST=MNIST)
transforms = SimpleNamespace(Compose=Compose, ToTensor=ToTensor, Normalize=Normalize)
