"""Preview node: shows the 4D scene as an animated point cloud in the node (web/more4d_viewer.js)."""

from __future__ import annotations

import math
import uuid

from more4d_core.camera import CameraPath
from more4d_core.export.gltf import export_glb
from more4d_core.scene import Scene4D

from .comfy_bridge import temp_directory
from .types import CAMERA_PATH, CATEGORY, SCENE, require


class Preview4D:
    DESCRIPTION = "Show the 4D scene in an interactive viewer (play, scrub, orbit); the camera path is drawn as a curve."
    CATEGORY = CATEGORY
    FUNCTION = "preview"
    OUTPUT_NODE = True
    RETURN_TYPES = ()

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "scene": (SCENE, {"tooltip": "The 4D scene to show."}),
                "max_points": ("INT", {"default": 60000, "min": 1000, "max": 1000000, "step": 1000,
                                       "tooltip": "Points shown per frame (the grid is subsampled to stay fluid)."}),
            },
            "optional": {"camera_path": (CAMERA_PATH, {"tooltip": "A camera path to draw."})},
        }

    def preview(self, scene, max_points, camera_path=None):
        require(scene, Scene4D, "scene")
        if camera_path is not None:
            require(camera_path, CameraPath, "camera_path")
        stride = max(1, math.ceil(math.sqrt(scene.num_points / max_points)))
        name = f"more4d_preview_{uuid.uuid4().hex[:12]}"
        export_glb(scene, temp_directory(), name, point_stride=stride, camera_path=camera_path)
        return {"ui": {"more4d_glb": [{"filename": f"{name}.glb", "subfolder": "", "type": "temp"}]}}
