"""Compare two models on the same scenes, scene by scene: is a difference more than the scenes' noise?

    python -m more4d_core.eval.compare --base A.json [A2.json ...] --candidate B.json [B2.json ...]
                                       [--method model] [--rounds 10000] [--seed 0]

Each JSON is an evaluation (``python -m more4d_core.eval ... --json PATH``; runs of disjoint seed ranges, such as
the quarters the judging set is run in, are given together). Both sides must hold the same scenes (split, seeds,
depth). For each cell (camera-still scenes' moving and still points, camera-move scenes, all scenes: the
within-threshold average in output pixels) it prints the base's and the candidate's mean over the scenes, their
paired difference, a 95% percentile-bootstrap interval of that difference (scenes resampled with replacement), and
how many scenes got better and worse; then the same for the named-object share, case by case, when both ran that
control. A difference whose interval holds 0 is within what the choice of scenes alone moves.

Why: candidates are judged against the bundled file by their means on the validation seeds, and one model's moving
points differ by 0.01-0.04 between quarters of 24 seeds while most candidates differ from the bundled file by less than
0.015 (docs/bundled-model-history.md). The evaluation's JSON keeps each scene's values (``per_scene``) for this.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..help_text import command_parser

CELLS = {  # label -> (which scenes, which points)
    "camera still, moving points": ("still", "moving"),
    "camera still, still points": ("still", "still"),
    "camera moves, all points": ("moves", "all"),
    "all scenes, all points": (None, "all"),
}
RUN_KEYS = (  # must agree between the files of one side
    "split", "depth", "steps", "shift", "sample_average", "mirror_average", "motion_gate", "motion_gate_pixels",
    "rigid_segments", "rigid_level", "rigid_scale", "rigid_clauses", "rigid_growth_power", "rigid_growth_limit",
    "rigid_spin_gain", "rigid_spin_limit", "rigid_axes", "object_focus", "clause_composition", "model_sha256",
)


@dataclass
class Paired:
    label: str
    count: int
    base: float
    candidate: float
    difference: float  # candidate - base, mean over the paired items
    low: float  # the bootstrap interval of the difference
    high: float
    better: int
    worse: int


def bootstrap_interval(differences: np.ndarray, *, rounds: int = 10000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``differences`` (resampled with replacement, ``rounds`` times)."""
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1 or d.size == 0:
        raise ValueError("the bootstrap needs at least one difference")
    if rounds < 1 or not 0.0 < level < 1.0:
        raise ValueError(f"the bootstrap needs rounds >= 1 and a level in (0, 1), got {rounds} and {level}")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(rounds, d.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


def paired(label: str, base: list[float], candidate: list[float], *, rounds: int = 10000, seed: int = 0) -> Paired:
    b, c = np.asarray(base, dtype=np.float64), np.asarray(candidate, dtype=np.float64)
    d = c - b
    low, high = bootstrap_interval(d, rounds=rounds, seed=seed)
    return Paired(label, int(d.size), float(b.mean()), float(c.mean()), float(d.mean()), low, high,
                  int((d > 0).sum()), int((d < 0).sum()))


def load_runs(paths: list[str | Path]) -> dict:
    """The scenes (by seed) and named-object cases (by seed and object) of evaluation JSONs of one setting."""
    scenes, cases, settings = {}, {}, {}
    for path in paths:
        path = Path(path)
        try:
            run = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not an evaluation JSON ({exc})") from None
        if "per_scene" not in run:
            raise ValueError(f"{path}: no per-scene values (written before the evaluation kept them); run the "
                             "evaluation again with --json")
        setting = {k: run.get(k) for k in RUN_KEYS}
        if settings and setting != settings:
            raise ValueError(f"{path} was run with {setting}, the files before it with {settings}: give one "
                             "setting per side")
        settings = setting
        for record in run["per_scene"]:
            if record["seed"] in scenes:
                raise ValueError(f"{path}: seed {record['seed']} is in two files of one side")
            scenes[record["seed"]] = record
        for case in run.get("controls", {}).get("named_object_share", {}).get("per_case", []):
            cases[(case["seed"], case["object"])] = case["share"]
    return {"settings": settings, "scenes": scenes, "cases": cases}


def compare(base: dict, candidate: dict, *, method: str = "model", rounds: int = 10000, seed: int = 0) -> list[Paired]:
    """Paired comparisons of ``method`` on the scenes (and named cases) both sides hold; see the module doc."""
    differ = {k: (base["settings"][k], candidate["settings"][k]) for k in ("split", "depth")
              if base["settings"][k] != candidate["settings"][k]}
    if differ:
        raise ValueError(f"the two sides were evaluated on different scenes: {differ}")
    if base["scenes"].keys() != candidate["scenes"].keys():
        only = sorted(base["scenes"].keys() ^ candidate["scenes"].keys())
        raise ValueError(f"the two sides hold different seeds ({len(only)} in one only, e.g. {only[:5]})")
    out = []
    for label, (camera, points) in CELLS.items():
        pairs = []
        for s in sorted(base["scenes"]):
            a, b = base["scenes"][s], candidate["scenes"][s]
            if camera is not None and a["camera"] != camera:
                continue
            if method not in a["within_avg"] or method not in b["within_avg"]:
                raise ValueError(f"no {method!r} row for seed {s} on both sides")
            x, y = a["within_avg"][method][points], b["within_avg"][method][points]
            if x is not None and y is not None:
                pairs.append((x, y))
        if pairs:
            out.append(paired(label, *zip(*pairs), rounds=rounds, seed=seed))
    shared = sorted(base["cases"].keys() & candidate["cases"].keys())
    if method == "model" and shared:
        out.append(paired("named-object share", [base["cases"][k] for k in shared],
                          [candidate["cases"][k] for k in shared], rounds=rounds, seed=seed))
    return out


def format_comparison(rows: list[Paired]) -> str:
    lines = [f"{'':30s} {'n':>3s}  {'base':>7s} {'cand':>7s} {'diff':>8s}  {'95% interval':>19s}  better/worse"]
    for r in rows:
        flag = "" if r.low <= 0.0 <= r.high else ("  (up)" if r.low > 0 else "  (down)")
        lines.append(f"{r.label:30s} {r.count:3d}  {r.base:7.4f} {r.candidate:7.4f} {r.difference:+8.4f}  "
                     f"[{r.low:+.4f}, {r.high:+.4f}]  {r.better}/{r.worse}{flag}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("python -m more4d_core.eval.compare", __doc__)
    parser.add_argument("--base", nargs="+", required=True, help="evaluation JSONs of the model compared against")
    parser.add_argument("--candidate", nargs="+", required=True, help="evaluation JSONs of the candidate")
    parser.add_argument("--method", default="model", help="the row compared (default: the model, no post-processing)")
    parser.add_argument("--rounds", type=int, default=10000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    args = parser.parse_args(argv)
    try:
        rows = compare(load_runs(args.base), load_runs(args.candidate), method=args.method, rounds=args.rounds,
                       seed=args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    print(format_comparison(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
