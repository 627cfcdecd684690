"""A learned temporal decoder for the temporal-basis codec: what a few cosines cannot draw.

The temporal-basis codec (:class:`.trajectory_codec.TemporalBasisCodec`) keeps ``K`` cosine coefficients
of each trajectory, a low-pass filter in time. Smooth motions survive it; a motion with a kink does not.
A bounce (``|sin|``: the object turns at the floor from one frame to the next) comes back rounded and
shifted, and "bounces twice" has three kinks: through the codec alone its true tracks score about 0.44
on moving points (docs/bundled-model-history.md, "A learned temporal decoder"). The coefficients still say which motion it
was, and a decoder that has seen such motions can draw it back.

:class:`TemporalResidual` maps each pixel's coefficients (in latent units, the codec's ``latent_scale``
undone) to the part of its trajectory the cosines miss, on the ``frames`` frame times the model was
trained with; it is added to the basis' curve. Two properties are built in, not learned:

* positively 1-homogeneous: ``r(a c) = a r(c)`` for ``a >= 0`` (a multilayer perceptron of the
  coefficients' direction, times their norm). The codec is linear, so the residual of a motion twice as
  large is twice as large, and a pixel at an object's edge whose coefficients are a share of the
  object's keeps that share of its residual; ``r(0) = 0``: what does not move stays exactly still;
* re-timed like the basis: a clip of another length is the same motion over the same time span (the
  residual is interpolated linearly in time at the basis' frame times ``(t + 1/2) / T``).

It is fitted after the diffusion training, on the true tracks of training scenes
(``python -m more4d_core.train.decoder_fit``); the denoiser does not change.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError

CHUNK = 32768  # pixels per pass (bounds the hidden activations at large output grids)


class TemporalResidual(nn.Module):
    """Coefficients ``[B, 3K, H, W]`` (latent units) -> residual field ``[B, 3, T, H, W]`` (normalized units)."""

    def __init__(self, coefficients: int, frames: int, width: int = 256):
        super().__init__()
        if coefficients < 1 or frames < 2 or width < 1:
            raise InputError(f"a temporal decoder needs coefficients >= 1, frames >= 2 and width >= 1, got "
                             f"{coefficients}, {frames}, {width}")
        self.coefficients, self.frames, self.width = int(coefficients), int(frames), int(width)
        self.net = nn.Sequential(nn.Linear(3 * self.coefficients, self.width), nn.GELU(),
                                 nn.Linear(self.width, self.width), nn.GELU(),
                                 nn.Linear(self.width, 3 * self.frames))

    def per_pixel(self, units: torch.Tensor) -> torch.Tensor:
        """``[P, 3K]`` -> ``[P, 3, frames]``: the norm times the network of the direction."""
        norm = units.norm(dim=-1, keepdim=True)
        out = norm * self.net(units / norm.clamp_min(1e-6))
        return out.view(-1, 3, self.frames)

    def forward(self, units: torch.Tensor, num_frames: int) -> torch.Tensor:
        b, c, h, w = units.shape
        if c != 3 * self.coefficients:
            raise InputError(f"the temporal decoder reads {3 * self.coefficients} coefficients, got {c}")
        weight = self.net[0].weight
        flat = units.permute(0, 2, 3, 1).reshape(-1, c).to(weight.dtype)
        out = torch.cat([self.per_pixel(part) for part in flat.split(CHUNK)]) if flat.shape[0] else flat.new_zeros(0, 3, self.frames)
        out = retime(out, num_frames)  # [P, 3, T]
        return out.view(b, h, w, 3, num_frames).permute(0, 3, 4, 1, 2).to(units.dtype)


def retime(curves: torch.Tensor, num_frames: int) -> torch.Tensor:
    """``[P, C, F]`` curves sampled at times ``(j + 1/2) / F`` -> ``[P, C, num_frames]`` at ``(t + 1/2) / num_frames``
    (linear interpolation, held flat beyond the first and last sample)."""
    if num_frames < 1:
        raise InputError(f"the number of frames must be >= 1, got {num_frames}")
    if curves.shape[-1] == num_frames:
        return curves
    return F.interpolate(curves, size=int(num_frames), mode="linear", align_corners=False)
