"""AlexNet in torchvision's layout (its single-GPU variant), and the features/avgpool/classifier skeleton
that torchvision's AlexNet and VGG share.

Module names and indices follow torchvision, so state_dict keys ("features.0.weight",
"classifier.1.weight", ...) and shapes match `torchvision.models.alexnet()` one-to-one.
"""

from __future__ import annotations

from .. import nn
from ..autograd import Tensor


class FeaturesClassifier(nn.Module):
    """features (convolutions) -> avgpool (to a fixed grid) -> flatten -> classifier (fully connected).

    The adaptive pool fixes the classifier's input size, so inputs other than 224x224 also run.
    """

    def __init__(self, features: nn.Sequential, avgpool: nn.AdaptiveAvgPool2d, classifier: nn.Sequential) -> None:
        self.features, self.avgpool, self.classifier = features, avgpool, classifier

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


class AlexNet(FeaturesClassifier):
    """(N, 3, H, W) -> (N, num_classes) logits; 61,100,840 parameters for 1000 classes.

    At 224x224: conv1 11x11/4 -> 55, pool 3/2 -> 27, conv2 5x5 -> 27, pool -> 13, conv3-5 3x3 -> 13,
    pool -> 6, so the classifier sees 256 * 6 * 6 = 9216 features. H, W >= 63 (the last pool needs 3).
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
        )
        classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Linear(4096, num_classes),
        )
        super().__init__(features, nn.AdaptiveAvgPool2d((6, 6)), classifier)


def alexnet(num_classes: int = 1000) -> AlexNet:
    """AlexNet with the layers' default (PyTorch) initialisation, as torchvision's."""
    return AlexNet(num_classes)
