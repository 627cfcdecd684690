"""CPU z-buffer splatting compiled with numba: one fused pass per frame, frames in parallel.

Each frame is owned by one thread, so the depth test needs no atomics; projection, depth test,
footprint, colour lookup and hole mask are fused in one loop over the points with no temporary
arrays. Tie-breaking matches the torch kernel: at exactly equal depth the lower point index wins.
Imported lazily (numba's import and first compilation cost a few seconds; the compiled code is
cached on disk next to this file when the folder is writable).
"""

from __future__ import annotations

import math

import numba
import numpy as np

_CACHE = True


@numba.njit(parallel=True, cache=_CACHE, nogil=True, error_model="numpy")
def _render_frames(
    points,  # (F, N, 3) float32
    w2c,  # (F, 3, 4) float32 world-to-camera
    cams,  # (F, 4) float32 fx, fy, cx, cy
    colors,  # (N, 3) float32
    background,  # (3,) float32
    mask,  # (F, N) bool, or (0, 0) for none
    height,
    width,
    radius,
    near,
    out_rgb,  # (F, H*W, 3) float32
    out_depth,  # (F, H*W) float32
    out_index,  # (F, H*W) int32
):
    frames = points.shape[0]
    n = points.shape[1]
    use_mask = mask.shape[0] > 0
    shift = (radius - 1) * 0.5
    for f in numba.prange(frames):
        depth = out_depth[f]
        index = out_index[f]
        for p in range(height * width):
            depth[p] = np.inf
            index[p] = -1
        r00, r01, r02, t0 = w2c[f, 0, 0], w2c[f, 0, 1], w2c[f, 0, 2], w2c[f, 0, 3]
        r10, r11, r12, t1 = w2c[f, 1, 0], w2c[f, 1, 1], w2c[f, 1, 2], w2c[f, 1, 3]
        r20, r21, r22, t2 = w2c[f, 2, 0], w2c[f, 2, 1], w2c[f, 2, 2], w2c[f, 2, 3]
        fx, fy, cx, cy = cams[f, 0], cams[f, 1], cams[f, 2], cams[f, 3]
        for i in range(n):
            if use_mask and not mask[f, i]:
                continue
            x = points[f, i, 0]
            y = points[f, i, 1]
            z = points[f, i, 2]
            zc = r20 * x + r21 * y + r22 * z + t2
            if not (zc > near):  # also rejects NaN
                continue
            u = fx * ((r00 * x + r01 * y + r02 * z + t0) / zc) + cx
            v = fy * ((r10 * x + r11 * y + r12 * z + t1) / zc) + cy
            if not (u > -radius and u < width + radius and v > -radius and v < height + radius):
                continue
            c0 = int(math.floor(u - shift))
            r0 = int(math.floor(v - shift))
            for dy in range(radius):
                row = r0 + dy
                if row < 0 or row >= height:
                    continue
                base = row * width
                for dx in range(radius):
                    col = c0 + dx
                    if col < 0 or col >= width:
                        continue
                    pix = base + col
                    if zc < depth[pix]:
                        depth[pix] = zc
                        index[pix] = i
        rgb = out_rgb[f]
        for p in range(height * width):
            j = index[p]
            if j < 0:
                depth[p] = 0.0
                rgb[p, 0] = background[0]
                rgb[p, 1] = background[1]
                rgb[p, 2] = background[2]
            else:
                rgb[p, 0] = colors[j, 0]
                rgb[p, 1] = colors[j, 1]
                rgb[p, 2] = colors[j, 2]


def render_frames_numba(
    points: np.ndarray,
    w2c: np.ndarray,
    cams: np.ndarray,
    colors: np.ndarray,
    background: np.ndarray,
    mask: np.ndarray | None,
    height: int,
    width: int,
    radius: int,
    near: float,
    out_rgb: np.ndarray,
    out_depth: np.ndarray,
    out_index: np.ndarray,
) -> None:
    """Fill ``out_*`` (views of the caller's output buffers) for the given frames."""
    if mask is None:
        mask = np.zeros((0, 0), dtype=np.bool_)
    _render_frames(
        points, w2c, cams, colors, background, mask, int(height), int(width), int(radius), np.float32(near),
        out_rgb, out_depth, out_index,
    )
