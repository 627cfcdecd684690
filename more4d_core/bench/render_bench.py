"""Point renderer: our fused z-buffer against the reference's per-frame unique/amin/mean approach.

Renders the analytic scene (default 49 frames of 368x512 = 188,416 points) through an orbit path
with both renderers in one process and prints times, the speed-up, points per second, peak memory
and how well the two outputs agree.
"""

from __future__ import annotations

import argparse
import time

import torch

from ..camera.presets import camera_preset
from ..data.analytic import make_analytic_scene
from ..render.renderer import render_scene
from .memory import PeakMemory
from .reference_render import reference_render

TARGET_SPEEDUP = 8.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--height", type=int, default=368)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--camera", default="orbit", help="camera preset (default orbit)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backend", default="auto", choices=["auto", "numba", "torch"])
    parser.add_argument("--splat", type=int, default=1, help="splat footprint in pixels (1..5)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of our renderer (best is reported)")
    parser.add_argument("--reference-repeats", type=int, default=2)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device) -> tuple[float, object]:
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


def run(args: argparse.Namespace) -> int:
    device = torch.device(args.device)
    scene = make_analytic_scene(args.height, args.width, args.frames)
    path = camera_preset(args.camera, args.frames, scene_depth=scene.median_depth())
    n_points = scene.num_points * scene.num_frames
    mib = 2.0**20

    def ours():
        return render_scene(scene, path, device=device, splat_radius=args.splat, backend=args.backend)

    first, _ = _timed(ours, device)
    best = float("inf")
    with PeakMemory(device) as mem_ours:
        for _ in range(max(1, args.repeats)):
            elapsed, result = _timed(ours, device)
            best = min(best, elapsed)

    k = path.intrinsics_for(scene.intrinsics, scene.grid_hw, scene.grid_hw).float().to(device)
    poses = path.poses.float().to(device)
    pts = scene.points.to(device)
    colors = scene.colors_float().to(device)

    def reference():
        return reference_render(pts, colors, poses, k, args.height, args.width)

    ref_best = float("inf")
    with PeakMemory(device) as mem_ref:
        for _ in range(max(1, args.reference_repeats)):
            elapsed, (ref_frames, ref_holes) = _timed(reference, device)
            ref_best = min(ref_best, elapsed)

    threads = torch.get_num_threads() if device.type == "cpu" else None
    where = f"{device.type} ({threads} threads)" if threads else torch.cuda.get_device_name(device)
    backend = args.backend if args.backend != "auto" else ("numba" if device.type == "cpu" else "torch")
    ref_holes = ref_holes.cpu()
    hole_agree = float((result.holes == ref_holes).float().mean())
    both = ~result.holes & ~ref_holes
    colour_agree = float(((result.frames - ref_frames.cpu()).abs().amax(-1) < 1e-3)[both].float().mean())
    ratio = ref_best / best
    print(
        f"workload   : {scene.num_frames} frames x {scene.num_points:,} points -> {args.height}x{args.width}, "
        f"camera {path.name}, splat {args.splat}px, device {where}, backend {backend}"
    )
    print(f"ours       : {best:.4f} s best of {args.repeats} (first call {first:.3f} s incl. warm-up), "
          f"{n_points / best / 1e6:.1f} M points/s, {best / scene.num_frames * 1000:.2f} ms/frame")
    print(f"reference  : {ref_best:.4f} s best of {args.reference_repeats}, {n_points / ref_best / 1e6:.1f} M points/s")
    verdict = "meets" if ratio >= TARGET_SPEEDUP else "MISSES"
    print(f"speed-up   : {ratio:.1f}x ({verdict} the >= {TARGET_SPEEDUP:g}x target)")
    out_bytes = result.frames.numel() * 4 + result.depth.numel() * 4 + result.holes.numel()
    print(
        f"peak memory: ours +{mem_ours.peak_bytes / mib:.0f} MiB (of which outputs {out_bytes / mib:.0f} MiB), "
        f"reference +{mem_ref.peak_bytes / mib:.0f} MiB"
    )
    print(
        f"agreement  : hole masks equal on {hole_agree * 100:.2f}% of pixels; colours equal on "
        f"{colour_agree * 100:.2f}% of pixels both cover (ties / boundary rounding differ)"
    )
    return 0
