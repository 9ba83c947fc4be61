"""ONNX export and import, checked in onnxruntime (needs the `interop` extra: onnx, onnxruntime).

    from tinygrad_cnn import onnx
    onnx.export(model, example_input, "model.onnx")   # the recorded forward as an ONNX graph
    model = onnx.load("model.onnx")                   # an nn.Module that computes it, trainable

Importing this package does not import the `onnx` package; export and load do, and a missing one is an
ImportError naming the extra to install.
"""

from ._common import OnnxExportError, OnnxLoadError
from .export import export
from .load import OnnxModule, load

__all__ = ["OnnxExportError", "OnnxLoadError", "OnnxModule", "export", "load"]
