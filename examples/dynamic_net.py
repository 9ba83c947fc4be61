"""Define-by-run: a network whose depth is decided by the data, while it runs.

The task: points in the plane, labelled by the ring they fall in (class = floor(2 * radius) % 2), so
the farther out a point is, the more alternating bands lie between it and the origin. The network
embeds each point, then refines the embedding with one shared residual block, h <- h + relu(W h + b),
applied k times, where k = 1 + floor(2 * radius) is read off the input at run time: outer points get
more refinement steps. Points that need the same k are processed together, so every batch builds its
own graph, with a different set of depths.

No graph is declared in advance: ordinary Python `for` loops and `if`s run on every forward pass,
and backward() differentiates whatever ran. The gradient through all those branches is checked
against finite differences (gradcheck, float64) before training.

    python examples/dynamic_net.py              # gradcheck, then 300 steps
    python examples/dynamic_net.py --steps 50
"""

from __future__ import annotations

import argparse

import numpy as np

import tinygrad_cnn as tc
import tinygrad_cnn.functional as F
from tinygrad_cnn import nn
from tinygrad_cnn.optim import Adam
from tinygrad_cnn.rng import manual_seed

MAX_STEPS = 4


def rings(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n points with radius uniform in [0, 2) (float32, (n, 2)) and their ring classes ((n,) int64)."""
    radius = rng.uniform(0, 2, n)
    angle = rng.uniform(0, 2 * np.pi, n)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1).astype(np.float32)
    return points, (np.floor(2 * radius).astype(np.int64) % 2)


class RefineNet(nn.Module):
    def __init__(self, hidden: int = 16) -> None:
        self.embed = nn.Linear(2, hidden)
        self.refine = nn.Linear(hidden, hidden)  # one block, reused as many times as each point needs
        self.head = nn.Linear(hidden, 2)

    @staticmethod
    def depths(points: np.ndarray) -> np.ndarray:
        """(N, 2) points -> (N,) refinement steps, 1 + floor(2 * radius), at most MAX_STEPS."""
        return np.minimum(1 + np.floor(2 * np.linalg.norm(points, axis=1)).astype(np.int64), MAX_STEPS)

    def forward(self, x: tc.Tensor) -> list[tuple[np.ndarray, tc.Tensor]]:
        """(N, 2) points -> [(rows, logits (len(rows), 2))], one group per depth that occurs in x."""
        depths = self.depths(x.numpy())  # a decision made from the data, at run time
        groups = []
        for depth in np.unique(depths):
            rows = np.flatnonzero(depths == depth)
            h = self.embed(x[rows]).relu()
            for _ in range(depth):  # this batch's data decides how deep the graph is
                h = h + self.refine(h).relu()
            groups.append((rows, self.head(h)))
        return groups


def loss_and_correct(model: RefineNet, x: tc.Tensor, y: np.ndarray) -> tuple[tc.Tensor, int]:
    """Mean cross-entropy over all points (summed group by group) and the number classified correctly."""
    loss, correct = 0.0, 0
    for rows, logits in model(x):
        loss = loss + F.cross_entropy(logits, y[rows], reduction="sum")
        correct += int(np.sum(logits.numpy().argmax(axis=1) == y[rows]))
    return loss / len(y), correct


def check_gradients(seed: int = 0) -> bool:
    """gradcheck (float64) of the loss w.r.t. the points and every parameter, on points of every depth.

    The points are kept away from the ring boundaries, so that a finite-difference step cannot
    change a point's depth or label (which would make the loss jump)."""
    manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = RefineNet(hidden=4).double()
    radius = np.array([0.2, 0.7, 1.2, 1.7, 0.3, 1.8])  # depths 1, 2, 3, 4, 1, 4
    angle = rng.uniform(0, 2 * np.pi, len(radius))
    points = tc.Tensor(np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1), requires_grad=True)
    labels = np.floor(2 * radius).astype(np.int64) % 2
    params = list(model.parameters())

    def loss(x: tc.Tensor, *_params: tc.Tensor) -> tc.Tensor:  # gradcheck perturbs the parameters in place
        return loss_and_correct(model, x, labels)[0]

    return tc.gradcheck(loss, [points, *params])


def train(steps: int, batch_size: int = 64, seed: int = 0) -> tuple[float, float]:
    """Train on fresh random batches; returns the accuracy on 2000 held-out points before and after."""
    manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = RefineNet()
    optimizer = Adam(model.parameters(), lr=0.01)
    x_test, y_test = rings(2000, rng)

    def test_accuracy() -> float:
        with tc.no_grad():
            return loss_and_correct(model, tc.Tensor(x_test), y_test)[1] / len(y_test)

    before = test_accuracy()
    for step in range(1, steps + 1):
        x, y = rings(batch_size, rng)
        loss, _ = loss_and_correct(model, tc.Tensor(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == steps:
            print(f"step {step}: loss {loss.item():.4f}")
    return before, test_accuracy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    args = parser.parse_args()
    check_gradients()
    print("gradcheck passed: gradients through every depth match finite differences")
    before, after = train(args.steps)
    print(f"test accuracy: {100 * before:.1f}% before training, {100 * after:.1f}% after {args.steps} steps")


if __name__ == "__main__":
    main()
