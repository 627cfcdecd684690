"""Evaluate a trajectory generator on procedural scenes of one split.

    python -m more4d_core.eval [--model PATH] [--split heldout|validation|train] [--seed 0] [--samples 48]
                               [--guidance G] [--motion-gate auto|on|off] [--motion-gate-threshold P]
                               [--clause-composition auto|on|off]
                               [--depth true|perturbed|prior] [--motion-smoothing S] [--sample-average N]
                               [--controls named,direction,still | --no-controls] [--json PATH]

Every method (the model with no post-processing, generating as it ships — the mean of its samples when
it averages several, whose first sample alone gets its own row —, the model with the still hold or with
its motion smoothed within surfaces, a wrong caption,
"nothing moves", the mean training motion, the codec oracle) is scored per cell: scenes where the
camera moves or stays still, by points that move (more than 2 output pixels at some frame) or stay
still. Figures: EPE3D on normalized displacements (fractions of the image size) and TAPVid-3D's
average fraction of points within {1, 2, 4, 8, 16} pixels, counted in pixels of the model's grid and
of the 512-wide output. Controls: named object, direction swap, still prompts (see
``more4d_core.eval.controls``; ``--controls`` runs some of them). The moving points of still-camera scenes are also split by what the
mover does (slides, bounces, growth, bends, ...; ``more4d_core.eval.by_motion``), with how far and
which way the model moves them. ``--json`` writes every cell, control and motion group, and each scene's values
(``python -m more4d_core.eval.compare`` pairs two such runs scene by scene).

Splits: choices are made on ``validation``; ``heldout`` is only reported. Seeds never used by the
project (e.g. ``--seed 7000000``) give fresh scenes of a split's photographs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from ..checkpoints.bundle import file_sha256
from ..data.procedural.scene_generator import SPLIT_STREAMS
from ..errors import InputError
from ..help_text import command_parser
from ..sampling.clause_composition import COMPOSE_MODES, composition_kind
from ..sampling.mirroring import MIRROR_SETTINGS
from ..sampling.motion_gating import GATE_MODES, gate_enabled
from .controls import CONTROLS
from .controls import to_run as controls_to_run
from .protocol import DEPTHS, evaluate
from .report import check_targets, format_by_motion, format_controls, format_table


def main(argv: list[str] | None = None) -> int:
    from ..export.atomic import write_file_atomic
    from ..generator import load_generator
    from ..weights import default_model_path

    parser = command_parser("python -m more4d_core.eval", __doc__)
    parser.add_argument("--model", default=None, help="model file (default: the bundled default model)")
    parser.add_argument("--split", default="heldout", choices=tuple(SPLIT_STREAMS), help="procedural split (default heldout)")
    parser.add_argument("--samples", type=int, default=48, help="scenes (default 48)")
    parser.add_argument("--seed", type=int, default=0, help="first scene seed of the split (default 0)")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    parser.add_argument("--guidance", type=float, default=None,
                        help="text guidance scale against the empty prompt (default: the model's; choose it on validation)")
    parser.add_argument("--motion-gate", default="auto", choices=GATE_MODES,
                        help="a model's motion gate: auto (default: on, except with --depth prior), on, or off (the "
                             "denoiser's motion alone)")
    parser.add_argument("--motion-gate-threshold", type=float, default=None,
                        help="probability below which the motion gate holds a position still (default: the model's; "
                             "choose it on validation)")
    parser.add_argument("--clause-composition", default="auto", choices=COMPOSE_MODES,
                        help="prompts of two or more object clauses sampled clause by clause and composed by the motion "
                             "gate: auto (default: the model's default), on, or off (the whole prompt at once)")
    parser.add_argument("--depth", default="true", choices=DEPTHS, help="depth the model sees: true, perturbed (the true depth with a depth model's kinds of "
                             "errors, fixed per scene) or the built-in prior's")
    parser.add_argument("--still-threshold", type=float, default=None,
                        help="threshold of the 'model + still hold' row (default: the model's)")
    parser.add_argument("--still-sweep", default="",
                        help="comma-separated still-hold thresholds to score as extra rows (choose the threshold on validation)")
    parser.add_argument("--motion-smoothing", type=float, default=None,
                        help="smoothing of the 'model + smoothing' row (default: the model's; the row is left out when it is 0)")
    parser.add_argument("--smoothing-sweep", default="",
                        help="comma-separated motion smoothings to score as extra rows (choose the smoothing on validation)")
    parser.add_argument("--sample-average", type=int, default=None,
                        help="samples averaged per generation (default: the model's; 1 = one sample; choose it on validation)")
    parser.add_argument("--mirror-average", default="auto", choices=MIRROR_SETTINGS,
                        help="every other averaged sample drawn on the mirrored image and prompt, mirrored back: auto "
                             "(default: the model's default), on, or off (choose it on validation)")
    parser.add_argument("--axis-split", action="store_true",
                        help="add the rows 'model, lateral error only' and 'model, depth error only': the headline "
                             "scored on one part of its error (which part keeps points outside the thresholds)")
    parser.add_argument("--no-controls", action="store_true", help="skip the named-object, direction and still-prompt controls")
    parser.add_argument("--controls", default=None,
                        help=f"comma-separated controls to run, of {', '.join(CONTROLS)} (default: all); the still "
                             "prompts take about as long as the other two together")
    parser.add_argument("--mean-samples", type=int, default=256, help="training samples of the mean-motion baseline")
    parser.add_argument("--output-width", type=int, default=512, help="width of the output image whose pixels count (default 512)")
    parser.add_argument("--json", type=Path, default=None, help="write every cell and control to this JSON file")
    args = parser.parse_args(argv)
    if args.no_controls and args.controls is not None:
        parser.error("--no-controls runs none and --controls chooses some: give one of them")
    names = ",".join(CONTROLS) if args.controls is None else args.controls
    if args.no_controls:
        names = ""
    try:
        chosen = controls_to_run([c.strip() for c in names.split(",") if c.strip()])
    except ValueError as exc:
        parser.error(f"--controls: {exc}")
    if args.samples < 2:
        parser.error("--samples must be at least 2 (the wrong-caption control borrows another scene's caption)")
    torch.manual_seed(args.seed)
    path = args.model or default_model_path()
    gen = load_generator(path)
    if args.motion_gate_threshold is not None:
        if gen.config.motion_gate == "none":
            parser.error(f"--motion-gate-threshold: the model {path} has no motion gate")
        gen.config = gen.config.replace(motion_gate_threshold=args.motion_gate_threshold)
    gated = gen.config.motion_gate != "none" and gate_enabled(args.motion_gate, args.depth)
    composed = composition_kind(args.clause_composition, gen.config.clause_composition) if gated else "none"
    averaged = gen.config.sample_average if args.sample_average is None else args.sample_average
    try:  # the setting as the generations resolve it ("auto" is the model's default)
        mirrored = gen.mirror_choice(args.mirror_average, averaged)[1]
    except InputError as exc:
        parser.error(f"--mirror-average: {exc}")
    print(f"model {path} ({gen.config.name}); {args.samples} {args.split} scenes, seeds {args.seed}..{args.seed + args.samples - 1}; "
          f"depth: {args.depth}; steps {args.steps or gen.config.steps}; "
          f"guidance {gen.config.guidance_scale if args.guidance is None else args.guidance:g}; "
          f"motion gate: {gen.config.motion_gate_threshold if gated else 'off'}; "
          f"samples averaged: {averaged}; clause composition: {composed}; mirror averaging: {mirrored}")
    result = evaluate(gen, split=args.split, samples=args.samples, seed=args.seed, steps=args.steps, guidance=args.guidance, motion_gate=args.motion_gate,
                      clause_composition=args.clause_composition, mirror_average=args.mirror_average, depth=args.depth,
                      still_threshold=args.still_threshold,
                      still_sweep=tuple(float(t) for t in args.still_sweep.split(",") if t.strip()),
                      smoothing=args.motion_smoothing,
                      smoothing_sweep=tuple(float(t) for t in args.smoothing_sweep.split(",") if t.strip()),
                      sample_average=args.sample_average, with_controls=chosen, axis_split=args.axis_split,
                      mean_samples=args.mean_samples, output_width=args.output_width)
    result["model"] = str(path)
    if Path(path).is_file():  # which file, when a JSON is kept to compare later runs with
        result["model_sha256"] = file_sha256(path)
    counts = result["scene_counts"]
    print(f"({result['samples']} scenes: {counts['camera moves']} camera moves, {counts['camera still']} camera still; "
          f"{result['moving_point_fraction']:.1%} of points move; {result['seconds']:.0f} s)")
    for unit in ("grid", "output"):
        print()
        print(format_table(result, unit))
    print()
    print(format_by_motion(result))
    print()
    print(format_controls(result))
    print()
    print("targets of the bundled model (output pixels, the model with no post-processing):")
    ok = True
    for label, passed, detail in check_targets(result):
        ok &= passed
        print(f"  {'PASS' if passed else 'MISS'}  {label}: {detail}")
    if args.json:
        result["targets"] = [{"target": t, "met": p, "value": d} for t, p, d in check_targets(result)]
        text = json.dumps(result, indent=1, default=float).encode()
        write_file_atomic(args.json, lambda fh: fh.write(text), overwrite=True)
        print(f"wrote {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
