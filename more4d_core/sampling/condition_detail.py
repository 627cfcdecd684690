"""Sub-cell detail of the image and depth conditions (``condition_detail="subcell"``, dct codec).

The temporal-basis codec encodes a still image into the first cosine coefficient of each cell: the
control and depth latents hold the mean of every ``s x s`` block of pixels and zeros in all other
channels (21 of 24 for the small model). The transformer's 2x2 patch then sees a token's 8x8
pixels as four averages, too little to tell a ball from a disc by its outline or its curvature.
With "subcell", the first ``s * s`` unused channels of the control latent carry the luminance of
the cell's pixels and those of the depth latent carry the normalized depth of its pixels, both
relative to the cell's mean (row-major inside the cell). The means stay where they were, so a
model trained without detail reads these latents exactly as before when the detail channels'
input weights are zero (how a warm start begins: :func:`zero_detail_weights`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InputError

# ITU-R BT.601 luma weights
_LUMA = (0.299, 0.587, 0.114)


def detail_channels(coefficients: int, spatial: int) -> list[int]:
    """Latent channels (of ``3 * coefficients``) that carry the detail: the first ``spatial**2``
    channels that are not a first coefficient (channel ``c * coefficients`` of colour ``c``)."""
    free = [i for i in range(3 * coefficients) if i % coefficients]
    if len(free) < spatial * spatial:
        raise InputError(f"{coefficients} coefficients leave {len(free)} free channels; {spatial}x{spatial} cells need "
                         f"{spatial * spatial}")
    return free[: spatial * spatial]


def subcell(plane: torch.Tensor, spatial: int) -> torch.Tensor:
    """``[B, 1, H, W]`` -> ``[B, s*s, H/s, W/s]``: each cell's pixels minus the cell's mean."""
    cells = F.pixel_unshuffle(plane, spatial)
    return cells - cells.mean(dim=1, keepdim=True)


def add_detail(latent: torch.Tensor, plane: torch.Tensor, coefficients: int, spatial: int) -> torch.Tensor:
    """A still latent ``[B, 3K, 1, h, w]`` with the sub-cell detail of ``plane [B, 1, H, W]`` written
    into its detail channels (which a still image leaves at zero)."""
    channels = detail_channels(coefficients, spatial)
    detail = subcell(plane.to(latent.dtype), spatial)
    if tuple(detail.shape[-2:]) != tuple(latent.shape[-2:]):
        raise InputError(f"detail grid {tuple(detail.shape[-2:])} does not match the latent grid {tuple(latent.shape[-2:])}")
    out = latent.clone()
    out[:, channels, 0] = detail
    return out


def luminance(image: torch.Tensor) -> torch.Tensor:
    """``[B, 3, H, W]`` -> ``[B, 1, H, W]``."""
    weights = image.new_tensor(_LUMA).view(1, 3, 1, 1)
    return (image * weights).sum(dim=1, keepdim=True)


def zero_detail_weights(patch_embedding: torch.nn.Conv3d, latent_channels: int, coefficients: int, spatial: int) -> None:
    """Zero the input weights of the control and depth detail channels (groups 1 and 3 of
    ``noisy | control | start | depth``), so a model warm-started from one trained without detail
    computes the same function until training teaches it to read them."""
    channels = detail_channels(coefficients, spatial)
    with torch.no_grad():
        for group in (1, 3):
            for c in channels:
                patch_embedding.weight[:, group * latent_channels + c].zero_()
