"""`save` / `load`: state dicts and checkpoints in files, never with pickle.

Two formats, chosen by the file name:

* `*.safetensors`: one flat dict of arrays (a state_dict), readable by PyTorch's `safetensors.torch`
  (needs the optional safetensors package: `pip install 'tinygrad_cnn[interop]'`); see `.safetensors`.
* any other name ("model.pt", "checkpoint.npz", "weights"): nested dicts of arrays and plain values in one
  .npz file, which `np.load(path, allow_pickle=False)` also opens; see `.npz`.

Both are written atomically and read without trusting the file: any damaged or crafted file raises
`CheckpointError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from .files import CheckpointError, open_checkpoint
from .npz import META, load_npz, save_npz
from .safetensors import EXTENSION, load_safetensors, save_safetensors

__all__ = ["META", "CheckpointError", "load", "save"]


def save(obj: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write `obj` to `path`: exactly that name, whatever its extension (no suffix is added), atomically.

    For a `*.safetensors` name, `obj` is a flat dict of Tensors or bool/int/float arrays, e.g.
    `model.state_dict()`. For any other name, `obj` is a dict with str keys whose values are Tensors or
    bool/int/float ndarrays, dicts of the same kind, numbers, strings, bools, None, or lists of those plain
    values (and of dicts of them): e.g. a state_dict, or a checkpoint {"model": sd, "optimizer": opt_sd,
    "epoch": 3, "history": [{"epoch": 1, "loss": 0.2}], "rng": {...}}. A Module or optimizer itself is refused:
    save its state_dict().

    Everything is checked before anything is written; the file is written beside `path` and renamed over it,
    so a failure or crash at any moment leaves the old file intact.
    """
    if not isinstance(obj, Mapping) and callable(getattr(obj, "state_dict", None)):
        raise TypeError(f"save: got a {type(obj).__name__}; save its state_dict() and restore it with "
                        "load_state_dict() (a whole object cannot be saved without pickle)")
    path = os.fspath(path)
    (save_safetensors if _is_safetensors(path) else save_npz)(obj, path)


def load(path: str | os.PathLike, map_location: Any = None, *, weights_only: bool | None = None) -> dict[str, Any]:
    """Read a file written by `save` (or a .safetensors file written by PyTorch): the same dict, with numpy
    arrays where Tensors or arrays were, which `Module.load_state_dict` accepts (in .npz files tuples come back
    as lists, numpy scalars as Python numbers).

    `map_location` and `weights_only` are accepted as `torch.load` takes them: arrays live on the CPU, so
    `map_location` may be None, "cpu" or "cpu:0" (or a device whose str is one of these, such as
    `tinygrad_cnn.device("cpu")` or `torch.device("cpu")`); files hold data only and are never
    unpickled, so `weights_only` (None, True or False) changes nothing.

    Raises `CheckpointError` for anything that is not an intact checkpoint (a directory, a damaged or crafted
    file, a pickle), FileNotFoundError or PermissionError when the file cannot be opened, and ImportError
    naming the extra to install for a .safetensors file without the safetensors package.
    """
    if map_location is not None and not re.fullmatch(r"cpu(:\d+)?", str(map_location)):
        raise ValueError(f"load: map_location={map_location!r}: tinygrad_cnn keeps every array on the CPU; pass "
                         "map_location='cpu' or None")
    if weights_only is not None and not isinstance(weights_only, bool):
        raise TypeError(f"load: weights_only must be None, True or False, got {weights_only!r}")
    path = os.fspath(path)
    with open_checkpoint(path) as file:
        if not _is_safetensors(path):
            return load_npz(file, path)
    return load_safetensors(path)


def _is_safetensors(path: str) -> bool:
    return path.lower().endswith(EXTENSION)
