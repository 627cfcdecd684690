"""Clause composition: a prompt that moves two objects is sampled one clause at a time.

Asked for "the card moves away quickly and the box slides right quickly", the small model mixes the two
motions: on validation the card also slid and the box also receded (moving points 0.06 where "nothing
moves" scores about 0.15). Each clause alone it follows far better. With ``clause_composition="gate"``
(a model default, ``checkpoints/defaults.py``) a prompt of two or more *object clauses* joined by "and" is
sampled once per clause, every clause from the same noises, and the motion latents are composed with the
model's motion gate: each position takes the motion of the clause whose gate probability is highest there,
if it reaches the gate's threshold, and stays still otherwise. The gate already judges, per clause, which
positions that clause moves (``sampling/motion_gating.py``); composition only lets two gated clauses share
one scene. It costs one sampling per clause.

Which prompts are split (:func:`split_clauses`), on the words the model reads (``models/vocabulary.py``):
the prompt is cut at every "and" and "while"; composition applies only when every piece is an object clause
(a subject noun that is not the camera, and a motion verb) and there are at least two. "the ball and the box
slide right" (a piece without a verb), a camera clause ("..., while the camera pans right") or a still prompt
keep the whole prompt, as does a model without a gate or a generation with the gate off.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import InputError
from .motion_gating import gate_mask

CLAUSE_COMPOSITIONS = ("none", "gate")
COMPOSE_MODES = ("auto", "on", "off")
SEPARATORS = frozenset({"and", "while"})
SUBJECTS = frozenset({"ball", "box", "card", "disc", "object", "camera"})
VERBS = frozenset({"moves", "bounces", "spins", "grows", "shrinks", "waves", "ripples", "bends", "pans", "rises"})


def check_clause_composition(value: str) -> str:
    """``value`` if it names a composition (a model's default), else an :class:`InputError` listing them."""
    if value not in CLAUSE_COMPOSITIONS:
        raise InputError(f"clause_composition must be one of {', '.join(CLAUSE_COMPOSITIONS)}, got {value!r}")
    return value


def composition_enabled(mode: str | bool | None, default: str) -> bool:
    """Whether to compose clauses: ``mode`` "on" / "off" / "auto" (None = "auto"; True / False = "on" / "off");
    "auto" follows the model's ``default`` ("gate": on)."""
    mode = {None: "auto", True: "on", False: "off"}.get(mode, mode)
    if mode not in COMPOSE_MODES:
        raise InputError(f"clause_composition must be one of {', '.join(COMPOSE_MODES)}, got {mode!r}")
    return mode == "on" or (mode == "auto" and default == "gate")


def split_clauses(words: list[str]) -> list[str]:
    """The object clauses of a prompt read into the model's ``words``, each as text; a single-item list (the
    words joined) when the prompt is not two or more object clauses (see the module doc). Each piece is judged
    on its trained words (:func:`~..models.vocabulary.read_prompt`), so a model that reads every word ("open"
    vocabulary) has its prompts split as the bundled one's are."""
    pieces: list[list[str]] = [[]]
    for word in words:
        if word in SEPARATORS:
            pieces.append([])
        else:
            pieces[-1].append(word)
    whole = [" ".join(words)]
    if len(pieces) < 2:
        return whole
    from ..models.vocabulary import read_prompt  # here: models.config imports this module

    for piece in pieces:
        read = read_prompt(" ".join(piece)).words
        subject = next((w for w in read if w in SUBJECTS), None)
        if subject is None or subject == "camera" or not any(w in VERBS for w in read):
            return whole
    return [" ".join(piece) for piece in pieces]


def clause_progress(progress: Callable[[int, int], None] | None, clause: int,
                    clauses: int) -> Callable[[int, int], None] | None:
    """``progress(done, total)`` of one clause's sampling as a part of all ``clauses`` samplings."""
    if progress is None:
        return None

    def report(done: int, total: int) -> None:
        progress(clause * total + done, clauses * total)

    return report


def compose_latents(latents: list[torch.Tensor], probabilities: list[torch.Tensor],
                    threshold: float) -> tuple[torch.Tensor, dict]:
    """Clause latents ``[B, C, T, h, w]`` and their gate probabilities ``[B, gh, gw]`` -> (one latent where each
    position takes the clause of highest probability if it reaches ``threshold``, zero elsewhere; a summary for
    the scene's metadata: ``moving_share`` (of the image), ``clause_shares`` and ``threshold``)."""
    if not latents or len(latents) != len(probabilities):
        raise InputError(f"composing clauses needs one gate probability per clause latent, got {len(latents)} "
                         f"latents and {len(probabilities)} probabilities")
    hw = latents[0].shape[-2:]
    up = torch.stack([torch.nn.functional.interpolate(p.float().unsqueeze(1), size=tuple(hw), mode="bilinear",
                                                      align_corners=False)[:, 0] for p in probabilities])  # [K, B, h, w]
    best = up.argmax(0)
    out = torch.zeros_like(latents[0])
    kept = torch.zeros_like(best, dtype=torch.float32).unsqueeze(1).unsqueeze(1)
    shares = []
    for k, (lat, p) in enumerate(zip(latents, probabilities)):
        keep = gate_mask(p, hw, threshold) * (best == k).float().unsqueeze(1).unsqueeze(1)
        out = out + lat * keep.to(lat.dtype)
        kept = kept + keep
        shares.append(round(float(keep.mean()), 4))
    return out, {"moving_share": round(float(kept.mean()), 4), "clause_shares": shares, "threshold": threshold}


def describe_clauses(summary: dict) -> str:
    """One line for people: which clauses were sampled one by one, and how much of the image each moves."""
    parts = ", ".join(f'"{c}" {100 * share:.0f}%' for c, share in zip(summary["clauses"], summary["clause_shares"]))
    return (f"the prompt's {len(summary['clauses'])} clauses were sampled one by one and each moves what the gate "
            f"gives it ({parts} of the image); set clause_composition to off to sample the whole prompt at once")
