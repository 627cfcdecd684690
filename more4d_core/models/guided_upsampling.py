"""Depth-guided upsampling of a coarse motion field (the small codec's decoder).

The small model's codec keeps one motion value per ``s x s`` block of pixels. Upsampled bilinearly,
an object's motion bleeds a block or two into the still background around it (and the background's
stillness into the object's edge). Motion edges are depth edges almost everywhere (an object moves
against what lies behind it), so each output pixel here takes a weighted mean of the nearby blocks
where the weight also falls with the difference between the pixel's depth and the block's mean
depth (a joint bilateral upsampling guided by the frame-0 depth): a pixel on the object takes the
object's blocks, a pixel of the wall behind it the wall's.

Parameters (chosen on validation scenes with the ground truth passed through the codec): range
``sigma_r = 0.03`` in log depth (3 % depth differences), spatial ``sigma_s = 0.6`` blocks, the 3 x 3
nearest blocks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..geometry.normalization import safe_depth

SIGMA_RANGE = 0.03  # log depth
SIGMA_SPACE = 0.6  # blocks


def depth_guide(points0: torch.Tensor) -> torch.Tensor:
    """The guide of frame-0 points ``[B, H, W, 3]``: their log depth ``[B, H, W]`` (unusable depths as 1)."""
    return torch.log(safe_depth(points0[..., 2].float()))


def block_means(guide: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """``guide`` ``[B, H, W]`` -> each block's mean on the coarse ``hw`` grid ``[B, h, w]``."""
    return F.adaptive_avg_pool2d(guide.unsqueeze(1), tuple(hw))[:, 0]


def guided_upsample(coarse: torch.Tensor, guide: torch.Tensor, *, sigma_range: float = SIGMA_RANGE,
                    sigma_space: float = SIGMA_SPACE, radius: int = 1) -> torch.Tensor:
    """``coarse`` ``[B, C, h, w]`` -> ``[B, C, H, W]`` guided by ``guide`` ``[B, H, W]`` (log depth at the
    output resolution). Where the guide is flat this is a smooth (Gaussian-weighted) interpolation."""
    b, c, h, w = coarse.shape
    out_h, out_w = guide.shape[-2:]
    dtype = torch.float32 if coarse.dtype in (torch.float16, torch.bfloat16) else coarse.dtype
    coarse = coarse.to(dtype)
    guide = guide.to(dtype=dtype, device=coarse.device)
    block_guide = block_means(guide, (h, w))
    ys = (torch.arange(out_h, dtype=dtype, device=coarse.device) + 0.5) * h / out_h - 0.5  # block coordinates
    xs = (torch.arange(out_w, dtype=dtype, device=coarse.device) + 0.5) * w / out_w - 0.5
    near_y, near_x = ys.round().long(), xs.round().long()
    num = coarse.new_zeros(b, c, out_h, out_w)
    den = coarse.new_zeros(b, 1, out_h, out_w)
    for dy in range(-radius, radius + 1):
        qy = (near_y + dy).clamp(0, h - 1)
        wy = torch.exp(-((ys - qy.to(dtype)) ** 2) / (2 * sigma_space**2))
        for dx in range(-radius, radius + 1):
            qx = (near_x + dx).clamp(0, w - 1)
            wx = torch.exp(-((xs - qx.to(dtype)) ** 2) / (2 * sigma_space**2))
            # (+1e-6: a pixel unlike every block nearby falls back to the spatial weights)
            similar = torch.exp(-((guide - block_guide[:, qy][:, :, qx]) ** 2) / (2 * sigma_range**2)) + 1e-6
            weight = (wy[:, None] * wx[None, :] * similar).unsqueeze(1)  # [B, 1, H, W]
            num += weight * coarse[:, :, qy][:, :, :, qx]
            den += weight
    return num / den.clamp(min=1e-12)
