"""A small CIFAR-style network trained on synthetic images, written as a PyTorch script; the same file runs on
tinygrad_cnn or on PyTorch.

    python examples/pytorch_style/cifar_style.py                  # tinygrad_cnn
    FRAMEWORK=torch python examples/pytorch_style/cifar_style.py  # PyTorch

A custom Dataset makes 3x32x32 images of 10 classes (a fixed blocky random template per class plus noise),
random_split holds a fifth out for validation, and a conv net with BatchNorm and Dropout learns them with SGD
(momentum, weight decay), label smoothing, gradient clipping (clip_grad_norm_) and a cosine learning-rate
schedule. Only the import block below differs between the frameworks.
"""

from __future__ import annotations

import argparse
import os

if os.environ.get("FRAMEWORK") == "torch":
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torch.optim as optim
    from torch.utils.data import DataLoader, Dataset, random_split
else:
    import tinygrad_cnn as torch  # noqa: I001  (kept parallel to the torch block above)
    import tinygrad_cnn.nn as nn
    import tinygrad_cnn.nn.functional as F
    import tinygrad_cnn.optim as optim
    from tinygrad_cnn.utils.data import DataLoader, Dataset, random_split


class SyntheticImages(Dataset):
    """``size`` samples ``(image (3, 32, 32) float32, label int)``: the label's template (random 4x4 blocks of
    8x8 pixels) plus Gaussian noise."""

    def __init__(self, size: int, noise: float = 8.0, num_classes: int = 10) -> None:
        self.templates = F.interpolate(torch.randn(num_classes, 3, 4, 4), scale_factor=8, mode="nearest")
        self.labels = torch.randint(0, num_classes, (size,))
        self.noise = torch.randn(size, 3, 32, 32) * noise

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        label = int(self.labels[index])
        return self.templates[label] + self.noise[index], label


def conv_block(c_in, c_out):
    """(N, c_in, H, W) -> (N, c_out, H/2, W/2)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                         nn.MaxPool2d(2))


class SmallNet(nn.Module):
    """(N, 3, 32, 32) images to (N, num_classes) logits."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.3) -> None:
        super().__init__()
        self.features = nn.Sequential(conv_block(3, 16), conv_block(16, 32))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(32 * 8 * 8, 64), nn.ReLU(),
                                        nn.Dropout(dropout), nn.Linear(64, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def train_epoch(model, loader, criterion, optimizer, scheduler, max_norm):
    """One epoch, the learning rate scheduled per batch; returns each batch's loss."""
    model.train()
    losses = []
    for images, labels in loader:
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=max_norm)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses


def evaluate(model, loader, criterion):
    """Mean loss and accuracy (0 to 1) over loader."""
    model.eval()
    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in loader:
            logits = model(images)
            total += criterion(logits, labels).item() * len(labels)
            correct += (logits.argmax(dim=1) == labels).sum().item()
            count += len(labels)
    return total / count, correct / count


def main(argv=None):
    parser = argparse.ArgumentParser(description="CIFAR-style net on synthetic data (runs on both frameworks)")
    parser.add_argument("--samples", type=int, default=2000, help="synthetic images (2000)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--max-norm", type=float, default=2.0, help="gradient norm clipping threshold")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    split_generator = torch.Generator().manual_seed(args.seed)
    train_set, val_set = random_split(SyntheticImages(args.samples), [0.8, 0.2], generator=split_generator)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True)
    val_loader = DataLoader(val_set, batch_size=256)

    model = SmallNet()
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * len(train_loader))
    for epoch in range(1, args.epochs + 1):
        losses = train_epoch(model, train_loader, criterion, optimizer, scheduler, args.max_norm)
        val_loss, val_acc = evaluate(model, val_loader, criterion)
        print(f"epoch {epoch}: train loss {sum(losses) / len(losses):.4f}, val loss {val_loss:.4f}, "
              f"val accuracy {100 * val_acc:.1f}%, lr {scheduler.get_last_lr()[0]:.4f}")


if __name__ == "__main__":
    main()
