"""Classical completion scored against the true views of procedural scenes.

Held-out procedural scenes with a still camera (their objects may move) are turned into 4D scenes
from their true tracks, so the only error left is the completion's; each is rendered through camera
presets, the holes are filled, and the filled pixels are compared with the view the generator
ray-casts analytically from the same moving camera: PSNR and SSIM inside the holes, and flicker of
the filled pixels along the scene's motion (the true views' own flicker in the same pixels is
printed as the floor). Methods: leave the holes (background colour), per-frame OpenCV Telea
inpainting, and the classical completion; with time per frame.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ..camera.fillable import fillable_preset
from ..camera.presets import camera_preset
from ..completion.classical import complete_classical, flicker, inpaint_spatial, motion_maps
from ..data.procedural.scene_generator import build_world, generate_sample, render_views
from ..eval.image_metrics import masked_psnr, masked_ssim
from ..render.renderer import render_scene

METHODS = ("leave holes", "per-frame inpaint", "classical")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenes", type=int, default=6, help="held-out procedural scenes (camera still)")
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--camera", nargs="+", default=["orbit", "dolly", "pan_x"])
    parser.add_argument("--strength", default="auto",
                        help="preset strength, or auto: the largest move whose holes stay under 10%% of every frame (the default)")
    parser.add_argument("--split", default="heldout", choices=["train", "validation", "heldout"])
    parser.add_argument("--seed", type=int, default=100, help="first scene seed of the split")


def score_case(seed: int, preset: str, args: argparse.Namespace) -> dict:
    """Every method's scores on one scene and one camera path."""
    sample = generate_sample(seed, args.split, args.height, args.width, args.frames, camera_motion_prob=0.0)
    world = build_world(seed, args.split, args.height, args.width, camera_motion_prob=0.0)
    scene = sample.to_scene()
    if args.strength == "auto":
        path = fillable_preset(scene, preset, args.frames).path
    else:
        path = camera_preset(preset, args.frames, scene_depth=scene.median_depth(), strength=float(args.strength))
    result = render_scene(scene, path, return_point_index=True)
    truth, _ = render_views(world, path.poses, args.height, args.width)
    holes = result.holes.numpy()
    maps = motion_maps(result, scene, path)
    out = {"hole_share": float(holes.mean()),
           "truth flicker": flicker(truth, result.holes, maps)}
    filled: dict[str, tuple[torch.Tensor, float]] = {}
    filled["leave holes"] = (result.frames, 0.0)
    start = time.perf_counter()
    spatial = torch.stack([torch.from_numpy(inpaint_spatial(f.numpy(), h.numpy())) for f, h in zip(result.frames, result.holes)])
    filled["per-frame inpaint"] = (spatial, time.perf_counter() - start)
    start = time.perf_counter()
    filled["classical"] = (complete_classical(result, scene, path), time.perf_counter() - start)
    for name, (frames, took) in filled.items():
        f = frames.numpy()
        out[name] = {"psnr": masked_psnr(f, truth.numpy(), holes), "ssim": masked_ssim(f, truth.numpy(), holes),
                     "flicker": flicker(frames, result.holes, maps), "ms": 1000 * took / args.frames}
    return out


def run(args: argparse.Namespace) -> int:
    print(f"{args.scenes} {args.split} procedural scenes from seed {args.seed} (camera still), {args.frames} frames at {args.width}x{args.height}, "
          f"presets at strength {args.strength} (auto: holes <= 10% per frame); inside the holes, against the true views; {torch.get_num_threads()} threads")
    print(f"{'preset':8s} {'holes':>6s} {'method':18s} {'PSNR dB':>8s} {'SSIM':>6s} {'flicker':>8s} {'(truth)':>8s} {'ms/frame':>9s}")
    totals: dict[str, list[dict]] = {m: [] for m in METHODS}
    for preset in args.camera:
        cases = [score_case(seed, preset, args) for seed in range(args.seed, args.seed + args.scenes)]
        hole_share = np.mean([c["hole_share"] for c in cases])
        truth_flicker = np.mean([c["truth flicker"] for c in cases])
        for method in METHODS:
            rows = [c[method] for c in cases]
            totals[method] += rows
            print(f"{preset:8s} {hole_share:6.1%} {method:18s} {np.mean([r['psnr'] for r in rows]):8.2f} "
                  f"{np.mean([r['ssim'] for r in rows]):6.3f} {np.mean([r['flicker'] for r in rows]):8.4f} "
                  f"{truth_flicker:8.4f} {np.mean([r['ms'] for r in rows]):9.1f}")
    print("all      " + " " * 6 + " ".join(
        f"| {m}: PSNR {np.mean([r['psnr'] for r in rows]):.2f} SSIM {np.mean([r['ssim'] for r in rows]):.3f} "
        f"flicker {np.mean([r['flicker'] for r in rows]):.4f}" for m, rows in totals.items()))
    return 0
