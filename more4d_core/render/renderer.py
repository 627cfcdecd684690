"""Render 4D scenes (or raw point trajectories) through a camera path.

Output layout follows ComfyUI: frames ``[T, H, W, 3]`` float 0..1 and a hole mask ``[T, H, W]``
(True / 1.0 where no point reached the pixel; never inferred from colour). Everything returned is
on the CPU; the work runs on ``device`` (CPU or CUDA, same code).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..camera.intrinsics import validate_intrinsics
from ..camera.path import CameraPath, rigid_inverse
from ..errors import InputError, expect_type
from ..memory.budget import check_memory, render_bytes
from ..scene import Scene4D
from .zbuffer import decode_keys, splat_chunk

ProgressFn = Callable[[int, int], None]

# Points handled per batched splat call: bounds peak memory (~70 bytes per point on CPU).
DEFAULT_CHUNK_POINTS = {"cpu": 2_000_000, "cuda": 40_000_000}


@dataclass
class RenderResult:
    """Rendered frames and the buffers that describe them (all CPU tensors).

    frames: ``[T, H, W, 3]`` float32 0..1 (holes filled with the background colour).
    holes: ``[T, H, W]`` bool, True where no point landed.
    depth: ``[T, H, W]`` float32 camera z-depth of the visible point, 0 at holes.
    point_index: ``[T, H, W]`` int32 index of the visible point (-1 at holes) when requested.
    """

    frames: torch.Tensor
    holes: torch.Tensor
    depth: torch.Tensor
    point_index: torch.Tensor | None = None

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def hole_mask(self) -> torch.Tensor:
        """Holes as a ComfyUI ``MASK``: ``[T, H, W]`` float32, 1 = hole."""
        return self.holes.to(torch.float32)

    def hole_fraction(self) -> float:
        return float(self.holes.float().mean()) if self.holes.numel() else 0.0


def _resolve_device(device) -> torch.device:
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("CUDA was requested for rendering but no CUDA device is available; use device='cpu'")
    return dev


def _background(value: Sequence[float]) -> torch.Tensor:
    bg = torch.as_tensor(value, dtype=torch.float32).flatten()
    if bg.numel() == 1:
        bg = bg.expand(3)
    if bg.numel() != 3 or not torch.isfinite(bg).all() or (bg < 0).any() or (bg > 1).any():
        raise InputError(f"background must be an RGB colour with components in 0..1, got {value!r}")
    return bg.clone()


MAX_SIDE = 4096  # the Render node's widget maximum per side
MAX_PIXELS = 2**31 // 64 - 1  # the z-buffer packs depth and pixel index into one key: about 33.5 million pixels


def _check_size(height: int, width: int) -> tuple[int, int]:
    if int(height) != height or int(width) != width or height < 1 or width < 1:
        raise InputError(f"output size must be positive integers, got {height}x{width}")
    if height * width > MAX_PIXELS:
        raise InputError(f"output size {width}x{height} is too large to render: at most {MAX_PIXELS:,} pixels "
                         f"(e.g. {MAX_SIDE}x{MAX_SIDE}); choose a smaller width or height")
    return int(height), int(width)


def render_points(
    points: torch.Tensor,
    colors: torch.Tensor,
    cam_to_world: torch.Tensor,
    intrinsics: torch.Tensor,
    height: int,
    width: int,
    *,
    splat_radius: int = 1,
    background: Sequence[float] = (0.0, 0.0, 0.0),
    device=None,
    near: float = 1e-4,
    point_mask: torch.Tensor | None = None,
    return_point_index: bool = False,
    chunk_points: int | None = None,
    progress: ProgressFn | None = None,
    backend: str = "auto",
) -> RenderResult:
    """Z-buffer splat ``points [T, N, 3]`` through cameras ``cam_to_world [T, 4, 4]``.

    ``colors`` is ``[N, 3]`` uint8 or float 0..1; ``intrinsics`` ``[3, 3]`` or ``[T, 3, 3]`` pixel
    intrinsics for ``height x width``. Points that are NaN, behind the camera (z <= ``near``) or
    outside the image are skipped. ``point_mask [T, N]`` (bool) drops points per frame.

    ``backend``: ``"numba"`` (fused CPU kernel), ``"torch"`` (batched scatter, CPU or CUDA) or
    ``"auto"`` (numba on CPU when installed, torch otherwise).
    """
    height, width = _check_size(height, width)
    if int(splat_radius) != splat_radius or not 1 <= splat_radius <= 5:
        raise InputError(f"splat radius must be an integer footprint of 1..5 pixels, got {splat_radius}")
    if not (math.isfinite(near) and near > 0):
        raise InputError(f"near plane must be a small positive distance, got {near}")
    points = torch.as_tensor(points)
    if points.ndim != 3 or points.shape[-1] != 3 or not points.is_floating_point():
        raise InputError(f"points must be a float tensor of shape [T, N, 3], got {list(points.shape)}")
    t_count, n = int(points.shape[0]), int(points.shape[1])
    if t_count == 0:
        raise InputError("nothing to render: the point trajectories have zero frames")
    check_memory(f"rendering {t_count} frames of {width}x{height}", render_bytes(t_count, (height, width)),
                 "lower the output width/height or the number of frames")
    poses = torch.as_tensor(cam_to_world, dtype=torch.float64)
    if poses.ndim != 3 or tuple(poses.shape[1:]) != (4, 4) or poses.shape[0] != t_count:
        raise InputError(f"cam_to_world must be [T, 4, 4] with T = {t_count}, got {list(poses.shape)}")
    k = validate_intrinsics(intrinsics)
    if k.ndim == 2:
        k = k.unsqueeze(0).expand(t_count, 3, 3)
    if k.shape[0] != t_count:
        raise InputError(f"need one intrinsics matrix or {t_count}, got {k.shape[0]}")
    cols = torch.as_tensor(colors)
    if cols.ndim != 2 or cols.shape != (n, 3):
        raise InputError(f"colours must be [N, 3] with N = {n}, got {list(cols.shape)}")
    if point_mask is not None:
        point_mask = torch.as_tensor(point_mask, dtype=torch.bool)
        if tuple(point_mask.shape) != (t_count, n):
            raise InputError(f"point mask must be [T, N] = [{t_count}, {n}], got {list(point_mask.shape)}")
    bg = _background(background)
    dev = _resolve_device(device)
    use_numba = _choose_backend(backend, dev)
    w2c = rigid_inverse(poses)
    colors_f = cols.float() / 255.0 if cols.dtype == torch.uint8 else cols.float()

    shape = (t_count, height, width)
    frames = _host_buffer((t_count, height * width, 3), np.float32)
    depth = _host_buffer((t_count, height * width), np.float32)
    index = _host_buffer((t_count, height * width), np.int32)
    args = (points, colors_f, w2c, k, bg, point_mask, height, width, int(splat_radius), float(near))
    outs = (frames, depth, index)
    if use_numba:
        _render_numba(*args, outs, progress)
    else:
        _render_torch(*args, outs, dev, chunk_points, progress)
    holes = index < 0
    return RenderResult(
        frames=frames.view(*shape, 3),
        holes=holes.view(shape),
        depth=depth.view(shape),
        point_index=index.view(shape) if return_point_index else None,
    )


def _host_buffer(shape: tuple[int, ...], dtype) -> torch.Tensor:
    """An uninitialized CPU tensor allocated by numpy.

    numpy asks Linux for transparent huge pages on large blocks (torch only does when the
    THP_MEM_ALLOC_ENABLE variable is set before start-up), which cuts the page-fault cost of
    first touching the ~200 MB of output of a 49-frame render by about a third of the render time.
    """
    return torch.from_numpy(np.empty(shape, dtype=dtype))


def _choose_backend(backend: str, dev: torch.device) -> bool:
    """True for the numba kernel, False for the torch kernel."""
    if backend not in ("auto", "numba", "torch"):
        raise InputError(f"render backend must be 'auto', 'numba' or 'torch', got {backend!r}")
    if backend == "torch" or dev.type != "cpu":
        if backend == "numba":
            raise InputError("the numba renderer runs on the CPU only; use backend='torch' for CUDA")
        return False
    try:
        from . import zbuffer_numba  # noqa: F401
    except ImportError:
        if backend == "numba":
            raise InputError("the numba renderer needs the 'numba' package: pip install numba") from None
        return False
    return True


def _render_numba(points, colors_f, w2c, k, bg, point_mask, height, width, radius, near, outs, progress):
    from .zbuffer_numba import render_frames_numba

    frames, depth, index = outs
    t_count = points.shape[0]
    w2c_np = w2c[:, :3, :].to(torch.float32).contiguous().numpy()
    cams = torch.stack([k[:, 0, 0], k[:, 1, 1], k[:, 0, 2], k[:, 1, 2]], dim=1).to(torch.float32).numpy()
    colors_np = colors_f.contiguous().numpy()
    bg_np = bg.numpy()
    # frames per call: enough to keep every thread busy, small enough for steady progress
    step = max(1, 2 * torch.get_num_threads()) if progress is not None else t_count
    for start in range(0, t_count, step):
        stop = min(t_count, start + step)
        pts = points[start:stop].detach().to("cpu", torch.float32).contiguous().numpy()
        mask = point_mask[start:stop].contiguous().numpy() if point_mask is not None else None
        render_frames_numba(
            pts, w2c_np[start:stop], cams[start:stop], colors_np, bg_np, mask, height, width, radius, near,
            frames[start:stop].numpy(), depth[start:stop].numpy(), index[start:stop].numpy(),
        )
        if progress is not None:
            progress(stop, t_count)


def _render_torch(points, colors_f, w2c, k, bg, point_mask, height, width, radius, near, outs, dev, chunk_points, progress):
    frames, depth, index = outs
    t_count, n = points.shape[0], points.shape[1]
    w2c_dev = w2c.to(dev, torch.float32)
    k_dev = k.to(dev, torch.float32)
    colors_dev = colors_f.to(dev)
    bg_dev = bg.to(dev)
    budget = chunk_points or DEFAULT_CHUNK_POINTS.get(dev.type, DEFAULT_CHUNK_POINTS["cpu"])
    per_chunk = max(1, min(t_count, budget // max(n, 1)))
    with torch.inference_mode():
        for start in range(0, t_count, per_chunk):
            stop = min(t_count, start + per_chunk)
            pts = points[start:stop].to(dev, torch.float32, non_blocking=True)
            mask = point_mask[start:stop].to(dev) if point_mask is not None else None
            keys = splat_chunk(
                pts, w2c_dev[start:stop], k_dev[start:stop], height, width,
                splat_radius=radius, near=near, point_mask=mask,
            )
            del pts, mask
            hole, idx, z = decode_keys(keys)
            del keys
            rgb = torch.where(hole.unsqueeze(-1), bg_dev, colors_dev[idx])
            frames[start:stop] = rgb.cpu()
            depth[start:stop] = z.cpu()
            index[start:stop] = idx.to(torch.int32).masked_fill_(hole, -1).cpu()
            del rgb, hole, idx, z
            if progress is not None:
                progress(stop, t_count)


def _match_frames(scene: Scene4D, path: CameraPath) -> tuple[torch.Tensor, CameraPath]:
    """Broadcast a one-frame scene over a path or a one-pose path over a scene; else require equal length."""
    ts, tp = scene.num_frames, path.num_frames
    if ts == tp:
        return scene.points, path
    if ts == 1:
        return scene.points.expand(tp, -1, -1), path
    if tp == 1:
        return scene.points, CameraPath(
            path.poses.expand(ts, 4, 4).clone(),
            name=path.name,
            intrinsics=None if path.intrinsics is None else path.intrinsics.expand(ts, 3, 3).clone(),
            intrinsics_hw=path.intrinsics_hw,
            zoom=None if path.zoom is None else path.zoom.expand(ts).clone(),
            metadata=path.metadata,
        )
    raise InputError(
        f"the camera path has {tp} frames but the scene has {ts}. Set the camera path's frame count to {ts} "
        "(or resample the path) so every scene frame has a camera."
    )


def render_scene(
    scene: Scene4D,
    path: CameraPath,
    *,
    output_hw: tuple[int, int] | None = None,
    splat_radius: int = 1,
    background: Sequence[float] = (0.0, 0.0, 0.0),
    device=None,
    near: float = 1e-4,
    use_visibility: bool = False,
    return_point_index: bool = False,
    chunk_points: int | None = None,
    progress: ProgressFn | None = None,
    backend: str = "auto",
) -> RenderResult:
    """Render ``scene`` through ``path`` at ``output_hw`` (default: the scene's grid size).

    The scene camera's intrinsics are rescaled to the output size (or the path's own per-frame
    intrinsics / zoom are used). Rendering above the grid resolution leaves cracks between points;
    ``splat_radius`` 2 or 3 closes them. ``use_visibility`` skips points marked invisible.
    """
    expect_type(scene, Scene4D, "scene")
    expect_type(path, CameraPath, "camera path")
    out_hw = tuple(output_hw) if output_hw is not None else scene.grid_hw
    out_hw = _check_size(*out_hw)
    points, path = _match_frames(scene, path)
    intrinsics = path.intrinsics_for(scene.intrinsics, scene.grid_hw, out_hw)
    mask = None
    if use_visibility:
        mask = scene.visibility if scene.num_frames == path.num_frames else scene.visibility.expand(path.num_frames, -1)
    return render_points(
        points,
        scene.colors,
        path.poses,
        intrinsics,
        out_hw[0],
        out_hw[1],
        splat_radius=splat_radius,
        background=background,
        device=device,
        near=near,
        point_mask=mask,
        return_point_index=return_point_index,
        chunk_points=chunk_points,
        progress=progress,
        backend=backend,
    )
