"""VGG16 (configuration D, no batch norm) in torchvision's layout: 13 3x3 convolutions in five blocks,
each block closed by a 2x2 max pool, then three fully connected layers.

Module names and indices follow torchvision, so state_dict keys and shapes match
`torchvision.models.vgg16()`. Unlike torchvision (Kaiming-normal convs, N(0, 0.01) linears, zero
biases) the layers keep their default initialisation.
"""

from __future__ import annotations

from .. import nn
from .alexnet import FeaturesClassifier

# Output channels of each 3x3 convolution (padding 1, so the size is kept); "M" is a 2x2 max pool.
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg_features(layout: tuple[int | str, ...], in_channels: int = 3) -> nn.Sequential:
    layers: list[nn.Module] = []
    for item in layout:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_channels, item, kernel_size=3, padding=1), nn.ReLU()]
            in_channels = item
    return nn.Sequential(*layers)


class VGG(FeaturesClassifier):
    """(N, 3, H, W) -> (N, num_classes) logits; H, W >= 32 (five halvings)."""

    def __init__(self, layout: tuple[int | str, ...], num_classes: int = 1000, dropout: float = 0.5) -> None:
        classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        super().__init__(vgg_features(layout), nn.AdaptiveAvgPool2d((7, 7)), classifier)


def vgg16(num_classes: int = 1000) -> VGG:
    """VGG16: 138,357,544 parameters for 1000 classes; at 224x224 the features end at 512 x 7 x 7."""
    return VGG(VGG16_LAYOUT, num_classes)
