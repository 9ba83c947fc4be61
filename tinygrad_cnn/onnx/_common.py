"""What export and load share: the lazy import of the `onnx` package and the metadata keys."""

from __future__ import annotations

from typing import Any

INSTALL_HINT = "pip install 'tinygrad_cnn[interop]'"
DEFAULT_OPSET = 17
OPSETS = range(13, 22)  # the default domain's versions export writes and load reads
PARAMETERS_KEY = "tinygrad_cnn.parameters"  # metadata: JSON list of the initializers that were Parameters
BUFFERS_KEY = "tinygrad_cnn.buffers"  # metadata: JSON list of those that were (persistent) buffers


class OnnxExportError(ValueError):
    """The model's recorded forward has an op (or a use of one) that ONNX cannot express as a static graph."""


class OnnxLoadError(ValueError):
    """The file is not an ONNX model this loader can run: corrupt, crafted, or using an unsupported op."""


def require_onnx() -> Any:
    """The `onnx` package, or an ImportError naming the extra that installs it."""
    try:
        import onnx
    except ImportError as e:
        raise ImportError(f"ONNX export and import need the onnx package: {INSTALL_HINT}") from e
    return onnx
