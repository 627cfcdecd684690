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

import cv2
import numpy as np
import torch

from ..camera.fillable import fillable_preset
from ..camera.presets import camera_preset
from ..completion.classical import complete_classical, flicker, inpaint_spatial, motion_maps
from ..data.procedural.scene_generator import build_world, generate_sample, render_views
from ..eval.image_metrics import masked_detail, masked_psnr, masked_ssim
from ..render.renderer import render_scene

INTERIOR_PX = 3
METHODS = ("leave holes", "per-frame inpaint", "classical", "classical, textured")


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
    parser.add_argument("--temporal", type=float, default=None,
                        help="the classical fills' carried-over share (default: complete_classical's; choose it on validation)")


def hole_interior(holes: np.ndarray) -> np.ndarray:
    """Hole pixels at least ``INTERIOR_PX`` pixels from any rendered pixel (``[T, H, W]`` bool): the inside of
    large dis-occlusions, where a fill must invent texture (borders and one-pixel cracks left out)."""
    kernel = np.ones((2 * INTERIOR_PX + 1, 2 * INTERIOR_PX + 1), np.uint8)
    return np.stack([cv2.erode(h.astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE).astype(bool) for h in holes])


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
    interior = hole_interior(holes)
    maps = motion_maps(result, scene, path)
    out = {"hole_share": float(holes.mean()),
           "truth flicker": flicker(truth, result.holes, maps), "truth detail": masked_detail(truth.numpy(), interior)}
    filled: dict[str, tuple[torch.Tensor, float]] = {}
    filled["leave holes"] = (result.frames, 0.0)
    start = time.perf_counter()
    spatial = torch.stack([torch.from_numpy(inpaint_spatial(f.numpy(), h.numpy())) for f, h in zip(result.frames, result.holes)])
    filled["per-frame inpaint"] = (spatial, time.perf_counter() - start)
    start = time.perf_counter()
    share = {} if args.temporal is None else {"temporal": args.temporal}
    filled["classical"] = (complete_classical(result, scene, path, **share), time.perf_counter() - start)
    start = time.perf_counter()
    filled["classical, textured"] = (complete_classical(result, scene, path, texture=True, **share), time.perf_counter() - start)
    for name, (frames, took) in filled.items():
        f = frames.numpy()
        out[name] = {"psnr": masked_psnr(f, truth.numpy(), holes), "ssim": masked_ssim(f, truth.numpy(), holes),
                     "flicker": flicker(frames, result.holes, maps), "detail": masked_detail(f, interior),
                     "ms": 1000 * took / args.frames}
    return out


def run(args: argparse.Namespace) -> int:
    print(f"{args.scenes} {args.split} procedural scenes from seed {args.seed} (camera still), {args.frames} frames at {args.width}x{args.height}, "
          f"presets at strength {args.strength} (auto: holes <= 10% per frame); inside the holes, against the true views; {torch.get_num_threads()} threads"
          + ("" if args.temporal is None else f"; classical carried-over share {args.temporal:g}"))
    print(f"detail: mean luma gradient inside the holes, {INTERIOR_PX} px or more from any rendered pixel (a smooth fill is low; "
          "the true views' own level in brackets)")
    header = (f"{'PSNR dB':>8s} {'SSIM':>6s} {'flicker':>8s} {'(truth)':>8s} {'detail':>7s} {'(truth)':>8s} {'ms/frame':>9s}")
    print(f"{'preset':8s} {'holes':>6s} {'method':20s} {header}")
    totals: dict[str, list[dict]] = {m: [] for m in METHODS}
    truths: list[dict] = []
    for preset in args.camera:
        cases = [score_case(seed, preset, args) for seed in range(args.seed, args.seed + args.scenes)]
        truths += cases
        for method in METHODS:
            rows = [c[method] for c in cases]
            totals[method] += rows
            print(f"{preset:8s} {np.mean([c['hole_share'] for c in cases]):6.1%} {method:20s} {_row(rows, cases)}")
    for method in METHODS:
        print(f"{'all':8s} {np.mean([c['hole_share'] for c in truths]):6.1%} {method:20s} {_row(totals[method], truths)}")
    return 0


def _row(rows: list[dict], cases: list[dict]) -> str:
    def mean(items, key):  # cases without a value (no hole interior at this size) do not count
        values = np.array([r[key] for r in items], dtype=np.float64)
        values = values[~np.isnan(values)]
        return float(values.mean()) if len(values) else float("nan")

    return (f"{mean(rows, 'psnr'):8.2f} {mean(rows, 'ssim'):6.3f} {mean(rows, 'flicker'):8.4f} {mean(cases, 'truth flicker'):8.4f} "
            f"{mean(rows, 'detail'):7.4f} {mean(cases, 'truth detail'):8.4f} {mean(rows, 'ms'):9.1f}")
