"""Holding near-still points exactly still.

A diffusion model never outputs exact zeros: where nothing should move (the background of a scene
without camera motion) its trajectories wander by a fraction of a pixel, which shows as shimmer in
renders and costs accuracy at fine thresholds. :func:`hold_still` scales each point's normalized
motion by a ramp of its largest displacement over the clip ``m = max_t |n_t|`` (``n`` in the model's
normalized units, see :mod:`..geometry.normalization`: fractions of the image size, or focal lengths
for "focal" models — 0.8 to 1.1 image widths at 50-65 degree fields of view): zero below
``threshold / 2``, unchanged above ``threshold``, linear in between (no hard seam between moving
and still regions).
"""

from __future__ import annotations

import torch

from ..errors import InputError

MAX_STILL_THRESHOLD = 0.1


def check_still_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not (0.0 <= threshold <= MAX_STILL_THRESHOLD):
        raise InputError(f"still threshold must be between 0 and {MAX_STILL_THRESHOLD} (normalized motion, about a fraction of the image size; "
                         f"0 turns it off), got {threshold}")
    return threshold


def hold_still(field: torch.Tensor, threshold: float) -> torch.Tensor:
    """``field`` ``[B, 3, T, H, W]`` normalized motion; returns it with near-still points zeroed."""
    threshold = check_still_threshold(threshold)
    if threshold == 0.0:
        return field
    peak = field.float().norm(dim=1, keepdim=True).amax(dim=2, keepdim=True)  # [B, 1, 1, H, W]
    weight = ((peak - 0.5 * threshold) / (0.5 * threshold)).clamp(0.0, 1.0)
    return field * weight.to(field.dtype)
