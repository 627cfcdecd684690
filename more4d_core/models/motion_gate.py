"""The motion gate (``motion_gate="attention"``): which positions of the image move at all.

The denoiser moves the object the caption names most, but it also moves the other objects and the
background a little (still points 0.90 of "nothing moves"' 1.00 on validation; 45% of the motion on the
named object), and a still prompt drifts by pixels. Which positions should move is an easier question
than how they move: it needs only the image, the depth and the caption, no noise. The gate asks it.

For every token-grid position, the object encoder's features attend over the caption's words and a
learned "still" slot (:class:`~.word_scores.WordScores`); the log-odds of "moves" are fitted, with the
encoder and text encoder frozen, to the positions whose true motion exceeds about 2 output pixels
(the objects the caption moves, and every position when the camera moves; ``train/gate_fit.py``). At
generation the probability is brought to the latent grid (bilinear) and the sampled motion latents of
the positions below ``motion_gate_threshold`` are set to zero: those points stay exactly still. The
denoiser is not changed; ``generate(..., motion_gate=False)`` gives its motion alone
(``sampling/motion_gating.py`` applies the gate).
"""

from __future__ import annotations

import torch

from .config import STraGConfig
from .word_scores import WordScores


class MotionGate(WordScores):
    """Object-encoder features ``[B, C, h, w]`` and text states ``[B, L, D]`` -> "moves" logits ``[B, h, w]``."""

    def __init__(self, cfg: STraGConfig):
        super().__init__(cfg.object_encoder_width, cfg.text_dim, cfg.motion_gate_width)

    def forward(self, features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.logits(self.scores(features, text), features.shape[-2:])

