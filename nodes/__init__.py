"""ComfyUI node classes (thin wrappers over more4d_core). Keys of NODE_CLASS_MAPPINGS are the
stable node ids saved in workflows: never rename them."""

from .camera_nodes import CameraPathKeyframes, CameraPathPreset
from .render_nodes import Render4D
from .scene_io_nodes import LoadScene4D, SaveScene4D

NODE_CLASS_MAPPINGS = {
    "More4DCameraPathPreset": CameraPathPreset,
    "More4DCameraPathKeyframes": CameraPathKeyframes,
    "More4DRender": Render4D,
    "More4DLoadScene": LoadScene4D,
    "More4DSaveScene": SaveScene4D,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "More4DCameraPathPreset": "MoRe4D Camera Path (Preset)",
    "More4DCameraPathKeyframes": "MoRe4D Camera Path (Keyframes)",
    "More4DRender": "MoRe4D Render 4D Scene",
    "More4DLoadScene": "MoRe4D Load 4D Scene",
    "More4DSaveScene": "MoRe4D Save 4D Scene",
}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
