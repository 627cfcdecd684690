"""Golden fingerprint of the shipped model (``more4d_core/weights/more4d-small.safetensors``).

The bundled model is loaded the way the runner and the Load Trajectory Model node load it
(:func:`more4d_core.generator.load_generator` on the default model path, float32 on the CPU,
memory and attention "auto"), then generates three procedural scenes at the model's own grid
(96x128, 49 frames) with a fixed seed, few sampling steps and one CPU thread. A small summary of the
generated tracks (per-frame displacement statistics on point subsets, quantiles, a few sampled
track coordinates, the mean motion vector) and of the scores against the scenes' true motion is
compared with ``tests/golden/shipped_model.json`` by ``tests/test_golden_model.py``.

When a change of the model's output is deliberate (new weights, a codec or sampler change),
regenerate the stored fingerprint from the repository root with::

    python -m tests.golden.regenerate

``--check`` compares instead of writing (exit status 1 on a difference); ``--model FILE``
fingerprints another model file (e.g. a perturbed copy, to see that the comparison notices).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

import torch

from more4d_core.checkpoints.bundle import file_sha256 as sha256  # the golden file's weights hash

GOLDEN = Path(__file__).resolve().parent / "shipped_model.json"
REGENERATE_COMMAND = "python -m tests.golden.regenerate"
FORMAT = 1

# the fixed inputs: (split, seed) of procedural scenes; the held-out seed 100 is the bundled example
# ("the ball slides right quickly", camera still), validation seed 0 has a moving camera, validation seed 40 two
# movers and a still camera ("the card moves away quickly and the box slides right quickly": clause composition)
SCENES = (("heldout", 100), ("validation", 0), ("validation", 40))
HEIGHT, WIDTH, FRAMES = 96, 128, 49
STEPS, SEED, THREADS = 6, 0, 1
FRAMES_REPORTED = (1, 6, 12, 18, 24, 30, 36, 42, 48)
SAMPLE_FRAMES = (12, 24, 48)
SAMPLE_PIXELS = ((10, 10), (30, 100), (48, 64), (60, 20), (80, 110), (90, 50))  # (row, col) of the 96x128 grid
QUANTILES = (0.5, 0.9, 0.99)
OUTPUT_WIDTH = 512  # scores count pixels of a 512-wide output, as the evaluation does

# Tolerances (rtol, atol): |actual - expected| <= atol + rtol * |expected|, per group of values.
# Measured variation (``--measure-variation``, torch 2.13 CPU, an AVX-512 Xeon, December 2026):
# repeated runs, in one process or several, and 1 / 2 / 4 threads are bit-identical; forcing other
# kernel paths (ATEN_CPU_CAPABILITY=default or avx2, MKL_CBWR=COMPATIBLE or AVX2) moves the values by
# at most 7.2e-7 (tracks, metres; 3.4e-9 on the near-zero mean motion of still points), 7.9e-7
# (scores) and 1e-9 (inputs). Each tolerance covers 10x the largest measured difference of every value
# of its group; one weight tensor with 1e-3 relative noise moves dozens of values far beyond them
# (tests/test_golden_model.py checks that too).
TOLERANCES = {
    "input": (1e-6, 1e-8),
    "tracks": (5e-5, 1e-6),  # the generated tracks, metres
    "scores": (1e-5, 1e-5),  # scores against the true motion; one flipped point-frame is ~4e-6 of a fraction
}


def load_shipped(path: str | Path | None = None):
    """The generator as the runner loads the bundled default (float32, CPU, memory / attention auto)."""
    from more4d_core.generator import load_generator
    from more4d_core.weights import default_model_path

    return load_generator(path or default_model_path(), dtype=torch.float32, device="cpu", memory="auto",
                          attention="auto")


def _r(x) -> float:
    return float(f"{float(x):.9g}")


def _scene_fingerprint(generator, split: str, seed: int) -> dict:
    from more4d_core.data.procedural.scene_generator import generate_sample
    from more4d_core.eval.metrics import moving_points, score
    from more4d_core.geometry.normalization import NormalizationFactors

    truth = generate_sample(seed, split, HEIGHT, WIDTH, FRAMES)
    depth = truth.depth[0]
    scene = generator.generate(truth.image, depth, truth.intrinsics, truth.caption, seed=SEED, steps=STEPS,
                               num_frames=FRAMES)
    points = scene.points.double()  # [T, N, 3]
    disp = points - points[:1]
    dist = disp.norm(dim=-1)  # [T, N]
    scale = OUTPUT_WIDTH / WIDTH
    moving = moving_points(truth.tracks, truth.intrinsics, pixel_scale=scale)
    subsets = {"all": torch.ones_like(moving), "moving": moving, "still": ~moving}
    by_frame = {
        name: {"mean": [_r(dist[t, sel].mean()) for t in FRAMES_REPORTED],
               "std": [_r(dist[t, sel].std()) for t in FRAMES_REPORTED]}
        for name, sel in subsets.items() if sel.any()
    }
    last = dist[-1]
    samples = {f"{r},{c}": [[_r(v) for v in points[t, r * WIDTH + c]] for t in SAMPLE_FRAMES] for r, c in SAMPLE_PIXELS}
    factors = NormalizationFactors.from_intrinsics(truth.intrinsics, HEIGHT, WIDTH)
    scores = {}
    for name, sel in subsets.items():
        if not sel.any():  # e.g. no still point when the camera moves
            continue
        s = score(scene.points, truth.tracks, truth.visibility, truth.intrinsics, factors, pixel_scale=scale,
                  points=sel)
        scores[name] = {"within_avg": _r(s.within_avg), "epe3d": _r(s.epe3d)}
    return {
        "split": split,
        "seed": seed,
        "caption": truth.caption,
        "input": {
            "image_mean": _r(truth.image.double().mean()),
            "depth_mean": _r(depth.double().mean()),
            "depth_min": _r(depth.min()),
            "depth_max": _r(depth.max()),
            "fx": _r(truth.intrinsics[0, 0]),
            "moving_points": int(moving.sum()),
        },
        "tracks": {
            "frame0_equals_input_points": bool(torch.equal(scene.points[0], scene.points0)),
            "displacement_by_frame": by_frame,
            "last_frame_quantiles": [_r(torch.quantile(last, q)) for q in QUANTILES] + [_r(last.max())],
            "last_frame_mean_xyz": {name: [_r(v) for v in disp[-1, sel].mean(dim=0)]
                                    for name, sel in subsets.items() if sel.any()},
            "sampled_points": samples,
        },
        "scores": scores,
    }


def fingerprint(model: str | Path | None = None, generator=None) -> dict:
    """The fingerprint of ``model`` (default: the shipped file), or of an already loaded ``generator``."""
    from more4d_core.weights import default_model_path

    path = Path(model) if model is not None else default_model_path()
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        gen = generator if generator is not None else load_shipped(path)
        scenes = [_scene_fingerprint(gen, split, seed) for split, seed in SCENES]
    finally:
        torch.set_num_threads(threads)
    return {
        "format": FORMAT,
        "weights_file": path.name,
        "weights_sha256": sha256(path) if generator is None else None,
        "settings": {"grid": [HEIGHT, WIDTH], "frames": FRAMES, "steps": STEPS, "seed": SEED, "threads": THREADS,
                     "dtype": "float32", "device": "cpu", "output_width_for_scores": OUTPUT_WIDTH},
        "scenes": scenes,
    }


def _walk(expected, actual, where: str, group: str, out: list[str]) -> None:
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(expected) != set(actual):
            out.append(f"{where}: keys {sorted(actual) if isinstance(actual, dict) else actual!r} "
                       f"!= expected {sorted(expected)}")
            return
        for k in expected:
            _walk(expected[k], actual[k], f"{where}.{k}", group, out)
    elif isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            out.append(f"{where}: {actual!r} != expected {expected!r}")
            return
        for i, (e, a) in enumerate(zip(expected, actual)):
            _walk(e, a, f"{where}[{i}]", group, out)
    elif isinstance(expected, bool) or isinstance(expected, str) or expected is None or isinstance(expected, int):
        if actual != expected:
            out.append(f"{where}: {actual!r} != expected {expected!r}")
    else:
        rtol, atol = TOLERANCES[group]
        if not (isinstance(actual, float) and math.isfinite(actual)
                and abs(actual - expected) <= atol + rtol * abs(expected)):
            out.append(f"{where}: {actual!r} != expected {expected!r} (rtol {rtol}, atol {atol})")


def compare(expected: dict, actual: dict) -> list[str]:
    """Every difference between two fingerprints beyond the tolerances (empty: the same output)."""
    problems: list[str] = []
    for key in ("format", "settings"):
        if expected.get(key) != actual.get(key):
            problems.append(f"{key}: {actual.get(key)!r} != expected {expected.get(key)!r}")
    if problems:
        return problems
    exp_scenes, act_scenes = expected["scenes"], actual["scenes"]
    if len(exp_scenes) != len(act_scenes):
        return [f"scenes: {len(act_scenes)} != expected {len(exp_scenes)}"]
    for e, a in zip(exp_scenes, act_scenes):
        name = f"{e['split']} seed {e['seed']}"
        for key in ("split", "seed", "caption"):
            if e[key] != a[key]:
                problems.append(f"{name}.{key}: {a[key]!r} != expected {e[key]!r}")
        for group in TOLERANCES:
            _walk(e[group], a[group], f"{name}.{group}", group, problems)
    return problems


VARIANTS = ({}, {"ATEN_CPU_CAPABILITY": "default"}, {"ATEN_CPU_CAPABILITY": "avx2"}, {"MKL_CBWR": "COMPATIBLE"},
            {"MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"})


def _numbers(x, where=""):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _numbers(v, f"{where}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _numbers(v, f"{where}[{i}]")
    elif isinstance(x, float):
        yield where, x


def measure_variation(reference: dict) -> int:
    """Fingerprint again in fresh processes under other CPU kernel paths; print, per group, the largest
    difference from ``reference`` and whether the tolerances cover 10x every value's largest difference."""
    import os
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parents[2]
    base = {(i, g): dict(_numbers(s[g])) for i, s in enumerate(reference["scenes"]) for g in TOLERANCES}
    worst = {g: 0.0 for g in TOLERANCES}
    covered = True
    with tempfile.TemporaryDirectory() as tmp:
        for n, env in enumerate(VARIANTS):
            out = Path(tmp) / f"{n}.json"
            subprocess.run([sys.executable, "-m", "tests.golden.regenerate", "--out", str(out)], cwd=root, check=True,
                           env={**os.environ, **env}, stdout=subprocess.DEVNULL)
            other = json.loads(out.read_text())
            for i, scene in enumerate(other["scenes"]):
                for group, (rtol, atol) in TOLERANCES.items():
                    for where, value in _numbers(scene[group]):
                        expected = base[(i, group)][where]
                        diff = abs(value - expected) if math.isfinite(expected) else 0.0
                        worst[group] = max(worst[group], diff)
                        covered &= 10 * diff <= atol + rtol * abs(expected)
            print(f"{env or 'as is'}: done")
    for group, diff in worst.items():
        print(f"{group}: largest difference {diff:.3g} (rtol {TOLERANCES[group][0]}, atol {TOLERANCES[group][1]})")
    print("the tolerances cover 10x every measured difference" if covered else "TOO TIGHT: some value moved by "
          "more than a tenth of its tolerance")
    return 0 if covered else 1


def dumps(fingerprint: dict) -> str:
    """JSON with one line per list of numbers (a small, diff-friendly file)."""
    text = json.dumps(fingerprint, indent=1)
    return re.sub(r"\[([^\[\]{}]*)\]", lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]",
                  text) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE_COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the shipped one)")
    parser.add_argument("--check", action="store_true", help="compare with the stored fingerprint, write nothing")
    parser.add_argument("--measure-variation", action="store_true",
                        help="fingerprint under other CPU kernel paths (fresh processes) and check the tolerances")
    parser.add_argument("--out", type=Path, default=GOLDEN)
    args = parser.parse_args(argv)
    actual = fingerprint(args.model)
    if args.measure_variation:
        return measure_variation(actual)
    if args.check:
        expected = json.loads(GOLDEN.read_text())
        problems = compare(expected, actual)
        if expected["weights_sha256"] != actual["weights_sha256"]:
            problems.insert(0, f"weights_sha256: {actual['weights_sha256']} != expected {expected['weights_sha256']}")
        print("\n".join(problems) if problems else "the output matches the stored fingerprint")
        return 1 if problems else 0
    args.out.write_text(dumps(actual))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
