"""Vision datasets and transforms with the API of torchvision.

    from tinygrad_cnn.vision import datasets, transforms
"""

from . import datasets, transforms

__all__ = ["datasets", "transforms"]
