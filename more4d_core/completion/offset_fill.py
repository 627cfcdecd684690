"""Textured hole filling by copying the background from a shifted place of the same frame.

A dis-occlusion shows the surface behind the occluder, whose texture usually goes on beside the
hole: a wall's pattern, a floor's tiles, foliage. For each connected hole, the pixels of the
background around it (a ring on the background side; foreground pixels that border the hole are left
out) are compared with the same ring moved by every candidate offset; the offset whose ring matches
best (mean squared colour difference) is the one the surface repeats itself at, and the hole is
copied from there, its structure and texture included (the idea of Criminisi et al. 2004 and of He &
Sun's "statistics of patch offsets", 2012, reduced to one offset per hole with two fall-backs).
A hole is copied only when the background does repeat: the best match must leave at most half the
squared difference two unrelated patches of the ring would show (twice the ring's colour variance);
otherwise a copied texture would be as far from the truth as any other and the hole keeps the smooth
fill. A pixel is copied only from a covered background pixel at about its own surface depth; pixels with
no such source keep the smooth fill they are given.
"""

from __future__ import annotations

import cv2
import numpy as np

REPEATS = 0.5  # copy only where the best match leaves at most this share of two unrelated patches' difference
MIN_AREA = 12  # smaller holes: the smooth fill is as good and the ring too small to match
RING = 6  # width (pixels) of the background ring matched around a hole
SAME_SURFACE = (0.8, 1.25)  # a source pixel's depth over the hole pixel's background depth


def _correlate(search: np.ndarray, template: np.ndarray) -> np.ndarray:
    """``out[u, v] = sum_ij template[i, j] * search[u + i, v + j]`` over every placement inside ``search``."""
    return cv2.matchTemplate(search.astype(np.float32), template.astype(np.float32), cv2.TM_CCORR)


def _ring_costs(image: np.ndarray, usable: np.ndarray, ring: np.ndarray, box: tuple[int, int, int, int],
                reach: int, min_valid: float = 0.8) -> np.ndarray:
    """``[2 reach + 1, 2 reach + 1]`` mean squared colour difference between the ``ring`` (a mask over
    ``box`` = y0, y1, x0, x1 of the frame) and the same ring moved by every offset ``(dy, dx)`` up to
    ``reach``, over the moved ring's pixels that are ``usable`` (inf where fewer than ``min_valid`` are).
    Computed for all offsets at once as correlations (the squared difference expanded into three sums)."""
    y0, y1, x0, x1 = box
    pad = ((reach, reach), (reach, reach))
    use = np.pad(usable, pad).astype(np.float32)[y0 : y1 + 2 * reach, x0 : x1 + 2 * reach]
    img = np.pad(image, pad + ((0, 0),))[y0 : y1 + 2 * reach, x0 : x1 + 2 * reach]
    mask = ring.astype(np.float32)
    patch = image[y0:y1, x0:x1]
    energy, patch_energy = (img**2).sum(-1), (patch**2).sum(-1)
    count = _correlate(use, mask)
    total = _correlate(use * energy, mask) + _correlate(use, mask * patch_energy)
    for c in range(image.shape[-1]):
        total -= 2.0 * _correlate(use * img[..., c], mask * patch[..., c])
    cost = np.maximum(total, 0.0) / np.maximum(count, 1e-6)
    cost[count < min_valid * mask.sum() - 1e-3] = np.inf
    cost[reach, reach] = np.inf  # the ring itself
    return cost


def _best_offsets(costs: np.ndarray, reach: int, keep: int, apart: int = 2) -> list[np.ndarray]:
    """The ``keep`` lowest-cost offsets ``(dy, dx)``, each more than ``apart`` pixels from the ones before."""
    found: list[np.ndarray] = []
    for flat in np.argsort(costs, axis=None)[: 64 * keep]:
        if len(found) == keep or not np.isfinite(costs.flat[flat]):
            break
        offset = np.array(np.unravel_index(flat, costs.shape)) - reach
        if all(np.abs(offset - f).max() > apart for f in found):
            found.append(offset)
    return found


def offset_fill(image: np.ndarray, hole: np.ndarray, background: np.ndarray, depth: np.ndarray,
                hole_depth: np.ndarray, smooth: np.ndarray, *, keep: int = 3) -> np.ndarray:
    """Fill ``hole`` of a float ``[H, W, 3]`` ``image`` by copying from offsets where the background
    repeats (see the module doc). ``background``: covered pixels that may be matched and copied
    (the foreground bordering holes left out); ``depth``: the frame's depth; ``hole_depth``: each hole
    pixel's background depth; ``smooth``: the fill used where no source is found. Only the hole
    pixels of the result differ from ``image``."""
    out = image.copy()
    out[hole] = smooth[hole]
    if not hole.any():
        return out
    h, w = hole.shape
    count, labels, stats, _ = cv2.connectedComponentsWithStats(hole.astype(np.uint8), connectivity=8)
    kernel = np.ones((2 * RING + 1, 2 * RING + 1), np.uint8)
    lo, hi = SAME_SURFACE
    for label in range(1, count):
        x, y, bw, bh, area = stats[label]
        if area < MIN_AREA:
            continue
        y0, y1, x0, x1 = max(y - RING, 0), min(y + bh + RING, h), max(x - RING, 0), min(x + bw + RING, w)
        component = labels[y0:y1, x0:x1] == label
        ring = cv2.dilate(component.astype(np.uint8), kernel).astype(bool) & background[y0:y1, x0:x1]
        if ring.sum() < 2 * RING:
            continue
        reach = int(min(max(3 * max(bw, bh), 24), max(h, w) // 2))
        costs = _ring_costs(image, background, ring, (y0, y1, x0, x1), reach)
        ring_colours = image[y0:y1, x0:x1][ring]
        unrelated = 2.0 * float(((ring_colours - ring_colours.mean(0)) ** 2).sum(-1).mean())
        if not np.min(costs) <= REPEATS * unrelated + 1e-6:
            continue  # the background does not repeat around this hole: an invented texture would only add error
        pixels = np.argwhere(component) + (y0, x0)
        todo = np.ones(len(pixels), bool)
        for offset in _best_offsets(costs, reach, keep):
            sy, sx = pixels[:, 0] + offset[0], pixels[:, 1] + offset[1]
            inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
            sy, sx = np.clip(sy, 0, h - 1), np.clip(sx, 0, w - 1)
            ratio = depth[sy, sx] / np.maximum(hole_depth[pixels[:, 0], pixels[:, 1]], 1e-6)
            ok = todo & inside & background[sy, sx] & (ratio >= lo) & (ratio <= hi)
            out[pixels[ok, 0], pixels[ok, 1]] = image[sy[ok], sx[ok]]
            todo &= ~ok
            if not todo.any():
                break
    return out
