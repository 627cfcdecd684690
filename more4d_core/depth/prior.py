"""A depth prior that needs no weights — an APPROXIMATION, for the default workflow on a fresh
machine and for previews; use a learned depth model for real work.

Model of the world: a level camera at ``camera_height`` above a ground plane whose horizon is at
``horizon`` (fraction of the image height), and a background wall standing on the ground a little
below the horizon (its foot is the strongest horizontal edge within ``wall_gap`` of the image
height below the horizon; 0 = no wall). Ground pixels get the plane's exact depth ``h f / (v - v_h)``.
The image is cut into regions along colour edges ("pop-up" layering): every large region that
stands on the ground in front of the wall gets the depth of its lowest pixel, its contact point.
A guided filter smooths the result inside regions while keeping their edges. The scale is set by
``median_depth`` (metres).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..errors import InputError
from .result import DepthResult, intrinsics_for


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` following the edges of the grey ``guide`` (He et al.)."""
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x):
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(guide), box(src)
    cov = box(guide * src) - mean_i * mean_p
    var = box(guide * guide) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


def _wall_foot(img: torch.Tensor, v_h: float, max_gap: float) -> float:
    h = img.shape[0]
    grey = img[..., :3].mean(-1).numpy().astype(np.float32)
    grey = cv2.GaussianBlur(grey, (0, 0), 1.0)
    edge = np.abs(np.diff(grey, axis=0)).mean(axis=1)  # horizontal-edge strength per row boundary
    lo = int(np.ceil(v_h + 0.02 * h))
    hi = int(min(h - 2, v_h + max_gap * h))
    if hi <= lo:
        return min(h - 1.0, v_h + 0.02 * h)
    return float(lo + int(np.argmax(edge[lo:hi])) + 1)


def _regions(image_u8: np.ndarray) -> tuple[np.ndarray, int]:
    """Colour regions separated by edges: labels ``[H, W]`` (0 = edge pixels) and their count."""
    smooth = cv2.pyrMeanShiftFiltering(image_u8, sp=8, sr=24)
    grey = cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(grey, 30, 90)
    edges = cv2.dilate(edges, np.ones((2, 2), np.uint8))
    count, labels = cv2.connectedComponents((edges == 0).astype(np.uint8), connectivity=4)
    return labels, count


def prior_depth(
    image: torch.Tensor,
    *,
    fov_deg: float | None = None,
    horizon: float = 0.5,
    camera_height: float = 1.5,
    median_depth: float | None = None,
    wall_gap: float = 0.35,
    min_region: float = 0.01,
) -> DepthResult:
    """Approximate metric depth of ``image`` ``[H, W, 3]`` (0..1) with the ground/pop-up prior."""
    img = torch.as_tensor(image).float()
    if img.ndim == 4 and img.shape[0] == 1:
        img = img[0]
    if img.ndim != 3 or img.shape[-1] < 3:
        raise InputError(f"the image must be [H, W, 3], got {list(img.shape)}")
    if not 0.05 <= horizon <= 0.95:
        raise InputError(f"horizon must be a fraction of the image height in 0.05..0.95, got {horizon}")
    if camera_height <= 0:
        raise InputError(f"camera height must be positive, got {camera_height}")
    h, w = img.shape[:2]
    k = intrinsics_for(h, w, fov_deg)
    f = float(k[1, 1])
    v_h = horizon * h
    rows = np.arange(h, dtype=np.float64) + 0.5
    # the base layout: a ground plane up to where a background wall stands, the wall above; the
    # wall's foot is the strongest horizontal edge between the horizon and ``wall_gap`` below it
    v_wall = _wall_foot(img, v_h, wall_gap) if wall_gap > 0 else v_h + 1.0
    nearest = camera_height * f / (h - v_h)
    wall = camera_height * f / max(v_wall - v_h, 1.0)
    far = wall
    ground_row = np.where(rows > v_wall, camera_height * f / np.maximum(rows - v_h, 1e-3), wall)

    # regions along colour edges, at a moderate resolution
    scale = min(1.0, 256.0 / max(h, w))
    small_hw = (max(8, int(round(h * scale))), max(8, int(round(w * scale))))
    u8 = (img[..., :3].clamp(0, 1).numpy() * 255).astype(np.uint8)
    small = cv2.resize(u8, (small_hw[1], small_hw[0]), interpolation=cv2.INTER_AREA)
    labels_small, count = _regions(small)
    labels = cv2.resize(labels_small.astype(np.int32), (w, h), interpolation=cv2.INTER_NEAREST)

    depth = np.repeat(ground_row[:, None], w, axis=1)
    flat_labels = labels.ravel()
    ys = np.repeat(np.arange(h)[:, None], w, axis=1).ravel()
    area = np.bincount(flat_labels, minlength=count)
    lowest = np.full(count, -1, dtype=np.int64)
    np.maximum.at(lowest, flat_labels, ys)
    highest = np.full(count, h, dtype=np.int64)
    np.minimum.at(highest, flat_labels, ys)
    for region in range(1, count):
        bottom, top = lowest[region], highest[region]
        # large regions that stand on the ground in front of the wall pop up to their contact depth;
        # small texture fragments, the floor itself and the wall keep the layout
        if area[region] < min_region * h * w or bottom <= v_wall or bottom >= h - 1 or top <= 0:
            continue
        depth[labels == region] = min(ground_row[bottom], wall)
    depth = np.clip(depth, nearest, far)
    grey = cv2.cvtColor(u8, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    radius = max(2, int(round(0.01 * max(h, w))))
    inv = guided_filter(grey, (1.0 / depth).astype(np.float32), radius, 1e-3)
    depth = 1.0 / np.clip(inv, 1.0 / far, 1.0 / nearest)
    if median_depth is not None:
        if median_depth <= 0:
            raise InputError(f"median depth must be positive, got {median_depth}")
        depth = depth * (median_depth / float(np.median(depth)))
    return DepthResult(
        torch.from_numpy(depth.astype(np.float32)), k, torch.ones(h, w, dtype=torch.bool), "prior", metric=False,
        metadata={"approximation": "ground plane + pop-up layering prior", "horizon": horizon,
                  "camera_height": camera_height},
    )
