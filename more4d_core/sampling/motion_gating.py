"""Applying a model's motion gate (``models/motion_gate.py``) to the sampled motion, and saying what it kept.

The gate's probability that each position of its grid moves is brought to the latent grid (bilinear) and
the motion latents of the positions below the model's ``motion_gate_threshold`` are set to zero. Motion
latents are linear in the motion field (zero latents decode to no motion), so those points stay exactly
still; the others keep the denoiser's motion unchanged.

Whether the gate is used (:func:`gate_enabled`): ``"on"``, ``"off"`` or ``"auto"`` (the default), which
uses it unless the depth comes from the built-in weight-free prior. The gate reads the objects from the
image and the depth; on validation scenes with the prior's depth it froze the object the prompt names
(direction correct 0.88 without the gate, 0.38-0.56 with it), while with the true depth and with the true
depth under a depth model's kinds of errors it kept that object moving and the rest exactly still
(docs/bundled-model-history.md, "A motion gate holds still what should not move").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .pixel_gate import dilate_cells
from .switches import SWITCH_MODES, switch_mode

GATE_MODES = SWITCH_MODES
# depth sources "auto" does not gate (DepthResult.backend of the built-in prior, the evaluation's "prior"
# depth), with the words that tell the user why
UNGATED_DEPTH_SOURCES = {"prior": "the built-in prior's depth"}


def gate_enabled(mode: str | bool | None, depth_source: str | None) -> bool:
    """Whether to use a model's motion gate: ``mode`` "on" / "off" / "auto" (None = "auto"; True / False =
    "on" / "off"); "auto" is on unless ``depth_source`` (a DepthResult backend: "prior", "external",
    "transformers:...", or None when unknown) is the built-in prior's."""
    mode = switch_mode(mode, "motion_gate")
    return mode == "on" or (mode == "auto" and depth_source not in UNGATED_DEPTH_SOURCES)


def auto_left_off(mode: str | bool | None, depth_source: str | None) -> dict | None:
    """The scene-metadata summary when "auto" (``mode`` None or "auto") leaves the gate off for ``depth_source``
    (``moving_share`` None, ``off``: the depth it was left off for); None otherwise."""
    if mode in (None, "auto") and depth_source in UNGATED_DEPTH_SOURCES:
        return {"moving_share": None, "off": UNGATED_DEPTH_SOURCES[depth_source]}
    return None


@torch.no_grad()
def gate_probability(transformer, conditions, text: torch.Tensor) -> torch.Tensor | None:
    """``[1, h, w]`` probabilities that each position of the gate's grid (the token grid, or the latent grid for a
    fine gate) moves for the prompt (``text [1+, L, D]``, its first row), from ``conditions``
    (:class:`~.conditioning.Conditions`: the object encoder's features and input planes); None for a model
    without a motion gate."""
    gate = getattr(transformer, "motion_gate", None)
    objects = conditions.objects
    if gate is None or objects is None:
        return None
    planes = None if conditions.planes is None else conditions.planes[:1]
    return torch.sigmoid(gate(objects[:1], text[:1].to(objects.dtype), planes).float())


def latent_probability(probability: torch.Tensor, latent_hw: tuple[int, int]) -> torch.Tensor:
    """``probability [B, gh, gw]`` brought to the latent grid (bilinear): ``[B, 1, 1, h, w]``, shaped like the
    latents ``[B, C, T, h, w]`` it multiplies."""
    up = F.interpolate(probability.float().unsqueeze(1), size=tuple(latent_hw), mode="bilinear", align_corners=False)
    return up.unsqueeze(2)


def gate_mask(probability: torch.Tensor, latent_hw: tuple[int, int], threshold: float) -> torch.Tensor:
    """``[B, 1, 1, h, w]`` 1/0 multipliers of motion latents ``[B, C, T, h, w]``: ``probability [B, gh, gw]``
    brought to the latent grid (:func:`latent_probability`), 1 where it is at least ``threshold``."""
    return (latent_probability(probability, latent_hw) >= threshold).float()


def apply_motion_gate(latents: torch.Tensor, probability: torch.Tensor, threshold: float,
                      dilate: bool = False) -> tuple[torch.Tensor, dict]:
    """(``latents`` with the positions judged still set to zero, a summary for the scene's metadata:
    ``moving_share``, the share of the image kept moving, and ``threshold``). ``dilate``: the kept cells grown by
    one cell first (for the pixel gate, :mod:`.pixel_gate`, which then decides each output pixel)."""
    keep = gate_mask(probability.to(latents.device), latents.shape[-2:], threshold)
    summary = {"moving_share": round(float(keep.mean()), 4), "threshold": threshold}
    if dilate:
        keep = dilate_cells(keep)
    return latents * keep.to(latents.dtype), summary


def describe_gate(summary: dict) -> str:
    """One line for people: how much of the image the model lets move."""
    if summary.get("off"):
        return (f"the motion gate is off for {summary['off']} (on that depth it holds the objects the prompt names "
                "still); give the depth of a depth model or a depth map to use it, or set motion_gate to on")
    share = summary.get("pixel_moving_share", summary["moving_share"])  # what moves, per pixel where decided so
    if share == 0:
        return ("the motion gate judges that nothing in the image moves for this prompt, so the scene stays still "
                "(turn motion_gate off to see the denoiser's motion alone)")
    if share >= 1.0:
        return "the motion gate lets the whole image move"
    line = f"the motion gate lets {100 * share:.0f}% of the image move; the rest stays exactly still"
    if summary.get("object_focus"):  # segments held still by the focus on one object per clause
        count = summary["object_focus"]
        line += f"; {count} other region{'s' if count != 1 else ''} it was less sure of held still"
    fitted = summary.get("rigid_segments")  # segments by the fit they took (sampling.rigid_motion)
    total = sum(fitted[kind] for kind in ("translation", "similarity", "as generated")) if fitted else 0
    if total:
        whole = fitted["translation"] + fitted["similarity"]
        line += f"; {whole} of its {total} moving segments move as one piece"
        if whole and summary.get("rigid_keeps_size"):
            line += " and keep their size (the prompt names no growth)"
        grown = fitted.get("strengthened", 0)
        if grown and summary.get("rigid_growth_power"):
            line += (f"; {grown} of them grow{'s' if grown == 1 else ''} as the prompt names, the fitted size change "
                     f"strengthened (raised to the power {summary['rigid_growth_power']:g})")
        turned = fitted.get("turned", 0)
        if turned and summary.get("rigid_spin_gain"):
            line += (f"; {turned} of them spin{'s' if turned == 1 else ''} as the prompt names, the fitted turn "
                     f"{summary['rigid_spin_gain']:g} times as far")
        on_axis = fitted.get("on axis", 0)
        if on_axis:
            line += (f"; {on_axis} of them move{'s' if on_axis == 1 else ''} along the one axis the prompt names "
                     "(left / right, up / down, toward / away) alone")
    return line
