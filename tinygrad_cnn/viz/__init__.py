"""Drawing a recorded graph, forward and backward, with Graphviz (docs/visualisation.md)."""

from .graph import SUPPORTED_FORMATS, draw_graph, render

__all__ = ["SUPPORTED_FORMATS", "draw_graph", "render"]
