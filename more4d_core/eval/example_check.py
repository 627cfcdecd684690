"""How well a generated scene of the bundled example follows its true motion.

The bundled example image is a procedural scene (held-out split, seed 100: "the ball slides right
quickly", camera still), so its true tracks are known. :func:`check_example` scores a generated
scene against them the way the evaluation does (:mod:`.protocol`): the generated motion,
relative to its own frame-0 depth, is placed on the true frame-0 points (the workflow's depth may
be the built-in prior's), sampled on the 96x128 grid of the truth and counted in pixels of a
512-wide output. It reports the within-threshold average on moving and still points and the share
of the motion that falls on the named object, next to "nothing moves".
"""

from __future__ import annotations

import torch

from ..data.procedural.scene_generator import generate_sample
from ..geometry.normalization import NormalizationFactors, rebase_motion
from .baselines import static_tracks
from .controls import named_share
from .metrics import moving_points, score

EXAMPLE_SEED, EXAMPLE_SPLIT, EXAMPLE_PROMPT = 100, "heldout", "the ball slides right quickly"
TRUTH_HW = (96, 128)


def _sample_grid(points: torch.Tensor, grid_hw: tuple[int, int], hw: tuple[int, int]) -> torch.Tensor:
    """Tracks ``[T, H*W, 3]`` of a ``grid_hw`` grid at the pixels nearest to the centres of an ``hw`` grid."""
    (h0, w0), (h, w) = grid_hw, hw
    rows = ((torch.arange(h) + 0.5) * h0 / h).long().clamp(max=h0 - 1)
    cols = ((torch.arange(w) + 0.5) * w0 / w).long().clamp(max=w0 - 1)
    grid = points.reshape(points.shape[0], h0, w0, 3)[:, rows][:, :, cols]
    return grid.reshape(points.shape[0], h * w, 3)


def check_example(points: torch.Tensor, grid_hw: tuple[int, int], *, output_width: int = 512) -> dict:
    """Scores of generated tracks ``[T, H*W, 3]`` (grid ``grid_hw``) of the bundled example."""
    truth = generate_sample(EXAMPLE_SEED, EXAMPLE_SPLIT, *TRUTH_HW, points.shape[0])
    sampled = _sample_grid(points.double(), grid_hw, TRUTH_HW)
    pred = rebase_motion(sampled, truth.tracks[0].double()).float()
    scale = output_width / TRUTH_HW[1]
    moving = moving_points(truth.tracks, truth.intrinsics, pixel_scale=scale)
    factors = NormalizationFactors.from_intrinsics(truth.intrinsics, *TRUTH_HW)
    named = truth.params["movers"][0]
    out = {"caption": truth.caption, "moving_points": int(moving.sum()), "points": int(moving.numel())}
    for name, tracks in (("model", pred), ("nothing moves", static_tracks(truth.tracks[0], truth.tracks.shape[0]))):
        cells = {pt: score(tracks, truth.tracks, truth.visibility, truth.intrinsics, factors, pixel_scale=scale,
                           points=mask).within_avg for pt, mask in (("moving", moving), ("still", ~moving))}
        cells["named_share"] = named_share(tracks, truth, named, scale) if name == "model" else None
        out[name] = cells
    return out


def format_example_check(result: dict) -> str:
    m, s = result["model"], result["nothing moves"]
    return (f"bundled example vs its true motion ({result['caption']!r}; {result['moving_points']} of "
            f"{result['points']} points move), within-threshold average in 512-wide output pixels:\n"
            f"  moving points: model {m['moving']:.3f}, nothing moves {s['moving']:.3f}\n"
            f"  still points:  model {m['still']:.3f}, nothing moves {s['still']:.3f}\n"
            f"  share of the model's motion on the ball: {m['named_share']:.2f}")
