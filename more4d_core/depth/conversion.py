"""Turning relative depth or disparity (models without a metric scale, depth maps coming from other
nodes as images) into metric depth, and back."""

from __future__ import annotations

import math

import torch

from ..errors import InputError

MODES = ("disparity", "depth")


def to_metric(values: torch.Tensor, mode: str, median_depth: float, *, valid: torch.Tensor | None = None,
              eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Metric depth from relative ``values`` (``mode`` "disparity": larger = nearer; "depth": larger =
    farther), scaled so the median valid depth equals ``median_depth``. Returns ``(depth, valid)``."""
    if mode not in MODES:
        raise InputError(f"depth mode must be one of {MODES}, got {mode!r}")
    if not (math.isfinite(median_depth) and median_depth > 0):
        raise InputError(f"median depth must be a positive distance, got {median_depth}")
    v = torch.as_tensor(values).float()
    ok = torch.isfinite(v) & (v > eps)
    if valid is not None:
        ok &= valid
    if not ok.any():
        raise InputError("the depth map has no usable pixel (all zero, negative or NaN)")
    rel = torch.where(ok, v, torch.ones_like(v))
    depth = 1.0 / rel if mode == "disparity" else rel
    depth = depth * (median_depth / depth[ok].median())
    fill = depth[ok].max()
    return torch.where(ok, depth, fill), ok


def image_to_values(image: torch.Tensor) -> torch.Tensor:
    """A depth/disparity map given as a ComfyUI IMAGE (``[1, H, W, C]`` or ``[H, W, C]`` 0..1, grey or
    RGB) or MASK (``[H, W]``) -> ``[H, W]`` values (the channel mean)."""
    img = torch.as_tensor(image).float()
    if img.ndim == 4:
        if img.shape[0] != 1:
            raise InputError(f"give one depth image, not a batch of {img.shape[0]}")
        img = img[0]
    if img.ndim == 3:
        img = img[..., :3].mean(-1)
    if img.ndim != 2:
        raise InputError(f"a depth image must be [H, W, C] or [H, W], got {list(image.shape)}")
    return img


def depth_to_image(depth: torch.Tensor, mode: str = "disparity") -> torch.Tensor:
    """``[H, W]`` metric depth -> ``[1, H, W, 3]`` image in 0..1 (normalized disparity or depth), the
    format depth nodes exchange."""
    if mode not in MODES:
        raise InputError(f"depth mode must be one of {MODES}, got {mode!r}")
    d = torch.as_tensor(depth).float()
    v = 1.0 / d if mode == "disparity" else d
    v = v / v.max()
    return v.unsqueeze(-1).expand(*v.shape, 3).unsqueeze(0).contiguous()
