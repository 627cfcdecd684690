"""Trajectory metrics.

* EPE3D on normalized displacements: mean L2 distance between predicted and true depth-normalized
  displacement fields (frames 1..T-1, every point) — scale-free and comparable across scenes.
* TAPVid-3D accuracy: after TAPVid-3D's global "median" scaling of the prediction (the ratio of
  the median distances from the camera of the ground-truth and predicted points, over the points
  visible in the ground truth — our predictions have no occlusion flags), the fraction of visible
  points whose 3D error is below ``delta * z / f`` (the distance that covers ``delta`` pixels at
  the point's true depth, ``f`` the geometric mean of fx and fy) for ``delta`` in {1, 2, 4, 8,
  16}, and their average. A pixel
  is a pixel of the evaluated grid unless ``pixel_scale`` says the tracks stand for a finer image
  (``pixel_scale = 4`` scores a 128-pixel-wide grid in pixels of the 512-pixel-wide output it is
  upsampled to: the same 3D errors against four times finer thresholds).
* Temporal smoothness: mean norm of the second time difference of the normalized displacements
  (lower is smoother; compare with the ground truth's value).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..geometry.normalization import NormalizationFactors, normalize_motion

THRESHOLDS_PX = (1, 2, 4, 8, 16)


@dataclass
class TrajectoryScores:
    epe3d: float
    within: dict[int, float]
    smoothness: float

    @property
    def within_avg(self) -> float:
        return sum(self.within.values()) / len(self.within)


def score(
    pred: torch.Tensor,
    gt: torch.Tensor,
    visibility: torch.Tensor,
    intrinsics: torch.Tensor,
    factors: NormalizationFactors,
    *,
    pixel_scale: float = 1.0,
) -> TrajectoryScores:
    """Scores of predicted tracks ``[T, N, 3]`` against ground truth (same points, same frames)."""
    pred = pred.double()
    gt = gt.double()
    n_pred = normalize_motion(pred, factors)
    n_gt = normalize_motion(gt, factors)
    epe = (n_pred[1:] - n_gt[1:]).norm(dim=-1).mean().item()
    seen = visibility.bool()
    if seen.any():
        scale = gt.norm(dim=-1)[seen].median() / pred.norm(dim=-1)[seen].median().clamp(min=1e-12)
    else:
        scale = torch.ones((), dtype=torch.float64)
    err = (pred * scale - gt).norm(dim=-1)
    focal = pixel_scale * float(intrinsics[0, 0] * intrinsics[1, 1]) ** 0.5
    vis = seen.clone()
    vis[0] = False  # frame 0 is given, not predicted
    within = {}
    for delta in THRESHOLDS_PX:
        ok = err < delta * gt[..., 2].abs() / focal
        within[delta] = ok[vis].double().mean().item() if vis.any() else float("nan")
    accel = n_pred[2:] - 2 * n_pred[1:-1] + n_pred[:-2]
    return TrajectoryScores(epe, within, accel.norm(dim=-1).mean().item())


def mean_scores(items: list[TrajectoryScores]) -> TrajectoryScores:
    count = len(items)
    return TrajectoryScores(
        sum(s.epe3d for s in items) / count,
        {d: sum(s.within[d] for s in items) / count for d in THRESHOLDS_PX},
        sum(s.smoothness for s in items) / count,
    )
