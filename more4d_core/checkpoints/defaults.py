"""Write a model file's generation defaults (post-processing, samples averaged) without touching its weights.

    python -m more4d_core.checkpoints.defaults MODEL --out OUT [--still-threshold T] [--motion-smoothing S]
                                              [--sample-average N] [--steps K] [--shift S]
                                              [--clause-composition gate|none]
                                              [--motion-gate-threshold P] [--mirror-average on|off]
                                              [--motion-gate-pixels on|off] [--rigid-segments on|off]
                                              [--rigid-level L] [--rigid-scale any|prompted] [--object-focus R]
                                              [--rigid-clauses on|off] [--growth-power P] [--growth-limit L]

The still hold and the motion smoothing (post-processing), the number of samples the sampler
averages, its denoising steps, whether it composes a prompt's clauses, its motion gate's threshold, whether it
mirrors every other sample, decides the gate per pixel, moves each moving segment as one piece (where it cuts the
segments, which may change size and how far a named growth goes) and focuses each clause on one object are defaults a
model file carries (chosen on the validation split for that model, see docs/bundled-model-history.md). OUT is MODEL with every tensor copied
bit for bit and the chosen defaults in its config; the change is recorded in the file's ``info``
(``defaults_set``). OUT is written atomically and is never MODEL itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InputError
from ..help_text import command_parser
from ..models.config import CLAUSE_COMPOSITIONS, RIGID_OFF, RIGID_SCALES
from ..sampling.flow_sampler import check_shift, check_steps
from ..sampling.motion_smoothing import check_motion_smoothing
from ..sampling.sample_average import check_sample_average
from ..sampling.still import check_still_threshold
from .bundle import read_header, write_bundle
from .io import iter_safetensors


def set_defaults(model: str | Path, out: str | Path, *, still_threshold: float | None = None,
                 motion_smoothing: float | None = None, sample_average: int | None = None,
                 steps: int | None = None, shift: float | None = None, clause_composition: str | None = None,
                 motion_gate_threshold: float | None = None, mirror_average: bool | None = None,
                 motion_gate_pixels: bool | None = None, rigid_segments: bool | None = None,
                 rigid_level: float | None = None, rigid_scale: str | None = None, object_focus: float | None = None,
                 rigid_clauses: bool | None = None, growth_power: float | None = None,
                 growth_limit: float | None = None, spin_gain: float | None = None, spin_limit: float | None = None,
                 rigid_axes: bool | None = None, overwrite: bool = False) -> Path:
    """Write ``out``: the model file ``model`` with the given defaults (None: unchanged)."""
    model, out = Path(model), Path(out)
    if out.resolve() == model.resolve():
        raise InputError(f"write the new model file next to {model}, not over it (--out must be another path)")
    header = read_header(model)
    changes = {}
    if still_threshold is not None:
        changes["still_threshold"] = check_still_threshold(still_threshold)
    if motion_smoothing is not None:
        changes["motion_smoothing"] = check_motion_smoothing(motion_smoothing)
    if sample_average is not None:
        changes["sample_average"] = check_sample_average(sample_average)
    if steps is not None:
        changes["steps"] = check_steps(steps)
    if shift is not None:
        changes["shift"] = check_shift(shift)
    if clause_composition is not None:
        changes["clause_composition"] = clause_composition  # the config checks the name
    if motion_gate_threshold is not None:
        if header.config.motion_gate == "none":
            raise InputError(f"{model} has no motion gate, so it has no gate threshold to set")
        changes["motion_gate_threshold"] = float(motion_gate_threshold)  # the config checks the range
    if mirror_average is not None:
        changes["mirror_average"] = mirror_average  # the config checks it against the codec
    if motion_gate_pixels is not None:
        changes["motion_gate_pixels"] = motion_gate_pixels  # the config checks it against the gate and codec
        if not motion_gate_pixels and object_focus is None:
            changes["object_focus"] = 0.0  # no pixel gate, no focus on its pixels
    # the options that refine the segments, as given (None: unchanged); the config checks each one's type, range and
    # that the segments are on where it is not at its RIGID_OFF value
    rigid = {"rigid_level": None if rigid_level is None else float(rigid_level), "rigid_scale": rigid_scale,
             "rigid_clauses": rigid_clauses, "rigid_growth_power": growth_power, "rigid_growth_limit": growth_limit,
             "rigid_spin_gain": spin_gain, "rigid_spin_limit": spin_limit, "rigid_axes": rigid_axes}
    if rigid_segments is not None:
        changes["rigid_segments"] = rigid_segments  # the config checks it against the pixel gate
        if not rigid_segments:  # no segments: every option not given goes back to its value without them
            changes.update({key: off for key, off in RIGID_OFF.items() if rigid[key] is None})
    if object_focus is not None:
        changes["object_focus"] = float(object_focus)  # the config checks it against the pixel gate
    changes.update({key: value for key, value in rigid.items() if value is not None})
    if not changes:
        raise InputError("nothing to change: give --still-threshold, --motion-smoothing, --sample-average, --steps, "
                         "--shift, --clause-composition, --motion-gate-threshold, --mirror-average, "
                         "--motion-gate-pixels, --rigid-segments, --rigid-level, --rigid-scale, --object-focus, "
                         "--rigid-clauses, --growth-power, --growth-limit, --spin-gain, --spin-limit and/or --rigid-axes")
    config = header.config.replace(**changes)  # the config checks the values against the model (e.g. its codec)
    before = {k: getattr(header.config, k) for k in changes}
    info = {**header.info, "defaults_set": [*header.info.get("defaults_set", []),
                                            {"from": str(model), "before": before, "after": changes}]}
    return write_bundle(out, config, dict(iter_safetensors(model)), header.components, info, overwrite=overwrite)


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("python -m more4d_core.checkpoints.defaults", __doc__)
    parser.add_argument("model", help="model file (single-file .safetensors)")
    parser.add_argument("--out", required=True, help="model file to write")
    parser.add_argument("--still-threshold", type=float, default=None, help="default still hold (0 = off)")
    parser.add_argument("--motion-smoothing", type=float, default=None,
                        help="default motion smoothing, a share of the image width (0 = off)")
    parser.add_argument("--sample-average", type=int, default=None,
                        help="default number of samples the sampler averages (1 = one sample)")
    parser.add_argument("--steps", type=int, default=None, help="default number of denoising steps")
    parser.add_argument("--shift", type=float, default=None,
                        help="default flow-matching timestep shift (above 0; larger spends more steps at high noise)")
    parser.add_argument("--clause-composition", choices=CLAUSE_COMPOSITIONS, default=None,
                        help="gate: prompts of two or more object clauses are sampled clause by clause and composed by "
                             "the motion gate; gate_camera: also object clauses with a camera clause, each sampled with "
                             "the camera clause; none: the whole prompt at once")
    parser.add_argument("--motion-gate-threshold", type=float, default=None,
                        help="probability below which the motion gate holds a position still (models with a gate)")
    parser.add_argument("--mirror-average", choices=("on", "off"), default=None,
                        help="on: every other averaged sample is drawn on the mirrored image and prompt and mirrored "
                             "back (models with the dct codec); off: every sample on the image as it is")
    parser.add_argument("--motion-gate-pixels", choices=("on", "off"), default=None,
                        help="on: the motion gate decided per output pixel where every moving pixel is a gated object "
                             "clause's (models with a gate and the dct codec); off: per latent cell")
    parser.add_argument("--rigid-segments", choices=("on", "off"), default=None,
                        help="on: with the pixel gate, each moving segment's motion is replaced by one translation or "
                             "similarity transform per frame where that explains it; off: each pixel's motion as decoded")
    parser.add_argument("--rigid-level", type=float, default=None,
                        help="with rigid segments: the segments also cut where the gate's probability crosses this "
                             "level (above the gate threshold, below 1); 0 = cut at depth jumps only")
    parser.add_argument("--rigid-scale", choices=RIGID_SCALES, default=None,
                        help="with rigid segments: any = a segment's fit may change its size; prompted = only where "
                             "the prompt names a growth (grows, shrinks), else rotation and translation alone")
    parser.add_argument("--object-focus", type=float, default=None,
                        help="with the pixel gate: each object clause's motion held still on the depth segments whose "
                             "mean gate probability is below this share of the best segment's and that do not touch "
                             "it (above 0, at most 1); 0 = off")
    parser.add_argument("--rigid-clauses", choices=("on", "off"), default=None,
                        help="with rigid segments and two or more object clauses: on = no segment spans two clauses "
                             "and a segment changes its size only where its own clause names a growth; off = segments "
                             "cut at depth jumps alone, a growth word anywhere lets every segment change its size")
    parser.add_argument("--growth-power", type=float, default=None,
                        help="with rigid segments: the fitted size change of a segment whose clause names a growth "
                             "raised to this power (above 0, at most 4; 2 makes a fitted 1.2x growth 1.44x); 1 = as "
                             "fitted")
    parser.add_argument("--growth-limit", type=float, default=None,
                        help="with rigid segments: a segment whose clause names a growth takes its similarity fit where "
                             "that leaves at most this share of its motion unexplained (above 0, at most 1; every "
                             "other segment: 0.1)")
    parser.add_argument("--spin-gain", type=float, default=None,
                        help="with rigid segments: the fitted rotation of a segment whose clause names a spin turned "
                             "this many times as far about its axis (above 0, at most 2); 1 = as fitted")
    parser.add_argument("--spin-limit", type=float, default=None,
                        help="with rigid segments: a segment whose clause names a spin takes its rigid fit where that "
                             "leaves at most this share of its motion unexplained (above 0, at most 1; every other "
                             "segment: 0.1)")
    parser.add_argument("--rigid-axes", choices=("on", "off"), default=None,
                        help="with rigid segments: on = a segment that takes the translation fit and whose clause names "
                             "one axis (left / right, up / down / bounces, toward / away) keeps only that component of "
                             "its translation; off = its fitted translation on every axis")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    try:
        set_defaults(args.model, args.out, still_threshold=args.still_threshold,
                     motion_smoothing=args.motion_smoothing, sample_average=args.sample_average,
                     steps=args.steps, shift=args.shift, clause_composition=args.clause_composition,
                     motion_gate_threshold=args.motion_gate_threshold,
                     mirror_average=None if args.mirror_average is None else args.mirror_average == "on",
                     motion_gate_pixels=None if args.motion_gate_pixels is None else args.motion_gate_pixels == "on",
                     rigid_segments=None if args.rigid_segments is None else args.rigid_segments == "on",
                     rigid_level=args.rigid_level, rigid_scale=args.rigid_scale, object_focus=args.object_focus,
                     rigid_clauses=None if args.rigid_clauses is None else args.rigid_clauses == "on",
                     growth_power=args.growth_power, growth_limit=args.growth_limit, spin_gain=args.spin_gain,
                     spin_limit=args.spin_limit,
                     rigid_axes=None if args.rigid_axes is None else args.rigid_axes == "on", overwrite=args.overwrite)
    except InputError as exc:
        parser.error(str(exc))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
