"""Smoothing the generated motion within surfaces (post-processing).

A small diffusion model leaves some of its starting noise in what it generates: neighbouring blocks of
one rigid object move by slightly different amounts, which shows as an object that wobbles and
stretches instead of moving as one. :func:`smooth_motion_blocks` averages each block's motion with
the blocks around it (Gaussian weights, ``sigma`` blocks) that lie at about the same depth (weights
falling with the difference in log depth, ``sigma_range``), so motion is averaged within a surface
and not across a depth edge: an object does not drag the wall behind it along, nor the wall the
object. A motion that varies smoothly across a surface (a spin, a growth) keeps its slope away from
the surface's edges; near an edge the average leans towards the surface's inside.

It works on the small codec's coarse grid of motion coefficients (one per block of pixels, before
the depth-guided upsampling), where it costs nothing next to the denoiser. The strength a user gives
is the Gaussian's radius as a share of the image width (:func:`blocks_sigma`). It is post-processing:
the evaluation's headline row is the model without it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import InputError

MAX_MOTION_SMOOTHING = 0.25  # a quarter of the image width
SMOOTHING_SIGMA_RANGE = 0.03  # log depth, as the codec's depth-guided upsampling


def check_motion_smoothing(strength: float) -> float:
    strength = float(strength)
    if not (math.isfinite(strength) and 0.0 <= strength <= MAX_MOTION_SMOOTHING):
        raise InputError(f"motion smoothing must be between 0 and {MAX_MOTION_SMOOTHING} (the averaging radius as a share "
                         f"of the image width; 0 turns it off), got {strength}")
    return strength


# depth sources on which a model's default smoothing is left off (an explicit value still applies): on the
# built-in prior's depth the bundled model's default cost moving points on validation (docs/bundled-model-history.md, "Motion smoothing")
UNSMOOTHED_DEPTH_SOURCES = {"prior": "the built-in prior's depth"}


def smoothing_for(requested: float | None, model_default: float, depth_source: str | None) -> tuple[float, str | None]:
    """(the smoothing to use, why the model's default was left off or None): ``requested`` when given (None = the
    model's default); the model's default, except for a ``depth_source`` (a DepthResult backend) it is left off for."""
    if requested is not None:
        return check_motion_smoothing(requested), None
    if model_default > 0.0 and depth_source in UNSMOOTHED_DEPTH_SOURCES:
        return 0.0, UNSMOOTHED_DEPTH_SOURCES[depth_source]
    return check_motion_smoothing(model_default), None


def describe_smoothing_off(why: str) -> str:
    """One line for people when a model's default smoothing was left off (``why``: for which depth)."""
    return (f"the model's motion smoothing is left off for {why} (there it cost moving points on validation); "
            "set motion_smoothing to use it anyway")


def blocks_sigma(strength: float, grid_width: int) -> float:
    """The Gaussian's sigma in blocks of a coarse grid ``grid_width`` blocks wide, for a ``strength`` given as a
    share of the image width."""
    return check_motion_smoothing(strength) * int(grid_width)


def smooth_motion_blocks(coarse: torch.Tensor, block_log_depth: torch.Tensor, sigma: float, *,
                         sigma_range: float = SMOOTHING_SIGMA_RANGE) -> torch.Tensor:
    """``coarse`` ``[B, C, h, w]`` motion (any linear coefficients of it) -> the same, each block replaced by the
    depth-weighted Gaussian mean of the blocks within ``ceil(2 sigma)`` of it; ``block_log_depth`` ``[B, h, w]``.
    ``sigma`` is in blocks (0: unchanged). Borders repeat the edge blocks."""
    if not (math.isfinite(sigma) and sigma >= 0.0):
        raise InputError(f"smoothing sigma must be a non-negative number of blocks, got {sigma}")
    if sigma == 0.0:
        return coarse
    if coarse.ndim != 4 or block_log_depth.shape != (coarse.shape[0], *coarse.shape[-2:]):
        raise InputError(f"motion blocks {list(coarse.shape)} and their depths {list(block_log_depth.shape)} do not match")
    dtype = torch.float32 if coarse.dtype in (torch.float16, torch.bfloat16) else coarse.dtype
    x = coarse.to(dtype)
    guide = block_log_depth.to(device=x.device, dtype=dtype).unsqueeze(1)  # [B, 1, h, w]
    h, w = x.shape[-2:]
    r = math.ceil(2.0 * sigma)
    pad = (r, r, r, r)
    xp, gp = F.pad(x, pad, mode="replicate"), F.pad(guide, pad, mode="replicate")
    num, den = torch.zeros_like(x), torch.zeros_like(guide)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            spatial = math.exp(-(dy * dy + dx * dx) / (2.0 * sigma * sigma))
            near = (slice(None), slice(None), slice(r + dy, r + dy + h), slice(r + dx, r + dx + w))
            weight = spatial * torch.exp(-((gp[near] - guide) ** 2) / (2.0 * sigma_range**2))
            num += weight * xp[near]
            den += weight
    return (num / den).to(coarse.dtype)  # den >= the centre's own weight, 1
