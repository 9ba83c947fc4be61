"""Memory: training does not grow, graphs die without the cycle collector, saved buffers are freed by backward,
and a 100,000-op graph with branches backpropagates.

The engine avoids reference cycles by design (an op's output owns its Context; the Context refers to the
output only through a weakref), so a graph must be freed by reference counting alone, the moment its last
tensor is dropped: the checks below run with the cycle collector disabled.
"""

from __future__ import annotations

import gc
import os
import weakref
from collections.abc import Callable, Iterator

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tinygrad_cnn import Context, Tensor, grad, manual_seed, nn
from tinygrad_cnn.models import lenet5
from tinygrad_cnn.optim import SGD
from tinygrad_cnn.tools.record import grad_norm_of, record


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    gc.collect()  # what earlier tests left behind must not be counted
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def live(cls: type) -> int:
    return sum(1 for obj in gc.get_objects() if issubclass(type(obj), cls))  # type(): no proxy __class__ lookups


def batches(n: int, batch_size: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((batch_size, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, batch_size))
            for _ in range(n)]


def train_step(model: nn.Module, optimizer: SGD, x: np.ndarray, y: np.ndarray) -> float:
    loss = F.cross_entropy(model(Tensor(x)), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


# A leaked graph per step would cost megabytes per step (batch 16: conv1's im2col alone is 0.9 MB), a leaked
# float32 gradient of fc1 120 KB: 900 steps of either are far above the bound. What the bound allows is
# the allocator's own slack (measured growth: ~0.2 MB); Python objects are counted exactly below.
RSS_GROWTH_BOUND = 10 * 2**20
WARM_UP, STEPS = 100, 1000


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc to read the RSS")
@pytest.mark.slow
def test_a_thousand_training_steps_do_not_grow_memory() -> None:
    manual_seed(0)
    model = lenet5()
    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9)
    data = batches(10, 16)  # reused: the data itself must not be what grows
    losses = []
    for i in range(STEPS):
        losses.append(train_step(model, optimizer, *data[i % len(data)]))
        if i + 1 == WARM_UP:
            gc.collect()
            rss, tensors, contexts = rss_bytes(), live(Tensor), live(Context)
    gc.collect()
    growth = rss_bytes() - rss
    print(f"RSS growth over steps {WARM_UP}..{STEPS}: {growth / 2**20:.2f} MiB")
    assert growth < RSS_GROWTH_BOUND, f"RSS grew by {growth / 2**20:.1f} MiB in {STEPS - WARM_UP} steps"
    assert (live(Tensor), live(Context)) == (tensors, contexts), "Tensors or Contexts accumulate across steps"
    assert np.mean(losses[-10:]) < np.mean(losses[:10]), "the steps did not train: the loop measured nothing"


# ---- one graph's lifetime ------------------------------------------------------------------------------
def small_net() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 4, 3),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4, 5)).double()


def forward(model: nn.Module) -> Tensor:
    rng = np.random.default_rng(1)
    return F.cross_entropy(model(Tensor(rng.standard_normal((2, 1, 10, 10)))), np.array([1, 4]))


def private_buffers(root: Tensor) -> list[np.ndarray]:
    """Arrays the graph's contexts keep for backward that no tensor of the graph owns (max-pool winners,
    max routes, copies): only the contexts keep them alive."""
    topo = root._topo()
    owned = {id(t.data) for t in topo} | {id(p.data) for t in topo for p in t._ctx.inputs if isinstance(p, Tensor)}
    kept = [v for t in topo for v in (*t._ctx.saved, *vars(t._ctx).values())]
    return [a for a in _arrays_in(kept) if id(a) not in owned]


def _arrays_in(value: object) -> list[np.ndarray]:
    """The arrays in nested lists and tuples: max pooling keeps a (rows, columns) pair of winners."""
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in _arrays_in(v)]
    return []


def test_conv2d_keeps_its_columns_only_within_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """The memory bound of conv's forward-to-backward cache: a small layer keeps its im2col columns (at most
    KEEP_COLUMNS_BYTES), a bigger one nothing beyond x and w (its weight gradient rebuilds them)."""
    from tinygrad_cnn.kernels import conv as conv_kernels

    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 3, 9, 9)), requires_grad=True)
    w = Tensor(rng.standard_normal((5, 3, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    kept = private_buffers(y)
    assert sum(a.nbytes for a in kept) == 4 * 3 * 9 * 9 * 9 * 8 <= conv_kernels.KEEP_COLUMNS_BYTES  # (N, CKK, P)
    monkeypatch.setattr(conv_kernels, "KEEP_COLUMNS_BYTES", 4 * 3 * 9 * 9 * 9 * 8 - 1)
    y = F.conv2d(x, w, padding=1)
    assert private_buffers(y) == []
    assert [id(t) for t in y._ctx.saved_tensors] == [id(x), id(w)]


def weakrefs(root: Tensor) -> list[weakref.ref]:
    """Weak references to every tensor that an op produced in root's graph (root included)."""
    return [weakref.ref(t) for t in root._topo()]


def test_backward_frees_saved_buffers_while_the_graph_lives_on(no_cycle_collector: None) -> None:
    with record():
        loss = forward(small_net())
        buffers = [weakref.ref(a) for a in private_buffers(loss)]
        assert len(buffers) >= 2, "the max-pool winners at least"
        loss.backward()
    contexts = [t._ctx for t in loss._topo()]
    assert all(ctx.saved == () and not vars(ctx) for ctx in contexts)
    assert [r for r in buffers if r() is not None] == [], "saved buffers outlived backward"
    # what describes the graph survives, e.g. for drawing it
    assert all(grad_norm_of(ctx) is not None and ctx.inputs for ctx in contexts)


def test_retain_graph_keeps_the_buffers_until_the_last_backward(no_cycle_collector: None) -> None:
    loss = forward(small_net())
    buffers = [weakref.ref(a) for a in private_buffers(loss)]
    loss.backward(retain_graph=True)
    assert all(r() is not None for r in buffers)
    loss.backward()
    assert all(r() is None for r in buffers)


def backward_only(model: nn.Module) -> Tensor:
    loss = forward(model)
    loss.backward()
    return loss


def double_backward(model: nn.Module) -> Tensor:
    """A gradient penalty: backward through the gradients themselves (create_graph=True)."""
    loss = forward(model)
    grads = grad(loss, list(model.parameters()), create_graph=True)
    penalty = loss + sum((g * g).sum() for g in grads)
    penalty.backward()
    return penalty


def forward_only(model: nn.Module) -> Tensor:
    return forward(model)


@pytest.mark.parametrize("run", [forward_only, backward_only, double_backward])
def test_a_dropped_graph_dies_without_the_cycle_collector(run: Callable[[nn.Module], Tensor],
                                                          no_cycle_collector: None) -> None:
    model = small_net()
    root = run(model)
    refs = weakrefs(root)
    assert len(refs) > 15
    model.zero_grad()  # with create_graph, the parameters' .grad hold graphs of their own
    del root
    alive = [r() for r in refs if r() is not None]
    assert alive == [], f"{len(alive)} of {len(refs)} tensors kept alive by reference cycles"


# ---- a deep graph with branches ----------------------------------------------------------------------------
def test_a_100000_op_graph_with_branches_backpropagates() -> None:
    """Iterate y <- relu(log(exp(0.5 * P y))) + x, P a permutation (reshape, transpose, reshape): 8 ops per
    step, and x feeds every step (12,500 branches into one leaf). y stays positive, so relu, exp and log
    are the identity and d sum(y_K)/dx = sum_{j<=K} 0.5^j (a permutation keeps sums), 2.0 to double precision."""
    x = Tensor(np.array([0.5, 1.0, 1.5, 2.0]), requires_grad=True)
    y, ops = x, 0
    while ops < 100_000:
        h = (y * 0.5).reshape(2, 2).transpose(0, 1).reshape(4)
        y = h.exp().log().relu() + x
        ops += 8
    assert len(y._topo()) >= 100_000
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, np.full(4, 2.0), rtol=1e-13)
    # after 12,500 steps y is the fixed point of y = 0.5 P y + x; this P swaps the middle two elements
    swap = np.eye(4)[[0, 2, 1, 3]]
    np.testing.assert_allclose(y.data, np.linalg.solve(np.eye(4) - 0.5 * swap, x.data), rtol=1e-12)
