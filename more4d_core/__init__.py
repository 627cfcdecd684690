"""MoRe4D core library: single image -> 4D scene (dense 3D trajectories) -> rendered videos.

Importable without ComfyUI. The main types and entry points are re-exported here; heavier
machinery (diffusion models, numba kernels) is imported lazily by the functions that need it.
"""

from .camera import CameraPath, camera_preset, parse_keyframes
from .errors import InputError, More4DError, WrongTypeError
from .render import RenderResult, render_scene
from .scene import Scene4D

__version__ = "0.1.0"

__all__ = [
    "CameraPath",
    "InputError",
    "More4DError",
    "RenderResult",
    "Scene4D",
    "WrongTypeError",
    "__version__",
    "camera_preset",
    "parse_keyframes",
    "render_scene",
]
