"""The evaluation's moving points split by what the movers do (slides, bounces, growth, bends, ...).

An average over every moving point hides which motions the model makes and which it leaves out: a
scene of a bending card and one of a sliding ball count alike in it. For each mover of a still-camera
scene, its own moving points (the evaluation's moving-point mask, on the mover's pixels of frame 0)
are scored by the model and by "nothing moves", and the model's displacement is compared with the
true one in normalized units (no median scaling):

* gain — ``<pred, true> / <true, true>`` over the points and frames: 1 is the right length the right
  way, 0 no motion along the truth, negative the wrong way;
* length ratio — ``sum |pred| / sum |true|``: how much the points move, in any direction;
* rigid spread — only for the rigid translations (slides, toward / away, bounces), whose true 3D displacement is
  one vector for every point of the mover: at the frame of the largest true displacement ``D``, the standard
  deviation over the mover's points of the predicted displacement along ``D``, divided by ``|D|`` (0 for any rigid
  translation, whatever its length; 0.1 when the points' speeds spread by a tenth of the motion). It measures
  what keeps a mover of the right length outside the thresholds: its points moving at different speeds. A mover
  left still is rigid too (0): read the spread with the gain.

Scenes with a camera move are left out (the camera's motion would dominate every mover's).
"""

from __future__ import annotations

from collections import defaultdict

import torch

from ..geometry.normalization import NormalizationFactors, normalize_motion

# the groups in the order they are reported; a translation splits by whether it crosses the image
GROUPS = ("slides", "moves toward / away", "bounces", "spins", "grows / shrinks", "waves", "bends")
_KIND_GROUPS = {"bounce": "bounces", "spin": "spins", "grow": "grows / shrinks", "wave": "waves", "bend": "bends"}


def motion_group(motion: dict) -> str:
    """The group of a procedural object's motion (``params["objects"][i]["motion"]``)."""
    kind = motion["kind"]
    if kind == "translate":
        x, y, z = motion["vector"]
        return "moves toward / away" if abs(z) > max(abs(x), abs(y)) else "slides"
    if kind not in _KIND_GROUPS:
        raise ValueError(f"no motion group for a {kind!r} object")
    return _KIND_GROUPS[kind]


def displacement_agreement(pred: torch.Tensor, gt: torch.Tensor, factors: NormalizationFactors,
                           points: torch.Tensor) -> tuple[float, float]:
    """(gain, length ratio) of predicted tracks ``[T, N, 3]`` against the truth on ``points`` (``[N]``
    bool), both as normalized displacements from frame 0 (see the module doc)."""
    keep = points.bool()
    n_pred = normalize_motion(pred[:, keep].double(), factors)[1:]  # each point's motion is its own: select first
    n_gt = normalize_motion(gt[:, keep].double(), factors)[1:]
    energy = float((n_gt * n_gt).sum())
    length = float(n_gt.norm(dim=-1).sum())
    if energy <= 0 or length <= 0:
        raise ValueError("the true tracks do not move on these points: no gain to measure")
    return float((n_pred * n_gt).sum()) / energy, float(n_pred.norm(dim=-1).sum()) / length


def rigid_spread(pred: torch.Tensor, gt: torch.Tensor, points: torch.Tensor) -> float:
    """Rigid spread (see the module doc) of predicted tracks ``[T, N, 3]`` against true ones whose motion on
    ``points`` (``[N]`` bool) is a rigid translation: camera-space 3D, no normalization or scaling."""
    keep = points.bool()
    true = (gt[:, keep] - gt[:1, keep]).double().mean(dim=1)  # [T, 3]: the one true displacement of each frame
    peak = int(true.norm(dim=-1).argmax())
    size = float(true[peak].norm())
    if size <= 0:
        raise ValueError("the true tracks do not move on these points: no spread to measure")
    along = (pred[peak, keep] - pred[0, keep]).double() @ (true[peak] / size)
    return float(along.std(unbiased=False)) / size


class MotionBreakdown:
    """Collects, per motion group, each mover's scores; :meth:`summary` averages them over movers."""

    def __init__(self):
        self._rows: dict[str, list[dict[str, float]]] = defaultdict(list)

    def add(self, group: str, *, model: float, nothing: float, gain: float, length_ratio: float,
            spread: float | None = None) -> None:
        if group not in GROUPS:
            raise ValueError(f"unknown motion group {group!r}")
        self._rows[group].append({"model": model, "nothing moves": nothing, "gain": gain, "length_ratio": length_ratio,
                                  "rigid_spread": spread})

    def summary(self) -> dict[str, dict[str, float]]:
        """``{group: {"movers", "model", "nothing moves", "gain", "length_ratio", "rigid_spread"}}`` in
        :data:`GROUPS` order (groups without a mover are left out); model / nothing moves: within-threshold
        averages; rigid_spread: over the movers that have one (None for groups of non-rigid motions)."""
        out = {}
        for group in GROUPS:
            rows = self._rows.get(group)
            if rows:
                out[group] = {"movers": len(rows)}
                for key in rows[0]:
                    values = [r[key] for r in rows if r[key] is not None]
                    out[group][key] = sum(values) / len(values) if values else None
        return out
