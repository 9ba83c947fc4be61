"""Data parallelism over processes (`tinygrad_cnn.data_parallel`): the same gradients as one process,
the worker's state kept in step with ours, and failures that leave every `.grad` as it was.

Speed is measured by `tinygrad-cnn bench` and `benchmarks/parallel_modes.py`, never here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pytest
from tinygrad_cnn.data_parallel import DataParallel, WorkerError

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, nn, optim, parallel
from tinygrad_cnn.models import lenet5
from tinygrad_cnn.rng import manual_seed

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="worker processes are forked")
MAIN_PID = os.getpid()


def batch(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n)


def lenet_and_loss() -> tuple[nn.Module, object]:
    manual_seed(0)
    model = lenet5()
    return model, lambda x, y: F.cross_entropy(model(Tensor(x)), y)


@pytest.fixture
def lenet_dp() -> Iterator[tuple[nn.Module, object, DataParallel]]:
    model, loss_fn = lenet_and_loss()
    with DataParallel(model, loss_fn, processes=2) as dp:
        yield model, loss_fn, dp


def grads_of(model: nn.Module) -> list[np.ndarray | None]:
    return [None if p.grad is None else p.grad.data.copy() for p in model.parameters()]


def one_process_grads(model: nn.Module, loss_fn: object, x: np.ndarray, y: np.ndarray) -> tuple[float, list]:
    for p in model.parameters():
        p.grad = None
    loss = loss_fn(x, y)
    loss.backward()
    grads = grads_of(model)
    for p in model.parameters():
        p.grad = None
    return loss.item(), grads


def assert_same_grads(got: list, expected: list) -> None:
    assert [g is None for g in got] == [g is None for g in expected]
    for g, e in zip(got, expected):
        if e is not None:
            assert g.dtype == e.dtype
            np.testing.assert_allclose(g, e, rtol=2e-5, atol=1e-7)


@pytest.mark.parametrize(("n", "processes"), [(64, 2), (7, 2), (9, 3), (2, 4), (1, 2)])
def test_gradient_and_loss_match_one_process(n: int, processes: int) -> None:
    model, loss_fn = lenet_and_loss()
    x, y = batch(n)
    expected_loss, expected = one_process_grads(model, loss_fn, x, y)
    with DataParallel(model, loss_fn, processes=processes) as dp:
        loss = dp.value_and_grad(x, y)
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    assert_same_grads(grads_of(model), expected)


def test_gradients_accumulate_into_existing_grads_as_backward_does(lenet_dp: tuple) -> None:
    model, loss_fn, dp = lenet_dp
    x, y = batch(16)
    _, once = one_process_grads(model, loss_fn, x, y)
    dp.value_and_grad(x, y)
    dp.value_and_grad(x, y)
    assert_same_grads(grads_of(model), [2 * g for g in once])


def test_one_process_is_plain_backward_bit_for_bit() -> None:
    model, loss_fn = lenet_and_loss()
    x, y = batch(16)
    expected_loss, expected = one_process_grads(model, loss_fn, x, y)
    with DataParallel(model, loss_fn, processes=1) as dp:
        assert dp.value_and_grad(x, y) == expected_loss
        assert dp._workers == []
    for g, e in zip(grads_of(model), expected):
        np.testing.assert_array_equal(g, e)


def test_training_follows_the_parameters_as_they_change() -> None:
    """Three SGD steps: the workers must use each step's updated parameters, not those of the fork."""
    trained = []
    for processes in (1, 2):
        model, loss_fn = lenet_and_loss()
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        with DataParallel(model, loss_fn, processes=processes) as dp:
            for seed in range(3):
                opt.zero_grad()
                dp.value_and_grad(*batch(32, seed))
                opt.step()
        trained.append([p.data.copy() for p in model.parameters()])
    for a, b in zip(*trained):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


def test_a_larger_batch_later_restarts_the_workers_with_room_for_it(lenet_dp: tuple) -> None:
    model, loss_fn, dp = lenet_dp
    dp.value_and_grad(*batch(8))
    first = [w.process.pid for w in dp._workers]
    x, y = batch(40, seed=5)
    _, expected = one_process_grads(model, loss_fn, x, y)
    dp.value_and_grad(x, y)
    assert [w.process.pid for w in dp._workers] != first
    assert_same_grads(grads_of(model), expected)


class Scaled(nn.Module):
    """y = dropout(x) * w: the gradient of w shows which elements dropout kept, in each process."""

    def __init__(self, features: int) -> None:
        self.dropout = nn.Dropout(0.5)
        self.w = nn.Parameter(np.ones(features, dtype=np.float32))
        self.frozen = nn.Parameter(np.ones(features, dtype=np.float32))

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(x) * self.w * self.frozen


def test_workers_follow_train_eval_mode_and_requires_grad_and_draw_their_own_dropout_masks() -> None:
    manual_seed(0)
    model = Scaled(256)
    ones = np.ones((2, 256), dtype=np.float32)  # two identical items: one per process
    with DataParallel(model, lambda x: model(Tensor(x)).sum(axis=1).mean(), processes=2) as dp:
        model.frozen.requires_grad = False
        dp.value_and_grad(ones)
        g = model.w.grad.data
        # Each process contributes mask * 2 / 2; with equal masks every element would be 0 or 2.
        assert set(np.unique(g)) == {0.0, 1.0, 2.0}
        assert model.frozen.grad is None
        model.w.grad = None
        model.eval()
        dp.value_and_grad(ones)
        np.testing.assert_array_equal(model.w.grad.data, np.ones(256, dtype=np.float32))


def fails_in_the_worker(model: nn.Module) -> object:
    def loss_fn(x: np.ndarray, y: np.ndarray) -> Tensor:
        if os.getpid() != MAIN_PID:
            raise ArithmeticError("planted failure in the worker")
        return F.cross_entropy(model(Tensor(x)), y)
    return loss_fn


def test_a_failure_in_a_worker_raises_its_traceback_and_leaves_grads_and_params_alone() -> None:
    model, loss_fn = lenet_and_loss()
    x, y = batch(8)
    loss_fn(x, y).backward()
    before, params = grads_of(model), [p.data.copy() for p in model.parameters()]
    with DataParallel(model, fails_in_the_worker(model), processes=2) as dp:
        with pytest.raises(WorkerError, match=r"(?s)worker 1: Traceback.*ArithmeticError: planted failure"):
            dp.value_and_grad(x, y)
        for g, b in zip(grads_of(model), before):
            np.testing.assert_array_equal(g, b)
        for p, b in zip(model.parameters(), params):
            np.testing.assert_array_equal(p.data, b)


def test_a_worker_killed_mid_step_is_reported_and_replaced() -> None:
    model, _ = lenet_and_loss()
    worker_calls = []  # the worker's own copy counts its calls

    def loss_fn(x: np.ndarray, y: np.ndarray) -> Tensor:
        if os.getpid() != MAIN_PID:
            worker_calls.append(1)
            if len(worker_calls) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        return F.cross_entropy(model(Tensor(x)), y)

    x, y = batch(8)
    with DataParallel(model, loss_fn, processes=2) as dp:
        dp.value_and_grad(x, y)
        before = grads_of(model)
        with pytest.raises(WorkerError, match=r"worker 1: the worker process exited \(exit code -9\)"):
            dp.value_and_grad(x, y)
        for g, b in zip(grads_of(model), before):
            np.testing.assert_array_equal(g, b)
        _, expected = one_process_grads(model, loss_fn, x, y)
        dp.value_and_grad(x, y)  # a new worker, forked from us: its first call
        assert_same_grads(grads_of(model), expected)


def test_a_worker_that_died_between_steps_is_replaced(lenet_dp: tuple) -> None:
    model, loss_fn, dp = lenet_dp
    x, y = batch(8)
    dp.value_and_grad(x, y)
    (worker,) = dp._workers
    os.kill(worker.process.pid, signal.SIGKILL)
    worker.process.join()
    _, expected = one_process_grads(model, loss_fn, x, y)
    dp.value_and_grad(x, y)
    assert dp._workers[0].process.is_alive()
    assert_same_grads(grads_of(model), expected)


def test_an_interrupt_in_this_process_stops_the_workers_and_leaves_grads_alone() -> None:
    model, _ = lenet_and_loss()
    calls = []

    def loss_fn(x: np.ndarray, y: np.ndarray) -> Tensor:
        if os.getpid() == MAIN_PID and calls:
            raise KeyboardInterrupt
        calls.append(1)
        return F.cross_entropy(model(Tensor(x)), y)

    with DataParallel(model, loss_fn, processes=2) as dp:
        dp.value_and_grad(*batch(8))
        before = grads_of(model)
        (worker,) = dp._workers
        with pytest.raises(KeyboardInterrupt):
            dp.value_and_grad(*batch(8))
        assert not worker.process.is_alive() and dp._workers == []
        for g, b in zip(grads_of(model), before):
            np.testing.assert_array_equal(g, b)


def test_close_stops_the_workers_and_gives_blas_its_threads_back() -> None:
    blas = parallel._blas_thread_calls()
    model, loss_fn = lenet_and_loss()
    threads_before = blas[0]() if blas else None
    with DataParallel(model, loss_fn, processes=2) as dp:
        dp.value_and_grad(*batch(4))
        (worker,) = dp._workers
        assert worker.process.is_alive()
        if blas is not None:
            assert blas[0]() == 1
    assert not worker.process.is_alive()
    if blas is not None:
        assert blas[0]() == threads_before


def test_a_worker_exits_when_its_parent_is_gone_without_closing(lenet_dp: tuple) -> None:
    _, _, dp = lenet_dp
    dp.value_and_grad(*batch(4))
    (worker,) = dp._workers
    worker.conn.close()  # what the parent's exit does to the pipe
    worker.process.join(5)
    assert worker.process.exitcode == 0


@pytest.mark.parametrize(("arrays", "error", "message"), [
    ((), TypeError, r"value_and_grad: expected at least one batch array, got none"),
    ((np.zeros((4, 1, 28, 28), np.float32), np.zeros(3, np.int64)), ValueError,
     r"batch arrays of shapes \[\(4, 1, 28, 28\), \(3,\)\]; expected arrays with the same first dimension N >= 1"),
    ((np.zeros((0, 1, 28, 28), np.float32), np.zeros(0, np.int64)), ValueError, r"same first dimension N >= 1"),
    ((np.zeros((), np.float32),), ValueError, r"batch arrays of shapes \[\(\)\]"),
    ((np.array(["a", "b"]),), TypeError, r"batch dtypes \['<U1'\]; expected numeric arrays"),
])
def test_bad_batches_are_refused_before_any_work(lenet_dp: tuple, arrays: tuple, error: type,
                                                 message: str) -> None:
    model, _, dp = lenet_dp
    with pytest.raises(error, match=message):
        dp.value_and_grad(*arrays)
    assert dp._workers == [] and all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize(("loss_fn", "error", "message"), [
    (lambda x: Tensor(x).sum(axis=1), TypeError, r"must return a scalar Tensor .*got a Tensor of shape \(\d,\)"),
    (lambda x: 1.0, TypeError, r"loss_fn must return a scalar Tensor .*got a float"),
    (lambda x: Tensor(x).sum(), RuntimeError, r"the loss does not depend on any parameter that requires grad"),
])
def test_a_loss_fn_that_returns_no_usable_loss_is_named(loss_fn: object, error: type, message: str) -> None:
    model, _ = lenet_and_loss()
    with DataParallel(model, loss_fn, processes=2) as dp, pytest.raises(error, match=message):
        dp.value_and_grad(np.ones((4, 3), np.float32))
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"model": "lenet"}, TypeError, r"DataParallel: model must be an nn.Module, got str"),
    ({"loss_fn": 3}, TypeError, r"DataParallel: loss_fn must be callable, got int"),
    ({"processes": 0}, ValueError, r"DataParallel: processes must be a positive int, got 0"),
    ({"processes": True}, ValueError, r"processes must be a positive int, got True"),
    ({"model": nn.ReLU()}, ValueError, r"DataParallel: the model has no parameters"),
])
def test_bad_construction_is_refused(kwargs: dict, error: type, message: str) -> None:
    model, loss_fn = lenet_and_loss()
    with pytest.raises(error, match=message):
        DataParallel(**{"model": model, "loss_fn": loss_fn, **kwargs})


def test_a_failed_fork_leaves_no_workers_and_blas_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    from tinygrad_cnn import data_parallel

    blas = parallel._blas_thread_calls()
    threads_before = blas[0]() if blas else None
    model, loss_fn = lenet_and_loss()

    def refuse(self: object, *args: object) -> None:
        raise BlockingIOError("fork: Resource temporarily unavailable (planted)")

    monkeypatch.setattr(data_parallel._Worker, "__init__", refuse)
    with DataParallel(model, loss_fn, processes=3) as dp:
        with pytest.raises(BlockingIOError, match="planted"):
            dp.value_and_grad(*batch(6))
        assert dp._workers == [] and all(p.grad is None for p in model.parameters())
        if blas is not None:
            assert blas[0]() == threads_before
        monkeypatch.undo()
        _, expected = one_process_grads(model, loss_fn, *batch(6))
        dp.value_and_grad(*batch(6))
        assert len(dp._workers) == 2
    assert_same_grads(grads_of(model), expected)


def test_closing_one_data_parallel_does_not_wait_for_another() -> None:
    """A worker forked for the second must not hold the first's pipe open: the first's worker exits cleanly."""
    model, loss_fn = lenet_and_loss()
    with DataParallel(model, loss_fn, 2) as first, DataParallel(model, loss_fn, 2) as second:
        first.value_and_grad(*batch(4))
        second.value_and_grad(*batch(4))
        (worker,) = first._workers
        first.close()
        assert worker.process.exitcode == 0  # not killed after the 2 s grace period


def test_parameters_cast_to_float64_restart_the_workers(lenet_dp: tuple) -> None:
    model, loss_fn, dp = lenet_dp
    dp.value_and_grad(*batch(8))
    pid = dp._workers[0].process.pid
    model.zero_grad()
    model.double()
    x, y = batch(8)
    _, expected = one_process_grads(model, loss_fn, x.astype(np.float64), y)
    dp.value_and_grad(x.astype(np.float64), y)
    assert dp._workers[0].process.pid != pid
    assert all(e.dtype == np.float64 for e in expected)
    assert_same_grads(grads_of(model), expected)


def test_a_failed_slice_keeps_the_worker_and_the_pipes_in_step() -> None:
    model, _ = lenet_and_loss()
    worker_calls = []

    def loss_fn(x: np.ndarray, y: np.ndarray) -> Tensor:
        if os.getpid() != MAIN_PID:
            worker_calls.append(1)
            if len(worker_calls) == 2:
                raise ArithmeticError("planted, once")
        return F.cross_entropy(model(Tensor(x)), y)

    x, y = batch(8)
    with DataParallel(model, loss_fn, processes=2) as dp:
        dp.value_and_grad(x, y)
        (worker,) = dp._workers
        with pytest.raises(WorkerError, match="planted, once"):
            dp.value_and_grad(x, y)
        _, expected = one_process_grads(model, loss_fn, x, y)
        dp.value_and_grad(x, y)
        assert dp._workers == [worker]  # the same process answered the next request
    assert_same_grads(grads_of(model), expected)


def test_dropout_masks_are_reproducible_for_a_seed_and_different_each_step() -> None:
    runs = []
    for _ in range(2):
        manual_seed(5)
        model = Scaled(64)
        ones = np.ones((2, 64), dtype=np.float32)
        steps = []
        with DataParallel(model, lambda x, m=model: m(Tensor(x)).sum(axis=1).mean(), processes=2) as dp:
            for _ in range(3):
                model.w.grad = None
                dp.value_and_grad(ones)
                steps.append(model.w.grad.data.copy())
        runs.append(steps)
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(runs[0][0], runs[0][1])


def test_a_replaced_parameter_is_refused() -> None:
    model, loss_fn = lenet_and_loss()
    with DataParallel(model, loss_fn, processes=2) as dp:
        dp.value_and_grad(*batch(4))
        model.conv1.weight = nn.Parameter(np.zeros((6, 1, 5, 5), dtype=np.float32))
        with pytest.raises(RuntimeError, match=r"the model's parameters changed since it was made"):
            dp.value_and_grad(*batch(4))


def test_a_hung_worker_is_killed_when_we_are_interrupted() -> None:
    model, _ = lenet_and_loss()
    calls = []  # each process counts its own

    def loss_fn(x: np.ndarray, y: np.ndarray) -> Tensor:
        calls.append(1)
        if len(calls) == 2:
            if os.getpid() != MAIN_PID:
                time.sleep(60)  # a worker that will not answer in time
            raise KeyboardInterrupt
        return F.cross_entropy(model(Tensor(x)), y)

    with DataParallel(model, loss_fn, processes=2) as dp:
        dp.value_and_grad(*batch(4))
        (worker,) = dp._workers
        with pytest.raises(KeyboardInterrupt):
            dp.value_and_grad(*batch(4))
        assert dp._workers == []
    assert worker.process.exitcode == -signal.SIGKILL


def test_workers_exit_with_the_interpreter_without_close() -> None:
    script = (
        "import numpy as np, tinygrad_cnn.functional as F\n"
        "from tinygrad_cnn import Tensor\n"
        "from tinygrad_cnn.data_parallel import DataParallel\n"
        "from tinygrad_cnn.models import lenet5\n"
        "model = lenet5()\n"
        "dp = DataParallel(model, lambda x, y: F.cross_entropy(model(Tensor(x)), y), 2)\n"
        "dp.value_and_grad(np.zeros((4, 1, 28, 28), np.float32), np.zeros(4, np.int64))\n"
        "print(dp._workers[0].process.pid)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    pid = int(out.stdout.split()[-1])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"worker {pid} outlived its parent")


def test_batch_norm_in_training_mode_is_refused_before_any_work() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    x, y = np.ones((8, 3), dtype=np.float32), np.zeros(8, dtype=np.int64)
    with DataParallel(model, lambda a, b: F.cross_entropy(model(Tensor(a)), b), processes=2) as dp:
        with pytest.raises(RuntimeError, match=r"layer '1' \(BatchNorm1d\) uses batch statistics"):
            dp.value_and_grad(x, y)
        assert all(p.grad is None for p in model.parameters())
        model.eval()  # running statistics only: the split changes nothing
        dp.value_and_grad(x, y)
        assert all(p.grad is not None for p in model.parameters())


def test_this_process_computes_its_slice_on_one_thread_while_workers_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """With kernel threads on (the default once a big kernel ran), the parent's slice must not also split over
    threads: the worker process already has the other core. Nothing may reach the thread pool."""
    from tinygrad_cnn.kernels import parallel as kernel_threads

    if parallel.set_num_threads(2) != 2:
        parallel.set_num_threads(1)
        pytest.skip("numpy's BLAS is not an OpenBLAS whose threads can be pinned: threads stay off")
    try:
        monkeypatch.setattr(kernel_threads, "MIN_PARALLEL_MACS", 0)
        handed: list[object] = []
        real_submit = kernel_threads._pool.submit
        monkeypatch.setattr(kernel_threads._pool, "submit", lambda *a: handed.append(a) or real_submit(*a))
        model, loss_fn = lenet_and_loss()
        x, y = batch(16)
        loss_fn(x, y).backward()  # one process: the kernels do split
        assert handed
        handed.clear()
        with DataParallel(model, loss_fn, processes=2) as dp:
            dp.value_and_grad(x, y)
        assert handed == []
    finally:
        parallel.set_num_threads(1)
