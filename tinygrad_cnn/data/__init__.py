"""Datasets and batching: verified MNIST loading and a numpy DataLoader.

PyTorch's API over the same files is `tinygrad_cnn.utils.data` with `tinygrad_cnn.vision.datasets.MNIST`.
"""

from tinygrad_cnn.data.loader import DataLoader
from tinygrad_cnn.data.mnist import (
    MNIST_MEAN,
    MNIST_STD,
    MNISTError,
    load_mnist,
    normalize,
    read_idx,
    resolve_data_dir,
)

__all__ = [
    "MNIST_MEAN",
    "MNIST_STD",
    "DataLoader",
    "MNISTError",
    "load_mnist",
    "normalize",
    "read_idx",
    "resolve_data_dir",
]
