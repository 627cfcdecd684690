"""The motion gate: which positions of the image move at all.

The denoiser moves the object the caption names most, but it also moves the other objects and the
background a little (still points 0.90 of "nothing moves"' 1.00 on validation; 45% of the motion on the
named object), and a still prompt drifts by pixels. Which positions should move is an easier question
than how they move: it needs only the image, the depth and the caption, no noise. The gate asks it.

``motion_gate="attention"`` (:class:`MotionGate`): for every token-grid position, the object encoder's
features attend over the caption's words and a learned "still" slot (:class:`~.word_scores.WordScores`).

``motion_gate="fine"`` (:class:`FineMotionGate`): the same question on the latent grid, which is finer than
the token grid (the small model: 4x4 pixels against 8x8). A token-grid gate cannot hold still a small
object next to the named one: an object of 150-300 pixels spans about two tokens, and on validation those
were the named-object control's failures (another object took 55-100% of the motion). Its features are
the object encoder's, brought to the latent grid, next to those of its own small convolution of the same
image and depth planes (stride-2 steps down to the latent grid, then a dilated one), mixed per position by
a two-layer map; the words are scored as above.

Either gate's log-odds of "moves" are fitted, with the encoder and text encoder frozen, to the positions
whose true motion exceeds about 2 output pixels (the objects the caption moves, and every position when
the camera moves; ``train/gate_fit.py``). At generation the probability is brought to the latent grid
(bilinear; the fine gate is already there) and the sampled motion latents of the positions below
``motion_gate_threshold`` are set to zero: those points stay exactly still. The denoiser is not changed;
``generate(..., motion_gate=False)`` gives its motion alone (``sampling/motion_gating.py`` applies the gate).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .config import STraGConfig
from .object_encoder import INPUT_PLANES
from .word_scores import WordScores

FINE_CHANNELS = 32  # channels of the fine gate's own convolution


class MotionGate(WordScores):
    """Object-encoder features ``[B, C, h, w]`` and text states ``[B, L, D]`` -> "moves" logits ``[B, h, w]``
    on the token grid (``planes`` is not read)."""

    def __init__(self, cfg: STraGConfig):
        super().__init__(cfg.object_encoder_width, cfg.text_dim, cfg.motion_gate_width)

    def forward(self, features: torch.Tensor, text: torch.Tensor, planes: torch.Tensor | None = None) -> torch.Tensor:
        return self.logits(self.scores(features, text), features.shape[-2:])


class FineMotionGate(WordScores):
    """Object-encoder features ``[B, C, h, w]``, text states ``[B, L, D]`` and the encoder's input planes
    ``[B, 4, H, W]`` -> "moves" logits ``[B, H/s, W/s]`` on the latent grid (``s``: the codec's spatial
    compression)."""

    def __init__(self, cfg: STraGConfig):
        width = cfg.motion_gate_width
        super().__init__(width, cfg.text_dim, width)
        layers: list[nn.Module] = []
        channels = INPUT_PLANES
        for i in range(cfg.spatial_compression.bit_length() - 1):
            out = FINE_CHANNELS if i else FINE_CHANNELS // 2
            layers += [nn.Conv2d(channels, out, 3, 2, 1), nn.GELU()]
            channels = out
        layers += [nn.Conv2d(channels, FINE_CHANNELS, 3, 1, 2, dilation=2), nn.GELU()]
        self.fine = nn.Sequential(*layers)
        self.mix = nn.Sequential(nn.Conv2d(cfg.object_encoder_width + FINE_CHANNELS, width, 1), nn.GELU())
        self.stride = cfg.spatial_compression

    def features(self, features: torch.Tensor, planes: torch.Tensor | None) -> torch.Tensor:
        """``[B, width, H/s, W/s]``: the encoder's features on the latent grid mixed with the gate's own."""
        if planes is None or planes.ndim != 4 or planes.shape[1] != INPUT_PLANES:
            raise InputError("the fine motion gate reads the object encoder's input planes [B, "
                             f"{INPUT_PLANES}, H, W]; got {None if planes is None else list(planes.shape)}")
        h, w = planes.shape[-2:]
        if h % self.stride or w % self.stride:
            raise InputError(f"fine motion gate input {w}x{h} is not a multiple of the latent stride {self.stride}")
        dtype = self.mix[0].weight.dtype
        own = self.fine(planes.to(dtype))
        coarse = F.interpolate(features.to(dtype), size=own.shape[-2:], mode="bilinear", align_corners=False)
        return self.mix(torch.cat([coarse, own], dim=1))

    def forward(self, features: torch.Tensor, text: torch.Tensor, planes: torch.Tensor | None = None) -> torch.Tensor:
        fine = self.features(features, planes)
        return self.logits(self.scores(fine, text), fine.shape[-2:])

    def fitted_parameters(self) -> list[nn.Parameter]:
        return [*super().fitted_parameters(), *self.fine.parameters(), *self.mix.parameters()]


def build_motion_gate(cfg: STraGConfig) -> nn.Module:
    """The gate ``cfg.motion_gate`` names ("attention" or "fine")."""
    return FineMotionGate(cfg) if cfg.motion_gate == "fine" else MotionGate(cfg)
