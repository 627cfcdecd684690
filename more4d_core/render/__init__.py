"""Point rendering: z-buffer splatting of 4D scenes through camera paths, with hole masks."""

from .renderer import RenderResult, render_points, render_scene

__all__ = ["RenderResult", "render_points", "render_scene"]
