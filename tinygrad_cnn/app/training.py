"""Training and evaluating LeNet-5 on MNIST: the loop behind `tinygrad-cnn train` and `tinygrad-cnn eval`.

A run lives in one output directory:

    checkpoint.npz   all that continuing needs: model, optimizer, epoch, the library RNG, the DataLoader's
                     shuffling state, the config and the metrics so far (written by `serialization.save`)
    metrics.csv      one row per epoch (METRIC_COLUMNS)
    metrics.json     {"config": {...}, "epochs": [one dict per epoch]}
    curves.png       loss and accuracy curves, at the end (needs matplotlib: the `app` extra)

Every file is replaced atomically after each completed epoch, so the directory always describes one
consistent epoch boundary. The DataLoader's state can only be captured between epochs, so a run stopped
mid-epoch (Ctrl-C) keeps the last completed epoch's checkpoint; resuming replays the abandoned epoch from
its start and ends with weights bit-identical to an uninterrupted run.

A training step is `train_step`: `optimizer.zero_grad(); loss.backward(); optimizer.step()`. With more than
one process, `parallel_train_step` gives the same step with the gradient computed by `DataParallel`; a first
reading can skip it. The progress bar needs tqdm and the plot matplotlib (the `app` extra); neither is
imported unless used.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .. import functional as F
from .. import rng
from ..autograd import Tensor, no_grad
from ..data import DataLoader, normalize
from ..models import lenet5
from ..nn import Module
from ..optim import SGD, Adam, Optimizer
from ..runtime import threads as parallel
from ..runtime.data_parallel import DataParallel
from ..runtime.memory import gc_paused
from ..serialization import CheckpointError, load, save
from ..serialization.files import write_atomically
from .metrics import accuracy

CHECKPOINT_FILE = "checkpoint.npz"
METRICS_CSV = "metrics.csv"
METRICS_JSON = "metrics.json"
PLOT_FILE = "curves.png"
CHECKPOINT_KIND = "tinygrad_cnn.train/lenet5"  # what `load_checkpoint` accepts: a run of `train` on LeNet-5
METRIC_COLUMNS = ("epoch", "train_loss", "test_loss", "test_accuracy", "seconds", "images_per_second")
OPTIMIZERS = ("sgd", "adam")

MNISTArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # as load_mnist returns them
Step = Callable[[np.ndarray, np.ndarray], float]  # one training step on a batch (images, labels) -> its mean loss


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of a run.

    The defaults train LeNet-5 to about 99.1 % MNIST test accuracy in 6 epochs (the README shows a run). A
    run is deterministic for a given seed and number of processes (which only regroups the gradient's sums).
    """

    epochs: int = 6
    batch_size: int = 64
    lr: float = 2e-3
    optimizer: str = "adam"
    momentum: float = 0.9  # SGD only
    lr_decay: float = 0.6  # epoch k (from 1) trains with lr * lr_decay ** (k - 1)
    seed: int = 0  # model initialisation and shuffling
    limit_train: int | None = None  # train on the first N training images only
    limit_test: int | None = None  # evaluate on the first N test images only
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        checks = {"epochs": self.epochs >= 1, "batch_size": self.batch_size >= 1, "lr": self.lr > 0,
                  "momentum": 0 <= self.momentum < 1, "lr_decay": 0 < self.lr_decay <= 1, "seed": self.seed >= 0,
                  "limit_train": self.limit_train is None or self.limit_train >= 1,
                  "limit_test": self.limit_test is None or self.limit_test >= 1,
                  "eval_batch_size": self.eval_batch_size >= 1, "optimizer": self.optimizer in OPTIMIZERS}
        bad = [f"{name}={getattr(self, name)!r}" for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"TrainConfig: invalid {', '.join(bad)} (need epochs, batch_size, eval_batch_size, "
                             f"limits >= 1, lr > 0, 0 <= momentum < 1, 0 < lr_decay <= 1, seed >= 0, optimizer in "
                             f"{OPTIMIZERS})")


# A resumed run must use the checkpoint's values of these, or it would not continue the same run.
RUN_DEFINING = ("batch_size", "lr", "optimizer", "momentum", "lr_decay", "seed", "limit_train")


class ResumeError(ValueError):
    """The arguments of a resumed run contradict the checkpoint it continues."""


def resolve_config(given: Mapping[str, Any], saved: TrainConfig | None = None) -> TrainConfig:
    """The config of a run from explicitly given values (None = not given) and, when resuming, the
    checkpoint's config, which fills in everything not given. Raises `ResumeError` when a given value
    contradicts a run-defining one of the checkpoint (epochs, limit_test, eval_batch_size may change)."""
    chosen = {k: v for k, v in given.items() if v is not None}
    if saved is None:
        return TrainConfig(**chosen)
    conflicts = [f"{k}={chosen[k]!r} (the checkpoint has {getattr(saved, k)!r})"
                 for k in RUN_DEFINING if k in chosen and chosen[k] != getattr(saved, k)]
    if conflicts:
        raise ResumeError(f"resume: {', '.join(conflicts)}; a resumed run keeps the checkpoint's value (leave the "
                          "option out), or start a new run in another output directory")
    return replace(saved, **chosen)


def make_optimizer(config: TrainConfig, model: Module) -> Optimizer:
    if config.optimizer == "sgd":
        return SGD(model.parameters(), config.lr, momentum=config.momentum)
    return Adam(model.parameters(), config.lr)


# ---- evaluation -----------------------------------------------------------------------------------
@dataclass
class Evaluation:
    loss: float  # mean cross-entropy
    accuracy: float  # in [0, 1]
    predictions: np.ndarray  # (N,) int64 predicted classes


def evaluate(model: Module, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> Evaluation:
    """Mean loss, accuracy and predictions of `model` on float32 inputs x (N, 1, 28, 28), classes y (N,),
    in eval mode and without recording a graph, `batch_size` images at a time."""
    was_training = model.training
    model.eval()
    loss_sum, predictions = 0.0, np.empty(len(y), dtype=np.int64)
    try:
        with no_grad():
            for start in range(0, len(y), batch_size):
                batch = slice(start, start + batch_size)
                logits = model(Tensor(x[batch]))
                loss_sum += F.cross_entropy(logits, y[batch], reduction="sum").item()
                predictions[batch] = logits.data.argmax(axis=1)
    finally:
        model.train(was_training)
    return Evaluation(loss_sum / len(y), accuracy(predictions, y), predictions)


# ---- training -------------------------------------------------------------------------------------
class StopRequest:
    """While active (as a context manager), a first Ctrl-C (SIGINT) only sets `requested`, so that the
    loop can stop at a safe point; a second one raises KeyboardInterrupt at once as usual. Signal
    handlers can only be set from the main thread: elsewhere this does nothing."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, self._handle)
            # None: a handler not set from Python; Python's own one is the sensible fallback
            self._previous = signal.default_int_handler if previous is None else previous
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class ProgressBar(Protocol):
    """What the loop needs of a progress bar (a tqdm bar has it)."""

    def update(self, n: int) -> object: ...

    def set_postfix(self, *, loss: str, refresh: bool) -> object: ...


def train_step(model: Module, optimizer: Optimizer, images: np.ndarray, labels: np.ndarray) -> float:
    """One optimizer step on a batch (images (B, 1, 28, 28) float32, labels (B,) int); returns its mean loss."""
    optimizer.zero_grad()
    loss = F.cross_entropy(model(Tensor(images)), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


@contextlib.contextmanager
def parallel_train_step(model: Module, optimizer: Optimizer, processes: int) -> Iterator[Step]:
    """`train_step` with the batch split between this process and `processes - 1` forked workers
    (`DataParallel`), each on one thread, for as long as the block runs.

    The workers are forked when the block starts, so their dropout generators follow from the library
    RNG at that point: `train_epoch` opens one block per epoch, at whose start the checkpoint holds that
    RNG, so a resumed run draws what the uninterrupted one drew.
    """
    threads = parallel.get_num_threads()
    parallel.set_num_threads(1)  # a core per process
    try:
        with DataParallel(model, lambda x, y: F.cross_entropy(model(Tensor(x)), y), processes) as dp:
            def step(images: np.ndarray, labels: np.ndarray) -> float:
                optimizer.zero_grad()
                loss = dp.value_and_grad(images, labels)  # the batch's mean loss; .grad as loss.backward() sets it
                optimizer.step()
                return loss

            yield step
    finally:
        parallel.set_num_threads(threads)


def train_epoch(model: Module, optimizer: Optimizer, loader: DataLoader, stop: StopRequest | None = None,
                bar: ProgressBar | None = None, processes: int = 1) -> float | None:
    """One pass over `loader` (batches (B, 1, 28, 28) float32, (B,) int); returns the mean training loss,
    or None if `stop` was requested before the epoch finished (the model is then mid-epoch).

    Each step runs with the cyclic garbage collector paused (`runtime.memory.gc_paused`); `processes` > 1
    computes each step's gradient with `parallel_train_step`.
    """
    model.train()
    loss_sum, seen = 0.0, 0
    steps = (parallel_train_step(model, optimizer, processes) if processes > 1
             else contextlib.nullcontext(functools.partial(train_step, model, optimizer)))
    with steps as step:
        for images, labels in loader:
            if stop is not None and stop.requested:
                return None
            with gc_paused():
                loss = step(images, labels)
            loss_sum += loss * len(labels)
            seen += len(labels)
            if bar is not None:
                bar.update(len(labels))
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", refresh=False)
    return loss_sum / seen


@dataclass
class TrainResult:
    model: Module
    history: list[dict[str, float]]  # one row per completed epoch, with METRIC_COLUMNS
    interrupted: bool  # stopped by Ctrl-C; the checkpoint holds the last completed epoch
    plotted: bool  # curves.png was written (False without matplotlib)


@dataclass
class Checkpoint:
    """What `train` saves after each epoch, as `load_checkpoint` returns it."""

    epoch: int  # completed epochs
    config: TrainConfig
    history: list[dict[str, float]]
    model: dict[str, np.ndarray]
    optimizer: dict[str, Any]
    rng: dict[str, Any]  # the library generator (tinygrad_cnn.rng)
    loader: dict[str, Any]  # the training DataLoader's shuffling generator
    path: Path | None = field(default=None, compare=False)  # the file it was read from (not saved)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": CHECKPOINT_KIND, "epoch": self.epoch, "config": asdict(self.config),
                "history": {c: [row[c] for row in self.history] for c in METRIC_COLUMNS},
                "model": self.model, "optimizer": self.optimizer, "rng": self.rng, "loader": self.loader}


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by `train`; raises `CheckpointError` naming the file and the problem."""
    path = Path(path)
    if path.is_dir():
        inside = path / CHECKPOINT_FILE
        raise CheckpointError(f"{path} is a directory, not a checkpoint file"
                              + (f" (did you mean {inside}?)" if inside.is_file() else ""))
    try:
        raw = load(path)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path} (train writes {CHECKPOINT_FILE} into its --out "
                              "directory)") from None
    except OSError as e:  # e.g. no permission to read it
        raise CheckpointError(f"cannot read the checkpoint {path}: {e.strerror or e}") from None
    if raw.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"{path} is a checkpoint of kind {raw.get('kind')!r}, expected {CHECKPOINT_KIND!r} "
                              "(written by `tinygrad-cnn train`)")
    try:
        known = {f.name for f in fields(TrainConfig)}
        history = raw["history"]
        return Checkpoint(epoch=int(raw["epoch"]),
                          config=TrainConfig(**{k: v for k, v in raw["config"].items() if k in known}),
                          history=[dict(zip(METRIC_COLUMNS, row)) for row in zip(*(history[c] for c in
                                                                                   METRIC_COLUMNS))],
                          model=raw["model"], optimizer=raw["optimizer"], rng=raw["rng"], loader=raw["loader"],
                          path=path)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: incomplete or malformed training checkpoint ({type(e).__name__}: {e})") from e


def restore(checkpoint: Checkpoint, model: Module, optimizer: Optimizer | None = None,
            loader: DataLoader | None = None) -> None:
    """Load the checkpoint's weights into `model` (a LeNet-5), and when given its optimizer state and shuffling
    state, then the library RNG. Raises `CheckpointError` naming the file when a part does not fit (weights of
    other shapes, another optimizer, ...); the model and optimizer check everything before changing anything."""
    where = checkpoint.path or "the checkpoint"
    try:
        model.load_state_dict(checkpoint.model)
        if optimizer is not None:
            optimizer.load_state_dict(checkpoint.optimizer)
        if loader is not None:
            loader.load_state_dict(checkpoint.loader)
            rng.set_rng_state(checkpoint.rng)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{where} does not fit this run of LeNet-5: {e}") from e


class OutputDirError(ValueError):
    """The output directory of a run cannot be made, or files cannot be created in it."""


def prepare_output_dir(path: str | os.PathLike) -> Path:
    """Make the directory `path` (with its parents) if it is missing and check that files can be created in it;
    raises `OutputDirError` naming the reason (a regular file in the way, a read-only filesystem, no
    permission). Leaves no file behind."""
    path = Path(path)
    blocking = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise OutputDirError(f"output directory {path}: {blocking} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise OutputDirError(f"output directory {path}: cannot create files there ({e.strerror or e})") from None
    return path


def progress_bar_class() -> Callable[..., ProgressBar]:
    """tqdm's progress bar class; raises an ImportError naming the extra to install when tqdm is missing."""
    try:
        from tqdm import tqdm
    except ImportError as e:
        raise ImportError("the progress bar needs tqdm: pip install 'tinygrad_cnn[app]' (or train without it: "
                          "progress=False, `tinygrad-cnn train --no-progress`)") from e
    return tqdm


def train(config: TrainConfig, data: MNISTArrays, out_dir: str | os.PathLike, resume_from: Checkpoint | None = None,
          progress: bool = True, log: Callable[[str], None] = print, processes: int = 1) -> TrainResult:
    """Train LeNet-5 on `data` (load_mnist's uint8 images and int labels) for `config.epochs` epochs in
    total, writing the run's files (see the module docstring) into `out_dir` after every epoch.

    With `resume_from` (a checkpoint of a run with the same config), the model, optimizer, RNG and
    shuffling state are restored and training continues after its last epoch. One line per epoch
    goes to `log`; `progress` shows a tqdm bar per epoch (only on a terminal; needs tqdm). `processes`:
    see `train_epoch` (the same run on another number of processes rounds its sums differently).
    Raises `OutputDirError`, `CheckpointError` (a checkpoint that does not fit) or ImportError (no tqdm)
    before writing anything.
    """
    out_dir = prepare_output_dir(out_dir)
    bar_class = progress_bar_class() if progress else None
    x_train, y_train, x_test, y_test = data
    x_test, y_test = normalize(x_test[:config.limit_test]), y_test[:config.limit_test]

    rng.manual_seed(config.seed)
    model = lenet5()
    optimizer = make_optimizer(config, model)
    loader = DataLoader(x_train[:config.limit_train], y_train[:config.limit_train], config.batch_size,
                        shuffle=True, seed=config.seed, transform=normalize)
    if resume_from is None:
        state = Checkpoint(0, config, [], model.state_dict(), optimizer.state_dict(), rng.get_rng_state(),
                           loader.state_dict())
        save_run(out_dir, state)  # so that even a run stopped in its first epoch can be resumed
    else:
        state = replace(resume_from, config=config)
        restore(state, model, optimizer, loader)
        log(f"resuming from {out_dir / CHECKPOINT_FILE} after epoch {state.epoch} of {config.epochs}"
            + (": nothing left to train (pass a larger --epochs to train further)"
               if state.epoch >= config.epochs else ""))

    interrupted = False
    with StopRequest() as stop:
        for epoch in range(state.epoch + 1, config.epochs + 1):
            optimizer.lr = config.lr * config.lr_decay ** (epoch - 1)
            start = time.perf_counter()
            bar = (bar_class(total=len(loader.x), desc=f"epoch {epoch}/{config.epochs}", unit="img",
                             unit_scale=True, leave=False, disable=None) if bar_class else contextlib.nullcontext())
            with bar as shown:
                train_loss = train_epoch(model, optimizer, loader, stop, shown, processes)
            if train_loss is None:
                interrupted = True
                break
            train_seconds = time.perf_counter() - start
            result = evaluate(model, x_test, y_test, config.eval_batch_size)
            row = {"epoch": epoch, "train_loss": train_loss, "test_loss": result.loss,
                   "test_accuracy": result.accuracy, "seconds": time.perf_counter() - start,
                   "images_per_second": len(loader.x) / train_seconds}
            state = Checkpoint(epoch, config, [*state.history, row], model.state_dict(), optimizer.state_dict(),
                               rng.get_rng_state(), loader.state_dict())
            save_run(out_dir, state)
            log(format_epoch(row, config.epochs))
            if stop.requested:  # Ctrl-C during evaluation or saving: this epoch is complete and saved
                interrupted = True
                break
    plotted = plot_history(state.history, out_dir / PLOT_FILE) if state.history else False
    return TrainResult(model, state.history, interrupted, plotted)


def format_epoch(row: Mapping[str, float], epochs: int) -> str:
    return (f"epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.4f}, test loss {row['test_loss']:.4f}, "
            f"test accuracy {100 * row['test_accuracy']:.2f}%, {row['seconds']:.1f} s "
            f"({row['images_per_second']:.0f} images/s)")


# ---- the run's files ------------------------------------------------------------------------------
def _write_text(path: Path, text: str) -> None:
    write_atomically(os.fspath(path), lambda f: f.write(text.encode("utf-8")))


def save_run(out_dir: Path, state: Checkpoint) -> None:
    """Write the checkpoint, then the metrics as CSV and JSON, each file atomically."""
    save(state.to_dict(), out_dir / CHECKPOINT_FILE)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(state.history)
    _write_text(out_dir / METRICS_CSV, table.getvalue())
    _write_text(out_dir / METRICS_JSON, json.dumps({"config": asdict(state.config), "epochs": state.history},
                                                   indent=2) + "\n")


def plot_history(history: list[Mapping[str, float]], path: Path) -> bool:
    """Save loss and accuracy curves per epoch as a PNG, atomically; returns False (writing nothing) without
    matplotlib (the `app` extra)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    fig = Figure(figsize=(10, 4), constrained_layout=True)
    FigureCanvasAgg(fig)  # rendering without pyplot leaves the process-wide backend alone
    loss_ax, acc_ax = fig.subplots(1, 2)
    epochs = [row["epoch"] for row in history]
    for column, label in (("train_loss", "train"), ("test_loss", "test")):
        loss_ax.plot(epochs, [row[column] for row in history], marker="o", label=label)
    loss_ax.set(title="cross-entropy loss", xlabel="epoch")
    loss_ax.legend()
    acc_ax.plot(epochs, [100 * row["test_accuracy"] for row in history], marker="o", color="tab:green")
    acc_ax.set(title="test accuracy (%)", xlabel="epoch")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    write_atomically(os.fspath(path), lambda f: fig.savefig(f, format="png", dpi=100))
    return True
