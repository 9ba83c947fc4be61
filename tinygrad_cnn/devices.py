"""Devices, PyTorch style: `device('cpu')`, `Tensor.device`, and `cuda`/`accelerator`/`backends` answering
that only the CPU is here.

A script written for PyTorch picks its device with `torch.cuda.is_available()` or
`torch.accelerator.is_available()`; both answer False, so it chooses the CPU and runs unchanged. A device
other than the CPU may be named (`device('cuda')`, as PyTorch allows), but putting a tensor or a module
on it is an error that names the device.
"""

from __future__ import annotations

import sys
import types
from typing import Any

# Device types PyTorch knows: naming one is allowed, using one (other than the CPU) is an error.
KNOWN_TYPES = ("cpu", "cuda", "mps", "xpu", "xla", "meta", "hip", "ipu", "mtia", "privateuseone", "hpu", "vulkan")


class device:
    """A device: `device('cpu')`, `device('cuda', 0)`, `device('cuda:1')`; `str(d)` is its name."""

    __slots__ = ("type", "index")

    def __init__(self, type: Any, index: int | None = None) -> None:
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise TypeError(f"device: expected a device type string such as 'cpu', got {type!r}")
        name = type
        if ":" in name:
            name, _, number = name.partition(":")
            if index is not None or not number.isdigit():
                raise RuntimeError(f"device: invalid device string {type!r}; expected e.g. 'cpu' or 'cuda:0'")
            index = int(number)
        if name not in KNOWN_TYPES:
            raise RuntimeError(f"device: unknown device type {name!r} in {type!r}; expected one of "
                               f"{', '.join(KNOWN_TYPES)} (only 'cpu' is available here)")
        if index is not None and (not isinstance(index, int) or isinstance(index, bool) or index < 0):
            raise RuntimeError(f"device: device index must be a non-negative int, got {index!r}")
        self.type, self.index = name, index

    def __repr__(self) -> str:
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type={self.type!r}{index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other: object) -> bool:  # as PyTorch: a device never equals a string
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = device("cpu")


def resolve(dev: Any, op: str) -> device:
    """`dev` (None, a string, a `device` or anything with `.type`) as the CPU device, or a clear error."""
    if dev is None:
        return CPU
    if isinstance(dev, int) and not isinstance(dev, bool):  # PyTorch reads a bare int as a CUDA ordinal
        dev = device("cuda", dev)
    elif not isinstance(dev, device):
        type_name = getattr(dev, "type", None) if not isinstance(dev, str) else dev
        if not isinstance(type_name, str):
            raise TypeError(f"{op}: expected a device ('cpu', device('cpu')), got {type(dev).__name__} {dev!r}")
        dev = device(type_name)
    if dev.type != "cpu" or dev.index not in (None, 0):
        raise RuntimeError(f"{op}: device {str(dev)!r} is not available: tinygrad_cnn runs on the CPU only; "
                           "use 'cpu' (torch.cuda.is_available() and torch.accelerator.is_available() are False here)")
    return CPU


def is_device_like(value: Any) -> bool:
    """True for what `Tensor.to` reads as a device rather than a dtype: a `device`, or a string naming one."""
    if isinstance(value, device):
        return True
    if isinstance(value, str):
        return value.partition(":")[0] in KNOWN_TYPES
    return False


def _namespace(name: str, doc: str, **functions: Any) -> types.ModuleType:
    """A small submodule (`tinygrad_cnn.cuda`, ...) importable by its dotted name."""
    module = types.ModuleType(f"tinygrad_cnn.{name}", doc)
    module.__dict__.update(functions)
    sys.modules[module.__name__] = module
    return module


def _false(*args: Any, **kwargs: Any) -> bool:
    return False


def _zero(*args: Any, **kwargs: Any) -> int:
    return 0


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


def _no_device(name: str) -> Any:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"{name}: no CUDA device is available: tinygrad_cnn runs on the CPU only")
    return fail


cuda = _namespace(
    "cuda", "PyTorch's torch.cuda for a machine without a GPU: nothing is available, seeding is a no-op.",
    is_available=_false, device_count=_zero, is_initialized=_false,
    manual_seed=_nothing, manual_seed_all=_nothing, seed=_nothing, seed_all=_nothing,
    synchronize=_nothing, empty_cache=_nothing,
    current_device=_no_device("cuda.current_device"), set_device=_no_device("cuda.set_device"),
    get_device_name=_no_device("cuda.get_device_name"))

accelerator = _namespace(
    "accelerator", "PyTorch's torch.accelerator: no accelerator is available, the CPU is used.",
    is_available=_false, device_count=_zero, current_accelerator=_nothing, synchronize=_nothing)

backends = _namespace("backends", "PyTorch's torch.backends: no MPS or CUDA backend; cudnn flags are accepted.")
backends.mps = _namespace("backends.mps", "Apple MPS: not available.", is_available=_false, is_built=_false)
backends.cuda = _namespace("backends.cuda", "CUDA: not built.", is_built=_false)
backends.cudnn = _namespace("backends.cudnn", "cuDNN flags, accepted and ignored (there is no cuDNN here).",
                            is_available=_false, enabled=False, benchmark=False, deterministic=False)
