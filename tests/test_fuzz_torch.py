"""Differential fuzzing against PyTorch: random configurations of the CNN ops and of small networks.

Hypothesis draws every hyperparameter (shapes, empty batches included, stride, padding, dilation, groups,
bias, pooling mode, reduction, ...) and a seed for the float64 data; each example compares with PyTorch's,
to 1e-10, the forward value, the gradient with respect to every input (for a random upstream gradient) and
the second derivatives (double backward). test_ops_torch.py checks fixed grids; this file covers the space
between them. A failing example is printed with its reproduction blob (print_blob); the number of
configurations run is reported at the end.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from typing import Any

import helpers
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tinygrad_cnn as tg
import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor
from tinygrad_cnn.ops.conv import conv_out_size

torch = pytest.importorskip("torch")
TF = torch.nn.functional
pytestmark = pytest.mark.slow
TOL = {"rtol": 1e-10, "atol": 1e-10}
RUN: collections.Counter[str] = collections.Counter()  # configurations compared, per test


def fuzz(examples: int) -> Callable:
    return settings(max_examples=examples, deadline=None, derandomize=False, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tiny tensors: torch's thread pool would only contend with numpy on 2 cores. Reports the counts."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    plugins = request.config.pluginmanager
    reporter, capture = plugins.getplugin("terminalreporter"), plugins.getplugin("capturemanager")
    if reporter is not None and capture is not None and RUN:
        counts = ", ".join(f"{name} {n}" for name, n in RUN.items())
        with capture.global_and_fixture_disabled():  # shown without -s
            reporter.write_line(f"\ntest_fuzz_torch: {sum(RUN.values())} configurations matched PyTorch ({counts})")


def assert_matches_torch(name: str, ours: Callable[..., Tensor], theirs: Callable[..., Any], arrays: list[np.ndarray],
                         seed: int) -> None:
    helpers.assert_matches_torch(ours, theirs, arrays, seed + 1, tol=TOL["rtol"])
    RUN[name] += 1


def randn(seed: int, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in shapes]


SEEDS = st.integers(0, 2**32 - 1)
pairs = st.tuples


def fitting_size(draw: st.DrawFn, kernel: int, padding: int, dilation: int = 1) -> int:
    """An input size with at least one output position, up to 6 more."""
    smallest = max(1, dilation * (kernel - 1) + 1 - 2 * padding)
    return draw(st.integers(smallest, smallest + 6))


# ---- conv2d ---------------------------------------------------------------------------------------------
@st.composite
def conv_configs(draw: st.DrawFn) -> dict[str, Any]:
    groups = draw(st.integers(1, 3))
    kernel = draw(pairs(st.integers(1, 4), st.integers(1, 4)))
    padding = draw(pairs(st.integers(0, 3), st.integers(0, 3)))
    dilation = draw(pairs(st.integers(1, 3), st.integers(1, 3)))
    hw = tuple(fitting_size(draw, k, p, d) for k, p, d in zip(kernel, padding, dilation))
    return {"n": draw(st.integers(0, 3)), "c": groups * draw(st.integers(1, 3)), "hw": hw,
            "o": groups * draw(st.integers(1, 3)), "kernel": kernel, "bias": draw(st.booleans()),
            "stride": draw(pairs(st.integers(1, 4), st.integers(1, 4))), "padding": padding, "dilation": dilation,
            "groups": groups}


def conv_arrays(config: dict[str, Any], seed: int) -> list[np.ndarray]:
    c = config
    shapes = [(c["n"], c["c"], *c["hw"]), (c["o"], c["c"] // c["groups"], *c["kernel"])] + [(c["o"],)] * c["bias"]
    return randn(seed, *shapes)


def conv_params(config: dict[str, Any]) -> dict[str, Any]:
    return {k: config[k] for k in ("stride", "padding", "dilation", "groups")}


@fuzz(1500)
@given(conv_configs(), SEEDS)
def test_conv2d(config: dict[str, Any], seed: int) -> None:
    params = conv_params(config)
    assert_matches_torch("conv2d", lambda x, w, b=None: F.conv2d(x, w, b, **params),
                         lambda x, w, b=None: TF.conv2d(x, w, b, **params), conv_arrays(config, seed), seed)


# ---- pools ----------------------------------------------------------------------------------------------
@st.composite
def pool_configs(draw: st.DrawFn) -> dict[str, Any]:
    kernel = draw(pairs(st.integers(1, 4), st.integers(1, 4)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    hw = tuple(fitting_size(draw, k, p) for k, p in zip(kernel, padding))
    stride = draw(st.none() | pairs(st.integers(1, 4), st.integers(1, 4)))  # None: the kernel size
    return {"shape": (draw(st.integers(0, 2)), draw(st.integers(1, 3)), *hw), "kernel": kernel, "stride": stride,
            "padding": padding}


@fuzz(400)
@given(pool_configs(), SEEDS)
def test_max_pool2d(config: dict[str, Any], seed: int) -> None:
    # standard normal data: ties, whose routing test_ops_torch.py checks, have probability zero here
    k, s, p = config["kernel"], config["stride"], config["padding"]
    assert_matches_torch("max_pool2d", lambda x: F.max_pool2d(x, k, s, p), lambda x: TF.max_pool2d(x, k, s, p),
                         randn(seed, config["shape"]), seed)


@fuzz(400)
@given(pool_configs(), st.booleans(), SEEDS)
def test_avg_pool2d(config: dict[str, Any], count_include_pad: bool, seed: int) -> None:
    k, s, p = config["kernel"], config["stride"], config["padding"]
    assert_matches_torch("avg_pool2d", lambda x: F.avg_pool2d(x, k, s, p, count_include_pad=count_include_pad),
                         lambda x: TF.avg_pool2d(x, k, s, p, count_include_pad=count_include_pad),
                         randn(seed, config["shape"]), seed)


# ---- linear, log_softmax ----------------------------------------------------------------------------------
@fuzz(200)
@given(st.lists(st.integers(0, 4), max_size=2), st.integers(1, 6), st.integers(1, 6), st.booleans(), SEEDS)
def test_linear(batch: list[int], features_in: int, features_out: int, bias: bool, seed: int) -> None:
    shapes = [(*batch, features_in), (features_out, features_in)] + [(features_out,)] * bias
    assert_matches_torch("linear", F.linear, TF.linear, randn(seed, *shapes), seed)


@fuzz(200)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=4), st.data(), st.sampled_from([1e-3, 1.0, 30.0, 1e3]),
       SEEDS)
def test_log_softmax(shape: list[int], data: st.DataObject, scale: float, seed: int) -> None:
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    (x,) = randn(seed, tuple(shape))
    assert_matches_torch("log_softmax", lambda x: F.log_softmax(x, axis), lambda x: TF.log_softmax(x, axis),
                         [x * scale], seed)


# ---- small networks ---------------------------------------------------------------------------------------
@st.composite
def network_configs(draw: st.DrawFn) -> dict[str, Any]:
    """conv -> relu -> max or avg pool -> flatten -> linear -> cross_entropy, every size drawn to fit."""
    conv = draw(conv_configs())
    conv_hw = [conv_out_size(s, k, st_, p, d) for s, k, st_, p, d in
               zip(conv["hw"], conv["kernel"], conv["stride"], conv["padding"], conv["dilation"])]
    kernel = tuple(draw(st.integers(1, min(3, size))) for size in conv_hw)
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    stride = draw(pairs(st.integers(1, 3), st.integers(1, 3)))
    pooled_hw = [conv_out_size(s, k, st_, p, 1) for s, k, st_, p in zip(conv_hw, kernel, stride, padding)]
    return {"conv": conv, "pool": draw(st.sampled_from(["max", "avg", "avg-exclude-pad"])),
            "pool_args": (kernel, stride, padding), "features": conv["o"] * pooled_hw[0] * pooled_hw[1],
            "classes": draw(st.integers(2, 5)), "linear_bias": draw(st.booleans()),
            "reduction": draw(st.sampled_from(["mean", "sum", "none"]))}


def network(lib: Any, config: dict[str, Any], target: Any) -> Callable[..., Any]:
    conv_bias, linear_bias = config["conv"]["bias"], config["linear_bias"]
    pool = {"max": lib.max_pool2d, "avg": lib.avg_pool2d,
            "avg-exclude-pad": lambda x, *a: lib.avg_pool2d(x, *a, count_include_pad=False)}[config["pool"]]

    def run(x: Any, w: Any, *rest: Any) -> Any:
        rest = list(rest)
        b = rest.pop(0) if conv_bias else None
        v = rest.pop(0)
        c = rest.pop(0) if linear_bias else None
        h = pool(lib.relu(lib.conv2d(x, w, b, **conv_params(config["conv"]))), *config["pool_args"])
        return lib.cross_entropy(lib.linear(h.flatten(1), v, c), target, reduction=config["reduction"])
    return run


@fuzz(1000)
@given(network_configs(), SEEDS)
def test_small_networks(config: dict[str, Any], seed: int) -> None:
    n, classes = config["conv"]["n"], config["classes"]
    arrays = conv_arrays(config["conv"], seed) + randn(seed + 2, (classes, config["features"]),
                                                        *[(classes,)] * config["linear_bias"])
    target = np.random.default_rng(seed + 3).integers(0, classes, n)
    assert_matches_torch("network", network(F, config, target), network(TF, config, torch.tensor(target)),
                         arrays, seed)


# ---- the Tensor API: reductions over dim, joining, splitting and reshaping ------------------------------------
def distinct_values(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """A shuffled grid 0.1 apart (no ties: max, min and clamp are differentiable at every element)."""
    n = int(np.prod(shape))
    return ((np.random.default_rng(seed).permutation(n) - n / 2) * 0.1 + 0.03).reshape(shape)


REDUCTIONS = {
    "sum": lambda lib, x, d, k: x.sum(d, keepdim=k),
    "mean": lambda lib, x, d, k: x.mean(dim=d, keepdim=k),
    "amax": lambda lib, x, d, k: x.amax(d, keepdim=k),
    "amin": lambda lib, x, d, k: lib.amin(x, d, k),
    "var": lambda lib, x, d, k: x.var(d, keepdim=k),
    "std-biased": lambda lib, x, d, k: x.std(d, unbiased=False, keepdim=k),
    "logsumexp": lambda lib, x, d, k: x.logsumexp(d, keepdim=k),
    "max-dim": lambda lib, x, d, k: x.max(d[0], keepdim=k).values,
    "min-dim": lambda lib, x, d, k: lib.min(x, d[0], k)[0],
    "softmax": lambda lib, x, d, k: x.softmax(d[0]),
    "log_softmax": lambda lib, x, d, k: x.log_softmax(dim=d[0]),
}


@fuzz(200)
@given(st.sampled_from(sorted(REDUCTIONS)), st.lists(st.integers(1, 4), min_size=1, max_size=4), st.data(),
       st.booleans(), SEEDS)
def test_tensor_reductions(name: str, shape: list[int], data: st.DataObject, keepdim: bool, seed: int) -> None:
    """Every reduction over a random set of dims (negative ones too), keepdim or not."""
    ndim = len(shape)
    dims = data.draw(st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=ndim,
                              unique_by=lambda d: d % ndim), label="dims")
    if name in ("var", "std-biased"):  # a variance of one element is 0 (or 0/0): a degenerate point of sqrt
        assume(np.prod([shape[d] for d in dims]) > 1)
    f = REDUCTIONS[name]
    assert_matches_torch("tensor_reductions", lambda x: f(tg, x, tuple(dims), keepdim),
                         lambda x: f(torch, x, tuple(dims), keepdim), [distinct_values(seed, tuple(shape))], seed)


@st.composite
def movement_programs(draw: st.DrawFn) -> tuple[str, tuple[int, ...], Any]:
    """An op of the Tensor API and its arguments, drawn to fit a random shape."""
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    ndim = len(shape)
    dim = draw(st.integers(-ndim, ndim - 1))
    name = draw(st.sampled_from(["flatten", "unsqueeze", "squeeze", "expand", "repeat", "split", "chunk", "cat",
                                 "stack", "clamp", "where", "gather", "unbind", "narrow", "transpose"]))
    if name == "flatten":
        start = draw(st.integers(-ndim, ndim - 1))
        args: Any = (start, draw(st.integers(start % ndim, ndim - 1)))
    elif name == "unsqueeze":
        args = draw(st.integers(-ndim - 1, ndim))
    elif name == "expand":
        args = tuple(draw(st.sampled_from([-1, n])) if n > 1 else draw(st.sampled_from([-1, 1, 3])) for n in shape)
        args = (2, *args) if draw(st.booleans()) else args
    elif name == "repeat":
        args = tuple(draw(st.integers(1, 3)) for _ in range(ndim + draw(st.integers(0, 1))))
    elif name in ("split", "chunk"):
        args = (draw(st.integers(1, shape[dim] + 1)), dim)
    elif name in ("cat", "stack"):
        args = (draw(st.integers(1, 3)), draw(st.integers(-ndim - (name == "stack"), ndim - 1 + (name == "stack"))))
    elif name == "narrow":
        start = draw(st.integers(0, shape[dim] - 1))
        args = (dim, start, draw(st.integers(0, shape[dim] - start)))
    elif name == "transpose":
        args = (dim, draw(st.integers(-ndim, ndim - 1)))
    elif name == "gather":
        index_shape = tuple(draw(st.integers(1, n + 1)) if i == dim % ndim else draw(st.integers(1, n))
                            for i, n in enumerate(shape))
        args = (dim, np.random.default_rng(draw(SEEDS)).integers(0, shape[dim], index_shape))
    else:
        args = dim
    return name, shape, args


def movement(lib: Any, name: str, args: Any) -> Callable[..., Any]:
    def run(x: Any, y: Any) -> Any:
        if name == "squeeze":
            return x.unsqueeze(args).squeeze(args) * y
        if name in ("split", "chunk"):
            pieces = getattr(x, name)(*args)
            return lib.cat([p * (i + 1) for i, p in enumerate(pieces)], args[1]) * y
        if name == "cat":
            return lib.cat([x * y, y * 2, x][:args[0]], dim=args[1])
        if name == "stack":
            return lib.stack([x * y, y, x][:args[0]], args[1])
        if name == "clamp":
            return x.clamp(-0.25, 0.35) + y.clamp(min=0.05)
        if name == "where":
            return lib.where(x > y, x, y * 3)
        if name == "unbind":
            return lib.stack(x.unbind(args)[::-1], args) * y
        if name == "gather":
            out = x.gather(args[0], lib.tensor(args[1]))
        else:
            out = getattr(x, name)(*(args if isinstance(args, tuple) else (args,)))
        return out * 2 + y.sum()
    return run


@fuzz(300)
@given(movement_programs(), SEEDS)
def test_tensor_movement_and_joins(program: tuple[str, tuple[int, ...], Any], seed: int) -> None:
    """Reshaping, expanding, splitting and joining ops with random shapes and dims, composed with a second
    input so that gradients flow through both."""
    name, shape, args = program
    x, y = distinct_values(seed, shape), distinct_values(seed + 1, shape) + 0.01
    assert_matches_torch("tensor_movement", movement(tg, name, args), movement(torch, name, args), [x, y], seed)


FUZZ_TESTS = 8  # the tests above: the total below is only meaningful when all of them ran


def test_at_least_500_configurations_ran() -> None:
    if len(RUN) < FUZZ_TESTS:
        pytest.skip(f"only {sorted(RUN)} of the fuzz tests ran in this session")
    assert sum(RUN.values()) >= 500, RUN
