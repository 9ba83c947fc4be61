"""Graph drawing, public path: `from tinygrad_cnn.viz import draw_graph, render` (see `tools/viz.py`)."""
from .tools.viz import draw_graph, render

__all__ = ["draw_graph", "render"]
