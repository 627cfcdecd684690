"""The depth type passed between nodes: metric depth, pixel intrinsics, validity, backend name."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from ..camera.intrinsics import intrinsics_from_fov, validate_intrinsics
from ..errors import InputError

DEPTH_VERSION = 1
# The reference assumes f = image width in pixels for its 4:3-ish inputs: 2 * atan(1/2) horizontally.
DEFAULT_FOV_DEG = math.degrees(2 * math.atan(0.5))


@dataclass
class DepthResult:
    """Metric z-depth of an image and the camera it was seen with.

    depth: ``[H, W]`` float32 metres (z along the optical axis); invalid pixels hold a finite
        fill value (see ``valid``) so downstream geometry never sees NaN.
    intrinsics: ``[3, 3]`` float64 pixel intrinsics for ``H x W``.
    valid: ``[H, W]`` bool, False where the estimate is unreliable (sky, flying pixels, holes).
    backend: which estimator produced it ("prior", "transformers:<model>", "unidepth", "external").
    metric: False when the scale is a user-set guess (relative models, the prior).
    """

    depth: torch.Tensor
    intrinsics: torch.Tensor
    valid: torch.Tensor
    backend: str
    metric: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)
    version: int = DEPTH_VERSION

    def __post_init__(self):
        d = torch.as_tensor(self.depth).detach().float().cpu()
        if d.ndim == 3 and d.shape[0] == 1:
            d = d[0]
        if d.ndim != 2:
            raise InputError(f"depth must be [H, W], got {list(d.shape)}")
        valid = torch.as_tensor(self.valid).detach().bool().cpu()
        if tuple(valid.shape) != tuple(d.shape):
            raise InputError(f"validity mask {list(valid.shape)} does not match the depth {list(d.shape)}")
        bad = ~torch.isfinite(d) | (d <= 0)
        if bad.any():
            valid = valid & ~bad
            fill = d[~bad].median() if (~bad).any() else torch.tensor(1.0)
            d = torch.where(bad, fill, d)
        self.depth = d
        self.valid = valid
        self.intrinsics = validate_intrinsics(self.intrinsics, "depth intrinsics")

    @property
    def height(self) -> int:
        return int(self.depth.shape[0])

    @property
    def width(self) -> int:
        return int(self.depth.shape[1])

    def median_depth(self) -> float:
        d = self.depth[self.valid]
        return float((d if d.numel() else self.depth).median())


def intrinsics_for(height: int, width: int, fov_deg: float | None = None) -> torch.Tensor:
    """Intrinsics from a horizontal field of view (default: the reference's, f = width)."""
    return intrinsics_from_fov(height, width, DEFAULT_FOV_DEG if fov_deg is None else fov_deg)
