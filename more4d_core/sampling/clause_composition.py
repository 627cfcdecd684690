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
from ..models.vocabulary import read_prompt
from .motion_gating import latent_probability

COMPOSE_MODES = ("auto", "on", "off")
SEPARATORS = frozenset({"and", "while"})
SUBJECTS = frozenset({"ball", "box", "card", "disc", "object", "camera"})
VERBS = frozenset({"moves", "bounces", "spins", "grows", "shrinks", "waves", "ripples", "bends", "pans", "rises"})


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
    up = torch.stack([latent_probability(p, latents[0].shape[-2:]) for p in probabilities])  # [K, B, 1, 1, h, w]
    best, moves = up.argmax(0), up.amax(0) >= threshold
    keeps = [(moves & (best == k)).float() for k in range(len(latents))]
    out = sum(lat * keep.to(lat.dtype) for lat, keep in zip(latents, keeps))
    return out, {"moving_share": round(float(moves.float().mean()), 4),
                 "clause_shares": [round(float(keep.mean()), 4) for keep in keeps], "threshold": threshold}


def describe_clauses(summary: dict) -> str:
    """One line for people: which clauses were sampled one by one, and how much of the image each moves."""
    parts = ", ".join(f'"{c}" {100 * share:.0f}%' for c, share in zip(summary["clauses"], summary["clause_shares"]))
    return (f"the prompt's {len(summary['clauses'])} clauses were sampled one by one and each moves what the gate "
            f"gives it ({parts} of the image); set clause_composition to off to sample the whole prompt at once")
