"""Average the weights of model files of one architecture (a "model soup") into a new model file.

    python -m more4d_core.checkpoints.average A.safetensors B.safetensors [C ...] --out OUT [--weights 1 1 ...]

Models trained on from one file (warm-started continuations with other seeds or data) usually lie in one basin of the
loss, where the mean of their weights can generalize better than each of them (Wortsman et al. 2022, "Model soups").
Every member must have the same tensors (names, shapes, dtypes) and the same architecture; generation defaults (still
hold, smoothing, samples averaged, steps, shift, guidance, clause composition, gate threshold) may differ and are taken
from the first member. Floating-point tensors are averaged in float32 with the given weights (normalized; default equal) and
stored in the first member's dtype; any other tensor must be equal in every member. A model with a motion gate and
one without have different tensors and cannot be averaged: average the models before ``train.gate_fit``. OUT records
its members, their SHA-256 and the weights in ``info`` (``averaged_from``), is written atomically and is never one of
the members.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import torch

from ..errors import InputError, More4DError
from ..help_text import command_parser
from .bundle import file_sha256, read_header, write_bundle
from .io import iter_safetensors

# config fields that are generation defaults, not architecture (checkpoints.defaults sets most of them); may differ
GENERATION_DEFAULTS = ("still_threshold", "motion_smoothing", "sample_average", "steps", "shift", "guidance_scale",
                       "clause_composition", "motion_gate_threshold")


def _architecture(config) -> dict:
    fields = asdict(config)
    for name in GENERATION_DEFAULTS:
        fields.pop(name, None)
    return fields


def average_models(models: list[str | Path], out: str | Path, *, weights: list[float] | None = None,
                   overwrite: bool = False) -> Path:
    """Write ``out``: the weighted mean of the model files ``models`` (see the module docstring)."""
    models = [Path(m) for m in models]
    out = Path(out)
    if len(models) < 2:
        raise InputError(f"give at least two model files to average (got {len(models)})")
    missing = [str(m) for m in models if not m.is_file()]
    if missing:
        raise InputError(f"no such model file: {', '.join(missing)}")
    if any(out.resolve() == m.resolve() for m in models):
        raise InputError(f"write the averaged model next to its members, not over one of them (--out {out})")
    if weights is None:
        weights = [1.0] * len(models)
    if len(weights) != len(models):
        raise InputError(f"give one weight per model: {len(models)} models, {len(weights)} weights")
    if any(not (w >= 0.0) or w == float("inf") for w in weights) or sum(weights) <= 0.0:
        raise InputError(f"weights must be finite, non-negative and not all zero, got {weights}")
    share = [w / sum(weights) for w in weights]

    headers = [read_header(m) for m in models]
    first = headers[0]
    for header in headers[1:]:
        if header.components != first.components:
            raise InputError(f"{header.path} has components {header.components}, {first.path} {first.components}: "
                             "only models of one architecture can be averaged")
        a, b = _architecture(first.config), _architecture(header.config)
        differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        if differ:
            raise InputError(f"{header.path} and {first.path} differ in their architecture ({', '.join(differ)}): "
                             "only models of one architecture can be averaged")

    reference = dict(iter_safetensors(models[0]))
    total = {k: t.to(torch.float32) * share[0] if t.is_floating_point() else t for k, t in reference.items()}
    for path, w in zip(models[1:], share[1:]):
        tensors = dict(iter_safetensors(path))
        if tensors.keys() != reference.keys():
            only = sorted(tensors.keys() ^ reference.keys())
            raise InputError(f"{path} and {models[0]} have different tensors ({len(only)} not in both, e.g. "
                             f"{only[0]}); a model with a motion gate and one without cannot be averaged: average "
                             "before train.gate_fit")
        for key, t in tensors.items():
            ref = reference[key]
            if t.shape != ref.shape or t.dtype != ref.dtype:
                raise InputError(f"{path}: tensor {key} is {tuple(t.shape)} {t.dtype}, in {models[0]} "
                                 f"{tuple(ref.shape)} {ref.dtype}")
            if t.is_floating_point():
                total[key] = total[key] + t.to(torch.float32) * w
            elif not torch.equal(t, ref):
                raise InputError(f"{path}: tensor {key} ({t.dtype}) differs from {models[0]}'s and cannot be averaged")
    averaged = {k: t.to(reference[k].dtype).contiguous() for k, t in total.items()}
    info = {**first.info, "averaged_from": [{"path": str(m), "sha256": file_sha256(m), "weight": s}
                                            for m, s in zip(models, share)]}
    return write_bundle(out, first.config, averaged, first.components, info, overwrite=overwrite)


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("python -m more4d_core.checkpoints.average", __doc__)
    parser.add_argument("models", nargs="+", help="model files (single-file .safetensors) of one architecture")
    parser.add_argument("--out", required=True, help="model file to write")
    parser.add_argument("--weights", type=float, nargs="+", default=None,
                        help="one weight per model (normalized to sum 1; default: equal)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    try:
        average_models(args.models, args.out, weights=args.weights, overwrite=args.overwrite)
    except More4DError as exc:
        parser.error(str(exc))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
