"""2D tracks of a 4D scene as seen through a camera path: ComfyUI core's ``TRACKS`` dict
(``track_path [T, N, 2]`` pixels, ``track_visibility [T, N]``) and the ``[[{"x", "y"}, ...], ...]``
JSON that ATI / WanMove / KJNodes spline editors use."""

from __future__ import annotations

import json

import torch

from ..camera.path import CameraPath
from ..errors import InputError
from ..render.renderer import render_scene
from ..scene import Scene4D


def scene_tracks(scene: Scene4D, path: CameraPath, *, grid: int = 8, out_hw: tuple[int, int] | None = None,
                 point_indices: torch.Tensor | None = None) -> dict:
    """Tracks of ``grid x grid`` evenly spread points (or ``point_indices``) projected per frame.

    Visibility is the renderer's z-buffer: a track is visible when its point is the one drawn at its
    pixel in that frame.
    """
    if grid < 1:
        raise InputError(f"grid must be >= 1, got {grid}")
    h, w = scene.grid_hw
    out_hw = tuple(out_hw or scene.grid_hw)
    if point_indices is None:
        rows = ((torch.arange(grid) + 0.5) * h / grid).long()
        cols = ((torch.arange(grid) + 0.5) * w / grid).long()
        point_indices = (rows[:, None] * w + cols[None, :]).reshape(-1)
    if path.num_frames not in (1, scene.num_frames):
        path = path.resampled(scene.num_frames)
    result = render_scene(scene, path, output_hw=out_hw, return_point_index=True)
    k = path.intrinsics_for(scene.intrinsics, scene.grid_hw, out_hw)
    w2c = path.world_to_camera()
    if w2c.shape[0] == 1:
        w2c = w2c.expand(scene.num_frames, 4, 4)
        k = k.expand(scene.num_frames, 3, 3)
    pts = scene.points[:, point_indices].double()
    cam = torch.einsum("tij,tnj->tni", w2c[:, :3, :3], pts) + w2c[:, None, :3, 3]
    z = cam[..., 2].clamp(min=1e-9)
    x = cam[..., 0] / z * k[:, None, 0, 0] + k[:, None, 0, 2]
    y = cam[..., 1] / z * k[:, None, 1, 1] + k[:, None, 1, 2]
    inside = (cam[..., 2] > 0) & (x >= 0) & (x < out_hw[1]) & (y >= 0) & (y < out_hw[0])
    col = x.clamp(0, out_hw[1] - 1).long()
    row = y.clamp(0, out_hw[0] - 1).long()
    t_idx = torch.arange(scene.num_frames).view(-1, 1)
    drawn = result.point_index[t_idx, row, col] == point_indices.view(1, -1).to(torch.int32)
    return {"track_path": torch.stack([x, y], -1).float(), "track_visibility": inside & drawn}


def tracks_to_json(tracks: dict) -> str:
    """The spline-editor JSON: one list of ``{"x", "y"}`` (pixels) per track."""
    path = tracks["track_path"]
    return json.dumps([[{"x": round(float(p[0]), 2), "y": round(float(p[1]), 2)} for p in path[:, i]]
                       for i in range(path.shape[1])])
