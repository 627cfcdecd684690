"""Keyframed camera paths from JSON (the format the camera-path editor writes).

Format (version 1)::

    {
      "format": "more4d.camera_keyframes",      # optional
      "version": 1,
      "num_frames": 49,                         # optional: defaults to last keyframe + 1
      "units": "scene_depth",                   # or "metres": unit of positions / look-at targets
      "interpolation": "spline",                # or "linear" (positions; rotations always slerp)
      "up": [0, -1, 0],                         # optional screen-up direction for look-at keyframes
      "keyframes": [
        {"frame": 0,  "position": [0, 0, 0], "look_at": [0, 0, 1]},
        {"frame": 24, "position": [0.2, 0, 0.1], "look_at": [0, 0, 1], "roll_deg": 5, "zoom": 1.2},
        {"frame": 48, "position": [0.3, 0, 0], "rotation": {"euler_deg": [0, -10, 0]}}
      ]
    }

Coordinates are the input camera's OpenCV frame (x right, y down, z forward). With
``"units": "scene_depth"`` a position of ``[0, 0, 1]`` is one median scene depth ahead, so the same
file fits any scene. A keyframe's orientation is ``look_at`` (+ optional ``roll_deg``) or
``rotation`` as ``{"quaternion_wxyz": [...]}``, ``{"matrix": [[...] x3]}`` or
``{"euler_deg": [pitch, yaw, roll]}``; without either it keeps the input camera's orientation.
Instead of ``frame`` a keyframe may give ``time`` in [0, 1] (fraction of the path).
Positions follow a Catmull-Rom spline through the keyframes, rotations slerp between them and
zoom (focal multiplier) is interpolated linearly; frames outside the keyframes hold still.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from .interpolation import compose_poses, hermite_positions, slerp_rotations
from .path import CameraPath
from .presets import MAX_FRAMES
from .rotations import euler_to_matrix, look_at, matrix_to_quaternion, quaternion_to_matrix, rotation_z

KEYFRAMES_FORMAT = "more4d.camera_keyframes"
KEYFRAMES_VERSION = 1
# a small push-in and drift to the right, by time (0..1): the Keyframes node's default and the CLI's example
KEYFRAMES_EXAMPLE_FILE = Path(__file__).resolve().parents[1] / "assets" / "keyframes_example.json"
_UNITS = ("scene_depth", "metres", "meters")
_F64 = torch.float64


def _number_list(value: Any, n: int, where: str) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise InputError(f"{where} must be a list of {n} numbers, got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InputError(f"{where} must contain finite numbers, got {value!r}")
        out.append(float(v))
    return out


def _rotation_of(kf: dict, position: list[float], scale: float, down: list[float], where: str) -> torch.Tensor:
    has_look = "look_at" in kf
    has_rot = "rotation" in kf
    if has_look and has_rot:
        raise InputError(f"{where}: give either 'look_at' or 'rotation', not both")
    if has_look:
        target = [c * scale for c in _number_list(kf["look_at"], 3, f"{where}.look_at")]
        rot = look_at(position, target, down)
        roll = kf.get("roll_deg", 0.0)
        _number_list([roll], 1, f"{where}.roll_deg")
        return rot @ rotation_z(math.radians(roll))
    if has_rot:
        spec = kf["rotation"]
        if not isinstance(spec, dict) or len(spec) != 1:
            raise InputError(
                f"{where}.rotation must be one of {{'quaternion_wxyz': [w,x,y,z]}}, {{'matrix': 3x3}}, "
                f"{{'euler_deg': [pitch, yaw, roll]}}; got {spec!r}"
            )
        (kind, value), = spec.items()
        if kind == "quaternion_wxyz":
            return quaternion_to_matrix(_number_list(value, 4, f"{where}.rotation.quaternion_wxyz"))
        if kind == "euler_deg":
            return euler_to_matrix(*_number_list(value, 3, f"{where}.rotation.euler_deg"))
        if kind == "matrix":
            if not isinstance(value, list) or len(value) != 3:
                raise InputError(f"{where}.rotation.matrix must be 3 rows of 3 numbers")
            m = torch.tensor([_number_list(r, 3, f"{where}.rotation.matrix row") for r in value], dtype=_F64)
            if not torch.allclose(m.T @ m, torch.eye(3, dtype=_F64), atol=1e-4) or torch.linalg.det(m) <= 0:
                raise InputError(f"{where}.rotation.matrix is not a rotation (orthonormal, determinant +1)")
            return quaternion_to_matrix(matrix_to_quaternion(m))
        raise InputError(f"{where}.rotation has unknown kind {kind!r}; use quaternion_wxyz, matrix or euler_deg")
    if "roll_deg" in kf:
        return rotation_z(math.radians(_number_list([kf["roll_deg"]], 1, f"{where}.roll_deg")[0]))
    return torch.eye(3, dtype=_F64)


def parse_keyframes(
    spec: str | dict,
    *,
    scene_depth: float = 1.0,
    num_frames: int | None = None,
    default_num_frames: int = 49,
) -> CameraPath:
    """Build a :class:`CameraPath` from a keyframe JSON string or dict.

    ``scene_depth`` converts ``"scene_depth"`` units to scene units; ``num_frames`` overrides the
    file's frame count (the keyframe frames are then rescaled proportionally). Without either, the
    count is the last keyframe's frame + 1, or ``default_num_frames`` when keyframes only give times.
    """
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise InputError(f"camera keyframes are not valid JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise InputError("camera keyframes JSON must be an object with a 'keyframes' list")
    if spec.get("format", KEYFRAMES_FORMAT) != KEYFRAMES_FORMAT:
        raise InputError(f"this JSON is a {spec.get('format')!r}, not {KEYFRAMES_FORMAT!r}")
    version = spec.get("version", KEYFRAMES_VERSION)
    if version != KEYFRAMES_VERSION:
        raise InputError(f"camera keyframes version {version!r} is not supported (this build reads version 1)")
    units = spec.get("units", "scene_depth")
    if units not in _UNITS:
        raise InputError(f"'units' must be 'scene_depth' or 'metres', got {units!r}")
    if not (math.isfinite(scene_depth) and scene_depth > 0):
        raise InputError(f"scene depth must be a positive distance, got {scene_depth}")
    scale = float(scene_depth) if units == "scene_depth" else 1.0
    interp = spec.get("interpolation", "spline")
    if interp not in ("spline", "linear"):
        raise InputError(f"'interpolation' must be 'spline' or 'linear', got {interp!r}")
    up = _number_list(spec.get("up", [0.0, -1.0, 0.0]), 3, "up")
    down = [-c for c in up]
    kfs = spec.get("keyframes")
    if not isinstance(kfs, list) or not kfs:
        raise InputError("camera keyframes need a non-empty 'keyframes' list")

    file_frames = spec.get("num_frames")
    if file_frames is not None and (isinstance(file_frames, bool) or not isinstance(file_frames, int) or file_frames < 1
                                    or file_frames > MAX_FRAMES):
        raise InputError(f"'num_frames' must be an integer from 1 to {MAX_FRAMES}, got {file_frames!r}")

    times, positions, rotations, zooms = [], [], [], []
    for i, kf in enumerate(kfs):
        where = f"keyframes[{i}]"
        if not isinstance(kf, dict):
            raise InputError(f"{where} must be an object")
        if ("frame" in kf) == ("time" in kf):
            raise InputError(f"{where} needs exactly one of 'frame' (index) or 'time' (0..1)")
        if "frame" in kf:
            frame = kf["frame"]
            if isinstance(frame, bool) or not isinstance(frame, (int, float)) or not 0 <= frame < MAX_FRAMES:
                raise InputError(f"{where}.frame must be a frame index from 0 to {MAX_FRAMES - 1}, got {frame!r}")
            times.append(("frame", float(frame)))
        else:
            t = _number_list([kf["time"]], 1, f"{where}.time")[0]
            if not 0.0 <= t <= 1.0:
                raise InputError(f"{where}.time must be in [0, 1], got {t}")
            times.append(("time", t))
        pos = [c * scale for c in _number_list(kf.get("position", [0.0, 0.0, 0.0]), 3, f"{where}.position")]
        positions.append(pos)
        rotations.append(_rotation_of(kf, pos, scale, down, where))
        zoom = _number_list([kf.get("zoom", 1.0)], 1, f"{where}.zoom")[0]
        if zoom <= 0:
            raise InputError(f"{where}.zoom must be > 0, got {zoom}")
        zooms.append(zoom)

    last_frame = max((v for kind, v in times if kind == "frame"), default=0.0)
    if file_frames is not None and last_frame > file_frames - 1:
        raise InputError(
            f"a keyframe is at frame {last_frame:g} but the path has only {file_frames} frames (0..{file_frames - 1})"
        )
    if file_frames is not None:
        src_frames = file_frames
    elif any(kind == "frame" for kind, _ in times):
        src_frames = int(math.floor(last_frame)) + 1
    else:
        src_frames = int(default_num_frames)
    out_frames = int(num_frames) if num_frames is not None else src_frames
    if not 1 <= out_frames <= MAX_FRAMES:
        raise InputError(f"frame count must be from 1 to {MAX_FRAMES}, got {out_frames}")
    # everything on the output's frame axis
    stretch = (out_frames - 1) / (src_frames - 1) if src_frames > 1 else 0.0
    key_t = torch.tensor(
        [v * stretch if kind == "frame" else v * (out_frames - 1) for kind, v in times], dtype=_F64
    )
    order = torch.argsort(key_t)
    key_t = key_t[order]
    if len(key_t) > 1 and not bool((key_t[1:] > key_t[:-1]).all()):
        raise InputError(f"two keyframes fall on the same frame ({key_t.tolist()}); give each its own frame")
    pos_t = torch.tensor(positions, dtype=_F64)[order]
    rot_t = torch.stack(rotations)[order]
    zoom_t = torch.tensor(zooms, dtype=_F64)[order]

    query = torch.arange(out_frames, dtype=_F64)
    pos = hermite_positions(pos_t, key_t, query, spline=(interp == "spline"))
    rot = slerp_rotations(rot_t, key_t, query)
    zoom = torch.from_numpy(np.interp(query.numpy(), key_t.numpy(), zoom_t.numpy()))
    return CameraPath(
        compose_poses(rot, pos),
        name="keyframes",
        zoom=None if bool((zoom_t == 1.0).all()) else zoom,
        metadata={"source": "keyframes", "units": units, "scene_depth": float(scene_depth)},
    )


def path_to_keyframes(path: CameraPath, *, scene_depth: float = 1.0, every: int = 1) -> dict:
    """A keyframe dict (every ``every``-th frame plus the last) reproducing ``path``.

    Positions are written in ``scene_depth`` units and rotations as quaternions, so
    ``parse_keyframes(path_to_keyframes(p, scene_depth=d), scene_depth=d)`` returns ``p``.
    """
    if every < 1:
        raise InputError("'every' must be >= 1")
    frames = list(range(0, path.num_frames, every))
    if frames[-1] != path.num_frames - 1:
        frames.append(path.num_frames - 1)
    keyframes = []
    for f in frames:
        kf = {
            "frame": f,
            "position": [float(c) / scene_depth for c in path.poses[f, :3, 3]],
            "rotation": {"quaternion_wxyz": [float(c) for c in matrix_to_quaternion(path.poses[f, :3, :3])]},
        }
        if path.zoom is not None:
            kf["zoom"] = float(path.zoom[f])
        keyframes.append(kf)
    return {
        "format": KEYFRAMES_FORMAT,
        "version": KEYFRAMES_VERSION,
        "num_frames": path.num_frames,
        "units": "scene_depth",
        "interpolation": "spline",
        "keyframes": keyframes,
    }
