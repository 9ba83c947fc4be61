"""Batch parallelism (`tinygrad_cnn.parallel`): the same numbers on more threads, errors and restoration.

Speed is measured by `tinygrad-cnn bench`, never here; these tests check that work really moves to
another thread, and that nothing about the results changes when it does.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from helpers import Inputs

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, gradcheck, gradgradcheck, optim, parallel
from tinygrad_cnn.kernels import parallel as kernel_threads
from tinygrad_cnn.models import lenet5
from tinygrad_cnn.rng import manual_seed


@pytest.fixture
def two_threads() -> Iterator[None]:
    if parallel.set_num_threads(2) != 2:
        parallel.set_num_threads(1)
        pytest.skip("numpy's BLAS is not an OpenBLAS whose threads can be pinned: threads stay off")
    try:
        yield
    finally:
        parallel.set_num_threads(1)


def lenet_step(threads: int) -> tuple[float, list[np.ndarray]]:
    """One SGD step of LeNet on a fixed batch of 64: the loss and the updated parameters."""
    parallel.set_num_threads(threads)
    try:
        manual_seed(0)
        model = lenet5()
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        rng = np.random.default_rng(1)
        x, y = rng.standard_normal((64, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 64)
        loss = F.cross_entropy(model(Tensor(x)), y)
        loss.backward()
        opt.step()
        return loss.item(), [p.data.copy() for p in model.parameters()]
    finally:
        parallel.set_num_threads(1)


def test_lenet_step_is_the_same_on_two_threads(two_threads: None) -> None:
    loss1, params1 = lenet_step(1)
    loss2, params2 = lenet_step(2)
    assert loss2 == loss1
    for a, b in zip(params1, params2):
        # Only the weight gradients' sum over batch chunks is grouped differently.
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("params", [{}, {"stride": 2, "padding": 1, "dilation": 2, "groups": 2}],
                         ids=["plain", "strided-padded-dilated-grouped"])
def test_conv2d_on_two_threads_matches_one_thread_in_float64(two_threads: None, params: dict) -> None:
    rng = Inputs(3)
    x, w = rng.randn(40, 4, 17, 15), rng.randn(6, 4 // params.get("groups", 1), 5, 3)

    def run() -> tuple[np.ndarray, ...]:
        xt, wt = Tensor(x.copy(), requires_grad=True), Tensor(w.copy(), requires_grad=True)
        y = F.conv2d(xt, wt, **params)
        y.backward(Tensor(np.cos(np.arange(y.data.size)).reshape(y.shape)))
        return y.data, xt.grad.data, wt.grad.data

    assert x[0].size * 40 * w.size > kernel_threads.MIN_PARALLEL_MACS, "big enough to split"
    threaded = run()
    parallel.set_num_threads(1)
    single = run()
    np.testing.assert_array_equal(threaded[0], single[0])  # each image computed the same way
    np.testing.assert_array_equal(threaded[1], single[1])
    np.testing.assert_allclose(threaded[2], single[2], rtol=1e-12)


def test_work_really_runs_on_another_thread(two_threads: None) -> None:
    parts = kernel_threads.batch_parts(64, 64, macs=kernel_threads.MIN_PARALLEL_MACS)
    assert len(parts) == 2 and parts[0] == slice(0, 32) and parts[1] == slice(32, 64)
    names = kernel_threads.map_parts(lambda part: threading.current_thread().name, parts)
    assert names[0] == threading.current_thread().name
    assert names[1].startswith("tinygrad_cnn")


def test_small_kernels_stay_on_the_calling_thread(two_threads: None) -> None:
    assert kernel_threads.batch_parts(64, 64, macs=kernel_threads.MIN_PARALLEL_MACS - 1) == [slice(0, 64)]


@pytest.mark.parametrize(("n", "chunk", "threads", "expected"), [
    (256, 64, 2, [64, 64, 64, 64]), (100, 64, 1, [50, 50]), (100, 64, 2, [50, 50]), (3, 64, 2, [1, 2]),
    (1, 64, 2, [1]), (0, 64, 2, [0]), (130, 64, 2, [32, 33, 32, 33])])
def test_batch_parts_cover_the_batch_evenly(monkeypatch: pytest.MonkeyPatch, n: int, chunk: int, threads: int,
                                            expected: list[int]) -> None:
    monkeypatch.setattr(kernel_threads, "_threads", threads)
    parts = kernel_threads.batch_parts(n, chunk, macs=kernel_threads.MIN_PARALLEL_MACS)
    assert [p.stop - p.start for p in parts] == expected
    assert parts[0].start == 0 and parts[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(parts, parts[1:]))


def test_gradients_on_two_threads_pass_gradcheck(two_threads: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel_threads, "MIN_PARALLEL_MACS", 0)  # split even these small float64 convs
    rng = Inputs(4)
    x, w = Tensor(rng.randn(4, 2, 6, 5), requires_grad=True), Tensor(rng.randn(3, 2, 3, 2), requires_grad=True)
    assert len(kernel_threads.batch_parts(4, 64, macs=1)) == 2
    assert gradcheck(lambda a, b: F.conv2d(a, b, padding=1), [x, w])
    assert gradgradcheck(lambda a, b: F.conv2d(a, b, stride=2), [x, w])


def test_an_error_in_a_worker_reaches_the_caller_after_every_part_finished(two_threads: None) -> None:
    finished: list[int] = []

    def work(part: slice) -> int:
        if part.start == 0:
            raise KeyError("boom in the caller's part")
        finished.append(part.start)
        return part.start

    parts = [slice(0, 1), slice(1, 2), slice(2, 3), slice(3, 4)]
    with pytest.raises(KeyError, match="caller"):
        kernel_threads.map_parts(work, parts)
    assert sorted(finished) == [2, 3], "the worker's run completed before the error was raised"

    def fail_in_worker(part: slice) -> int:
        if part.start == 3:
            raise ValueError("boom in a worker")
        return part.start

    with pytest.raises(ValueError, match="worker"):
        kernel_threads.map_parts(fail_in_worker, parts)


def test_a_worker_that_splits_again_runs_serially_instead_of_deadlocking(two_threads: None) -> None:
    def outer(part: slice) -> list[str]:
        inner = kernel_threads.batch_parts(64, 64, macs=kernel_threads.MIN_PARALLEL_MACS)
        return kernel_threads.map_parts(lambda p: threading.current_thread().name, inner)

    first, second = kernel_threads.map_parts(outer, [slice(0, 1), slice(1, 2)])
    assert len(set(second)) == 1 and second[0].startswith("tinygrad_cnn")
    assert len(first) == 2


def test_threads_off_gives_blas_back_its_thread_count() -> None:
    calls = parallel._blas_thread_calls()
    if calls is None:
        pytest.skip("numpy's BLAS is not an OpenBLAS we can query")
    before = calls[0]()
    assert parallel.set_num_threads(2) == 2
    assert calls[0]() == 1
    assert parallel.set_num_threads(1) == 1
    assert calls[0]() == before


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True, None])
def test_bad_thread_counts_are_refused_and_change_nothing(bad: object) -> None:
    before = kernel_threads.get_threads()
    with pytest.raises(ValueError, match=r"set_num_threads: expected a positive int, got"):
        parallel.set_num_threads(bad)  # type: ignore[arg-type]
    assert kernel_threads.get_threads() == before


# Run in a fresh interpreter: the default applies once per process, before anything sets a count.
_DEFAULT_THREADS_CHILD = """
import json, sys
import numpy as np
import tinygrad_cnn as torch
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn.kernels import parallel as kernel_threads
from tinygrad_cnn.runtime import threads
calls = threads._blas_thread_calls()
blas = (lambda: calls[0]()) if calls else (lambda: None)
seen = {"blas_before": blas(), "reported": torch.get_num_threads(), "cores": threads.available_cores()}
if sys.argv[1] == "one":
    torch.set_num_threads(1)
small = F.conv2d(torch.ones(1, 1, 6, 6), torch.ones(1, 1, 3, 3))
seen["after_small"] = kernel_threads.get_threads()
big = F.conv2d(torch.ones(64, 6, 12, 12), torch.ones(16, 6, 5, 5))
seen.update(after_big=kernel_threads.get_threads(), blas_after=blas(), value=float(big[0, 0, 0, 0]))
print(json.dumps(seen))
"""


def _default_threads_child(mode: str) -> dict:
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _DEFAULT_THREADS_CHILD, mode], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_first_big_kernel_turns_on_as_many_threads_as_cores_as_pytorch_does() -> None:
    seen = _default_threads_child("default")
    assert seen["reported"] == seen["cores"]  # torch.get_num_threads(): the count that will be used
    assert seen["after_small"] is None        # importing and small kernels change nothing
    assert seen["value"] == 150.0
    if seen["blas_before"] is None or seen["cores"] == 1:
        assert seen["after_big"] == 1
    else:
        assert seen["after_big"] == seen["cores"]
        assert seen["blas_after"] == 1        # numpy's BLAS pinned, as set_num_threads(n > 1) does


def test_set_num_threads_1_before_the_first_kernel_leaves_numpys_blas_alone() -> None:
    seen = _default_threads_child("one")
    assert seen["after_small"] == seen["after_big"] == 1
    assert seen["blas_after"] == seen["blas_before"]
    assert seen["value"] == 150.0


def test_set_num_threads_is_torchs_top_level_function() -> None:
    import tinygrad_cnn

    assert tinygrad_cnn.set_num_threads is parallel.set_num_threads
    assert tinygrad_cnn.get_num_threads is parallel.get_num_threads


def test_the_cli_uses_the_threads_asked_for_and_leaves_them_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--threads` reaches parallel.set_num_threads; its default is the cores available (at most 4)."""
    from tinygrad_cnn.cli import build_parser
    from tinygrad_cnn.cli.args import apply_threads

    asked: list[int] = []
    monkeypatch.setattr(parallel, "set_num_threads", lambda n: asked.append(n) or n)
    for argv, expected in ((["bench", "--threads", "1"], 1), (["bench", "--threads", "3"], 3),
                           (["bench"], min(parallel.available_cores(limit=10 ** 6), 4))):
        assert apply_threads(build_parser().parse_args(argv)) == expected
    assert asked == [1, 3, min(parallel.available_cores(limit=10 ** 6), 4)]


def _conv_in_child(queue: object) -> None:
    x = Tensor(np.ones((64, 6, 12, 12), dtype=np.float32))
    w = Tensor(np.ones((16, 6, 5, 5), dtype=np.float32))
    queue.put((parallel.get_num_threads(), float(F.conv2d(x, w).data[0, 0, 0, 0])))


def test_a_forked_child_runs_on_one_thread_instead_of_hanging(two_threads: None) -> None:
    """The child of a fork has none of the parent's threads; handing work to the copied pool would wait
    forever (e.g. a multiprocessing data loader that runs the model)."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_conv_in_child, args=(queue,))
    child.start()
    child.join(30)
    hung = child.is_alive()
    if hung:
        child.kill()
    assert not hung, "the child hung in a split convolution"
    assert queue.get(timeout=5) == (1, 150.0)
    assert parallel.get_num_threads() == 2  # the parent keeps its threads


def test_threads_reaching_the_first_big_kernel_together_choose_the_default_once(monkeypatch: pytest.MonkeyPatch
                                                                                ) -> None:
    """A server's threads may all start with a big kernel: the default must be chosen by exactly one of them
    (two choices would shut down the pool the other has just started using)."""
    import time

    calls: list[int] = []

    def slow_choice() -> None:
        calls.append(1)
        time.sleep(0.05)  # wide open, were the choice not guarded
        kernel_threads.set_threads(1)

    monkeypatch.setattr(kernel_threads, "_threads", None)
    monkeypatch.setattr(kernel_threads, "choose_default", slow_choice)
    workers = [threading.Thread(target=kernel_threads.batch_parts, args=(64, 8, 1 << 30)) for _ in range(6)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert calls == [1]
    assert kernel_threads.get_threads() == 1


def test_numpys_error_settings_apply_on_every_thread(two_threads: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """np.errstate is per thread: the caller's settings must hold for the parts computed by the pool."""
    from tinygrad_cnn.kernels import matmul

    monkeypatch.setattr(kernel_threads, "MIN_PARALLEL_MACS", 0)
    a = np.ones((8, 4), np.float32)
    a[7, 0] = np.inf  # the last row: computed by the pool's thread
    b = np.zeros((4, 3), np.float32)
    with np.errstate(invalid="raise"), pytest.raises(FloatingPointError):
        matmul.matmul(a, b)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(matmul.matmul(a, b)[7]).all()
