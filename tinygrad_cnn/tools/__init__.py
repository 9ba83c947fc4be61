"""Tools built on the engine: gradient checks (and later graph drawing, summaries)."""

from .gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]
