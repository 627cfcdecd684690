"""Animated point cloud as a binary glTF (``.glb``).

Layout: one node per exported frame, each holding a ``POINTS`` primitive with that frame's
positions and the shared vertex colours (RGBA8, normalized). One animation clip switches the
frames with ``STEP`` keyframes on node scale (the visible frame has scale 1, the others 0), so it
plays in three.js (ComfyUI's Load3D / Preview3D viewer, which has an animation player), Blender,
Babylon.js and model-viewer. Node scales at rest show frame 0. The input camera is included as a
perspective camera. Coordinates are glTF's (y up, camera looking down -z): ``(x, -y, -z)`` of
ours. Note that glTF points draw as 1-pixel dots in most viewers; subsample with
``point_stride`` for lighter files.

The file is streamed to disk (no second in-memory copy of the positions) and written atomically.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

import numpy as np

from ..errors import expect_type
from ..memory.budget import check_disk
from ..scene import Scene4D
from .atomic import atomic_file, resolve_inside
from .selection import select_frames, select_points, to_coordinates

_FLOAT = 5126
_UBYTE = 5121
_ARRAY_BUFFER = 34962
_GLB_MAGIC = 0x46546C67  # "glTF"
_JSON_CHUNK = 0x4E4F534A
_BIN_CHUNK = 0x004E4942


def _pad4(n: int) -> int:
    return (4 - n % 4) % 4


def export_glb(
    scene: Scene4D,
    folder: str | os.PathLike,
    name: str,
    *,
    frames=None,
    frame_stride: int = 1,
    point_stride: int = 1,
    include_camera: bool = True,
    camera_path=None,
    overwrite: bool = False,
) -> Path:
    """Write the scene as an animated point-cloud ``folder/name`` (``.glb`` added when missing).

    ``camera_path`` (a :class:`CameraPath`) is stored in ``extras.more4d.camera_path`` as row-major
    4x4 camera-to-world matrices (OpenCV axes), for viewers that draw it.
    """
    expect_type(scene, Scene4D, "scene")
    if not str(name).endswith(".glb"):
        name = f"{name}.glb"
    target = resolve_inside(folder, name)
    chosen = select_frames(scene, frames, frame_stride)
    keep = select_points(scene, point_stride)
    count = int(keep.numel())
    colors = np.concatenate(
        [scene.colors[keep].numpy(), np.full((count, 1), 255, dtype=np.uint8)], axis=1
    )
    fps = scene.fps / (frame_stride if frames is None else 1)

    # -- buffer layout: [colours][positions frame 0..K-1][times][scales node 0..K-1]
    views, accessors, blobs = [], [], []
    offset = 0

    def add_view(nbytes: int, target_buffer: bool) -> int:
        nonlocal offset
        view = {"buffer": 0, "byteOffset": offset, "byteLength": nbytes}
        if target_buffer:
            view["target"] = _ARRAY_BUFFER
        views.append(view)
        offset += nbytes + _pad4(nbytes)
        return len(views) - 1

    color_view = add_view(colors.nbytes, True)
    accessors.append({"bufferView": color_view, "componentType": _UBYTE, "normalized": True, "count": count, "type": "VEC4"})
    color_acc = 0
    blobs.append(("array", colors))

    position_accs = []
    for t in chosen:
        pts = to_coordinates(scene.frame(t)[keep].numpy().astype(np.float32), "gl")
        view = add_view(pts.nbytes, True)
        accessors.append(
            {
                "bufferView": view,
                "componentType": _FLOAT,
                "count": count,
                "type": "VEC3",
                "min": [float(v) for v in pts.min(axis=0)],
                "max": [float(v) for v in pts.max(axis=0)],
            }
        )
        position_accs.append(len(accessors) - 1)
        blobs.append(("frame", t))

    k = len(chosen)
    animations = []
    if k > 1:
        times = (np.arange(k, dtype=np.float32) / np.float32(fps)).astype(np.float32)
        tview = add_view(times.nbytes, False)
        accessors.append(
            {"bufferView": tview, "componentType": _FLOAT, "count": k, "type": "SCALAR",
             "min": [float(times[0])], "max": [float(times[-1])]}
        )
        time_acc = len(accessors) - 1
        blobs.append(("array", times))
        samplers, channels = [], []
        for i in range(k):
            scales = np.zeros((k, 3), dtype=np.float32)
            scales[i] = 1.0
            sview = add_view(scales.nbytes, False)
            accessors.append({"bufferView": sview, "componentType": _FLOAT, "count": k, "type": "VEC3"})
            blobs.append(("array", scales))
            samplers.append({"input": time_acc, "output": len(accessors) - 1, "interpolation": "STEP"})
            channels.append({"sampler": i, "target": {"node": i, "path": "scale"}})
        animations.append({"name": "motion", "samplers": samplers, "channels": channels})

    meshes = [
        {"name": f"frame_{t:04d}", "primitives": [{"attributes": {"POSITION": acc, "COLOR_0": color_acc}, "mode": 0}]}
        for t, acc in zip(chosen, position_accs)
    ]
    nodes = [
        {"name": f"frame_{t:04d}", "mesh": i, "scale": [1.0, 1.0, 1.0] if i == 0 else [0.0, 0.0, 0.0]}
        for i, t in enumerate(chosen)
    ]
    children = list(range(len(nodes)))
    cameras = []
    if include_camera:
        h, w = scene.grid_hw
        fy = float(scene.intrinsics[1, 1])
        cameras.append(
            {
                "name": "input_camera",
                "type": "perspective",
                "perspective": {"yfov": 2.0 * math.atan(h / (2.0 * fy)), "aspectRatio": w / h, "znear": 0.01},
            }
        )
        nodes.append({"name": "input_camera", "camera": 0})
        children.append(len(nodes) - 1)
    nodes.append({"name": "MoRe4D scene", "children": children})

    doc = {
        "asset": {"version": "2.0", "generator": "ComfyUI-MoRe4D"},
        "scene": 0,
        "scenes": [{"name": "MoRe4D", "nodes": [len(nodes) - 1]}],
        "nodes": nodes,
        "meshes": meshes,
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": offset}],
        "extras": {"more4d": {"fps": fps, "frames": chosen, "grid_hw": list(scene.grid_hw), "point_stride": point_stride,
                              **({"camera_path": camera_path.poses.reshape(-1, 16).tolist()} if camera_path is not None else {})}},
    }
    if cameras:
        doc["cameras"] = cameras
    if animations:
        doc["animations"] = animations
    json_bytes = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    json_bytes += b" " * _pad4(len(json_bytes))
    total = 12 + 8 + len(json_bytes) + 8 + offset
    check_disk(target.parent, total, f"exporting {k} frames x {count:,} points as glTF",
               "free some disk space or raise the frame / point stride")

    with atomic_file(target, overwrite=overwrite) as fh:
        fh.write(struct.pack("<III", _GLB_MAGIC, 2, total))
        fh.write(struct.pack("<II", len(json_bytes), _JSON_CHUNK))
        fh.write(json_bytes)
        fh.write(struct.pack("<II", offset, _BIN_CHUNK))
        for kind, value in blobs:
            if kind == "frame":  # recomputed rather than held: keeps memory at one frame
                data = to_coordinates(scene.frame(value)[keep].numpy().astype(np.float32), "gl").tobytes()
            else:
                data = value.tobytes()
            fh.write(data)
            fh.write(b"\0" * _pad4(len(data)))
    return target
