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

With ``clause_composition="gate_camera"`` a prompt of one or more object clauses and one camera clause
("the card bends toward the camera and the ball slides right slowly, while the camera pans left") is composed
as well: each object clause is sampled together with the camera clause ("the ball slides right slowly, while
the camera pans left"), the camera clause alone once more, and each position takes the motion of the object
clause whose gate (read for the object clause alone, which says where that object is) claims it, or else the
camera clause's motion where its own gate lets it move. The small model can take an object's direction for
the camera's when one caption names both (validation seed 43: a grown model reversed that scene's pan, while
each clause alone was right; docs/bundled-model-history.md, "A deeper denoiser"). It costs one sampling per object clause and one
for the camera.

Which prompts are split (:func:`plan_clauses`), on the words the model reads (``models/vocabulary.py``):
the prompt is cut at every "and" and "while"; every piece must be a clause (a subject noun and a motion verb),
an object clause when its subject is not the camera. Two or more object clauses and no camera clause are
composed with "gate" or "gate_camera"; one or more object clauses and exactly one camera clause only with
"gate_camera". "the ball and the box slide right" (a piece without a verb), a camera clause alone, two camera
clauses or a still prompt keep the whole prompt, as does a model without a gate or a generation with the gate
off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import InputError
from ..models.vocabulary import read_prompt
from .motion_gating import latent_probability
from .pixel_gate import dilate_cells
from .switches import SWITCH_MODES, switch_mode

COMPOSE_MODES = SWITCH_MODES
SEPARATORS = frozenset({"and", "while"})
SUBJECTS = frozenset({"ball", "box", "card", "disc", "object", "camera"})
VERBS = frozenset({"moves", "bounces", "spins", "grows", "shrinks", "waves", "ripples", "bends", "pans", "rises"})


def composition_kind(mode: str | bool | None, default: str) -> str:
    """Which prompts to compose: "none", "gate" (object clauses only) or "gate_camera" (also object clauses with a
    camera clause), for ``mode`` "on" / "off" / "auto" (None = "auto"; True / False = "on" / "off") and the model's
    ``default`` (``STraGConfig.clause_composition``): "auto" follows the default, "on" too unless the default is
    "none" (then "gate"), "off" is "none"."""
    mode = switch_mode(mode, "clause_composition")
    if mode == "off":
        return "none"
    return "gate" if mode == "on" and default == "none" else default


@dataclass(frozen=True)
class ClausePlan:
    """How a prompt is sampled clause by clause: its object clauses and, with "gate_camera", its camera clause."""

    objects: tuple[str, ...]
    camera: str | None = None

    def sampled(self, clause: str) -> str:
        """The text sampled for the object ``clause``: with the camera clause when there is one."""
        return clause if self.camera is None else f"{clause}, while {self.camera}"

    @property
    def samplings(self) -> int:
        return len(self.objects) + (self.camera is not None)


def plan_clauses(words: list[str], kind: str = "gate") -> ClausePlan | None:
    """The clauses of a prompt read into the model's ``words`` for composition ``kind`` ("gate" or
    "gate_camera"), or None when the prompt is sampled whole (see the module doc). Each piece is judged on its
    trained words (:func:`~..models.vocabulary.read_prompt`), so a model that reads every word ("open"
    vocabulary) has its prompts split as the bundled one's are."""
    pieces: list[list[str]] = [[]]
    for word in words:
        if word in SEPARATORS:
            pieces.append([])
        else:
            pieces[-1].append(word)
    if kind == "none" or len(pieces) < 2:
        return None
    objects, cameras = [], []
    for piece in pieces:
        read = read_prompt(" ".join(piece)).words
        subject = next((w for w in read if w in SUBJECTS), None)
        if subject is None or not any(w in VERBS for w in read):
            return None
        (cameras if subject == "camera" else objects).append(" ".join(piece))
    if not cameras and len(objects) >= 2:
        return ClausePlan(tuple(objects))
    if kind == "gate_camera" and len(cameras) == 1 and objects:
        return ClausePlan(tuple(objects), cameras[0])
    return None


def clause_progress(progress: Callable[[int, int], None] | None, clause: int,
                    clauses: int) -> Callable[[int, int], None] | None:
    """``progress(done, total)`` of one clause's sampling as a part of all ``clauses`` samplings."""
    if progress is None:
        return None

    def report(done: int, total: int) -> None:
        progress(clause * total + done, clauses * total)

    return report


def compose_latents(latents: list[torch.Tensor], probabilities: list[torch.Tensor], threshold: float,
                    rest: tuple[torch.Tensor, torch.Tensor] | None = None,
                    dilate: bool = False) -> tuple[torch.Tensor, dict]:
    """Clause latents ``[B, C, T, h, w]`` and their gate probabilities ``[B, gh, gw]`` -> (one latent where each
    position takes the clause of highest probability if it reaches ``threshold``; a position no clause claims takes
    ``rest`` = (latent, gate probability), the camera clause's, where that probability reaches ``threshold``, and
    is zero otherwise; a summary for the scene's metadata: ``moving_share`` (of the image), ``clause_shares``,
    ``camera_share`` (with ``rest``) and ``threshold``). ``dilate`` (without ``rest`` only): the moving cells grown
    by one cell first, each taking its clause of highest probability (for the pixel gate, :mod:`.pixel_gate`)."""
    if not latents or len(latents) != len(probabilities):
        raise InputError(f"composing clauses needs one gate probability per clause latent, got {len(latents)} "
                         f"latents and {len(probabilities)} probabilities")
    hw = latents[0].shape[-2:]
    up = torch.stack([latent_probability(p, hw) for p in probabilities])  # [K, B, 1, 1, h, w]
    if dilate and rest is not None:
        raise InputError("the pixel gate composes object clauses only: with a camera clause the rest of the image "
                         "moves with the camera")
    best, moves = up.argmax(0), up.amax(0) >= threshold
    region = dilate_cells(moves.float()) > 0 if dilate else moves  # where the clauses' latents are kept
    keeps = [(region & (best == k)).float() for k in range(len(latents))]
    out = sum(lat * keep.to(lat.dtype) for lat, keep in zip(latents, keeps))
    summary = {"clause_shares": [round(float((moves & (best == k)).float().mean()), 4) for k in range(len(latents))]}
    if rest is not None:
        camera = ~moves & (latent_probability(rest[1], hw) >= threshold)
        out = out + rest[0] * camera.to(rest[0].dtype)
        summary["camera_share"] = round(float(camera.float().mean()), 4)
        moves = moves | camera
    return out, {"moving_share": round(float(moves.float().mean()), 4), **summary, "threshold": threshold}


def describe_clauses(summary: dict) -> str:
    """One line for people: which clauses were sampled one by one, and how much of the image each moves."""
    parts = ", ".join(f'"{c}" {100 * share:.0f}%' for c, share in zip(summary["clauses"], summary["clause_shares"]))
    camera = summary.get("camera_clause")
    if camera is None:
        return (f"the prompt's {len(summary['clauses'])} clauses were sampled one by one and each moves what the gate "
                f"gives it ({parts} of the image); set clause_composition to off to sample the whole prompt at once")
    return (f"the prompt's {len(summary['clauses'])} object clause(s) were sampled one by one, each with "
            f'"{camera}", and each moves what the gate gives it ({parts} of the image); the rest moves as '
            f'"{camera}" alone ({100 * summary.get("camera_share", 0.0):.0f}%); set clause_composition to off to '
            "sample the whole prompt at once")
