"""What part of the image the prompt names, as the model reads it (models with an object binding).

A model with ``object_binding="attention"`` decides, before it generates any motion, which positions of
the image the caption's words name (``models/object_binding.py``). When a generation moves the wrong
object, that reading is the first thing to look at, so every generation records it in the scene's
metadata (``prompt_binding``) and the runner and the Generate node say it in one line:

* ``share_of_image``: the mean probability over the image that a position is named (0..1);
* ``peak``: the largest probability of any position;
* ``box``: the bounding box of the positions named with probability above one half, as fractions of
  the image width and height ``[x0, y0, x1, y1]``, or None when no position is;
* ``likeliest_box``: the bounding box of the positions at least half as likely as the peak, when no
  position passes one half but the peak reaches ``WEAK`` (a weak reading: on the built-in depth prior
  an object flattened into its backdrop is often found this way), else None.
"""

from __future__ import annotations

import torch

WEAK = 0.1  # below this peak probability the prompt names nothing the model can find


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
    peak = float(probability.max())
    box = _box(probability > 0.5)
    likeliest = _box(probability >= peak / 2) if box is None and peak >= WEAK else None
    return {"share_of_image": round(float(probability.mean()), 4), "peak": round(peak, 4), "box": box,
            "likeliest_box": likeliest}


def _box(mask: torch.Tensor) -> list[float] | None:
    """``[x0, y0, x1, y1]`` of the true cells of ``mask [h, w]``, as fractions of its width and height."""
    if not bool(mask.any()):
        return None
    h, w = mask.shape
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return [round(float(xs.min()) / w, 4), round(float(ys.min()) / h, 4),
            round(float(xs.max() + 1) / w, 4), round(float(ys.max() + 1) / h, 4)]


def _where(box: list[float]) -> str:
    x0, y0, x1, y1 = (round(100 * v) for v in box)
    return f"x {x0}-{x1}%, y {y0}-{y1}% of the frame (from the left and the top)"


def describe_binding(summary: dict) -> str:
    """One line for people: how much of the image the prompt names, and where."""
    if summary.get("box") is not None:
        return f"the prompt names {100 * summary['share_of_image']:.0f}% of the image, at {_where(summary['box'])}"
    if summary.get("likeliest_box") is not None:
        return (f"the model finds what the prompt names only weakly (at most {100 * summary['peak']:.0f}% sure), "
                f"likeliest at {_where(summary['likeliest_box'])}; it may move little - a depth map where the "
                "object stands out from its background helps (--depth FILE or a depth model)")
    return ("the model finds nothing in the image that the prompt names (no object will be moved by it; "
            "a camera move still applies)")
