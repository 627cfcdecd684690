"""One object per clause: the motion an object clause keeps goes to the object the gate is surest of.

A clause names one subject ("the ball slides right"), but the gate's probability is rarely zero on the other objects:
with the pixel gate (:mod:`.pixel_gate`) every pixel whose probability reaches the threshold keeps its motion, and on
the training stream's named-object cases the other objects kept 16-20% of their pixels and took 13% of the predicted
motion. The named object is almost always the one the gate is surest of: its mean probability was the highest of the
scene's objects in 145 of 150 cases (docs/bundled-model-history.md, "One object per clause").

So the whole image is split into depth segments (:func:`.rigid_motion.motion_segments`: connected pixels cut where
the depth jumps), each segment is scored by the clause's mean probability over it, and the kept pixels of every
segment of at least :data:`.rigid_motion.MIN_SEGMENT` pixels scoring below ``ratio`` times the best segment's score
are held still, unless the segment touches the best one. Where the depth jumps, the farther pixels of the edge form
segments of their own (the named object's rim against the room, the far face of a box at the edge where it turns
away), and those touch the best segment: they keep what the gate gave them, and the box stays whole. Prompts of
several object clauses are focused clause by clause and the kept pixels joined.
"""

from __future__ import annotations

import torch

from .rigid_motion import DEPTH_JUMP, MIN_SEGMENT, motion_segments

# chosen on the training stream (seeds from 991000000 and 991000500 for the named share, 990000000 and 990000150 for
# the moving points; docs/bundled-model-history.md, "One object per clause"), never on validation: what "on" uses
# for a model file that names no ratio of its own
FOCUS_RATIO = 0.8


def touching(labels: torch.Tensor, label: int) -> torch.Tensor:
    """``[labels.max() + 1]`` bool: the labels of ``labels [H, W]`` with a 4-neighbour pixel labelled ``label``."""
    out = torch.zeros(int(labels.max()) + 1, dtype=torch.bool, device=labels.device)
    for a, b in ((labels[:-1], labels[1:]), (labels[:, :-1], labels[:, 1:])):
        out[b[a == label]] = True
        out[a[b == label]] = True
    out[label] = False
    return out


def focus_keep(probability: torch.Tensor, points0: torch.Tensor, threshold: float, ratio: float, *,
               depth_jump: float = DEPTH_JUMP, min_segment: int = MIN_SEGMENT) -> tuple[torch.Tensor, int]:
    """``probability [C, H, W]`` (each object clause's, on the output pixels) and the frame-0 points ``[H, W, 3]`` ->
    ``[H, W]`` bool: the pixels some clause keeps (probability at least ``threshold``) after its focus, and how many
    segments the focus held still."""
    clauses, h, w = probability.shape
    labels = torch.from_numpy(motion_segments(points0, torch.ones(h, w, dtype=torch.bool), depth_jump)).long()
    labels = labels.to(probability.device)
    flat = labels.reshape(-1)
    count = int(flat.max()) + 1
    sizes = torch.bincount(flat, minlength=count).double()
    keep = torch.zeros(h * w, dtype=torch.bool, device=probability.device)
    held = 0
    for c in range(clauses):
        p = probability[c].reshape(-1).double()
        kept = p >= threshold
        score = torch.bincount(flat, weights=p, minlength=count) / sizes.clamp(min=1)
        candidates = (sizes >= min_segment) & (torch.bincount(flat, weights=kept.double(), minlength=count) > 0)
        if bool(candidates.any()):
            best = int(torch.where(candidates, score, torch.full_like(score, -1.0)).argmax())
            drop = candidates & (score < ratio * score[best]) & ~touching(labels, best)
            held += int(drop.sum())
            kept &= ~drop[flat]
        keep |= kept
    return keep.reshape(h, w), held
