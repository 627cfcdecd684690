"""The motion gate decided per output pixel instead of per latent cell.

The gate (:mod:`.motion_gating`) zeroes the motion latents of the cells it judges still. A cell is 4 x 4 pixels of
the generation grid and the gate's own grid 8 x 8, so at an object's outline the decision is coarse both ways: the
cells next to a moving object keep zero motion, which the depth-guided decoder blends into the object's own edge
pixels, and the object's motion is decoded a little onto the still background beside it (on validation, named-object
cases where the gate found the object still lost 0.066 of their share that way; docs/bundled-model-history.md, "Where
the named share is lost"). With the pixel gate the latent keep is first dilated by one cell (the outline's cells
keep the denoiser's motion), and after decoding each output pixel keeps its motion only where the gate's
probability, brought to the output grid by the same depth-guided upsampling the decoder uses, reaches the
threshold; every other point is held exactly at its frame-0 position. So the motion edge follows the depth edge at
pixel resolution instead of the cells.

It applies where every moving pixel belongs to a gated object clause: a whole prompt under the gate, or object
clauses composed without a camera clause. With a camera clause the rest of the image moves with the camera, and the
cell decision stays.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.guided_upsampling import depth_guide, guided_upsample


def dilate_cells(keep: torch.Tensor) -> torch.Tensor:
    """A latent keep mask ``[B, 1, 1, h, w]`` (1 / 0) grown by one cell in each direction (8-connected)."""
    grown = F.max_pool2d(keep[:, 0].float(), kernel_size=3, stride=1, padding=1)
    return grown.unsqueeze(1).to(keep.dtype)


def upsampled_probability(probability: torch.Tensor, points0: torch.Tensor) -> torch.Tensor:
    """``probability`` on the latent grid ``[B, 1, 1, h, w]`` -> ``[B, H, W]`` on the output pixels (the grid of the
    frame-0 points ``[B, H, W, 3]``), by the depth-guided upsampling the decoder uses."""
    guide = depth_guide(points0)
    return guided_upsample(probability[:, 0].float().to(guide.device), guide)[:, 0]


def hold_outside(tracks: torch.Tensor, points0: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``tracks [B, T, H, W, 3]`` with every point outside ``keep [B, H, W]`` held at its frame-0 position
    ``points0 [B, H, W, 3]``."""
    still = points0.unsqueeze(1).to(tracks)
    return torch.where(keep.unsqueeze(1).unsqueeze(-1).to(tracks.device), tracks, still.expand_as(tracks))
