"""What part of the image the prompt names, as the model reads it (models with an object binding).

A model with ``object_binding="attention"`` decides, before it generates any motion, which positions of
the image the caption's words name (``models/object_binding.py``). When a generation moves the wrong
object, that reading is the first thing to look at, so every generation records it in the scene's
metadata (``prompt_binding``) and the runner and the Generate node say it in one line:

* ``share_of_image``: the mean probability over the image that a position is named (0..1);
* ``box``: the bounding box of the positions named with probability above one half, as fractions of
  the image width and height ``[x0, y0, x1, y1]``, or None when no position is.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def binding_probability(transformer, objects: torch.Tensor | None, text: torch.Tensor) -> torch.Tensor | None:
    """``[h, w]`` probabilities on the token grid that the prompt (``text [1+, L, D]``, its first row) names
    each position; None for a model without an object binding."""
    binding = getattr(transformer, "object_binding", None)
    if binding is None or objects is None:
        return None
    _, logits = binding(objects[:1], text[:1].to(objects.dtype))
    return torch.sigmoid(logits[0].float()).cpu()


def binding_summary(probability: torch.Tensor) -> dict:
    """``share_of_image`` and ``box`` (see the module) of an ``[h, w]`` probability map."""
    h, w = probability.shape
    named = probability > 0.5
    box = None
    if bool(named.any()):
        ys, xs = torch.nonzero(named, as_tuple=True)
        box = [round(float(xs.min()) / w, 4), round(float(ys.min()) / h, 4),
               round(float(xs.max() + 1) / w, 4), round(float(ys.max() + 1) / h, 4)]
    return {"share_of_image": round(float(probability.mean()), 4), "box": box}


def describe_binding(summary: dict) -> str:
    """One line for people: how much of the image the prompt names, and where."""
    box = summary.get("box")
    if box is None:
        return ("the model finds nothing in the image that the prompt names (no object will be moved by it; "
                "a camera move still applies)")
    x0, y0, x1, y1 = (round(100 * v) for v in box)
    return (f"the prompt names {100 * summary['share_of_image']:.0f}% of the image, "
            f"at x {x0}-{x1}%, y {y0}-{y1}% of the frame (from the left and the top)")
