"""A picture of a camera path: top-down (x-z) and side (z-y) views with the camera centres, their
viewing directions and, optionally, the scene's frame-0 points."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .path import CameraPath


def draw_camera_path(path: CameraPath, points: torch.Tensor | None = None, size: int = 384) -> torch.Tensor:
    """``[1, size, 2 * size, 3]`` float image (ComfyUI IMAGE): left top-down, right side view."""
    centres = path.positions().numpy()
    forward = path.poses[:, :3, 2].numpy()
    cloud = points.numpy()[:: max(1, len(points) // 4000)] if points is not None else np.zeros((0, 3))
    everything = np.concatenate([centres, cloud, centres + forward * 0.1], 0)
    canvas = np.full((size, 2 * size, 3), 24, np.uint8)
    views = (((0, 2), 0, "top (x right, z forward)"), ((2, 1), size, "side (z right, y down)"))
    for axes, x_off, title in views:
        lo = everything[:, axes].min(0)
        hi = everything[:, axes].max(0)
        span = float(max(hi - lo)) or 1.0
        scale = 0.8 * size / span
        centre = (lo + hi) / 2

        def to_px(v, axes=axes, scale=scale, centre=centre, x_off=x_off):
            p = (v[..., axes] - centre) * scale
            # top view: z grows upward on screen; side view: y (down) grows downward
            y_px = size / 2 - p[..., 1] if axes == (0, 2) else size / 2 + p[..., 1]
            return np.stack([x_off + size / 2 + p[..., 0], y_px], -1).astype(np.int32)

        for q in to_px(cloud):
            cv2.circle(canvas, tuple(int(c) for c in q), 1, (90, 110, 140), -1)
        pts = to_px(centres)
        cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], False, (240, 190, 60), 2, cv2.LINE_AA)
        arrow = 0.08 * span
        heads = to_px(centres + forward * arrow)
        step = max(1, len(pts) // 12)
        for i in range(0, len(pts), step):
            cv2.arrowedLine(canvas, tuple(int(c) for c in pts[i]), tuple(int(c) for c in heads[i]), (120, 220, 120), 1,
                            cv2.LINE_AA, tipLength=0.3)
        cv2.circle(canvas, tuple(int(c) for c in pts[0]), 5, (255, 255, 255), -1)
        cv2.putText(canvas, title, (x_off + 8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (200, 200, 200), 1, cv2.LINE_AA)
    cv2.line(canvas, (size, 0), (size, size), (60, 60, 60), 1)
    cv2.putText(canvas, f"{path.name}: {path.num_frames} frames (white = frame 0)", (8, size - 10),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, (200, 200, 200), 1, cv2.LINE_AA)
    return torch.from_numpy(canvas.astype(np.float32) / 255.0).unsqueeze(0)
