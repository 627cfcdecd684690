"""Classical completion of rendered frames: no weights, temporally stable, never touches known pixels.

Frame 0 is inpainted spatially (OpenCV Telea). Every later frame fills its holes from the
*completed previous frame*, warped by the scene's own motion: for each covered pixel the 4D scene
says which point landed there and where that point was one frame earlier, which gives a backward
flow; hole pixels take the flow of the nearest covered pixel on the far side (dis-occluded regions
belong to the background, which moves like the farther neighbour). What is left (sources outside
the previous frame) is inpainted spatially, and a thin feathered band blends the warped content
into the spatial fill at hole borders so seams do not crawl. Pixels that were rendered are never
changed.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..camera.path import CameraPath, rigid_inverse
from ..errors import InputError
from ..render.renderer import RenderResult
from ..scene import Scene4D


def _to_u8(frame: np.ndarray) -> np.ndarray:
    return (np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8)


def inpaint_spatial(frame: np.ndarray, holes: np.ndarray, radius: int = 3) -> np.ndarray:
    """OpenCV Telea inpainting of ``holes`` in a float ``[H, W, 3]`` frame (0..1); known pixels kept."""
    if not holes.any():
        return frame.copy()
    filled = cv2.inpaint(_to_u8(frame), holes.astype(np.uint8), radius, cv2.INPAINT_TELEA).astype(np.float32) / 255.0
    out = frame.copy()
    out[holes] = filled[holes]
    return out


def _far_side(covered: np.ndarray, depth: np.ndarray, reach: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel, the coordinates of its nearest *background* covered pixel (covered pixels
    that are among the farthest in their neighbourhood) and that pixel's depth."""
    far = np.where(covered, depth, 0).astype(np.float32)
    grown = cv2.dilate(far, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
    seeds = covered & (depth >= 0.9 * grown)
    if not seeds.any():
        seeds = covered
    _, labels = cv2.distanceTransformWithLabels((~seeds).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    sy, sx = np.nonzero(seeds)
    seed_of_label = np.zeros((labels.max() + 1, 2), np.int64)
    seed_of_label[labels[sy, sx]] = np.stack([sy, sx], 1)
    src = seed_of_label[labels]
    return src, depth[src[..., 0], src[..., 1]]


def _project_frame(scene: Scene4D, path: CameraPath, intrinsics: torch.Tensor, t: int) -> np.ndarray:
    """Array coordinates ``[N, 2]`` (x, y) of every scene point of frame ``t`` in camera ``t``."""
    pts = scene.frame(t).numpy()
    w2c = rigid_inverse(path.poses[t]).numpy().astype(np.float32)
    k = intrinsics[t].numpy()
    cam = pts @ w2c[:3, :3].T + w2c[:3, 3]
    z = np.maximum(cam[:, 2], 1e-6)
    return np.stack([cam[:, 0] / z * k[0, 0] + k[0, 2] - 0.5, cam[:, 1] / z * k[1, 1] + k[1, 2] - 0.5], 1)


def backward_maps(point_index: np.ndarray, previous_xy: np.ndarray, src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinates in the previous frame (``map_x, map_y``) of every pixel: covered pixels
    follow their point (``previous_xy`` = all points projected in the previous frame), holes move
    like their background seed ``src``."""
    h, w = point_index.shape
    grid_y, grid_x = np.mgrid[0:h, 0:w].astype(np.float32)
    covered = point_index >= 0
    maps = np.stack([grid_x, grid_y], -1)
    maps[covered] = previous_xy[point_index[covered]]
    flow = maps - np.stack([grid_x, grid_y], -1)
    hole = ~covered
    flow[hole] = flow[src[hole][:, 0], src[hole][:, 1]]
    return grid_x + flow[..., 0], grid_y + flow[..., 1]


def _inpaint_from_background(frame: np.ndarray, hole: np.ndarray, covered: np.ndarray, depth: np.ndarray,
                             hole_depth: np.ndarray, radius: int, reach: int = 4) -> np.ndarray:
    """Spatial fill of ``hole`` that ignores foreground pixels bordering it (dis-occlusions show
    background); only the hole pixels of the result are meant to be used."""
    kernel = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
    near = cv2.dilate(hole.astype(np.uint8), kernel).astype(bool)
    local_far = cv2.dilate(np.where(hole, hole_depth, 0).astype(np.float32), kernel)
    foreground = covered & near & (depth < 0.9 * local_far)
    return inpaint_spatial(frame, hole | foreground, radius)


def complete_classical(
    result: RenderResult,
    scene: Scene4D,
    path: CameraPath,
    *,
    inpaint_radius: int = 3,
    feather: int = 1,
    progress=None,
) -> torch.Tensor:
    """Completed frames ``[T, H, W, 3]`` (float 0..1) of a render made with
    ``return_point_index=True`` of ``scene`` through ``path``. No hole is left and no rendered
    pixel changes."""
    if result.point_index is None:
        raise InputError("classical completion needs the render's point index: render with return_point_index=True")
    t_count, h, w = result.holes.shape
    if path.num_frames != t_count:
        path = path.resampled(t_count) if path.num_frames > 1 else CameraPath(
            path.poses.expand(t_count, 4, 4).clone(), name=path.name)
    intrinsics = path.intrinsics_for(scene.intrinsics, scene.grid_hw, (h, w))
    frames = result.frames.numpy()
    holes = result.holes.numpy()
    index = result.point_index.numpy()
    depth = result.depth.numpy()
    out = np.empty_like(frames)
    out_depth = np.empty_like(depth)
    previous_xy = None
    for t in range(t_count):
        current_xy = _project_frame(scene, path, intrinsics, t) if t + 1 < t_count else None
        hole = holes[t]
        covered = ~hole
        current = frames[t].copy()
        current_depth = depth[t].copy()
        if hole.any() and covered.any():
            src, hole_depth = _far_side(covered, depth[t])
            current_depth[hole] = hole_depth[hole]
            fill_from_prev = np.zeros_like(hole)
            if t > 0:
                map_x, map_y = backward_maps(index[t], previous_xy, src)
                warped = cv2.remap(out[t - 1], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                   borderValue=(-1, -1, -1))
                warped_depth = cv2.remap(out_depth[t - 1], map_x, map_y, cv2.INTER_NEAREST,
                                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
                # carry the previous frame's content over only where it shows the same (background) surface
                fill_from_prev = hole & (warped >= 0).all(-1) & (warped_depth >= 0.9 * hole_depth)
                current[fill_from_prev] = warped[fill_from_prev]
            band = np.zeros_like(hole)
            if feather > 0 and fill_from_prev.any():
                dist = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3)
                band = fill_from_prev & (dist < feather)
            need = (hole & ~fill_from_prev) | band
            if need.any():
                # spatial fill only where needed, with the carried-over pixels as context
                spatial = _inpaint_from_background(current, need, ~need, current_depth, hole_depth, inpaint_radius)
                rest = hole & ~fill_from_prev
                current[rest] = spatial[rest]
                if band.any():
                    # next to rendered pixels, blend the carried-over content into the spatial fill
                    weight = np.clip(dist / feather, 0.0, 1.0)[..., None]
                    current[band] = (weight * current + (1 - weight) * spatial)[band]
        elif hole.any():
            current[:] = 0.5  # nothing was rendered at all: neutral grey
        out[t] = current
        out_depth[t] = current_depth
        previous_xy = current_xy
        if progress is not None:
            progress(t + 1, t_count)
    return torch.from_numpy(out)


def motion_maps(result: RenderResult, scene: Scene4D, path: CameraPath) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """Per frame, where each pixel was in the previous frame according to the scene (None for frame 0)."""
    t_count, h, w = result.holes.shape
    intrinsics = path.intrinsics_for(scene.intrinsics, scene.grid_hw, (h, w))
    maps = [None]
    for t in range(1, t_count):
        hole = result.holes[t].numpy()
        src, _ = _far_side(~hole, result.depth[t].numpy())
        previous_xy = _project_frame(scene, path, intrinsics, t - 1)
        maps.append(backward_maps(result.point_index[t].numpy(), previous_xy, src))
    return maps


def flicker(frames: torch.Tensor, holes: torch.Tensor, maps: list | None = None) -> float:
    """Temporal flicker of the filled pixels: the mean absolute change of a filled pixel from the
    previous frame, following the scene's motion when ``maps`` (from :func:`motion_maps`) are given
    (for a still background and camera that is the plain frame difference). Only pixels filled in
    both frames count."""
    f = torch.as_tensor(frames).float().numpy()
    h_np = torch.as_tensor(holes).numpy()
    total, count = 0.0, 0
    for t in range(1, f.shape[0]):
        hole = h_np[t]
        if maps is None:
            prev = f[t - 1]
            prev_hole = h_np[t - 1]
        else:
            map_x, map_y = maps[t]
            prev = cv2.remap(f[t - 1], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            prev_hole = cv2.remap(h_np[t - 1].astype(np.uint8), map_x, map_y, cv2.INTER_NEAREST,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
        both = hole & prev_hole
        if both.any():
            total += float(np.abs(f[t] - prev).mean(-1)[both].sum())
            count += int(both.sum())
    return total / count if count else 0.0
