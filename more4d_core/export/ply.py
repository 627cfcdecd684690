"""PLY point clouds: one file per frame (binary little-endian by default), x/y/z float + RGB uchar.

A frame PLY opens in MeshLab, CloudCompare, Blender and ComfyUI's point-cloud preview.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import InputError, expect_type
from ..memory.budget import check_disk
from ..scene import Scene4D
from .atomic import atomic_folder, resolve_inside, write_file_atomic
from .selection import select_frames, select_points, to_coordinates

_VERTEX = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])


def write_ply(fh: BinaryIO, points: np.ndarray, colors: np.ndarray, *, binary: bool = True, comment: str = "") -> None:
    """Write ``points [M, 3]`` with ``colors [M, 3]`` uint8 as a PLY vertex list to ``fh``."""
    points = np.asarray(points, dtype=np.float32)
    colors = np.asarray(colors)
    if points.ndim != 2 or points.shape[1] != 3 or colors.shape != points.shape or colors.dtype != np.uint8:
        raise InputError(f"PLY needs points [M, 3] and uint8 colours [M, 3], got {points.shape}, {colors.shape} {colors.dtype}")
    fmt = "binary_little_endian" if binary else "ascii"
    header = ["ply", f"format {fmt} 1.0"]
    header += [f"comment {line}" for line in comment.splitlines() if line]
    header += [
        f"element vertex {len(points)}",
        "property float x",
        "property float y",
        "property float z",
        "property uchar red",
        "property uchar green",
        "property uchar blue",
        "end_header",
    ]
    fh.write(("\n".join(header) + "\n").encode("ascii"))
    if binary:
        verts = np.empty(len(points), dtype=_VERTEX)
        verts["x"], verts["y"], verts["z"] = points[:, 0], points[:, 1], points[:, 2]
        verts["red"], verts["green"], verts["blue"] = colors[:, 0], colors[:, 1], colors[:, 2]
        fh.write(verts.tobytes())
    else:
        for p, c in zip(points, colors):
            fh.write(f"{p[0]:.7g} {p[1]:.7g} {p[2]:.7g} {c[0]} {c[1]} {c[2]}\n".encode("ascii"))


def _frame_cloud(scene: Scene4D, t: int, keep, coordinates: str, visible_only: bool):
    pts = scene.frame(t)[keep].numpy()
    cols = scene.colors[keep].numpy()
    if visible_only:
        vis = scene.visibility[t][keep].numpy()
        pts, cols = pts[vis], cols[vis]
    return to_coordinates(pts, coordinates), cols


def export_ply_frame(
    scene: Scene4D,
    folder: str | os.PathLike,
    name: str,
    frame: int = 0,
    *,
    point_stride: int = 1,
    coordinates: str = "gl",
    binary: bool = True,
    visible_only: bool = False,
    overwrite: bool = False,
) -> Path:
    """One frame of the scene as ``folder/name`` (``.ply`` added when missing)."""
    expect_type(scene, Scene4D, "scene")
    (frame,) = select_frames(scene, [frame])
    if not str(name).endswith(".ply"):
        name = f"{name}.ply"
    target = resolve_inside(folder, name)
    pts, cols = _frame_cloud(scene, frame, select_points(scene, point_stride), coordinates, visible_only)
    comment = f"MoRe4D scene frame {frame}, coordinates {coordinates}"
    return write_file_atomic(target, lambda fh: write_ply(fh, pts, cols, binary=binary, comment=comment), overwrite=overwrite)


def export_ply_sequence(
    scene: Scene4D,
    folder: str | os.PathLike,
    name: str,
    *,
    frames=None,
    frame_stride: int = 1,
    point_stride: int = 1,
    coordinates: str = "gl",
    binary: bool = True,
    visible_only: bool = False,
    overwrite: bool = False,
) -> Path:
    """Per-frame PLY files in a new folder ``folder/name`` (``frame_0000.ply``, ...).

    The folder also holds ``sequence.json`` (fps, frame numbers, coordinate system). It appears
    only when complete: it is written under a temporary name and renamed.
    """
    expect_type(scene, Scene4D, "scene")
    target = resolve_inside(folder, name)
    chosen = select_frames(scene, frames, frame_stride)
    keep = select_points(scene, point_stride)
    info = {
        "format": "more4d.ply_sequence",
        "fps": scene.fps / (frame_stride if frames is None else 1),
        "frames": chosen,
        "files": [f"frame_{t:04d}.ply" for t in chosen],
        "coordinates": coordinates,
        "grid_hw": list(scene.grid_hw),
        "point_stride": point_stride,
    }
    per_point = 15 if binary else 60  # xyz float32 + rgb bytes; text: up to ~60 characters a line
    check_disk(target.parent, len(chosen) * int(keep.numel()) * per_point,
               f"exporting {len(chosen)} frames x {int(keep.numel()):,} points as PLY",
               "free some disk space or raise the frame / point stride")
    with atomic_folder(target, overwrite=overwrite) as tmp:
        for t, fname in zip(chosen, info["files"]):
            pts, cols = _frame_cloud(scene, t, keep, coordinates, visible_only)
            with open(tmp / fname, "wb") as fh:
                write_ply(fh, pts, cols, binary=binary, comment=f"MoRe4D scene frame {t}, coordinates {coordinates}")
        (tmp / "sequence.json").write_text(json.dumps(info, indent=2))
    return target
