"""Image transforms with the names and semantics of ``torchvision.transforms``.

Each transform maps one sample. :class:`ToTensor`, :class:`Normalize` and a :class:`Compose` of only those
also have ``apply_batch``, which maps a batch with a leading axis N at once, giving exactly the stack of the
per-sample results; :func:`batch_form` says whether a transform has one, and datasets use it to build whole
batches in one step. Anything else (:class:`Lambda`, a subclass, a user's own callable) runs sample by
sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..autograd import Tensor


class Compose:
    """Apply ``transforms`` one after another."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        for i, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f"Compose: transform {i} is not callable: {t!r}")
        self.transforms = list(transforms)

    def __call__(self, img: Any) -> Any:
        for t in self.transforms:
            img = t(img)
        return img

    def apply_batch(self, batch: Any) -> Any:
        """Apply each transform's ``apply_batch`` in turn (all must have one; see :func:`batch_form`)."""
        for t in self.transforms:
            form = batch_form(t)
            if form is None:
                raise TypeError(f"Compose.apply_batch: {t!r} has no batched form; apply it sample by sample")
            batch = form(batch)
        return batch

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"Compose({inner}\n)"


class ToTensor:
    """An HxW or HxWxC numpy array (or PIL image) to a Tensor of shape (C, H, W).

    uint8 input is scaled to float32 in [0, 1] (divided by 255); other dtypes are kept unscaled, as in
    torchvision.
    """

    def __call__(self, pic: Any) -> Tensor:
        return Tensor(self._convert(self._array(pic)[np.newaxis])[0])

    def apply_batch(self, batch: np.ndarray) -> Tensor:
        """A numpy array (N, H, W) or (N, H, W, C) to a Tensor (N, C, H, W), scaled as one sample is."""
        batch = np.asarray(batch)
        if batch.ndim not in (3, 4):
            raise ValueError(f"ToTensor.apply_batch: expected a batch of shape (N, H, W) or (N, H, W, C), got "
                             f"shape {batch.shape}")
        return Tensor(self._convert(batch))

    @staticmethod
    def _convert(batch: np.ndarray) -> np.ndarray:
        """(N, H, W) or (N, H, W, C) to a new C-contiguous (N, C, H, W) array, uint8 scaled to float32 [0, 1]."""
        chw = batch[:, np.newaxis] if batch.ndim == 3 else batch.transpose(0, 3, 1, 2)
        if batch.dtype != np.uint8:
            return np.ascontiguousarray(chw)
        out = chw.astype(np.float32, order="C")
        out /= np.float32(255)
        return out

    @staticmethod
    def _array(pic: Any) -> np.ndarray:
        if not isinstance(pic, np.ndarray):
            if not hasattr(pic, "getbands"):  # a PIL image
                raise TypeError(f"ToTensor: pic should be a PIL Image or ndarray, got {type(pic).__name__}")
            pic = np.asarray(pic)
        if pic.ndim not in (2, 3):
            raise ValueError(f"ToTensor: pic should be 2 or 3 dimensional (H, W or H, W, C), got shape "
                             f"{pic.shape}")
        return pic

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """``(x - mean[c]) / std[c]`` for each channel c of a float Tensor of shape (..., C, H, W).

    mean and std are converted to the tensor's dtype first, as torchvision does, so float32 results match
    it bit for bit.

    Args:
        mean: One value, or one per channel.
        std: One value, or one per channel; none may be zero.
        inplace: Write the result into the input tensor's memory.
    """

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float], inplace: bool = False) -> None:
        self.mean = mean
        self.std = std
        self.inplace = inplace

    def __call__(self, tensor: Tensor) -> Tensor:
        if not isinstance(tensor, Tensor):
            raise TypeError(f"Normalize: expected a Tensor, got {type(tensor).__name__}")
        x = tensor.numpy()
        if x.dtype.kind != "f":
            raise TypeError(f"Normalize: input tensor should be a float tensor, got {x.dtype}")
        if x.ndim < 3:
            raise ValueError(f"Normalize: expected a tensor image of shape (..., C, H, W), got shape {x.shape}")
        mean, std = (np.asarray(v, dtype=x.dtype).reshape(-1, 1, 1) for v in (self.mean, self.std))
        if (std == 0).any():
            raise ValueError(f"Normalize: std {self.std!r} evaluated to zero after conversion to {x.dtype}, "
                             f"leading to division by zero")
        for name, v in (("mean", mean), ("std", std)):
            if len(v) not in (1, x.shape[-3]):
                raise ValueError(f"Normalize: {name} has {len(v)} values for {x.shape[-3]} channels")
        if not self.inplace:
            return Tensor((x - mean) / std)
        np.subtract(x, mean, out=x)
        np.divide(x, std, out=x)
        return tensor

    apply_batch = __call__  # a batch (N, C, H, W) is already of the shape (..., C, H, W) handled above

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class Lambda:
    """Apply a user function to each sample (never batched)."""

    def __init__(self, lambd: Callable[[Any], Any]) -> None:
        if not callable(lambd):
            raise TypeError(f"Lambda: argument should be callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, img: Any) -> Any:
        return self.lambd(img)

    def __repr__(self) -> str:
        return f"Lambda({self.lambd!r})"


def batch_form(transform: Any) -> Callable[[Any], Any] | None:
    """``transform.apply_batch`` if it maps a batch exactly as it maps each sample, else None.

    Only the exact classes :class:`ToTensor` and :class:`Normalize`, and :class:`Compose` s of them,
    qualify: a subclass may have changed ``__call__``, and then only its own ``__call__`` is trusted.
    """
    if type(transform) is Compose:
        return transform.apply_batch if all(batch_form(t) is not None for t in transform.transforms) else None
    if type(transform) in (ToTensor, Normalize):
        return transform.apply_batch
    return None
