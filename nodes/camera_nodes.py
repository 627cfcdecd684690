"""Camera-path nodes: presets and keyframes (thin wrappers over more4d_core.camera)."""

from __future__ import annotations

import logging

from more4d_core.camera import PRESET_DESCRIPTIONS, PRESET_NAMES, camera_preset, parse_keyframes
from more4d_core.camera.fillable import MAX_HOLES, fillable_preset, hole_fractions
from more4d_core.camera.keyframes import KEYFRAMES_EXAMPLE_FILE
from more4d_core.camera.presets import MAX_FRAMES
from more4d_core.errors import InputError
from more4d_core.scene import Scene4D

from .types import CAMERA_PATH, CATEGORY, SCENE, require

_DEFAULT_FRAMES = 49
log = logging.getLogger("more4d")

# the shipped keyframe example (also the command line's: python -m more4d_core.cli render ... --camera <it>)
EXAMPLE_KEYFRAMES = KEYFRAMES_EXAMPLE_FILE.read_text().strip()

_SCENE_TIP = (
    "Optional 4D scene: sets the motion scale (its median depth) and, when frames is 0, the frame count."
)
_DEPTH_TIP = "Scene scale used when no scene is connected: the typical distance to the subject (metres)."
_FRAMES_TIP = "Number of camera poses. 0 = as many as the connected scene has frames (49 without a scene)."
_MODE_TIP = (
    "auto: the largest move (up to strength) whose every frame leaves at most max_holes of the picture for the "
    "completion to invent, found by rendering the connected scene at low resolution; fixed: exactly strength."
)
_HOLES_TIP = "auto strength: the largest share of any frame the move may reveal (holes the completion must fill)."


_SCALE_INPUTS = {
    "scene": (SCENE, {"tooltip": _SCENE_TIP}),
    "scene_depth": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 1000.0, "step": 0.01, "tooltip": _DEPTH_TIP}),
}


class _CameraPathNode:
    """What both camera-path nodes share: category, entry point and the one output."""

    CATEGORY = CATEGORY
    FUNCTION = "build"
    RETURN_TYPES = (CAMERA_PATH,)
    RETURN_NAMES = ("camera_path",)
    OUTPUT_TOOLTIPS = ("Camera poses (camera-to-world, OpenCV axes) for the renderer.",)


def _scale_and_frames(scene, scene_depth: float, frames: int) -> tuple[float, int]:
    if scene is not None:
        require(scene, Scene4D, "scene")
        return scene.median_depth(), frames or scene.num_frames
    return float(scene_depth), frames or _DEFAULT_FRAMES


class CameraPathPreset(_CameraPathNode):
    DESCRIPTION = "A preset camera move that starts at the input camera: " + "; ".join(
        f"{k}: {v}" for k, v in PRESET_DESCRIPTIONS.items()
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "preset": (list(PRESET_NAMES), {"default": "orbit", "tooltip": "Which camera move."}),
                "frames": ("INT", {"default": 0, "min": 0, "max": MAX_FRAMES, "tooltip": _FRAMES_TIP}),
                "strength": (
                    "FLOAT",
                    {
                        "default": 1.0, "min": -3.0, "max": 3.0, "step": 0.05,
                        "tooltip": "Amplitude of the move (1 = the paper's). Negative reverses the direction. "
                        "With strength_mode auto: the largest amplitude allowed.",
                    },
                ),
            },
            # after the scale inputs, so workflows saved before they existed keep their widget values
            "optional": {
                **_SCALE_INPUTS,
                "strength_mode": (["auto", "fixed"], {"default": "auto", "tooltip": _MODE_TIP}),
                "max_holes": ("FLOAT", {"default": MAX_HOLES, "min": 0.01, "max": 0.9, "step": 0.01, "tooltip": _HOLES_TIP}),
            },
        }

    def build(self, preset, frames, strength, scene=None, scene_depth=1.0, strength_mode="auto", max_holes=MAX_HOLES):
        depth, count = _scale_and_frames(scene, scene_depth, frames)
        if strength_mode == "fixed" or preset == "static" or strength == 0:
            return (camera_preset(preset, count, scene_depth=depth, strength=strength),)
        if strength_mode != "auto":
            raise InputError(f"strength_mode must be auto or fixed, got {strength_mode!r}")
        if scene is None:
            raise InputError("strength_mode auto measures how much of the connected scene the move reveals: "
                             "connect the scene to the camera path node, or set strength_mode to fixed")
        move = fillable_preset(scene, preset, count, limit=strength, max_holes=max_holes)
        note = (f"MoRe4D camera {preset}: auto strength {move.strength:.2f} (of at most {strength:g}); "
                f"worst frame {100 * move.worst_holes:.1f}% holes (budget {100 * max_holes:.0f}%)")
        if move.within_budget:
            log.info(note)
        else:
            log.warning(note + " - even a tiny move exceeds the budget: the scene itself has holes")
        return (move.path,)


class CameraPathKeyframes(_CameraPathNode):
    DESCRIPTION = (
        "A camera path through keyframes given as JSON (position + look-at or rotation, optional zoom); "
        "positions follow a smooth spline, rotations slerp. Units default to multiples of the scene depth."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "keyframes_json": (
                    "STRING",
                    {
                        "default": EXAMPLE_KEYFRAMES, "multiline": True,
                        "tooltip": "Keyframes JSON (format more4d.camera_keyframes v1; see the README). "
                        "Coordinates: x right, y down, z forward from the input camera.",
                    },
                ),
                "frames": ("INT", {"default": 0, "min": 0, "max": MAX_FRAMES, "tooltip": _FRAMES_TIP + " Overrides num_frames in the JSON."}),
            },
            "optional": dict(_SCALE_INPUTS),
        }

    def build(self, keyframes_json, frames, scene=None, scene_depth=1.0):
        depth, count = _scale_and_frames(scene, scene_depth, frames)
        # an explicit count or the scene's wins; otherwise the JSON decides (49 if it can't)
        explicit = count if (frames or scene is not None) else None
        path = parse_keyframes(keyframes_json, scene_depth=depth, num_frames=explicit, default_num_frames=count)
        if scene is not None and path.num_frames in (scene.num_frames, 1):
            worst = float(hole_fractions(scene, path).max())
            path.metadata["worst_holes"] = round(worst, 4)
            if worst > MAX_HOLES:
                log.warning("MoRe4D camera keyframes: the worst frame reveals %.0f%% of the picture as holes "
                            "(more than %.0f%%: the completion will smear them); a smaller move stays fillable",
                            100 * worst, 100 * MAX_HOLES)
        return (path,)
