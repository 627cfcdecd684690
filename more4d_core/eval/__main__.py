"""Evaluate a trajectory generator on the held-out procedural split.

    python -m more4d_core.eval [--model PATH] [--samples 48] [--steps 20]

Prints EPE3D on normalized displacements, TAPVid-3D-style accuracy within {1,2,4,8,16} px and a
temporal smoothness figure for: the model with the true caption, the model with a wrong caption
(another sample's), the static baseline (nothing moves) and the mean-motion baseline (the average
training motion field), then checks the targets of the bundled model.

The accuracy thresholds are in pixels, so they depend on the image they are counted in; two tables
are printed from the same predictions: pixels of the model's generation grid (e.g. 128 wide) and
pixels of the output the grid is upsampled to (``--output-width``, default 512, the reference
resolution 368x512). EPE3D and smoothness do not depend on it.

A last row, "codec oracle", is the ground truth passed through the model's trajectory codec
(encode, decode): the best any model with this codec could score, so a gap between it and the
model is the denoiser's, not the representation's.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from ..data.procedural.scene_generator import generate_sample
from ..geometry.normalization import NormalizationFactors
from .baselines import MeanMotion, static_tracks
from .metrics import THRESHOLDS_PX, TrajectoryScores, mean_scores, score


def _metric_factors(k, hw) -> NormalizationFactors:
    """Displacement as a fraction of the image size: the unit of EPE3D and of the mean-motion
    baseline, whatever normalization the evaluated model generates in."""
    return NormalizationFactors.from_intrinsics(k, *hw)


@torch.no_grad()
def _codec_round_trip(generator, tracks: torch.Tensor, hw: tuple[int, int], intrinsics) -> torch.Tensor:
    """Ground-truth tracks ``[T, N, 3]`` encoded and decoded by the generator's trajectory codec."""
    factors = generator.normalization_factors(intrinsics, hw)
    grid = tracks.reshape(tracks.shape[0], *hw, 3)[None].float()
    codec = generator.codec
    dev = next((b.device for b in codec.buffers()), torch.device("cpu"))
    latents = codec.encode_tracks(grid.to(dev), factors)
    out = codec.decode_tracks(latents, grid[:, 0].to(dev), factors, num_frames=tracks.shape[0])
    return out[0].reshape(tracks.shape).cpu()


def evaluate(generator, *, samples: int = 48, steps: int | None = None, seed: int = 0, mean_samples: int = 256,
             height: int | None = None, width: int | None = None, num_frames: int | None = None,
             output_width: int = 512, log=print) -> dict:
    """Score the model and the baselines; ``result["tables"]`` maps a pixel unit (``"grid"`` and
    ``"output"``) to ``{method: TrajectoryScores}``."""
    cfg = generator.config
    h, w, frames = height or cfg.height, width or cfg.width, num_frames or cfg.num_frames
    units = {"grid": 1.0, "output": output_width / w}
    start = time.perf_counter()
    train = [generate_sample(10**8 + i, "train", h, w, frames, with_visibility=False) for i in range(mean_samples)]
    mean = MeanMotion.from_tracks([s.tracks for s in train], [_metric_factors(s.intrinsics, (h, w)) for s in train])
    held = [generate_sample(seed + i, "heldout", h, w, frames) for i in range(samples)]
    methods = ("model", "model, no still hold", "model, wrong caption", "static", "mean motion", "codec oracle")
    results: dict[str, dict[str, list[TrajectoryScores]]] = {u: {m: [] for m in methods} for u in units}
    camera_moves: list[bool] = []
    gt_smooth = []

    def add(method, pred, s, f):
        for unit, scale in units.items():
            results[unit][method].append(score(pred, s.tracks, s.visibility, s.intrinsics, f, pixel_scale=scale))

    for i, s in enumerate(held):
        f = _metric_factors(s.intrinsics, (h, w))
        p0 = s.tracks[0]
        wrong = next(o.caption for o in held[i + 1 :] + held[:i] if o.caption != s.caption)
        for name, caption, still in (("model", s.caption, None), ("model, no still hold", s.caption, 0.0),
                                     ("model, wrong caption", wrong, None)):
            scene = generator.generate(s.image, s.depth[0], s.intrinsics, caption, seed=seed + i, steps=steps,
                                       still_threshold=still)
            add(name, scene.points, s, f)
        camera_moves.append(bool(s.params["camera"]["phrase"]))
        add("static", static_tracks(p0, frames), s, f)
        add("mean motion", mean.predict(p0, f), s, f)
        add("codec oracle", _codec_round_trip(generator, s.tracks, (h, w), s.intrinsics), s, f)
        gt_smooth.append(score(s.tracks, s.tracks, s.visibility, s.intrinsics, f).smoothness)
        if (i + 1) % 8 == 0:
            log(f"  evaluated {i + 1}/{len(held)} samples ({time.perf_counter() - start:.0f} s)")
    tables = {u: {m: mean_scores(items) for m, items in per.items()} for u, per in results.items()}
    by_camera = {
        u: {m: {moves: mean_scores([x for x, c in zip(items, camera_moves) if c == moves])
                for moves in (True, False) if moves in camera_moves}
            for m, items in per.items()}
        for u, per in results.items()
    }
    return {"tables": tables, "by_camera": by_camera, "units": {"grid": f"{w} px wide grid", "output": f"{output_width} px wide output"},
            "gt_smoothness": sum(gt_smooth) / len(gt_smooth), "samples": len(held),
            "seconds": time.perf_counter() - start}


def format_table(result: dict, unit: str = "output") -> str:
    head = f"{'method':22s} {'EPE3D':>8s} " + " ".join(f"{f'<{d}px':>7s}" for d in THRESHOLDS_PX) + f" {'avg':>7s} {'accel':>8s}"
    lines = [f"thresholds in pixels of the {result['units'][unit]}", head, "-" * len(head)]
    for name, s in result["tables"][unit].items():
        lines.append(f"{name:22s} {s.epe3d:8.4f} " + " ".join(f"{s.within[d]:7.3f}" for d in THRESHOLDS_PX)
                     + f" {s.within_avg:7.3f} {s.smoothness:8.5f}")
    lines.append(f"{'ground truth':22s} {'':8s} " + " ".join(f"{'':7s}" for _ in THRESHOLDS_PX)
                 + f" {'':7s} {result['gt_smoothness']:8.5f}")
    groups = result.get("by_camera", {}).get(unit, {})
    if groups:
        lines.append(f"avg within by scene: {'method':22s} {'camera moves':>13s} {'camera still':>13s}")
        for name, per in groups.items():
            cells = [f"{per[m].within_avg:13.3f}" if m in per else f"{'-':>13s}" for m in (True, False)]
            lines.append(f"{'':21s}{name:22s} " + " ".join(cells))
    return "\n".join(lines)


def check_targets(result: dict, unit: str = "output") -> list[tuple[str, bool, str]]:
    t = result["tables"][unit]
    model, static, mean, wrong = t["model"], t["static"], t["mean motion"], t["model, wrong caption"]
    best_baseline = max(static.within_avg, mean.within_avg)
    return [
        ("EPE3D at most half the static baseline's", model.epe3d <= 0.5 * static.epe3d,
         f"{model.epe3d:.4f} vs {0.5 * static.epe3d:.4f}"),
        ("within-threshold average >= best baseline + 0.15", model.within_avg >= best_baseline + 0.15,
         f"{model.within_avg:.3f} vs {best_baseline + 0.15:.3f}"),
        ("wrong captions clearly worse (EPE3D +10%)", wrong.epe3d >= 1.1 * model.epe3d,
         f"{wrong.epe3d:.4f} vs {model.epe3d:.4f}"),
    ]


def main(argv: list[str] | None = None) -> int:
    from ..generator import load_generator
    from ..weights import default_model_path

    parser = argparse.ArgumentParser(prog="python -m more4d_core.eval", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model file (default: the bundled default model)")
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mean-samples", type=int, default=256, help="training samples of the mean-motion baseline")
    parser.add_argument("--output-width", type=int, default=512,
                        help="width of the output image whose pixels the second table counts in (default 512)")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    path = args.model or default_model_path()
    gen = load_generator(path)
    print(f"model {path} ({gen.config.name}), {args.samples} held-out samples, steps {args.steps or gen.config.steps}")
    result = evaluate(gen, samples=args.samples, steps=args.steps, seed=args.seed, mean_samples=args.mean_samples,
                      output_width=args.output_width)
    print(f"({result['samples']} samples in {result['seconds']:.0f} s)")
    ok = True
    for unit in ("grid", "output"):
        print()
        print(format_table(result, unit))
        for label, passed, detail in check_targets(result, unit):
            ok &= passed
            print(f"  {'PASS' if passed else 'FAIL'}  {label}: {detail}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
