"""Per-frame CNN adaptors between the normalized motion field and the Wan video VAE.

* :class:`EncoderAdaptor` maps the normalized field ``n`` (3 channels, unbounded) into image
  range: ``sigmoid(n + h(n))`` with a residual CNN ``h`` whose last conv starts at zero, then
  ``x 2 - 1`` for the VAE (so an untrained adaptor is ``tanh(n / 2)``).
* :class:`DecoderAdaptor` maps the VAE's decoded video (clamped to [-1, 1]) back to ``n``.

Layers: conv 3->C, ResNet block(s) (GroupNorm(32) + SiLU + conv3x3, twice, identity skip),
GroupNorm + SiLU, conv C->3. State-dict names match the authors' ``encoder_prompt`` /
``decoder_prompt`` checkpoints (``conv_in``, ``down.0.block.0.*`` / ``up.0.block.{0,1}.*``,
``norm_out``, ``conv_out``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=min(32, channels), num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.norm1 = _norm(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = _norm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return x + h


class _Stage(nn.Module):
    def __init__(self, channels: int, blocks: int):
        super().__init__()
        self.block = nn.ModuleList(ResnetBlock(channels) for _ in range(blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.block:
            x = blk(x)
        return x


def _frames_in_batch(video: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """``[B, 3, T, H, W]`` -> ``[B*T, 3, H, W]``."""
    b, c, t, h, w = video.shape
    return video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w), (b, t)


def _frames_back(x: torch.Tensor, bt: tuple[int, int]) -> torch.Tensor:
    b, t = bt
    return x.reshape(b, t, *x.shape[1:]).permute(0, 2, 1, 3, 4)


class EncoderAdaptor(nn.Module):
    def __init__(self, channels: int = 128):
        super().__init__()
        self.conv_in = nn.Conv2d(3, channels, 3, padding=1)
        self.down = nn.ModuleList([_Stage(channels, 1)])
        self.norm_out = _norm(channels)
        self.conv_out = nn.Conv2d(channels, 3, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        """Normalized field ``[B, 3, T, H, W]`` -> VAE input in (-1, 1)."""
        x, bt = _frames_in_batch(field)
        h = self.down[0](self.conv_in(x))
        h = self.conv_out(F.silu(self.norm_out(h)))
        return _frames_back(torch.sigmoid(h + x) * 2.0 - 1.0, bt)


class DecoderAdaptor(nn.Module):
    def __init__(self, channels: int = 128):
        super().__init__()
        self.conv_in = nn.Conv2d(3, channels, 3, padding=1)
        self.up = nn.ModuleList([_Stage(channels, 2)])
        self.norm_out = _norm(channels)
        self.conv_out = nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Decoded VAE video ``[B, 3, T, H, W]`` in [-1, 1] -> normalized field."""
        x, bt = _frames_in_batch(video.clamp(-1.0, 1.0))
        h = self.up[0](self.conv_in(x))
        return _frames_back(self.conv_out(F.silu(self.norm_out(h))), bt)
