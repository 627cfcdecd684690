"""Saving frames as an MP4 into ComfyUI's output folder (no other node pack needed)."""

from __future__ import annotations

from more4d_core.export.naming import save_numbered
from more4d_core.export.video import write_video

from .comfy_bridge import check_interrupted, output_directory, output_name
from .types import CATEGORY


class SaveVideo:
    DESCRIPTION = "Write frames as an H.264 MP4 into ComfyUI's output folder (numbered, never overwriting)."
    CATEGORY = CATEGORY
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = ()

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "frames": ("IMAGE", {"tooltip": "Frames [T, H, W, 3]; a MASK-like grey video works too."}),
            "filename_prefix": ("STRING", {"default": "more4d/video", "tooltip": "Name (and sub-folder) in the output folder."}),
            "fps": ("FLOAT", {"default": 8.0, "min": 1.0, "max": 120.0, "step": 1.0, "tooltip": "Frames per second."}),
        }}

    def save(self, frames, filename_prefix, fps):
        check_interrupted()
        root = output_directory()
        (path,) = save_numbered(root, filename_prefix, (".mp4",),
                                lambda stem, written: written.append(write_video(frames, root, stem, fps=fps)))
        rel = output_name(path, root)
        sub, _, name = rel.rpartition("/")
        # "images" + "animated" is how core's video nodes show an MP4 in the node; "text" names the file
        return {"ui": {"images": [{"filename": name, "subfolder": sub, "type": "output"}], "animated": (True,),
                       "text": [rel]}}
