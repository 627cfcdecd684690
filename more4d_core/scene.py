"""The 4D scene type: dense 3D point trajectories of every frame-0 pixel over time.

A :class:`Scene4D` is what the trajectory generator produces, what the renderer and exporters
consume and what travels between ComfyUI nodes. It lives on the CPU and validates itself on
construction, so a node receiving one can trust its shapes.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import torch

from .camera.intrinsics import scale_intrinsics, validate_intrinsics
from .errors import InputError
from .geometry.projection import backproject_depth

SCENE_VERSION = 1
STORAGE_KINDS = ("float32", "float16")


def _as_cpu_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(value)
    return value.detach().to("cpu")


def _colors_to_uint8(colors: torch.Tensor, n: int, grid_hw: tuple[int, int]) -> torch.Tensor:
    c = _as_cpu_tensor(colors)
    if c.ndim == 3 and tuple(c.shape[:2]) == tuple(grid_hw):
        c = c.reshape(-1, c.shape[-1])
    if c.ndim != 2 or c.shape[1] not in (3, 4) or c.shape[0] != n:
        raise InputError(
            f"colours must have shape [N, 3] with N = {n} points (or [H, W, 3] for the {grid_hw[0]}x{grid_hw[1]} "
            f"grid), got {list(c.shape)}"
        )
    c = c[:, :3]
    if c.dtype == torch.uint8:
        return c.contiguous()
    if not c.is_floating_point():
        raise InputError(f"colours must be uint8 (0..255) or float (0..1), got {c.dtype}")
    if not torch.isfinite(c).all():
        raise InputError("colours contain NaN or infinite values")
    if c.numel() and (c.min() < -1e-3 or c.max() > 1.0 + 1e-3):
        raise InputError(
            f"float colours must lie in [0, 1] (got {c.min().item():.3g}..{c.max().item():.3g}); "
            "divide 0..255 values by 255 or pass uint8"
        )
    return (c.clamp(0, 1) * 255.0).round().to(torch.uint8).contiguous()


def _check_grid(grid_hw) -> tuple[int, int]:
    try:
        h, w = (int(grid_hw[0]), int(grid_hw[1]))
    except (TypeError, ValueError, IndexError):
        raise InputError(f"grid size must be (height, width), got {grid_hw!r}") from None
    if h < 1 or w < 1 or (h, w) != tuple(grid_hw):
        raise InputError(f"grid size must be two positive integers (height, width), got {grid_hw!r}")
    return h, w


def _check_points(pts: torch.Tensor, h: int, w: int, what: str) -> None:
    n = h * w
    if pts.ndim != 3 or pts.shape[1] != n or pts.shape[2] != 3:
        raise InputError(
            f"{what} must have shape [T, N, 3] with N = {h}*{w} = {n} (or [T, H, W, 3]), got {list(pts.shape)}"
        )
    if pts.shape[0] < 1:
        raise InputError(f"{what}: a scene needs at least one frame")
    if not pts.is_floating_point():
        raise InputError(f"{what} must be floating point, got {pts.dtype}")
    finite = torch.isfinite(pts).all(dim=-1)
    if not bool(finite.all()):
        raise InputError(
            f"{what} contain {int((~finite).sum())} non-finite positions (NaN or inf). Clean the depth map "
            "before back-projection (fill or drop invalid pixels)."
        )


class Scene4D:
    """Dense 3D trajectories of the points of a frame-0 pixel grid.

    Attributes (all on the CPU):
        points: ``[T, N, 3]`` float32 positions, ``N = height * width`` in row-major pixel order,
            in the input camera's OpenCV frame (x right, y down, z forward); metres when the depth
            was metric. Read-only view of the storage (see ``storage``).
        colors: ``[N, 3]`` uint8 colour of each point (from the input image).
        visibility: ``[T, N]`` bool, True where the point is visible (not occluded / off-screen)
            in the input camera at frame t; all True when unknown. Rendering ignores it unless asked.
        grid_hw: ``(height, width)`` of the point grid.
        intrinsics: ``[3, 3]`` float64 pixel intrinsics of the input camera for the grid size.
        fps: frames per second of the motion.
        metadata: JSON-serializable dict (prompt, seed, model, depth backend, units, ...).
        storage: ``"float32"`` keeps points as given; ``"float16"`` keeps frame 0 in float32 and
            the displacements from it in float16 (half the memory, sub-millimetre error for
            metre-scale motion, frame 0 exact).
    """

    version = SCENE_VERSION

    def __init__(
        self,
        points: torch.Tensor,
        colors: torch.Tensor,
        *,
        grid_hw: tuple[int, int],
        intrinsics: torch.Tensor,
        fps: float = 8.0,
        visibility: torch.Tensor | None = None,
        metadata: dict[str, Any] | None = None,
        storage: str = "float32",
    ):
        if storage not in STORAGE_KINDS:
            raise InputError(f"storage must be one of {STORAGE_KINDS}, got {storage!r}")
        h, w = _check_grid(grid_hw)
        pts = _as_cpu_tensor(points)
        if pts.ndim == 4 and tuple(pts.shape[1:3]) == (h, w):
            pts = pts.reshape(pts.shape[0], h * w, pts.shape[-1])
        if pts.ndim == 2 and tuple(pts.shape) == (h * w, 3):
            pts = pts.unsqueeze(0)
        _check_points(pts, h, w, "points")
        pts = pts.float()
        if storage == "float32":
            stored = pts.contiguous()
            origin = stored[0]
        else:
            origin = pts[0].contiguous()
            stored = (pts - pts[:1]).to(torch.float16).contiguous()
            if not torch.isfinite(stored).all():
                raise InputError("motion too large for float16 storage; use storage='float32'")
        self._init(origin, stored, storage, colors, (h, w), intrinsics, fps, visibility, metadata)

    @classmethod
    def from_offsets(
        cls,
        points0: torch.Tensor,
        offsets: torch.Tensor,
        colors: torch.Tensor,
        *,
        grid_hw: tuple[int, int],
        intrinsics: torch.Tensor,
        fps: float = 8.0,
        visibility: torch.Tensor | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Scene4D:
        """A float16-storage scene from its raw storage: frame-0 points ``[N, 3]`` (float32) and
        float16 displacements ``[T, N, 3]`` (bit-exact; used by the scene-file loader)."""
        h, w = _check_grid(grid_hw)
        p0 = _as_cpu_tensor(points0)
        off = _as_cpu_tensor(offsets)
        _check_points(p0.unsqueeze(0), h, w, "frame-0 points")
        _check_points(off, h, w, "offsets")
        if p0.dtype != torch.float32 or off.dtype != torch.float16:
            raise InputError(f"raw scene storage must be float32 points0 and float16 offsets, got {p0.dtype}, {off.dtype}")
        scene = cls.__new__(cls)
        scene._init(p0.contiguous(), off.contiguous(), "float16", colors, (h, w), intrinsics, fps, visibility, metadata)
        return scene

    def _init(self, origin, stored, storage, colors, grid_hw, intrinsics, fps, visibility, metadata) -> None:
        h, w = grid_hw
        n, frames = h * w, int(stored.shape[0])
        fps = float(fps)
        if not (math.isfinite(fps) and fps > 0):
            raise InputError(f"fps must be a positive number, got {fps}")
        k = validate_intrinsics(intrinsics, "scene intrinsics")
        if k.ndim != 2:
            raise InputError("scene intrinsics must be a single [3, 3] matrix")
        if visibility is None:
            vis = torch.ones(frames, n, dtype=torch.bool)
        else:
            vis = _as_cpu_tensor(visibility)
            if vis.ndim == 3 and tuple(vis.shape[1:]) == (h, w):
                vis = vis.reshape(vis.shape[0], n)
            if tuple(vis.shape) != (frames, n):
                raise InputError(f"visibility must have shape [T, N] = [{frames}, {n}], got {list(vis.shape)}")
            vis = vis if vis.dtype == torch.bool else vis > 0.5
        meta = dict(metadata or {})
        try:
            json.dumps(meta)
        except (TypeError, ValueError) as exc:
            raise InputError(f"scene metadata must be JSON-serializable: {exc}") from None
        self._origin = origin
        self._stored = stored
        self.storage = storage
        self.colors = _colors_to_uint8(colors, n, (h, w))
        self.visibility = vis.contiguous()
        self.grid_hw = (h, w)
        self.intrinsics = k.clone()
        self.fps = fps
        self.metadata = meta

    # -- construction helpers -------------------------------------------------------------
    @classmethod
    def from_depth(
        cls,
        depth: torch.Tensor,
        image: torch.Tensor,
        intrinsics: torch.Tensor,
        *,
        num_frames: int = 1,
        fps: float = 8.0,
        metadata: dict[str, Any] | None = None,
    ) -> Scene4D:
        """A static scene (every frame = the back-projected depth map) coloured by ``image``.

        ``image`` is ``[H, W, 3]`` float 0..1 or uint8 at the depth map's size.
        """
        depth = _as_cpu_tensor(depth)
        if depth.ndim != 2:
            raise InputError(f"depth must be [H, W], got {list(depth.shape)}")
        p0 = backproject_depth(depth, intrinsics).float()
        if num_frames < 1:
            raise InputError(f"num_frames must be >= 1, got {num_frames}")
        pts = p0.unsqueeze(0).expand(int(num_frames), -1, -1)
        return cls(pts, image, grid_hw=tuple(depth.shape), intrinsics=intrinsics, fps=fps, metadata=metadata)

    def with_points(self, points: torch.Tensor, **changes: Any) -> Scene4D:
        """A new scene sharing colours/camera/metadata with different trajectories (``changes``
        may override any constructor argument)."""
        kwargs = dict(
            colors=self.colors,
            grid_hw=self.grid_hw,
            intrinsics=self.intrinsics,
            fps=self.fps,
            visibility=self.visibility if points.shape[0] == self.num_frames else None,
            metadata=self.metadata,
            storage=self.storage,
        )
        kwargs.update(changes)
        return Scene4D(points, **kwargs)

    def to_storage(self, storage: str) -> Scene4D:
        """The same scene with another storage kind (``"float32"`` or ``"float16"``)."""
        if storage == self.storage:
            return self
        return self.with_points(self.points, storage=storage, visibility=self.visibility)

    # -- accessors ------------------------------------------------------------------------
    @property
    def points(self) -> torch.Tensor:
        if self.storage == "float32":
            return self._stored
        return self._origin.unsqueeze(0) + self._stored.float()

    def raw_offsets(self) -> torch.Tensor:
        """The float16 displacement storage ``[T, N, 3]`` (float16 storage only; for file writers)."""
        if self.storage != "float16":
            raise InputError("raw_offsets() exists only for float16 storage")
        return self._stored

    @property
    def points0(self) -> torch.Tensor:
        """Frame-0 points ``[N, 3]`` float32 (exact in every storage kind)."""
        return self._origin

    def frame(self, t: int) -> torch.Tensor:
        """Points ``[N, 3]`` of frame ``t`` (float32)."""
        if not -self.num_frames <= t < self.num_frames:
            raise InputError(f"frame {t} out of range for a scene of {self.num_frames} frames")
        if self.storage == "float32":
            return self._stored[t]
        return self._origin + self._stored[t].float()

    @property
    def num_frames(self) -> int:
        return int(self._stored.shape[0])

    @property
    def num_points(self) -> int:
        return int(self._origin.shape[0])

    @property
    def height(self) -> int:
        return self.grid_hw[0]

    @property
    def width(self) -> int:
        return self.grid_hw[1]

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

    def points_grid(self) -> torch.Tensor:
        """Trajectories as ``[T, H, W, 3]``."""
        return self.points.reshape(self.num_frames, self.height, self.width, 3)

    def colors_float(self) -> torch.Tensor:
        """Colours ``[N, 3]`` float32 in 0..1."""
        return self.colors.float() / 255.0

    def median_depth(self) -> float:
        """Median frame-0 z-depth of points in front of the camera (the scale of camera presets)."""
        z = self._origin[:, 2]
        z = z[z > 0]
        if z.numel() == 0:
            raise InputError("the scene has no point in front of the input camera (all frame-0 depths <= 0)")
        return float(z.median())

    def intrinsics_for(self, out_hw: tuple[int, int]) -> torch.Tensor:
        """Scene intrinsics rescaled to an output image size."""
        return scale_intrinsics(self.intrinsics, self.grid_hw, out_hw)

    @property
    def nbytes(self) -> int:
        """Bytes held by the scene's tensors."""
        tensors = [self._stored, self.colors, self.visibility]
        if self.storage != "float32":  # in float32 storage the origin is a view of frame 0
            tensors.append(self._origin)
        return sum(t.numel() * t.element_size() for t in tensors)

    def __repr__(self) -> str:
        h, w = self.grid_hw
        return (
            f"Scene4D(frames={self.num_frames}, grid={h}x{w}, points={self.num_points}, fps={self.fps:g}, "
            f"storage={self.storage}, {self.nbytes / 2**20:.1f} MiB)"
        )
