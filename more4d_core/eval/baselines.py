"""Reference predictors for the evaluation: no motion, and the average training motion."""

from __future__ import annotations

import torch

from ..geometry.normalization import NormalizationFactors, denormalize_motion, normalize_motion


def static_tracks(points0: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Every point stays at its frame-0 position: ``[T, N, 3]``."""
    return points0.unsqueeze(0).expand(num_frames, -1, -1).clone()


class MeanMotion:
    """The per-pixel, per-frame average of the normalized motion field over training samples."""

    def __init__(self, fields: list[torch.Tensor]):
        self.field = torch.stack([f.double() for f in fields]).mean(0)  # [T, N, 3]

    @classmethod
    def from_tracks(cls, tracks: list[torch.Tensor], factors: list[NormalizationFactors]) -> MeanMotion:
        return cls([normalize_motion(t.double(), f) for t, f in zip(tracks, factors)])

    def predict(self, points0: torch.Tensor, factors: NormalizationFactors) -> torch.Tensor:
        return denormalize_motion(self.field, points0.double(), factors).float()
