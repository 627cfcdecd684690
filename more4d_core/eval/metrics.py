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
* Moving and still points: a point moves when its true track moves more than 2 pixels (at its
  depth) at some frame; every score can be restricted to either set.
* Error axes: every score can count only the lateral part of the error (camera x and y: what moves
  a point across the image) or only its depth part (camera z); the full error is both. Which part
  keeps a point outside the thresholds says which part of the motion a model gets wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..geometry.normalization import NormalizationFactors, normalize_motion

THRESHOLDS_PX = (1, 2, 4, 8, 16)


MOVING_PX = 2.0  # a point "moves" when its true track leaves a circle of this many pixels at some frame
ERROR_AXES = {"xyz": slice(0, 3), "xy": slice(0, 2), "z": slice(2, 3)}  # the full error, its lateral part, its depth part


@dataclass
class TrajectoryScores:
    epe3d: float
    within: dict[int, float]
    smoothness: float
    points: int = 0  # scored points (visible point-frames for the within fractions)

    @property
    def within_avg(self) -> float:
        return sum(self.within.values()) / len(self.within)

    def to_dict(self) -> dict:
        return {"epe3d": self.epe3d, "within": {str(d): v for d, v in self.within.items()},
                "within_avg": self.within_avg, "smoothness": self.smoothness, "points": self.points}


def pixel_focal(intrinsics: torch.Tensor, pixel_scale: float = 1.0) -> float:
    """The focal length (geometric mean of fx, fy) in pixels of the image the thresholds count in."""
    return pixel_scale * float(intrinsics[0, 0] * intrinsics[1, 1]) ** 0.5


def moving_points(gt: torch.Tensor, intrinsics: torch.Tensor, *, pixel_scale: float = 1.0,
                  threshold_px: float = MOVING_PX) -> torch.Tensor:
    """``[N]`` bool: points whose true 3D track moves more than ``threshold_px`` pixels (at the
    point's depth, TAPVid-3D style: ``|P_t - P_0| > threshold * z_t / f``) at some frame."""
    gt = gt.double()
    disp = (gt - gt[:1]).norm(dim=-1)
    limit = threshold_px * gt[..., 2].abs() / pixel_focal(intrinsics, pixel_scale)
    return (disp > limit).any(dim=0)


def score(
    pred: torch.Tensor,
    gt: torch.Tensor,
    visibility: torch.Tensor,
    intrinsics: torch.Tensor,
    factors: NormalizationFactors,
    *,
    pixel_scale: float = 1.0,
    points: torch.Tensor | None = None,
    axes: str = "xyz",
) -> TrajectoryScores:
    """Scores of predicted tracks ``[T, N, 3]`` against ground truth (same points, same frames).

    ``points`` (``[N]`` bool) restricts every figure to those points; the median scaling still
    uses all visible points (one global scale per scene, as TAPVid-3D). ``axes`` (a key of
    :data:`ERROR_AXES`) counts only that part of the error in EPE3D and the within fractions."""
    if axes not in ERROR_AXES:
        raise ValueError(f"axes must be one of {tuple(ERROR_AXES)}, got {axes!r}")
    keep = ERROR_AXES[axes]  # a slice: a view of the error, no copy on the scoring path
    pred = pred.double()
    gt = gt.double()
    n_pred = normalize_motion(pred, factors)
    n_gt = normalize_motion(gt, factors)
    sel = torch.ones(gt.shape[1], dtype=torch.bool) if points is None else points.bool()
    epe = (n_pred[1:, sel] - n_gt[1:, sel])[..., keep].norm(dim=-1).mean().item() if sel.any() else float("nan")
    seen = visibility.bool()
    if seen.any():
        scale = gt.norm(dim=-1)[seen].median() / pred.norm(dim=-1)[seen].median().clamp(min=1e-12)
    else:
        scale = torch.ones((), dtype=torch.float64)
    err = (pred * scale - gt)[..., keep].norm(dim=-1)
    focal = pixel_focal(intrinsics, pixel_scale)
    vis = seen.clone()
    vis[0] = False  # frame 0 is given, not predicted
    vis &= sel.view(1, -1)
    within = {}
    for delta in THRESHOLDS_PX:
        ok = err < delta * gt[..., 2].abs() / focal
        within[delta] = ok[vis].double().mean().item() if vis.any() else float("nan")
    accel = n_pred[2:, sel] - 2 * n_pred[1:-1, sel] + n_pred[:-2, sel]
    smooth = accel.norm(dim=-1).mean().item() if sel.any() else float("nan")
    return TrajectoryScores(epe, within, smooth, int(vis.sum()))


def mean_scores(items: list[TrajectoryScores]) -> TrajectoryScores | None:
    """The average over scenes of per-scene scores; scenes with no scored point are left out
    (None when none is left)."""
    items = [s for s in items if s.points > 0 or not any(x.points for x in items)]
    if not items:
        return None
    count = len(items)
    return TrajectoryScores(
        sum(s.epe3d for s in items) / count,
        {d: sum(s.within[d] for s in items) / count for d in THRESHOLDS_PX},
        sum(s.smoothness for s in items) / count,
        sum(s.points for s in items),
    )
