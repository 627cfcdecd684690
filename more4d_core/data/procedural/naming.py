"""Naming a procedural scene's objects: which are large enough to be named, and a caption naming one.

The evaluation's named-object control generates with the caption naming each object in turn; the motion
gate's fit (``train/gate_fit.py --named-captions``) teaches the same kind of caption on training scenes,
where the named object's pixels are the positions that should move.
"""

from __future__ import annotations

import torch

MIN_OBJECT_PIXELS = 30  # objects smaller than this on the scene's grid are not named


def nameable_objects(sample) -> list[int]:
    """Indices (into ``params["objects"]``) of the objects large enough in frame 0 to be named."""
    objects = sample.params["objects"]
    counts = torch.bincount(sample.object_id[0].reshape(-1), minlength=len(objects))
    return [i for i, o in enumerate(objects) if o["kind"] != "plane" and int(counts[i]) >= MIN_OBJECT_PIXELS]


def first_mover(sample) -> int | None:
    """Index of the first object the caption makes move (None when only the camera moves, or nothing)."""
    movers = sample.params.get("movers") or []
    return movers[0] if movers else None


def named_caption(sample, index: int) -> str:
    """The first mover's motion phrase with object ``index`` as its subject."""
    mover = sample.params["objects"][first_mover(sample)]
    return f"the {sample.params['objects'][index]['name']} {mover['motion']['phrase']}"
