"""An MNIST classifier written as a PyTorch script; the same file runs on tinygrad_cnn or on PyTorch.

    python examples/pytorch_style/mnist.py --epochs 1                  # tinygrad_cnn
    FRAMEWORK=torch python examples/pytorch_style/mnist.py --epochs 1  # PyTorch (torchvision if installed)

Two convolutions, max pooling, dropout and two linear layers, trained with Adadelta and a StepLR schedule on
log_softmax + nll_loss, in the shape of PyTorch's own MNIST example: argparse options, `train` and `test`
functions, `.to(device)`, `torch.save(model.state_dict(), ...)`. Only the import block below differs between
the frameworks. MNIST is read from $TINYGRAD_CNN_DATA if set, else from --data (downloaded there with
torchvision's layout if missing).
"""

from __future__ import annotations

import argparse
import os
import time

if os.environ.get("FRAMEWORK") == "torch":
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torch.optim as optim
    from torch.optim.lr_scheduler import StepLR
    try:
        from torchvision import datasets, transforms
    except ImportError:  # the same files and arithmetic without torchvision: see torchvision_fallback.py
        from torchvision_fallback import datasets, transforms
else:
    import tinygrad_cnn as torch  # noqa: I001  (kept parallel to the torch block above)
    import tinygrad_cnn.nn as nn
    import tinygrad_cnn.nn.functional as F
    import tinygrad_cnn.optim as optim
    from tinygrad_cnn.optim.lr_scheduler import StepLR
    from tinygrad_cnn.vision import datasets, transforms


class Net(nn.Module):
    """(N, 1, 28, 28) images to (N, 10) log-probabilities."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3)    # -> (N, 32, 26, 26)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)   # -> (N, 64, 24, 24), pooled to (N, 64, 12, 12)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(64 * 12 * 12, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(self.dropout1(x), 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)


def train(args, model, device, train_loader, optimizer, epoch):
    """One epoch over train_loader; returns each batch's loss."""
    model.train()
    losses = []
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if batch_idx % args.log_interval == 0:
            seen = batch_idx * len(data)
            print(f"Train Epoch: {epoch} [{seen}/{len(train_loader.dataset)} "
                  f"({100.0 * batch_idx / len(train_loader):.0f}%)]\tLoss: {loss.item():.6f}")
        if args.dry_run:
            break
    return losses


def test(model, device, test_loader):
    """Mean loss and accuracy (in %) over test_loader."""
    model.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            total_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    n = len(test_loader.dataset)
    accuracy = 100.0 * correct / n
    print(f"\nTest set: Average loss: {total_loss / n:.4f}, Accuracy: {correct}/{n} ({accuracy:.2f}%)\n")
    return total_loss / n, accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description="MNIST classifier (PyTorch-style, runs on both frameworks)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N", help="training batch size (64)")
    parser.add_argument("--test-batch-size", type=int, default=1000, metavar="N", help="test batch size (1000)")
    parser.add_argument("--epochs", type=int, default=14, metavar="N", help="epochs to train (14)")
    parser.add_argument("--lr", type=float, default=1.0, metavar="LR", help="learning rate (1.0)")
    parser.add_argument("--gamma", type=float, default=0.7, metavar="M", help="learning rate step factor (0.7)")
    parser.add_argument("--no-accel", action="store_true", help="use the CPU even if an accelerator is present")
    parser.add_argument("--dry-run", action="store_true", help="one training batch per epoch, 1000 test images")
    parser.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (1)")
    parser.add_argument("--log-interval", type=int, default=10, metavar="N", help="batches between log lines")
    parser.add_argument("--data", default="../data", help="dataset root (../data)")
    parser.add_argument("--save-model", action="store_true", help="save the trained weights to mnist_cnn.pt")
    args = parser.parse_args(argv)

    use_accel = not args.no_accel and torch.accelerator.is_available()
    torch.manual_seed(args.seed)
    device = torch.accelerator.current_accelerator() if use_accel else torch.device("cpu")

    train_kwargs = {"batch_size": args.batch_size, "shuffle": True}
    test_kwargs = {"batch_size": args.test_batch_size}
    if use_accel:
        accel_kwargs = {"num_workers": 1, "pin_memory": True}
        train_kwargs.update(accel_kwargs)
        test_kwargs.update(accel_kwargs)

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train_set = datasets.MNIST(args.data, train=True, download=True, transform=transform)
    test_set = datasets.MNIST(args.data, train=False, transform=transform)
    if args.dry_run:
        test_set = torch.utils.data.Subset(test_set, range(1000))
    train_loader = torch.utils.data.DataLoader(train_set, **train_kwargs)
    test_loader = torch.utils.data.DataLoader(test_set, **test_kwargs)

    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        epoch_start = time.perf_counter()
        train(args, model, device, train_loader, optimizer, epoch)
        test(model, device, test_loader)
        scheduler.step()
        print(f"epoch {epoch}: {time.perf_counter() - epoch_start:.1f} s")
    print(f"total: {time.perf_counter() - start:.1f} s")

    if args.save_model:
        torch.save(model.state_dict(), "mnist_cnn.pt")


if __name__ == "__main__":
    main()
