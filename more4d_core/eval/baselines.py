"""Reference predictors for the evaluation: no motion, and the average training motion."""

from __future__ import annotations

import torch

from ..geometry.normalization import NormalizationFactors, denormalize_motion


def static_tracks(points0: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Every point stays at its frame-0 position: ``[T, N, 3]``."""
    return points0.unsqueeze(0).expand(num_frames, -1, -1).clone()


class MeanMotion:
    """The per-pixel, per-frame average of the normalized motion field over training samples."""

    def __init__(self, fields):
        total, count = None, 0
        for f in fields:  # a running sum: one field in memory at a time (256 fields in float64 are 3.7 GB)
            total = f.double().clone() if total is None else total.add_(f.double())
            count += 1
        if total is None:
            raise ValueError("the mean motion needs at least one field")
        self.field = total / count  # [T, N, 3]

    def predict(self, points0: torch.Tensor, factors: NormalizationFactors) -> torch.Tensor:
        return denormalize_motion(self.field, points0.double(), factors).float()
