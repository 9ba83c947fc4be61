"""Drawing a recorded graph, forward and backward, with Graphviz (docs/visualisation.md).

Module groups and gradient norms come from `record()`: run the forward and backward inside it.
"""

from ..tools.record import record
from .graph import SUPPORTED_FORMATS, draw_graph, render

__all__ = ["SUPPORTED_FORMATS", "draw_graph", "record", "render"]
