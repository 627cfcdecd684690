"""The object encoder (``object_encoder="conv"``): what the full-resolution image and depth show, per token.

The transformer sees the image and the depth through the codec's latents: a token of the small model
gets its 8x8 pixels as four averages, and its two-layer motion ViT sees a 96x96 squash of the RGB
image without depth. Neither was enough for tokens to tell a ball from a box, a card or a disc: a
linear probe of a middle block, trained for that, named 44% of the object tokens right, where a
small CNN from scratch on the same image and depth named 72% (``tools/kind_probe.py``). Binding a
caption's noun to its region needs tokens that know which object they show.

This encoder is that CNN's kind of network: stride-2 convolutions down to the token grid (one
output per token), then two dilated convolutions that widen its view to whole objects. Its
features go through a linear map into the transformer's width and are added to every token of
that grid position (the reference frame and every video frame), before the first block. The map
starts at zero, so a model warm-started from one without an encoder computes the same function
until training teaches it to use the features; the features themselves can be taught the objects'
kinds directly (``train/kind_head.py``: :class:`EncoderKindHead`).

Input planes ``[B, 4, H, W]``: the image in [-1, 1] and the depth condition (``depth_condition``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError
from .config import STraGConfig

INPUT_PLANES = 4  # RGB in [-1, 1] and the normalized depth


class ObjectEncoder(nn.Module):
    """``planes [B, 4, H, W]`` -> features ``[B, width, H/s, W/s]`` (s: the pixel stride of a token)
    -> additions ``[B, (H/s)(W/s), dim]`` to the tokens (:meth:`token_additions`)."""

    def __init__(self, cfg: STraGConfig):
        super().__init__()
        stride, width = cfg.pixel_stride, cfg.object_encoder_width
        downs = stride.bit_length() - 1  # stride is a power of two (checked by the config)
        layers: list[nn.Module] = []
        channels = INPUT_PLANES
        for i in range(downs):
            out = width if i == downs - 1 else min(width, 32 * 2**i)
            layers += [nn.Conv2d(channels, out, 3, 2, 1), nn.GELU()]
            channels = out
        for dilation in (2, 4):
            layers += [nn.Conv2d(width, width, 3, 1, dilation, dilation=dilation), nn.GELU()]
        self.net = nn.Sequential(*layers)
        self.proj = nn.Linear(width, cfg.dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self.stride = stride

    def forward(self, planes: torch.Tensor) -> torch.Tensor:
        """Features ``[B, width, h, w]`` on the token grid."""
        if planes.ndim != 4 or planes.shape[1] != INPUT_PLANES:
            raise InputError(f"the object encoder takes [B, {INPUT_PLANES}, H, W] planes, got {list(planes.shape)}")
        h, w = planes.shape[-2:]
        if h % self.stride or w % self.stride:
            raise InputError(f"object encoder input {w}x{h} is not a multiple of the token stride {self.stride}")
        return self.net(planes.to(self.proj.weight.dtype))

    def token_additions(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, width, h, w]`` -> ``[B, h*w, dim]`` (row-major, the token order of one frame)."""
        return self.proj(features.flatten(2).transpose(1, 2).to(self.proj.weight.dtype))


def encoder_planes(signed_image: torch.Tensor, depth_condition: torch.Tensor) -> torch.Tensor:
    """``[B, 3, H, W]`` image in [-1, 1] and ``[B, 1, H, W]`` normalized depth -> ``[B, 4, H, W]``."""
    return torch.cat([signed_image, depth_condition.to(signed_image.dtype)], dim=1)
