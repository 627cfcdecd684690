"""What a user should know about one generation, as lines for people, read from the scene's metadata.

The runner prints them per Generate node and the Generate node shows them on itself: where the model
reads the prompt's objects (its object binding), how much of the image its motion gate lets move, which
clauses of the prompt were sampled one by one (clause composition), and when the model's default motion smoothing was left off for the depth it was given.
"""

from __future__ import annotations

from .clause_composition import describe_clauses
from .motion_gating import describe_gate
from .motion_smoothing import describe_smoothing_off
from .prompt_binding import describe_binding


def generation_notes(metadata: dict) -> list[str]:
    """The lines for a generated scene's ``metadata`` (none for a model without a binding or gate)."""
    lines = []
    if "prompt_binding" in metadata:
        lines.append(describe_binding(metadata["prompt_binding"]))
    if "motion_gate" in metadata:
        lines.append(describe_gate(metadata["motion_gate"]))
        if metadata["motion_gate"].get("clauses"):
            lines.append(describe_clauses(metadata["motion_gate"]))
    if metadata.get("motion_smoothing_default_off"):
        lines.append(describe_smoothing_off(metadata["motion_smoothing_default_off"]))
    return lines
