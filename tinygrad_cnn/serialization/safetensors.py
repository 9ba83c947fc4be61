"""The .safetensors format, through the optional `safetensors` package's numpy API.

A .safetensors file holds one flat dict of named arrays: a state_dict with PyTorch's key names
("conv1.weight", ...), which `safetensors.torch.load_file` + `load_state_dict` reads in PyTorch, and which
PyTorch's `safetensors.torch.save_file` writes for us. The package validates the header itself (length,
JSON, dtypes, offsets within the file, no overlaps or gaps); its errors become `CheckpointError`s.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np

from ..autograd import Tensor
from .files import CheckpointError, write_atomically

EXTENSION = ".safetensors"
INSTALL_HINT = "pip install 'tinygrad_cnn[interop]'"
_METADATA_KEY = "__metadata__"  # the header's reserved entry for string metadata
# safetensors dtype names numpy can hold (the package's numpy API maps the same ones); BF16 and the 8-bit and
# smaller float formats have no numpy dtype, and complex numbers are not weights this framework computes with.
_DTYPES = {"BOOL": "bool", "U8": "uint8", "I8": "int8", "U16": "uint16", "I16": "int16", "U32": "uint32",
           "I32": "int32", "U64": "uint64", "I64": "int64", "F16": "float16", "F32": "float32", "F64": "float64"}


def _package(module: str) -> ModuleType:
    """Import a part of the optional safetensors package, or explain how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"reading and writing .safetensors files needs the safetensors package: {INSTALL_HINT}"
                          ) from e


def save_safetensors(obj: Mapping[str, Any], path: str) -> None:
    """Write the flat dict `obj` of Tensors or arrays to `path` atomically (see `tinygrad_cnn.save`)."""
    if not isinstance(obj, Mapping):
        raise TypeError(f"save: expected a dict of arrays (a state_dict), got {type(obj).__name__}")
    arrays: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise TypeError(f"save: key {key!r} is a {type(key).__name__}; keys must be str")
        if key == _METADATA_KEY:
            raise ValueError(f"save: the key {_METADATA_KEY!r} is reserved in .safetensors files")
        if isinstance(value, Tensor):
            value = value.data
        if not isinstance(value, np.ndarray):
            what = "a nested dict" if isinstance(value, Mapping) else f"a {type(value).__name__}"
            raise TypeError(f"save: {key!r} is {what}; a .safetensors file holds one flat dict of arrays (a "
                            "state_dict): save checkpoints with nested dicts or plain values under another name "
                            "(e.g. checkpoint.npz or .pt)")
        if value.dtype.newbyteorder("<").name not in _DTYPES.values():
            raise TypeError(f"save: {key!r} is an array of dtype {value.dtype}; .safetensors files here hold "
                            f"{', '.join(_DTYPES.values())}")
        # the package writes the buffer behind the array's pointer as C-ordered data (np.ascontiguousarray would
        # make a 0-d array 1-d)
        arrays[key] = value if value.flags.c_contiguous else value.copy(order="C")
    data = _package("safetensors.numpy").save(arrays)
    write_atomically(path, lambda file: file.write(data))


def load_safetensors(path: str) -> dict[str, np.ndarray]:
    """Read the .safetensors file `path` (checked to be a regular file) into name -> ndarray."""
    safetensors = _package("safetensors")
    try:
        with safetensors.safe_open(path, framework="np") as file:  # validates the whole header first
            for name in file.keys():
                dtype = file.get_slice(name).get_dtype()
                if dtype not in _DTYPES:
                    raise CheckpointError(f"load: {path}: tensor {name!r} has dtype {dtype}, which numpy cannot "
                                          f"hold (readable: {', '.join(_DTYPES)}); convert it first, e.g. with "
                                          "tensor.float() in PyTorch")
            return {name: np.array(file.get_tensor(name)) for name in file.keys()}  # own, writable copies
    except safetensors.SafetensorError as e:
        raise CheckpointError(f"load: {path} is not a readable .safetensors file: {e}{_npz_hint(path)}") from None


def _npz_hint(path: str) -> str:
    with open(path, "rb") as file:
        zipped = file.read(4) == b"PK\x03\x04"
    return " (it is a zip file: an .npz checkpoint? load picks the format by the file name's extension)" if (
        zipped) else ""
