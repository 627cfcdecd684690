"""Controls that show whether the motion follows the prompt.

* **named object** — in a still-camera scene with two or more objects, generate with the caption
  naming each object in turn (the first mover's motion phrase, another subject); the share of
  predicted motion (sum over points of the mean displacement, in output pixels) that falls on the
  named object's true frame-0 pixels. 1 = only the named object moves.
* **direction** — for a still-camera scene whose first mover translates (left / right, up / down,
  toward the camera / away), generate with the true and with the swapped direction; a case counts
  as right when the sign of the named object's mean predicted displacement along that axis (last
  frame) matches the direction of the caption it was given.
* **still prompts** — "nothing moves", "the scene is still" and the empty prompt: the 99th
  percentile over points (and scenes) of each point's largest displacement over the clip, in output
  pixels (the projection's image-plane displacement).
"""

from __future__ import annotations

import torch

from ..data.procedural.naming import MIN_OBJECT_PIXELS, first_mover, nameable_objects, named_caption
from ..geometry.projection import project_points

STILL_PROMPTS = ("nothing moves", "the scene is still", "")
CONTROLS = ("named", "direction", "still")  # the named object, the direction, the still prompts
__all__ = ["CONTROLS", "MIN_OBJECT_PIXELS", "STILL_PROMPTS", "direction_cases", "direction_sign", "first_mover",
           "nameable_objects", "named_caption", "named_share", "pixel_displacement", "still_drift", "to_run"]
SWAPPED = {"left": "right", "right": "left", "up": "down", "down": "up", "toward the camera": "away",
           "away": "toward the camera"}


def to_run(which) -> frozenset[str]:
    """The controls to run: ``which`` True (all of :data:`CONTROLS`), False / None (none) or their names."""
    if which is True:
        return frozenset(CONTROLS)
    if not which:
        return frozenset()
    if isinstance(which, str):
        which = [which]
    chosen = frozenset(which)
    unknown = sorted(chosen - set(CONTROLS))
    if unknown:
        raise ValueError(f"unknown control(s) {', '.join(map(repr, unknown))}: choose from {', '.join(CONTROLS)}")
    return chosen


def pixel_displacement(tracks: torch.Tensor, intrinsics: torch.Tensor, pixel_scale: float) -> torch.Tensor:
    """``[T, N]``: image-plane distance of each point from its frame-0 projection, in pixels of an
    image ``pixel_scale`` times the grid's size."""
    p = tracks.double().clone()
    p[..., 2].clamp_(min=1e-6)  # a point pushed behind the camera counts as far off, not as NaN
    uv, _ = project_points(p, intrinsics.double())
    return (uv - uv[:1]).norm(dim=-1) * pixel_scale


def still_drift(tracks: torch.Tensor, intrinsics: torch.Tensor, pixel_scale: float) -> torch.Tensor:
    """``[N]``: each point's largest displacement over the clip, in output pixels."""
    return pixel_displacement(tracks, intrinsics, pixel_scale).amax(dim=0)


def named_share(tracks: torch.Tensor, sample, index: int, pixel_scale: float) -> float:
    """Share of the predicted motion on object ``index``'s true pixels."""
    motion = pixel_displacement(tracks, sample.intrinsics, pixel_scale).mean(dim=0)
    on = sample.object_id[0].reshape(-1) == index
    total = float(motion.sum())
    return float(motion[on].sum()) / total if total > 0 else 0.0


def direction_cases(sample) -> list[tuple[str, int, float]]:
    """``(caption, axis, expected sign)`` for the true and the swapped direction of a translating
    first mover (empty when the first mover does not translate)."""
    index = first_mover(sample)
    if index is None:
        return []
    obj = sample.params["objects"][index]
    motion = obj["motion"]
    if motion["kind"] != "translate":
        return []
    vector = motion["vector"]
    axis = max(range(3), key=lambda a: abs(vector[a]))
    sign = 1.0 if vector[axis] > 0 else -1.0
    direction = next(d for d in sorted(SWAPPED, key=len, reverse=True) if d in motion["phrase"])
    clause = f"the {obj['name']} {motion['phrase']}"
    swapped = f"the {obj['name']} {motion['phrase'].replace(direction, SWAPPED[direction])}"
    caption = sample.caption
    return [(caption, axis, sign), (caption.replace(clause, swapped, 1), axis, -sign)]


def direction_sign(tracks: torch.Tensor, sample, axis: int) -> float:
    """Sign of the first mover's mean predicted displacement along ``axis`` at the last frame."""
    on = sample.object_id[0].reshape(-1) == first_mover(sample)
    disp = (tracks[-1, on, axis] - tracks[0, on, axis]).double().mean()
    return float(torch.sign(disp))
