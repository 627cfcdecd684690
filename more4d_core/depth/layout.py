"""Weight-free scene layout for the depth prior: camera pitch from converging verticals, and the
visible ground with, per image column, the row where it ends (the foot of what stands behind it).

Pitch: world-vertical edges (door frames, shelves, walls, trees) meet at the vertical vanishing
point; a camera pitched down by theta puts it ``f / tan(theta)`` below the principal point, and
the horizon ``f tan(theta)`` above it. With too few near-vertical segments the camera is taken as
level.

Ground: regions flooded from the bottom row through small steps of colour, stopped by strong
edges; the one spanning most of the bottom row (at least half of it) is the ground, and it ends
along a straight foot line, the upper envelope of its column tops (where something stands on the
ground its top is lower: the ground's end is hidden there). Other flooded regions that rise well
above that line are not ground but something in front reaching the bottom of the frame (a coat, a
helmet) and are handed to the subject extraction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Ground:
    """``foot`` ``[w]`` float rows where the visible ground ends in each column (a straight line; ``h``
    when no ground is seen), ``mask`` ``[h, w]`` the ground pixels, ``fraction`` of the image they cover."""

    foot: np.ndarray
    mask: np.ndarray
    fraction: float
    rising: np.ndarray  # regions flooded from the bottom that rise above the foot line (not ground)


def camera_pitch(grey_u8: np.ndarray, f: float, *, max_deg: float = 25.0, min_segments: int = 5,
                 min_lines: int = 3) -> tuple[float, int]:
    """(pitch in radians, positive = looking down; segments used) from near-vertical line segments
    (within 10 degrees of vertical, from at least ``min_lines`` separate lines; else level, 0)."""
    h, w = grey_u8.shape
    edges = cv2.Canny(cv2.GaussianBlur(grey_u8, (0, 0), 1.0), 40, 120)
    segs = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=max(20, h // 16), minLineLength=0.08 * h,
                           maxLineGap=max(2, h // 100))
    if segs is None:
        return 0.0, 0
    segs = segs.reshape(-1, 4).astype(np.float64)
    dx, dy = segs[:, 2] - segs[:, 0], segs[:, 3] - segs[:, 1]
    angle = np.degrees(np.arctan2(np.abs(dx), np.abs(dy)))  # 0 = vertical
    segs, length = segs[angle < 10.0], np.hypot(dx, dy)[angle < 10.0]
    if len(segs) < min_segments:
        return 0.0, len(segs)
    # the segments must come from several separate lines (both edges of one pole are one line)
    mid = (segs[:, 0] + segs[:, 2]) / 2
    if (np.diff(np.sort(mid)) > 0.03 * w).sum() + 1 < min_lines:
        return 0.0, 0
    cx, cy = w / 2.0, h / 2.0
    p1 = np.stack([(segs[:, 0] - cx) / f, (segs[:, 1] - cy) / f, np.ones(len(segs))], 1)
    p2 = np.stack([(segs[:, 2] - cx) / f, (segs[:, 3] - cy) / f, np.ones(len(segs))], 1)
    lines = np.cross(p1, p2)
    lines /= np.linalg.norm(lines[:, :2], axis=1, keepdims=True)
    weight = length / length.sum()
    keep = np.ones(len(lines), bool)
    vp = np.array([0.0, 1.0, 0.0])
    for _ in range(3):  # least squares on the normalized image plane, then drop the outliers
        _, _, vt = np.linalg.svd(lines[keep] * np.sqrt(weight[keep])[:, None])
        vp = vt[-1]
        # angle between each segment and the direction towards the vanishing point
        mid = (p1 + p2) / 2
        to_vp = vp[None, :2] - mid[:, :2] * vp[2]
        seg_dir = p2[:, :2] - p1[:, :2]
        cos = np.abs((to_vp * seg_dir).sum(1)) / (np.linalg.norm(to_vp, axis=1) * np.linalg.norm(seg_dir, axis=1) + 1e-12)
        new_keep = cos > math.cos(math.radians(1.5))
        if new_keep.sum() < min_segments or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    if keep.sum() < min_segments:
        return 0.0, int(keep.sum())
    if vp[1] < 0:
        vp = -vp
    # the vanishing point (x, y, w) on the normalized plane: y / w = 1 / tan(pitch)
    pitch = math.atan2(vp[2], vp[1])
    return float(np.clip(pitch, -math.radians(max_deg), math.radians(max_deg))), int(keep.sum())


def foot_line(top: np.ndarray, known: np.ndarray, h: int, *, tolerance: float = 0.06, above: float = 0.1,
              max_tilt: float = 0.2, slopes: int = 21) -> tuple[np.ndarray, np.ndarray]:
    """The straight line along which the ground ends, from each column's highest ground pixel
    ``top``: where something stands on the ground the column's top is lower (the ground's end is
    hidden), rarely higher, so the line is a robust upper envelope. For each slope of a grid
    (tilts up to ``max_tilt * h`` across the width) the line sits with ``above`` of the known tops
    above it; the slope whose line the most tops follow most closely (within ``tolerance * h``, each
    counted ``1 - (deviation / tolerance)^2``) wins, placed through the median of those tops.
    Returns (line rows per column, inlier columns)."""
    w = len(top)
    x = np.arange(w, dtype=np.float64)
    best, best_line, best_score = np.zeros(w, bool), np.full(w, float(h)), 0.0
    if known.sum() < 2:
        return best_line, best
    for slope in np.linspace(-max_tilt * h / w, max_tilt * h / w, slopes):
        residual = top - slope * x
        offset = float(np.quantile(residual[known], above))
        deviation = np.abs(residual - offset) / (tolerance * h)
        inliers = known & (deviation < 1)
        score = float((1 - deviation[inliers] ** 2).sum())  # inliers, the closer the more (MSAC)
        if score > best_score:
            # the line through the middle of the tops it follows, at the same slope
            best, best_score, best_line = inliers, score, slope * x + float(np.median(residual[inliers]))
    return np.clip(best_line, 0.0, float(h)), best


def flood_from_bottom(u8: np.ndarray, *, tolerance: float = 6.0) -> list[np.ndarray]:
    """Regions flooded from the bottom row through small steps of colour (mean-shift smoothed
    Lab) without crossing a strong edge, one per seed that was not already reached."""
    h, w = u8.shape[:2]
    smooth = cv2.pyrMeanShiftFiltering(np.ascontiguousarray(u8), sp=8, sr=20)
    lab = cv2.cvtColor(smooth, cv2.COLOR_RGB2Lab)
    edges = cv2.Canny(cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY), 50, 150) > 0
    barrier = np.zeros((h + 2, w + 2), np.uint8)
    barrier[1:-1, 1:-1][edges] = 1
    step = (tolerance, 0.75 * tolerance, 0.75 * tolerance)
    reached = np.zeros((h, w), bool)
    regions = []
    for x in range(0, w, max(1, w // 48)):
        if barrier[h, x + 1] or reached[h - 1, x]:
            continue
        fill = barrier.copy()
        cv2.floodFill(lab, fill, (x, h - 1), 0, step, step, flags=4 | cv2.FLOODFILL_MASK_ONLY | (255 << 8))
        region = fill[1:-1, 1:-1] == 255
        reached |= region
        regions.append(region)
    return regions


def _tops(regions: list[np.ndarray], h: int) -> np.ndarray:
    """Per column, the highest row any of ``regions`` reaches (``h`` where none does)."""
    union = np.zeros_like(regions[0])
    for r in regions:
        union |= r
    return np.where(union.any(axis=0), np.argmax(union, axis=0), h).astype(np.float64)


def find_ground(u8: np.ndarray, *, min_inliers: float = 0.1, max_rise: float = 0.2, min_base: float = 0.5) -> Ground:
    """The visible ground of the ``[h, w, 3]`` uint8 image (working resolution).

    Regions flooded from the bottom row (:func:`flood_from_bottom`) that reach it over at least
    5% of the width are ground candidates. The one that spans the most of the bottom row (at least
    ``min_base`` of it: a ground runs across the bottom of the frame) sets the
    foot line (:func:`foot_line`, followed by at least ``min_inliers`` of the columns, in the lower
    three quarters of the frame); another candidate with more than ``max_rise`` of its columns well
    above that line is not ground but something rising from the bottom of the frame in front
    (returned as ``rising``); the line is then refitted on all the ground."""
    h, w = u8.shape[:2]
    none = Ground(np.full(w, float(h)), np.zeros((h, w), bool), 0.0, np.zeros((h, w), bool))
    regions = sorted((r for r in flood_from_bottom(u8) if r[-1].mean() >= 0.05), key=lambda r: -r[-1].mean())
    if not regions or regions[0][-1].mean() < min_base:
        return none

    def line_of(rs: list[np.ndarray]) -> np.ndarray | None:
        top = _tops(rs, h)
        foot, inliers = foot_line(top, top < h, h)
        if inliers.sum() < min_inliers * w or not 0.25 * h <= float(foot.mean()) <= 0.95 * h:
            return None  # no straight ground line, or one in the top quarter: a close-up or a view from above
        return foot

    foot = line_of(regions[:1])
    if foot is None:
        return none
    rising = np.zeros((h, w), bool)
    ground_regions = [regions[0]]
    for r in regions[1:]:
        cols = r.any(axis=0)
        rises = cols & (np.argmax(r, axis=0) < foot - 0.08 * h)
        if rises.sum() > max_rise * cols.sum():
            rising |= r
        else:
            ground_regions.append(r)
    foot = line_of(ground_regions)
    if foot is None:
        return Ground(np.full(w, float(h)), np.zeros((h, w), bool), 0.0, rising)
    below = np.arange(h)[:, None] >= foot[None, :] - 0.02 * h
    ground = np.zeros((h, w), bool)
    for r in ground_regions:
        ground |= r & below
    if ground.mean() < 0.03:
        return Ground(np.full(w, float(h)), np.zeros((h, w), bool), 0.0, rising)
    return Ground(foot, ground, float(ground.mean()), rising)
