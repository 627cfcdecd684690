"""ComfyUI core's MoGe geometry (``MOGE_GEOMETRY``: image, points / depth, normalized intrinsics,
mask) as our depth type."""

from __future__ import annotations

import torch

from ..camera.intrinsics import intrinsics_from_normalized
from ..depth.result import DepthResult, intrinsics_for
from ..errors import InputError


def depth_from_moge(geometry: dict, index: int = 0, fov_deg: float | None = None) -> DepthResult:
    if not isinstance(geometry, dict) or ("depth" not in geometry and "points" not in geometry):
        raise InputError("expected MoGe geometry (a dict with 'depth' or 'points'), e.g. from MoGe Inference")
    if "depth" in geometry and geometry["depth"] is not None:
        depth = torch.as_tensor(geometry["depth"])[index].float()
    else:
        depth = torch.as_tensor(geometry["points"])[index, ..., 2].float()
    h, w = depth.shape
    if geometry.get("intrinsics") is not None:
        k = intrinsics_from_normalized(torch.as_tensor(geometry["intrinsics"])[index], h, w)
    else:  # panoramas / no intrinsics: a field of view
        k = intrinsics_for(h, w, fov_deg)
    valid = torch.as_tensor(geometry["mask"])[index].bool() if geometry.get("mask") is not None else torch.ones(h, w, dtype=torch.bool)
    return DepthResult(depth, k, valid & torch.isfinite(depth) & (depth > 0), "moge", True, {"source": "MoGe"})
