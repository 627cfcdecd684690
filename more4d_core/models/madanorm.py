"""MAdaNorm: the Motion Perception Module's second modulation inside every DiT block.

After a block's AdaLN modulation, ``x' = x * (1 + s * g) + b * g`` with
``[s, b] = Linear(SiLU(f))`` (scale first, then shift) computed from the motion features ``f``
and ``g`` a learned per-channel gate. The conditioning strength ``lambda`` scales the gate.

Initialization: the gate starts at zero, so an untrained module is the identity. The linear layer
is *not* zero-initialized (the DESIGN note says both are; with both at zero no gradient ever
reaches either, and the authors' own init routine in fact re-initializes it with Xavier weights).

State-dict names match the authors' checkpoint: ``spatial_guide.1.{weight,bias}`` and ``gate``.
"""

from __future__ import annotations

import torch
from torch import nn


class MAdaNorm(nn.Module):
    def __init__(self, feature_dim: int, dim: int):
        super().__init__()
        self.spatial_guide = nn.Sequential(nn.SiLU(), nn.Linear(feature_dim, 2 * dim))
        self.gate = nn.Parameter(torch.zeros(dim))
        nn.init.xavier_uniform_(self.spatial_guide[1].weight)
        nn.init.zeros_(self.spatial_guide[1].bias)

    def modulation(self, features: torch.Tensor, strength: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scale, shift)`` already multiplied by the gate and the strength.

        ``features`` is ``[B, S, F]`` for ``S`` spatial positions (or ``[B, L, F]`` per token).
        """
        scale, shift = self.spatial_guide(features).float().chunk(2, dim=-1)
        gate = self.gate.float() * strength
        return scale * gate, shift * gate

    @staticmethod
    def apply(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """``x * (1 + scale) + shift`` (in float32, returned in ``x``'s dtype)."""
        return (x.float() * (1.0 + scale) + shift).type_as(x)
