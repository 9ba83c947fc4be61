"""Hardening: bad input across the public surface, in-place safety, numerical edge cases.

The table complements test_errors.py (which covers the core op checks) with other cases and the rest of
the surface: Tensor construction, layers, losses, optimizers, data files, checkpoints, state dicts and
the command line. Every row must raise the right error with a message naming what is wrong and what was
expected, and leave everything as it was: a model's parameters, versions and gradients, an optimizer's
state and hyperparameters, a recorded graph, and no op applied (`op_log`, conftest.py), except for the
few ops whose check is numpy's own, inside forward (listed per row: the context is built, then
discarded, never recorded).
"""

from __future__ import annotations

import copy
import gzip
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tinygrad_cnn import CheckpointError, Config, Tensor, load, nn, save
from tinygrad_cnn.app import training
from tinygrad_cnn.cli import main
from tinygrad_cnn.data import MNISTError, read_idx
from tinygrad_cnn.models import lenet5
from tinygrad_cnn.optim import SGD, Adam

# imported now: it applies ops on import, which the CLI does on its first use (they would land in the op
# log of the first command-line row)
from tinygrad_cnn.tools import opsuite  # noqa: F401

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # no silent overflow in the edge cases


# ---- a small trained state that no refused call may touch -------------------------------------------
@dataclass
class World:
    """A conv + linear model (input (3, 1, 8, 8) float32) after one SGD-with-momentum step, with a fresh
    forward pass recorded (`logits`, (3, 4)) and a tmp directory for files."""

    model: nn.Sequential
    optimizer: SGD
    logits: Tensor
    tmp: Path


def make_model() -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(1, 2, 3)), ("relu", nn.ReLU()), ("pool", nn.MaxPool2d(2)),   # (N, 2, 3, 3)
        ("flatten", nn.Flatten()), ("fc", nn.Linear(18, 4)),
    ]))


@pytest.fixture
def world(tmp_path: Path) -> World:
    rng = np.random.default_rng(0)
    model = make_model()
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = Tensor(rng.standard_normal((3, 1, 8, 8)).astype(np.float32))
    target = np.array([0, 3, 1])
    F.cross_entropy(model(x), target).backward()
    optimizer.step()  # momentum buffers exist: there is optimizer state to protect
    return World(model, optimizer, model(x), tmp_path)


def snapshot(w: World) -> dict[str, Any]:
    return {
        "params": {name: (p.data.copy(), p._version, None if p.grad is None else p.grad.data.copy())
                   for name, p in w.model.named_parameters()},
        "optimizer": copy.deepcopy(w.optimizer.state_dict()),
        "graph": len(w.logits._topo()),
    }


def assert_unchanged(w: World, before: dict[str, Any]) -> None:
    after = snapshot(w)
    for name, (data, version, grad) in before["params"].items():
        data_now, version_now, grad_now = after["params"][name]
        assert np.array_equal(data_now, data) and version_now == version, f"parameter {name} changed"
        assert (grad is None and grad_now is None) or np.array_equal(grad_now, grad), f"{name}.grad changed"
    opt_before, opt_after = before["optimizer"], after["optimizer"]
    assert opt_after["param_groups"] == opt_before["param_groups"], "optimizer hyperparameters changed"
    assert opt_after["state"].keys() == opt_before["state"].keys()
    for i, state in opt_before["state"].items():
        assert np.array_equal(opt_after["state"][i]["momentum_buffer"], state["momentum_buffer"])
    assert after["graph"] == before["graph"] and not w.logits._ctx.freed, "the recorded graph changed"
    assert Config.observers == ()


# ---- helpers that make a row readable -----------------------------------------------------------------
def X(*shape: int) -> Tensor:  # short: it appears in most rows of the table
    """An input of this shape: float64 ones that require grad."""
    return Tensor(np.ones(shape), requires_grad=True)


def cli(*argv: str) -> Callable[[World], None]:
    """Run the command in-process as the console script does: a non-zero return becomes SystemExit(code)."""
    def run(w: World) -> None:
        code = main([arg.format(tmp=w.tmp) for arg in argv])
        if code:
            raise SystemExit(code)
    return run


def file_with(name: str, content: bytes) -> Callable[[World], Path]:
    def write(w: World) -> Path:
        path = w.tmp / name
        path.write_bytes(content)
        return path
    return write


def idx_header(type_code: int, *dims: int) -> bytes:
    return bytes([0, 0, type_code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def half_of_a_training_checkpoint(w: World) -> Path:
    path = w.tmp / "checkpoint.npz"
    state = training.Checkpoint(1, training.TrainConfig(), [], w.model.state_dict(), w.optimizer.state_dict(),
                                {}, {})
    save(state.to_dict(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def set_lr(w: World, value: Any) -> None:
    w.optimizer.lr = value


def renamed(state: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {prefix + k: v for k, v in state.items()}


def with_entry(state: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    return {**state, key: value}


def bad(call: Callable[[World], object], error: type[BaseException], fragments: list[str], ops: tuple[str, ...] = (),
        *, id: str) -> Any:
    """One row: `call(world)` must raise `error` with every fragment ("{tmp}" is the world's directory) in its
    message (or on stderr), having applied no op but `ops`."""
    return pytest.param(call, error, fragments, ops, id=id)


CASES = [
    # ---- Tensor construction
    bad(lambda w: Tensor(np.array([{"a": 1}, {"b": 2}])), TypeError,
        ["Tensor", "unsupported dtype object", "floating-point"], id="tensor-object-array-of-dicts"),
    bad(lambda w: Tensor(None), TypeError, ["Tensor", "object", "NoneType", "floating-point"],
        id="tensor-from-None"),
    bad(lambda w: Tensor([1.0, None]), TypeError, ["Tensor", "object", "list"], id="tensor-list-with-None"),
    bad(lambda w: Tensor(1 + 2j), TypeError, ["Tensor", "complex128", "integer or floating-point"],
        id="tensor-complex-scalar"),
    bad(lambda w: Tensor(np.ones(3), dtype=np.complex64), TypeError, ["Tensor", "complex64"],
        id="tensor-complex-dtype"),
    bad(lambda w: Tensor(b"\x00\x01"), TypeError, ["Tensor", "unsupported dtype |S2", "bytes"],
        id="tensor-from-bytes"),
    bad(lambda w: Tensor(np.datetime64("2024-01-01")), TypeError, ["Tensor", "datetime64"],
        id="tensor-datetime"),
    bad(lambda w: Tensor([[1, 2], [3, 4, 5]]), ValueError, ["Tensor", "rectangular nested list"],
        id="tensor-ragged-int-rows"),
    bad(lambda w: Tensor([[[1.0]], [2.0]]), ValueError, ["Tensor", "rectangular nested list"],
        id="tensor-ragged-depth"),
    bad(lambda w: Tensor(True, requires_grad=True), TypeError,
        ["requires_grad=True", "floating-point", "bool"], id="tensor-bool-requires-grad"),
    # ---- ops: shapes, dtypes, arguments
    bad(lambda w: F.conv2d(X(1, 2, 5, 5), X(2, 2, 3, 3), groups=0), ValueError,
        ["conv2d", "groups", "positive int", "0"], id="conv2d-groups-0"),
    bad(lambda w: F.conv2d(X(1, 1, 5, 5), X(1, 1, 3, 3), stride=1.5), TypeError,
        ["conv2d", "stride", "int or a pair of ints", "1.5"], id="conv2d-float-stride"),
    bad(lambda w: F.conv2d(X(1, 1, 5, 5), X(1, 1, 3, 3), padding="full"), ValueError,
        ["conv2d", "padding", "'full'", "'valid', 'same'"], id="conv2d-padding-full"),
    bad(lambda w: F.conv2d(X(1, 1, 5, 5), X(1, 1, 3, 3), dilation=(1, 2, 3)), TypeError,
        ["conv2d", "dilation", "pair", "(1, 2, 3)"], id="conv2d-dilation-triple"),
    bad(lambda w: F.conv2d(Tensor(np.ones((1, 1, 5, 5), bool)), X(1, 1, 3, 3)), TypeError,
        ["conv2d", "input", "floating point", "bool"], id="conv2d-bool-input"),
    bad(lambda w: F.conv2d(X(1, 1, 1, 5, 5), X(1, 1, 3, 3)), ValueError,
        ["conv2d", "4-D input", "(1, 1, 1, 5, 5)"], id="conv2d-5d-input"),
    bad(lambda w: F.conv2d(X(1, 1, 5, 5), X(2, 1, 3, 3), X(2, 1)), ValueError,
        ["conv2d", "bias", "(2,)", "(2, 1)"], id="conv2d-2d-bias"),
    bad(lambda w: F.max_pool2d(X(1, 1, 4, 4), 0), ValueError,
        ["max_pool2d", "kernel_size", ">= 1", "0"], id="max_pool2d-kernel-0"),
    bad(lambda w: F.max_pool2d(X(1, 1, 4, 4), None), TypeError,
        ["max_pool2d", "kernel_size", "int or a pair", "None"], id="max_pool2d-kernel-None"),
    bad(lambda w: F.avg_pool2d(X(1, 1, 4, 4), 2, stride=(0, 1)), ValueError,
        ["avg_pool2d", "stride", ">= 1", "(0, 1)"], id="avg_pool2d-stride-0"),
    bad(lambda w: F.avg_pool2d(X(1, 1, 4, 4), 2, padding=-1), ValueError,
        ["avg_pool2d", "padding", ">= 0", "-1"], id="avg_pool2d-negative-padding"),
    bad(lambda w: F.linear(Tensor(np.array(1.0)), X(2, 1)), ValueError,
        ["linear", "(..., in_features)", "shape ()"], id="linear-0d-input"),
    bad(lambda w: F.linear(X(2, 3), X(3)), ValueError,
        ["linear", "(out_features, 3)", "(3,)"], id="linear-1d-weight"),
    bad(lambda w: X(3) @ Tensor(np.array(2.0)), ValueError,
        ["matmul", "at least 1-D", "(3,)", "()"], id="matmul-0d-operand"),
    bad(lambda w: X(2, 3).reshape(-1, -1), ValueError,
        ["reshape", "(2, 3)", "6 elements", "(-1, -1)"], id="reshape-two-wildcards"),
    bad(lambda w: X(2, 3).reshape(-2, -3), ValueError,
        ["reshape", "(2, 3)", "(-2, -3)"], id="reshape-negative-dims"),
    bad(lambda w: X(2, 3).permute(0, 0), ValueError,
        ["permute", "(0, 0)", "not a permutation", "2 axes", "(2, 3)"], id="permute-repeated-axis"),
    bad(lambda w: X(2, 3).permute(0, 5), ValueError,
        ["permute", "(0, 5)", "not a permutation", "2 axes", "(2, 3)"], id="permute-axis-out-of-range"),
    bad(lambda w: X(2, 3).transpose(0, 5), ValueError,
        ["transpose", "5", "out of range", "2 dimensions"], id="transpose-axis-out-of-range"),
    bad(lambda w: X(2, 3).sum(axis=2), ValueError,
        ["sum", "axis 2", "out of range", "2 dimensions"], id="sum-axis-out-of-range"),
    bad(lambda w: X(2, 3).max(axis=-3), ValueError,
        ["max", "axis -3", "out of range", "2 dimensions"], id="max-negative-axis-out-of-range"),
    bad(lambda w: X(2, 3).sum(axis=(1, -1)), ValueError,
        ["sum", "(1, -1)", "more than once"], id="sum-repeated-axis"),
    bad(lambda w: X(2, 3).mean(axis=1.5), TypeError,
        ["mean", "axis", "int", "1.5"], id="mean-float-axis"),
    bad(lambda w: X(2, 3).pad(((0, 0), (-1, 2))), ValueError,
        ["pad", ">= 0", "-1"], id="pad-negative-pair"),
    bad(lambda w: X(2, 3).pad([(1, 1)] * 3), ValueError,
        ["pad", "(before, after)", "2 axes", "(2, 3)"], id="pad-too-many-pairs"),
    bad(lambda w: X(2, 3)[5], IndexError,
        ["getitem", "5", "(2, 3)", "out of bounds for axis 0 with size 2"], ops=("Getitem",),
        id="getitem-row-out-of-range"),
    bad(lambda w: X(2, 3)[:, -4], IndexError,
        ["getitem", "-4", "(2, 3)", "axis 1 with size 3"], ops=("Getitem",), id="getitem-negative-column"),
    bad(lambda w: X(2, 3).log_softmax(axis=2), ValueError,
        ["log_softmax", "axis 2", "out of range", "2 dimensions"], id="log_softmax-axis-out-of-range"),
    bad(lambda w: nn.Flatten(start_dim=5)(X(2, 3)), ValueError,
        ["flatten", "5", "out of range", "2 dimensions"], id="flatten-start-dim-out-of-range"),
    bad(lambda w: X(2, 3) + X(4), ValueError, ["Add", "(2, 3)", "(4,)", "broadcast"], ops=("Add",),
        id="add-shapes-do-not-broadcast"),
    bad(lambda w: X(2, 3).expand(2, 4), ValueError, ["expand", "(2, 3)", "(2, 4)"],
        id="expand-incompatible"),
    bad(lambda w: X(2, 3).item(), ValueError, ["item", "one-element", "(2, 3)"], id="item-of-a-matrix"),
    # ---- models and layers
    bad(lambda w: w.model(Tensor(np.zeros((3, 1, 8, 8), np.uint8))), TypeError,
        ["conv2d", "floating point", "uint8"], id="model-on-raw-uint8-images"),
    bad(lambda w: w.model(Tensor(np.zeros((1, 8, 8), np.float32))), ValueError,
        ["conv2d", "4-D input", "(N, C, H, W)", "(1, 8, 8)"], id="model-without-batch-axis"),
    bad(lambda w: w.model(Tensor(np.zeros((3, 3, 8, 8), np.float32))), ValueError,
        ["conv2d", "3 channels", "expects 1"], id="model-on-rgb-images"),
    bad(lambda w: nn.Conv2d(1.5, 6, 3), ValueError, ["Conv2d", "in_channels", "positive int", "1.5"],
        id="Conv2d-float-channels"),
    bad(lambda w: nn.Linear("3", 4), ValueError, ["Linear", "in_features", "positive int", "'3'"],
        id="Linear-string-features"),
    bad(lambda w: nn.Dropout("0.5"), ValueError, ["Dropout", "p", "between 0 and 1", "'0.5'"],
        id="Dropout-string-p"),
    bad(lambda w: nn.MaxPool2d((2, 2.5)), TypeError, ["MaxPool2d", "kernel_size", "(2, 2.5)"],
        id="MaxPool2d-float-kernel"),
    # ---- losses
    bad(lambda w: F.cross_entropy(w.logits, [0, 1]), ValueError,
        ["cross_entropy", "target", "(3,)", "(2,)"], id="cross_entropy-short-target-list"),
    bad(lambda w: F.cross_entropy(w.logits, np.array([0, -2, 1])), ValueError,
        ["cross_entropy", "[0, 4)", "[-2]"], id="cross_entropy-negative-target"),
    bad(lambda w: F.cross_entropy(w.logits, Tensor(np.array([0.0, 1.0, 2.0], np.float32))), TypeError,
        ["cross_entropy", "integer class indices", "float32"], id="cross_entropy-float32-tensor-target"),
    bad(lambda w: F.cross_entropy(w.logits, np.eye(5)[[0, 3, 1]]), TypeError,  # probabilities need the input's shape
        ["cross_entropy", "integer class indices", "float64"], id="cross_entropy-one-hot-target-of-another-shape"),
    bad(lambda w: F.cross_entropy(w.logits, np.array([True, False, True])), TypeError,
        ["cross_entropy", "integer", "bool"], id="cross_entropy-bool-target"),
    bad(lambda w: F.cross_entropy(w.logits, np.array([0, 3, 1]), reduction="Mean"), ValueError,
        ["cross_entropy", "'mean', 'sum' or 'none'", "'Mean'"], id="cross_entropy-reduction-case"),
    bad(lambda w: F.nll_loss(X(3, 4), np.array([0, 1, 2]), reduction=None), ValueError,
        ["nll_loss", "'mean', 'sum' or 'none'", "None"], id="nll_loss-reduction-None"),
    bad(lambda w: F.nll_loss(X(3, 4, 2), np.array([0, 1, 2])), ValueError,
        ["nll_loss", "(N, classes)", "(3, 4, 2)"], id="nll_loss-3d-scores"),
    # ---- optimizers
    bad(lambda w: SGD(w.model, lr=0.1), TypeError,
        ["SGD", "params[0]", "Conv2d", "expected a Tensor"], id="SGD-given-the-module"),
    bad(lambda w: SGD([{"params": list(w.model.parameters()), "lr": -1}], lr=0.1), ValueError,
        ["SGD", "lr", ">= 0", "-1"], id="SGD-param-group-negative-lr"),
    bad(lambda w: w.optimizer.add_param_group({"params": list(w.model.parameters())[:1]}), ValueError,
        ["SGD.add_param_group", "more than one parameter group"], id="SGD-add-a-param-twice"),
    bad(lambda w: SGD(w.model.parameters(), lr=None), TypeError,
        ["SGD", "lr", "real number", "None"], id="SGD-lr-None"),
    bad(lambda w: SGD(w.model.parameters(), lr=0.1, momentum=math.inf), ValueError,
        ["SGD", "momentum", "finite", "inf"], id="SGD-infinite-momentum"),
    bad(lambda w: Adam(w.model.parameters(), lr=True), TypeError,
        ["Adam", "lr", "real number", "bool"], id="Adam-bool-lr"),
    bad(lambda w: Adam(w.model.parameters(), betas=(0.9,)), TypeError,
        ["Adam", "betas", "pair", "(0.9,)"], id="Adam-one-beta"),
    bad(lambda w: set_lr(w, -0.5), ValueError, ["SGD", "lr", ">= 0", "-0.5"], id="optimizer-set-negative-lr"),
    bad(lambda w: w.optimizer.load_state_dict(w.model.state_dict()), ValueError,
        ["SGD.load_state_dict", "expected a dict with keys", "conv.weight"],
        id="optimizer-load-a-model-state-dict"),
    bad(lambda w: w.optimizer.load_state_dict(SGD(lenet5().parameters(), lr=0.1).state_dict()), ValueError,
        ["SGD.load_state_dict", "10 parameters", "has 4"], id="optimizer-load-another-models-state"),
    # ---- load_state_dict
    bad(lambda w: w.model.load_state_dict(renamed(w.model.state_dict(), "module.")), ValueError,
        ["load_state_dict for Sequential", "missing keys", "unexpected keys", "module.conv.weight"],
        id="load_state_dict-prefixed-keys"),
    bad(lambda w: w.model.load_state_dict(with_entry(w.model.state_dict(), "fc.weight", np.zeros((18, 4)))),
        ValueError, ["shape mismatches", "fc.weight", "(18, 4)", "(4, 18)"],
        id="load_state_dict-transposed-weight"),
    bad(lambda w: w.model.load_state_dict(lenet5().state_dict()), ValueError,
        ["missing keys", "unexpected keys", "conv1.weight"], id="load_state_dict-another-architecture"),
    bad(lambda w: w.model.load_state_dict(with_entry(w.model.state_dict(), "fc.bias", "zeros")), ValueError,
        ["fc.bias", "checkpoint () vs model (4,)", "cannot be cast"], id="load_state_dict-string-value"),
    # ---- data files
    bad(lambda w: read_idx(w.tmp / "absent-idx1-ubyte"), FileNotFoundError, ["absent-idx1-ubyte"],
        id="read_idx-missing-file"),
    bad(lambda w: read_idx(file_with("empty", b"")(w)), MNISTError, ["empty", "truncated: 0 bytes"],
        id="read_idx-empty-file"),
    bad(lambda w: read_idx(file_with("junk.gz", b"\x1f\x8b" + b"junk" * 10)(w)), MNISTError,
        ["junk.gz", "corrupted gzip"], id="read_idx-gzip-magic-then-garbage"),
    bad(lambda w: read_idx(file_with("text.gz", gzip.compress(b"404 Not Found"))(w)), MNISTError,
        ["text.gz", "not an IDX file"], id="read_idx-gzipped-error-page"),
    bad(lambda w: read_idx(file_with("huge", idx_header(0x08, 60000, 28, 28) + bytes(10))(w)), MNISTError,
        ["huge", "truncated", "60000x28x28", "47040016 bytes, found 26"], id="read_idx-header-claims-huge"),
    bad(lambda w: read_idx(file_with("float", idx_header(0x0D, 2) + bytes(8))(w), expected_magic=2049), MNISTError,
        ["float", "wrong magic number", "expected 2049", "found 3329"], id="read_idx-float-labels"),
    # ---- checkpoints
    bad(lambda w: load(file_with("notes.npz", b"epoch 3, loss 0.1\n")(w)), CheckpointError,
        ["notes.npz", "not a readable checkpoint"], id="load-a-text-file"),
    bad(lambda w: training.load_checkpoint(half_of_a_training_checkpoint(w)), CheckpointError,
        ["checkpoint.npz", "truncated or corrupted"], id="load_checkpoint-truncated"),
    bad(lambda w: load(w.tmp), CheckpointError, ["is a directory", "{tmp}"], id="load-a-directory"),
    bad(lambda w: save(w.model.state_dict(), w.tmp / "absent-dir" / "c.npz"), FileNotFoundError,
        ["absent-dir"], id="save-into-a-missing-directory"),
    # ---- command line (exit code 2, message on stderr)
    bad(cli("frobnicate"), SystemExit, ["invalid choice: 'frobnicate'", "train"], id="cli-unknown-command"),
    bad(cli("train", "--out", "{tmp}/run", "--epochs", "2.5"), SystemExit,
        ["--epochs", "expected an integer", "'2.5'"], id="cli-train-fractional-epochs"),
    bad(cli("train", "--out", "{tmp}/run", "--lr-decay", "0"), SystemExit,
        ["--lr-decay", "in (0, 1]", "0"], id="cli-train-lr-decay-0"),
    bad(cli("train", "--out", "{tmp}/run", "--seed", "-1"), SystemExit,
        ["--seed", ">= 0", "-1"], id="cli-train-negative-seed"),
    bad(cli("eval"), SystemExit, ["eval", "required", "--checkpoint"], id="cli-eval-without-checkpoint"),
    bad(cli("eval", "--checkpoint", "{tmp}/absent.npz"), SystemExit,
        ["tinygrad-cnn eval: error", "no checkpoint at", "absent.npz"], id="cli-eval-missing-checkpoint"),
    bad(cli("summary", "resnet50"), SystemExit, ["MODEL", "invalid choice: 'resnet50'", "lenet5"],
        id="cli-summary-unknown-model"),
    bad(cli("summary", "lenet5", "--input", "28x28"), SystemExit, ["--input", "CxHxW", "'28x28'"],
        id="cli-summary-two-dimensional-input"),
    bad(cli("summary", "lenet5", "--input", "1x4x4"), SystemExit,
        ["summary", "conv1", "kernel (5, 5)", "padded input (4, 4)"], id="cli-summary-input-too-small"),
    bad(cli("gradcheck", "--op", "convolution"), SystemExit, ["unknown op 'convolution'", "conv2d"],
        id="cli-gradcheck-unknown-op"),
    bad(cli("graph", "-o", "{tmp}/graph.txt"), SystemExit, ["unsupported file suffix '.txt'", ".svg"],
        id="cli-graph-unknown-format"),
]


@pytest.mark.parametrize("call, error, fragments, allowed_ops", CASES)
def test_bad_input_is_refused_cleanly(call: Callable[[World], object], error: type[BaseException], fragments: list[str],
                                      allowed_ops: tuple[str, ...], world: World, op_log: list[str],
                                      capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    before = snapshot(world)
    op_log.clear()
    with pytest.raises(error) as failure:
        call(world)
    message = str(failure.value) + capsys.readouterr().err
    if error is SystemExit:
        assert failure.value.code == 2, f"exit code {failure.value.code}, expected 2 (usage error)"
        assert "Traceback" not in message
    missing = [f for f in (f.format(tmp=world.tmp) for f in fragments) if f not in message]
    assert not missing, f"the message {message!r} does not mention {missing}"
    assert tuple(op_log) == allowed_ops, f"ops were applied before the error was raised: {op_log}"
    assert_unchanged(world, before)
    assert not (world.tmp / "run").exists(), "a refused command wrote its output directory"


# ---- in-place changes between forward and backward ------------------------------------------------------
def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4))


MODELS = {"conv-net": (make_model, (3, 1, 8, 8)), "mlp": (mlp, (3, 6))}  # constructor, input shape


def step(model: nn.Module) -> None:
    SGD(model.parameters(), lr=0.1).step()


def reload(model: nn.Module) -> None:
    model.load_state_dict({k: v + 1 for k, v in model.state_dict().items()})


@pytest.mark.parametrize("change", [step, reload], ids=["optimizer-step", "load_state_dict"])
@pytest.mark.parametrize("name", MODELS)
def test_changing_parameters_between_forward_and_backward_is_caught(name: str,
                                                                    change: Callable[[nn.Module], None]) -> None:
    """The mlp has no conv, whose saved weight is the parameter itself: Linear saves a transposed *view* of
    its weight, and the change must be seen through it too (else fc1's gradient would silently use the
    updated fc2 weights)."""
    make, shape = MODELS[name]
    model = make()
    for p in model.parameters():
        p.grad = Tensor(np.ones_like(p.data))  # so that step() changes every parameter
    loss = F.cross_entropy(model(Tensor(np.random.default_rng(1).standard_normal(shape).astype(np.float32))),
                           np.array([0, 3, 1]))
    change(model)
    with pytest.raises(RuntimeError, match="modified in place after the forward pass") as failure:
        loss.backward()
    assert "after backward()" in str(failure.value)
    for p in model.parameters():
        np.testing.assert_array_equal(p.grad.data, np.ones_like(p.data), err_msg="a refused backward wrote .grad")


# ---- numerical edge cases ----------------------------------------------------------------------------
def huge_logits(scale: float, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """Rows [s, 0], [-s, s], [s, s], [-s, -s] and their exact log_softmax: every exp() of a difference
    is 1 or underflows to exactly 0, so log_softmax is 0, -s, -2s or -log 2."""
    s = dtype(scale)
    logits = np.array([[s, 0], [-s, s], [s, s], [-s, -s]], dtype=dtype)
    log2 = -np.log(dtype(2))
    return logits, np.array([[0, -s], [-2 * s, 0], [log2, log2], [log2, log2]], dtype=dtype)


HUGE = [(1e4, np.float32), (1e4, np.float64), (1e30, np.float32), (1e30, np.float64)]
HUGE_IDS = [f"{s:g}-{d.__name__}" for s, d in HUGE]


@pytest.mark.parametrize("scale, dtype", HUGE, ids=HUGE_IDS)
def test_log_softmax_of_huge_logits_is_finite_and_exact(scale: float, dtype: type) -> None:
    logits, expected = huge_logits(scale, dtype)
    x = Tensor(logits.copy(), requires_grad=True)
    y = x.log_softmax(axis=-1)
    assert y.dtype == dtype and np.array_equal(y.data, expected)
    weights = np.arange(1, 9, dtype=dtype).reshape(4, 2)
    (y * Tensor(weights)).sum().backward()
    # d/dx sum(w * log_softmax(x)) = w - softmax(x) * sum(w): softmax is one-hot or uniform here
    softmax = np.array([[1, 0], [0, 1], [0.5, 0.5], [0.5, 0.5]], dtype=dtype)
    assert x.grad.dtype == dtype
    np.testing.assert_array_equal(x.grad.data, weights - softmax * weights.sum(axis=1, keepdims=True))


@pytest.mark.parametrize("scale, dtype", HUGE, ids=HUGE_IDS)
def test_cross_entropy_of_huge_logits_is_finite_and_exact(scale: float, dtype: type) -> None:
    logits, log_probs = huge_logits(scale, dtype)
    target = np.array([1, 0, 1, 0])
    x = Tensor(logits.copy(), requires_grad=True)
    losses = F.cross_entropy(x, target, reduction="none")
    np.testing.assert_array_equal(losses.data, -log_probs[np.arange(4), target])
    F.cross_entropy(x, target).backward()  # mean: (softmax - one_hot) / N
    softmax = np.array([[1, 0], [0, 1], [0.5, 0.5], [0.5, 0.5]], dtype=dtype)
    np.testing.assert_array_equal(x.grad.data, (softmax - np.eye(2, dtype=dtype)[target]) / 4)


@pytest.mark.parametrize("scale, dtype", HUGE, ids=HUGE_IDS)
def test_huge_logits_match_torch(scale: float, dtype: type) -> None:
    torch = pytest.importorskip("torch")
    logits, _ = huge_logits(scale, dtype)
    target = np.array([1, 0, 1, 0])
    x, xt = Tensor(logits.copy(), requires_grad=True), torch.tensor(logits, requires_grad=True)
    loss, loss_t = F.cross_entropy(x, target), torch.nn.functional.cross_entropy(xt, torch.tensor(target))
    loss.backward()
    loss_t.backward()
    one_ulp = {"rtol": np.finfo(dtype).eps, "atol": 0}  # the two libraries may round log(2) differently
    np.testing.assert_allclose(loss.item(), loss_t.item(), **one_ulp)
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), **one_ulp)
    np.testing.assert_allclose(x.log_softmax(-1).data, torch.log_softmax(xt, -1).detach().numpy(), **one_ulp)


def target_of(x: Any) -> Any:
    """Empty class targets in x's framework."""
    return np.zeros(0, dtype=np.int64) if isinstance(x, Tensor) else x.new_zeros(0).long()


def lenet_like(lib: Any, x: Any, w: Any, b: Any, v: Any) -> Any:
    h = lib.max_pool2d(lib.conv2d(x, w, b).relu(), 2).flatten(1)          # (N, 1, 6, 6) -> (N, 8)
    return lib.cross_entropy(lib.linear(h, v), target_of(x), reduction="sum")


# name: (function of (F or torch.nn.functional, input, parameters...), input shape without the batch axis,
# parameter shapes). The batch is empty.
EMPTY_BATCH = {
    "conv2d": (lambda lib, x, w, b: lib.conv2d(x, w, b, padding=1), (2, 5, 5), [(3, 2, 3, 3), (3,)]),
    "max_pool2d": (lambda lib, x: lib.max_pool2d(x, 2), (2, 5, 5), []),
    "avg_pool2d": (lambda lib, x: lib.avg_pool2d(x, 3, 2, 1, count_include_pad=False), (2, 5, 5), []),
    "linear": (lambda lib, x, w, b: lib.linear(x, w, b), (5,), [(3, 5), (3,)]),
    "flatten": (lambda lib, x: x.flatten(1), (2, 3, 3), []),
    "cross_entropy-sum": (lambda lib, x: lib.cross_entropy(x, target_of(x), reduction="sum"), (4,), []),
    "cross_entropy-none": (lambda lib, x: lib.cross_entropy(x, target_of(x), reduction="none"), (4,), []),
    "cross_entropy-mean": (lambda lib, x: lib.cross_entropy(x, target_of(x)), (4,), []),  # 0/0: nan, as torch
    "lenet-like": (lenet_like, (1, 6, 6), [(2, 1, 3, 3), (2,), (3, 8)]),
}


@pytest.mark.parametrize("name", EMPTY_BATCH)
def test_an_empty_batch_behaves_like_pytorch(name: str) -> None:
    torch = pytest.importorskip("torch")
    fn, sample_shape, param_shapes = EMPTY_BATCH[name]
    rng = np.random.default_rng(2)
    arrays = [np.zeros((0, *sample_shape))] + [rng.standard_normal(s) for s in param_shapes]
    ours = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    with np.errstate(invalid="ignore", divide="ignore"):  # the mean over no sample is 0/0
        y = fn(F, *ours)
        y_t = fn(torch.nn.functional, *theirs)
        np.testing.assert_array_equal(y.data, y_t.detach().numpy())  # shapes too; nan == nan here
        y.sum().backward()
    y_t.sum().backward()
    for i, (t, t_torch) in enumerate(zip(ours, theirs)):
        np.testing.assert_array_equal(t.grad.data, t_torch.grad.numpy(), err_msg=f"gradient of input {i}")


@pytest.mark.parametrize("op", ["linear", "conv2d"])
def test_float32_with_float64_promotes_and_float32_leaves_get_float32_grads(op: str) -> None:
    """As in PyTorch, linear and conv2d refuse a float64 input with float32 weights (a float32 model would
    silently run in float64, ~2x slower); cast explicitly and the gradient reaching a float32 leaf is float64
    there, and backward() stores it in the leaf's own dtype (rounded once)."""
    rng = np.random.default_rng(3)
    if op == "linear":
        x64, w32 = rng.standard_normal((4, 3)), rng.standard_normal((2, 3)).astype(np.float32)
        # d/dw sum(x @ w.T) = sum of the rows of x, for every output row
        expected = np.broadcast_to(x64.sum(axis=0), (2, 3))
        call = F.linear
    else:
        x64, w32 = rng.standard_normal((2, 1, 3, 3)), rng.standard_normal((1, 1, 3, 3)).astype(np.float32)
        expected = x64.sum(axis=0, keepdims=True)  # a full-size 3x3 kernel: d/dw sum(conv) = sum over the batch
        call = F.conv2d
    x, w = Tensor(x64, requires_grad=True), Tensor(w32, requires_grad=True)
    with pytest.raises(TypeError, match="float64.*float32"):
        call(x, w)
    y = call(x, w.double())
    assert y.dtype == np.float64
    y.sum().backward()
    assert w.grad.dtype == np.float32 and x.grad.dtype == np.float64
    np.testing.assert_array_equal(w.grad.data, expected.astype(np.float32))
