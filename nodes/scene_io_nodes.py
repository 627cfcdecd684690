"""Saving and loading 4D scenes (npz scene file, PLY frames, animated GLB)."""

from __future__ import annotations

import os
from pathlib import Path

from more4d_core.errors import InputError
from more4d_core.export import export_glb, export_ply_sequence, load_scene, resolve_inside, save_scene
from more4d_core.export.naming import save_numbered
from more4d_core.scene import Scene4D

from .comfy_bridge import check_interrupted, input_directory, output_directory, output_name
from .types import CATEGORY, SCENE, require

_ROOTS = {"input": input_directory, "output": output_directory}
_MAX_LISTED = 500


def list_scene_files() -> list[str]:
    """``input/...`` and ``output/...`` names of the scene files ComfyUI can see."""
    found = []
    for label, root_fn in _ROOTS.items():
        root = Path(root_fn())
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for f in sorted(filenames):
                if f.endswith(".npz") and not f.startswith("."):
                    rel = Path(dirpath, f).relative_to(root).as_posix()
                    found.append(f"{label}/{rel}")
                    if len(found) >= _MAX_LISTED:
                        return found
    return found


def resolve_scene_file(name: str) -> Path:
    """Path of an ``input/...`` or ``output/...`` scene name, refusing escapes from those folders."""
    label, _, rel = str(name).partition("/")
    if label not in _ROOTS or not rel:
        raise InputError(f"scene file {name!r} must start with 'input/' or 'output/'")
    return resolve_inside(_ROOTS[label](), rel, reading=True)


class LoadScene4D:
    DESCRIPTION = "Load a 4D scene saved as a MoRe4D .npz scene file from ComfyUI's input or output folder."
    CATEGORY = CATEGORY
    FUNCTION = "load"
    DYNAMIC_INPUTS = ("scene_file",)
    RETURN_TYPES = (SCENE,)
    RETURN_NAMES = ("scene",)
    OUTPUT_TOOLTIPS = ("The loaded 4D scene.",)

    @classmethod
    def INPUT_TYPES(cls):
        files = list_scene_files() or ["(no .npz scene files found in input/ or output/)"]
        return {"required": {"scene_file": (files, {"tooltip": "A .npz scene file written by Save 4D Scene."})}}

    @classmethod
    def IS_CHANGED(cls, scene_file):
        try:
            return os.path.getmtime(resolve_scene_file(scene_file))
        except (OSError, InputError):
            return float("nan")

    def load(self, scene_file):
        path = resolve_scene_file(scene_file)
        if not path.is_file():
            raise InputError(f"scene file {path} not found; save a scene first or copy a .npz into ComfyUI's input folder")
        return (load_scene(path),)


class SaveScene4D:
    DESCRIPTION = (
        "Save the 4D scene into ComfyUI's output folder: a .npz scene file (reload with Load 4D Scene), "
        "per-frame PLY point clouds and/or an animated GLB point cloud for 3D viewers."
    )
    CATEGORY = CATEGORY
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = ()

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "scene": (SCENE, {"tooltip": "The 4D scene to save."}),
                "filename_prefix": ("STRING", {"default": "more4d/scene", "tooltip": "Name (and sub-folder) inside the output folder; a number is appended."}),
                "save_npz": ("BOOLEAN", {"default": True, "tooltip": "Complete scene file (float16 motion storage, ~2x smaller than float32)."}),
                "save_ply_frames": ("BOOLEAN", {"default": False, "tooltip": "A folder with one PLY point cloud per frame."}),
                "save_glb": ("BOOLEAN", {"default": True, "tooltip": "An animated point-cloud GLB (plays in ComfyUI's 3D preview, Blender, three.js)."}),
                "point_stride": (
                    "INT",
                    {"default": 2, "min": 1, "max": 16, "tooltip": "PLY/GLB keep every n-th row and column of points (1 = all; 2 = a quarter, lighter files)."},
                ),
            }
        }

    def save(self, scene, filename_prefix, save_npz, save_ply_frames, save_glb, point_stride):
        require(scene, Scene4D, "scene")
        if not (save_npz or save_ply_frames or save_glb):
            raise InputError("nothing to save: enable at least one of save_npz, save_ply_frames, save_glb")
        check_interrupted()
        root = output_directory()
        compact = scene
        if save_npz:
            try:
                compact = scene.to_storage("float16")
            except InputError:  # motion too large for float16: keep float32
                compact = scene

        def write(stem, written):  # all or nothing: a failure removes what this save wrote
            if save_npz:
                written.append(save_scene(compact, root, stem))
            if save_glb:
                written.append(export_glb(scene, root, stem, point_stride=point_stride))
            if save_ply_frames:
                written.append(export_ply_sequence(scene, root, f"{stem}_ply", point_stride=point_stride))

        written = save_numbered(root, filename_prefix, (".npz", ".glb", "_ply"), write)
        names = [output_name(p, root) for p in written]
        return {"ui": {"text": names}}
