"""The evaluation protocol: procedural scenes of one split, every method scored per cell, controls.

Cells: scenes where the camera moves / stays still, crossed with points that move / stay still
(a point moves when its true track moves more than 2 output pixels at some frame, see
:func:`.metrics.moving_points`), plus "all". Methods:

* ``model`` — the headline: the model as it generates, with no post-processing (still hold off); a model
  whose sampler averages several samples (``sample_average``, :mod:`..sampling.sample_average`) generates
  that mean here;
* ``model, one sample`` — only for such a model: the first of those samples alone (its seed's one sample);
* ``model + still hold`` — the same generation with the still hold applied (post-processing);
* ``model + smoothing`` — the same generation with its motion averaged within surfaces (post-processing,
  :mod:`..sampling.motion_smoothing`; only when the model or the caller sets a smoothing);
* ``model, wrong caption`` — another scene's caption;
* ``nothing moves`` — every point stays at its frame-0 position;
* ``mean motion`` — the average training motion field;
* ``codec oracle`` — the ground truth through the model's trajectory codec (the representation's ceiling);
* ``model, lateral error only`` / ``model, depth error only`` — only with ``axis_split``: the headline generation
  scored on the lateral (camera x, y) or the depth (camera z) part of its error alone (:data:`.metrics.ERROR_AXES`):
  where a row stays low, that part of the motion is what keeps the points outside the thresholds.

``by_motion`` splits the headline's moving points of still-camera scenes by what each mover does
(:mod:`.by_motion`): the model's and "nothing moves"'s scores and how far and which way the model
moves them.

The depth the model sees is the true depth, the true depth with a depth model's kinds of errors
(``depth="perturbed"``: one to three of scale and shift, range, smoothed or misplaced edges and a
low-frequency error, drawn per scene from a fixed seed, :mod:`..train.depth_noise`) or the built-in
prior's (``depth="prior"``). With a depth other than the true one the model's normalized motion is
placed on the true frame-0 points, so the scores measure the motion it generates from that depth, not
the depth's own error.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
import torch

from ..data.procedural.motions import RIGID_KINDS
from ..data.procedural.scene_generator import RECIPE, SPLIT_STREAMS, generate_sample
from ..depth.estimate import prior_depth_at
from ..geometry.normalization import NormalizationFactors, denormalize_motion, normalize_motion, rebase_motion
from ..models.config import RIGID_OFF
from ..sampling.clause_composition import composition_kind
from ..sampling.motion_gating import gate_enabled
from ..sampling.motion_smoothing import check_motion_smoothing, smoothing_for
from ..sampling.sample_average import check_sample_average
from ..sampling.still import hold_still
from ..train.depth_noise import ESTIMATOR_KINDS, perturb_depth
from . import controls
from .baselines import MeanMotion, static_tracks
from .by_motion import MotionBreakdown, displacement_agreement, motion_group, rigid_spread
from .metrics import TrajectoryScores, mean_scores, moving_points, score

METHODS = ("model", "model, one sample", "model + still hold", "model + smoothing", "model, wrong caption", "nothing moves", "mean motion", "codec oracle")
AXIS_ROWS = {"model, lateral error only": "xy", "model, depth error only": "z"}  # with axis_split: the model's error by axis
SCENES = ("camera still", "camera moves", "all scenes")
POINTS = ("moving", "still", "all")
DEPTHS = ("true", "perturbed", "prior")
PERTURBED_DEPTH_SEED = 20261203  # the "perturbed" depth's errors: fixed, so every run sees the same depths


def depth_seen(scene, depth: str, seed: int) -> torch.Tensor:
    """The ``[H, W]`` depth the model is given for ``scene`` (of scene seed ``seed``) under ``depth`` (see the module doc)."""
    if depth == "true":
        return scene.depth[0]
    if depth == "perturbed":
        rng = np.random.default_rng((PERTURBED_DEPTH_SEED, seed))
        return perturb_depth(scene.depth[0], rng, pool=ESTIMATOR_KINDS)
    return prior_depth_at(scene.image, scene.intrinsics)


def metric_factors(k, hw) -> NormalizationFactors:
    """Displacement as a fraction of the image size: the unit of EPE3D and of the mean-motion
    baseline, whatever normalization the evaluated model generates in."""
    return NormalizationFactors.from_intrinsics(k, *hw)


@torch.no_grad()
def codec_round_trip(generator, tracks: torch.Tensor, hw: tuple[int, int], intrinsics) -> torch.Tensor:
    """Ground-truth tracks ``[T, N, 3]`` encoded and decoded by the generator's trajectory codec."""
    factors = generator.normalization_factors(intrinsics, hw)
    grid = tracks.reshape(tracks.shape[0], *hw, 3)[None].float()
    codec = generator.codec
    dev = next((b.device for b in codec.buffers()), torch.device("cpu"))
    latents = codec.encode_tracks(grid.to(dev), factors)
    out = codec.decode_tracks(latents, grid[:, 0].to(dev), factors, num_frames=tracks.shape[0])
    return out[0].reshape(tracks.shape).cpu()


def with_still_hold(generator, tracks: torch.Tensor, intrinsics, hw, threshold: float) -> torch.Tensor:
    """The still hold applied to generated tracks (the same ramp as at generation)."""
    factors = generator.normalization_factors(intrinsics, hw)
    field = normalize_motion(tracks.double(), factors)  # [T, N, 3]
    held = hold_still(field.permute(2, 0, 1).reshape(1, 3, field.shape[0], *hw), threshold)
    held = held[0].reshape(3, field.shape[0], -1).permute(1, 2, 0)
    return denormalize_motion(held, tracks[0].double(), factors).float()


def evaluate(generator, *, split: str = "heldout", samples: int = 48, seed: int = 0, steps: int | None = None,
             guidance: float | None = None, motion_gate: str = "auto", clause_composition: str = "auto",
             mirror_average: str = "auto", depth: str = "true", still_threshold: float | None = None, still_sweep: tuple[float, ...] = (),
             smoothing: float | None = None, smoothing_sweep: tuple[float, ...] = (),
             sample_average: int | None = None, with_controls: bool | Iterable[str] = True, axis_split: bool = False,
             mean_samples: int = 256, height: int | None = None, width: int | None = None,
             num_frames: int | None = None, output_width: int = 512, log=print) -> dict:
    """Score the model, the baselines and the controls on ``samples`` scenes of ``split`` (seeds
    ``seed .. seed + samples - 1``); see the module doc. ``with_controls``: True (every control), False (none)
    or the names of those to run (:data:`.controls.CONTROLS`). Returns a JSON-ready dict."""
    run_controls = controls.to_run(with_controls)
    if split not in SPLIT_STREAMS:
        raise ValueError(f"split must be one of {tuple(SPLIT_STREAMS)}, got {split!r}")
    if depth not in DEPTHS:
        raise ValueError(f"depth must be one of {DEPTHS}, got {depth!r}")
    cfg = generator.config
    gated = cfg.motion_gate != "none" and gate_enabled(motion_gate, depth)
    h, w, frames = height or cfg.height, width or cfg.width, num_frames or cfg.num_frames
    hold = cfg.still_threshold if still_threshold is None else float(still_threshold)
    units = {"grid": 1.0, "output": output_width / w}
    out_scale = units["output"]
    start = time.perf_counter()
    train = (generate_sample(10**8 + i, "train", h, w, frames, with_visibility=False) for i in range(mean_samples))
    mean = MeanMotion(normalize_motion(s.tracks.double(), metric_factors(s.intrinsics, (h, w))) for s in train)
    if int(samples) != samples or samples < 2:
        raise ValueError(f"the evaluation needs at least 2 scenes (the wrong-caption control borrows another "
                         f"scene's caption), got samples={samples!r}")
    scenes = [generate_sample(seed + i, split, h, w, frames) for i in range(samples)]
    sweep = {f"model + still hold {t:g}": float(t) for t in still_sweep}  # threshold choices (on validation)
    smooth = smoothing_for(smoothing, cfg.motion_smoothing, depth)[0]  # as generate() uses it for this depth
    smooth_rows = {**({"model + smoothing": smooth} if smooth > 0 else {}),
                   **{f"model + smoothing {v:g}": check_motion_smoothing(v) for v in smoothing_sweep}}  # choices (on validation)
    averaged = check_sample_average(cfg.sample_average if sample_average is None else sample_average)
    mirrored = generator.mirror_choice(mirror_average, averaged)[1]  # the note generate() records
    left_out = {"model + smoothing"} if smooth <= 0 else set()
    left_out |= {"model, one sample"} if averaged == 1 else set()
    axis_rows = AXIS_ROWS if axis_split else {}
    methods = tuple(m for m in METHODS if m not in left_out) + tuple(sweep) + tuple(smooth_rows) + tuple(axis_rows)
    per: dict[str, dict[str, dict[str, list[TrajectoryScores]]]] = {
        u: {m: {f"{sc} / {pt}": [] for sc in SCENES for pt in POINTS} for m in methods} for u in units}
    drift = {p: [] for p in controls.STILL_PROMPTS}
    shares, directions = [], []
    share_cases = []  # each named-object case, for reading which ones fail
    camera_moves, gt_smooth, moving_fraction = [], [], []
    scene_records = []  # each scene's output-pixel within-threshold averages, for paired comparisons (compare.py)
    by_motion = MotionBreakdown()

    def run(s, caption, d, k, smoothing=0.0, count=averaged):
        pred = generator.generate(s.image, d, s.intrinsics, caption, seed=seed + k, steps=steps,
                                  guidance_scale=guidance, motion_gate=motion_gate,
                                  clause_composition=clause_composition, mirror_average=mirror_average,
                                  depth_source=depth,
                                  still_threshold=0.0, motion_smoothing=smoothing, sample_average=count).points
        return rebase_motion(pred.double(), s.tracks[0].double()).float() if depth != "true" else pred

    for i, s in enumerate(scenes):
        f = metric_factors(s.intrinsics, (h, w))
        d = depth_seen(s, depth, seed + i)
        moves = bool(s.params["camera"]["phrase"])
        camera_moves.append(moves)
        moving = moving_points(s.tracks, s.intrinsics, pixel_scale=out_scale)
        moving_fraction.append(float(moving.double().mean()))
        wrong = next((o.caption for o in scenes[i + 1 :] + scenes[:i] if o.caption != s.caption), None)
        if wrong is None:
            raise ValueError(f"every scene of the {split} split from seed {seed} has the caption {s.caption!r}: the "
                             "wrong-caption control needs another; evaluate more scenes (--samples)")
        model = run(s, s.caption, d, i)
        preds = {
            "model": model,
            **({"model, one sample": run(s, s.caption, d, i, count=1)} if averaged > 1 else {}),
            "model + still hold": with_still_hold(generator, model, s.intrinsics, (h, w), hold),
            "model, wrong caption": run(s, wrong, d, i),
            "nothing moves": static_tracks(s.tracks[0], frames),
            "mean motion": mean.predict(s.tracks[0], f),
            "codec oracle": codec_round_trip(generator, s.tracks, (h, w), s.intrinsics),
            **{name: with_still_hold(generator, model, s.intrinsics, (h, w), t) for name, t in sweep.items()},
            **{name: run(s, s.caption, d, i, v) for name, v in smooth_rows.items()},  # the same seed: the same latents
        }
        scene_cells = ("camera moves" if moves else "camera still", "all scenes")
        record = {"seed": seed + i, "camera": "moves" if moves else "still", "within_avg": {}}
        for unit, scale in units.items():
            scored = [(method, pred, "xyz") for method, pred in preds.items()]
            scored += [(row, model, axes) for row, axes in axis_rows.items()]
            for method, pred, axes in scored:
                for pt, mask in (("moving", moving), ("still", ~moving), ("all", None)):
                    result = score(pred, s.tracks, s.visibility, s.intrinsics, f, pixel_scale=scale, points=mask,
                                   axes=axes)
                    for sc in scene_cells:
                        per[unit][method][f"{sc} / {pt}"].append(result)
                    if unit == "output":
                        record["within_avg"].setdefault(method, {})[pt] = result.within_avg if result.points else None
        scene_records.append(record)
        gt_smooth.append(score(s.tracks, s.tracks, s.visibility, s.intrinsics, f).smoothness)
        if not moves:
            for index in s.params["movers"]:
                mask = moving & (s.object_id[0].reshape(-1) == index)
                scored = [score(p, s.tracks, s.visibility, s.intrinsics, f, pixel_scale=out_scale, points=mask)
                          for p in (model, preds["nothing moves"])]
                if scored[0].points:
                    gain, ratio = displacement_agreement(model, s.tracks, f, mask)
                    motion = s.params["objects"][index]["motion"]
                    spread = rigid_spread(model, s.tracks, mask) if motion["kind"] in RIGID_KINDS else None
                    by_motion.add(motion_group(motion), model=scored[0].within_avg, nothing=scored[1].within_avg,
                                  gain=gain, length_ratio=ratio, spread=spread)
        if "still" in run_controls:
            for prompt in controls.STILL_PROMPTS:
                drift[prompt].append(controls.still_drift(run(s, prompt, d, i), s.intrinsics, out_scale))
        if not moves and controls.first_mover(s) is not None:
            named = controls.nameable_objects(s) if "named" in run_controls else []
            if len(named) >= 2:
                for index in named:
                    caption = controls.named_caption(s, index)
                    share = controls.named_share(run(s, caption, d, i), s, index, out_scale)
                    shares.append(share)
                    share_cases.append({"seed": seed + i, "object": index, "caption": caption, "share": share})
            if "direction" in run_controls:
                for caption, axis, sign in controls.direction_cases(s):
                    directions.append(controls.direction_sign(run(s, caption, d, i), s, axis) == sign)
        if (i + 1) % 8 == 0:
            log(f"  evaluated {i + 1}/{len(scenes)} scenes ({time.perf_counter() - start:.0f} s)")

    cells = {u: {m: {c: mean_scores(items) for c, items in by_cell.items()} for m, by_cell in by_method.items()}
             for u, by_method in per.items()}
    result = {
        "split": split, "seeds": [seed, seed + samples - 1], "samples": samples, "recipe": RECIPE,
        "depth": depth, "steps": steps or cfg.steps, "shift": cfg.shift, "sample_average": averaged,
        "mirror_average": mirrored,
        "still_hold_threshold": hold, "motion_smoothing": smooth,
        "guidance": cfg.guidance_scale if guidance is None else float(guidance),
        "motion_gate": cfg.motion_gate_threshold if gated else "off",
        "clause_composition": composition_kind(clause_composition, cfg.clause_composition) if gated else "none",
        "motion_gate_pixels": bool(cfg.motion_gate_pixels) if gated else False,
        "rigid_segments": bool(cfg.rigid_segments) if gated else False,
        **{key: type(off)(getattr(cfg, key)) if gated and cfg.rigid_segments else off  # as the file says, or off
           for key, off in RIGID_OFF.items()},
        "object_focus": float(cfg.object_focus) if gated and cfg.motion_gate_pixels else 0.0,
        "scene_counts": {"camera moves": sum(camera_moves), "camera still": samples - sum(camera_moves)},
        "moving_point_fraction": sum(moving_fraction) / len(moving_fraction),
        "units": {"grid": f"{w} px wide grid", "output": f"{output_width} px wide output"},
        "cells": {u: {m: {c: (v.to_dict() if v is not None else None) for c, v in by_cell.items()}
                      for m, by_cell in by_method.items()} for u, by_method in cells.items()},
        "gt_smoothness": sum(gt_smooth) / len(gt_smooth),
        "by_motion": by_motion.summary(),
        "per_scene": scene_records,
    }
    if run_controls:
        result["controls"] = {
            **({"named_object_share": {"mean": sum(shares) / len(shares) if shares else None, "cases": len(shares),
                                       "per_case": share_cases}} if "named" in run_controls else {}),
            **({"direction_correct": {"fraction": sum(directions) / len(directions) if directions else None,
                                      "cases": len(directions)}} if "direction" in run_controls else {}),
            **({"still_prompt_drift_p99_px": {
                (p or "(empty prompt)"): (float(torch.quantile(torch.cat(v).float(), 0.99)) if v else None)
                for p, v in drift.items()}} if "still" in run_controls else {}),
        }
    result["seconds"] = time.perf_counter() - start
    return result
