"""The render node: 4D scene + camera path -> frames, hole mask, depth."""

from __future__ import annotations

import logging

from more4d_core.camera import CameraPath
from more4d_core.render import render_scene
from more4d_core.render.renderer import MAX_SIDE
from more4d_core.render.visualize import depth_to_image, parse_color
from more4d_core.scene import Scene4D

from .comfy_bridge import Progress, render_device
from .types import CAMERA_PATH, CATEGORY, RENDER, SCENE, RenderBundle, require

log = logging.getLogger("more4d")


def output_size(grid_hw: tuple[int, int], width: int, height: int) -> tuple[int, int]:
    """Output (height, width): 0 means "from the scene"; one given side keeps the grid's aspect."""
    gh, gw = grid_hw
    if width and height:
        return height, width
    if width:
        return max(1, round(width * gh / gw)), width
    if height:
        return height, max(1, round(height * gw / gh))
    return gh, gw


class Render4D:
    DESCRIPTION = (
        "Render the 4D scene through a camera path with a z-buffer point splatter. Pixels no point reaches "
        "are holes (dis-occlusions): they come out in the mask (1 = hole) for inpainting."
    )
    CATEGORY = CATEGORY
    FUNCTION = "render"
    RETURN_TYPES = ("IMAGE", "MASK", "IMAGE", RENDER)
    RETURN_NAMES = ("frames", "hole_mask", "depth", "render")
    OUTPUT_TOOLTIPS = (
        "Rendered frames [T, H, W, 3]; holes are filled with the background colour.",
        "Hole mask [T, H, W]: 1 where no point landed (to inpaint), 0 elsewhere.",
        "Depth of the visible points as an image (near = bright, holes black).",
        "The render with its scene and camera path, for Complete Frames.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "scene": (SCENE, {"tooltip": "The 4D scene (dense 3D trajectories)."}),
                "camera_path": (CAMERA_PATH, {"tooltip": "Camera poses; resampled to the scene's frame count if they differ."}),
                "width": ("INT", {"default": 0, "min": 0, "max": MAX_SIDE, "step": 8, "tooltip": "Output width in pixels; 0 = the scene's grid width."}),
                "height": ("INT", {"default": 0, "min": 0, "max": MAX_SIDE, "step": 8, "tooltip": "Output height in pixels; 0 = the scene's grid height."}),
                "splat_size": (
                    "INT",
                    {"default": 1, "min": 1, "max": 5, "tooltip": "Pixels each point covers (1 = exact; 2-3 close cracks when rendering larger than the grid or moving close)."},
                ),
                "background": ("STRING", {"default": "#000000", "tooltip": "Colour of hole pixels: '#rrggbb' or 'r,g,b'."}),
                "device": (["auto", "cpu", "cuda"], {"default": "auto", "tooltip": "Where to render. auto = ComfyUI's GPU if any, else the CPU."}),
            },
        }

    def render(self, scene, camera_path, width, height, splat_size, background, device):
        require(scene, Scene4D, "scene")
        require(camera_path, CameraPath, "camera_path")
        if camera_path.num_frames not in (1, scene.num_frames) and scene.num_frames != 1:
            log.info("MoRe4D: camera path has %d frames, scene %d: resampling the path", camera_path.num_frames, scene.num_frames)
            camera_path = camera_path.resampled(scene.num_frames)
        out_hw = output_size(scene.grid_hw, width, height)
        frames_total = max(scene.num_frames, camera_path.num_frames)
        result = render_scene(
            scene,
            camera_path,
            output_hw=out_hw,
            splat_radius=splat_size,
            background=parse_color(background),
            device=render_device(device),
            return_point_index=True,
            progress=Progress(frames_total),
        )
        bundle = RenderBundle(result, scene, camera_path)
        return (result.frames, result.hole_mask(), depth_to_image(result.depth, result.holes), bundle)
