"""Camera moves that stay fillable: how much of each frame a move reveals, and the largest preset
move whose holes stay under a budget.

A point cloud seen from a new camera leaves holes where it reveals what the input image never
showed. The completion fills them, but large ones come out as smears; so the ``auto`` strength of a
preset is the largest amplitude (up to a limit, with the limit's sign giving the direction) for
which no frame shows more than ``max_holes`` of its pixels as holes. Holes are measured by
rendering at low resolution — about 128 pixels on the long side, below the scene's grid so that
each pixel receives several points and only real dis-occlusions and out-of-view regions count, not
the sampling cracks that splatting closes at full size. The amplitude is found by bisection.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InputError
from .path import CameraPath
from .presets import camera_preset, canonical_preset_name

MAX_HOLES = 0.10  # default budget: at most 10% of any frame left for the completion
PROBE_SIDE = 128  # the hole measurement renders at this size (long side), or the grid's if smaller
BISECTION_STEPS = 6  # strength found to 1/64 of the limit


@dataclass
class FillableMove:
    """The chosen move: its ``path``, ``strength``, the worst frame's hole fraction, and whether
    even the smallest move tried exceeded the budget (``within_budget`` False)."""

    path: CameraPath
    strength: float
    worst_holes: float
    within_budget: bool


def probe_size(grid_hw: tuple[int, int], side: int = PROBE_SIDE) -> tuple[int, int]:
    """The low resolution the holes are measured at: the grid scaled to ``side`` on its long side (never up)."""
    h, w = grid_hw
    s = min(1.0, side / max(h, w))
    return max(8, int(round(h * s))), max(8, int(round(w * s)))


class HoleProbe:
    """Measures hole fractions of camera paths over one scene (its points prepared once): renders at
    :func:`probe_size` from every ``stride``-th grid point, the stride chosen so that each probe
    pixel still receives about two points or more on each axis (no sampling cracks)."""

    def __init__(self, scene, side: int = PROBE_SIDE):
        h, w = scene.grid_hw
        self.scene, self.hw = scene, probe_size(scene.grid_hw, side)
        stride = max(1, int(min(h / self.hw[0], w / self.hw[1]) / 2))
        t = scene.num_frames
        self.points = scene.points.reshape(t, h, w, 3)[:, ::stride, ::stride].reshape(t, -1, 3).contiguous()
        self.colors = scene.colors.reshape(h, w, -1)[::stride, ::stride].reshape(-1, scene.colors.shape[-1]).contiguous()

    def __call__(self, path: CameraPath) -> torch.Tensor:
        """``[T]`` share of each frame's pixels that no point reaches."""
        from ..render import render_points

        points = self.points
        if points.shape[0] == 1 and path.num_frames > 1:
            points = points.expand(path.num_frames, -1, -1)
        elif path.num_frames != points.shape[0]:
            raise InputError(f"the camera path has {path.num_frames} frames but the scene has {points.shape[0]}; "
                             "set the path's frame count to the scene's")
        k = path.intrinsics_for(self.scene.intrinsics, self.scene.grid_hw, self.hw)
        result = render_points(points, self.colors, path.poses, k, *self.hw, splat_radius=1)
        return result.holes.flatten(1).float().mean(dim=1)


def hole_fractions(scene, path: CameraPath, *, side: int = PROBE_SIDE) -> torch.Tensor:
    """``[T]`` share of each frame's pixels that no point reaches (see :class:`HoleProbe`)."""
    return HoleProbe(scene, side)(path)


def fillable_preset(scene, preset: str, num_frames: int, *, limit: float = 1.0, max_holes: float = MAX_HOLES,
                    side: int = PROBE_SIDE) -> FillableMove:
    """The largest move of ``preset`` (strength in ``(0, |limit|]``, signed like ``limit``) whose every
    frame keeps its holes at or under ``max_holes`` of the frame (see the module)."""
    key = canonical_preset_name(preset)
    if not 0.0 < max_holes < 1.0:
        raise InputError(f"the hole budget must be a fraction of the frame between 0 and 1, got {max_holes}")
    if not torch.isfinite(torch.tensor(float(limit))) or limit == 0:
        raise InputError(f"the strength limit must be a non-zero finite number, got {limit}")
    sign, top = (1.0 if limit > 0 else -1.0), abs(float(limit))
    depth = scene.median_depth()
    probe = HoleProbe(scene, side)

    def worst(strength: float) -> tuple[float, CameraPath]:
        path = camera_preset(key, num_frames, scene_depth=depth, strength=sign * strength)
        return float(probe(path).max()), path

    holes, path = worst(top)
    if key == "static" or holes <= max_holes:
        return _chosen(path, sign * top, holes, holes <= max_holes)
    best_holes, best_path = worst(0.0)
    if best_holes > max_holes:  # the unmoved view already has holes (a sparse or masked scene)
        lo_holes, lo_path = worst(top / 2 ** BISECTION_STEPS)
        return _chosen(lo_path, sign * top / 2 ** BISECTION_STEPS, lo_holes, False)
    lo, hi = 0.0, top
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2
        holes, path = worst(mid)
        if holes <= max_holes:
            lo, best_holes, best_path = mid, holes, path
        else:
            hi = mid
    return _chosen(best_path, sign * lo, best_holes, True)


def _chosen(path: CameraPath, strength: float, holes: float, ok: bool) -> FillableMove:
    path.metadata.update({"strength": strength, "strength_mode": "auto", "worst_holes": round(holes, 4)})
    return FillableMove(path, strength, holes, ok)
