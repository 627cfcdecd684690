"""The memory estimates that guard each stage against its measured peak.

    python -m more4d_core.bench budget [--grid 600x800] [--frames 49] [--render 1024x1024] [--steps 2]

Runs the bundled model's generation on the ``--grid`` point grid, a render of that scene at
``--render`` with the point index, and its classical completion, each under :class:`PeakMemory`
(the RSS added above the level at the stage's start, sampled in a thread), and prints next to each
the estimate :mod:`more4d_core.memory.budget` checks before the stage runs, in units of the stage's
buffers (the factors), and whether the estimate covers the measured peak.
"""

from __future__ import annotations

import argparse
import gc

import torch

from ..memory import budget
from .memory import PeakMemory


def _size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return h, w


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grid", type=_size, default=(600, 800), help="point grid WIDTHxHEIGHT (default 800x600)")
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--render", type=_size, default=(1024, 1024), help="render size WIDTHxHEIGHT")
    parser.add_argument("--steps", type=int, default=2, help="denoising steps (memory does not depend on them)")
    parser.add_argument("--threads", type=int, default=2)


def _row(name: str, measured: int, estimate: float, unit: float) -> str:
    covered = "covers" if estimate >= measured else "UNDER the measured peak"
    return (f"  {name:12s} measured {measured / budget.GIB:6.2f} GiB = {measured / unit:4.2f} x buffers; "
            f"estimate {estimate / budget.GIB:6.2f} GiB = {estimate / unit:4.2f} x ({covered})")


def run(args: argparse.Namespace) -> int:
    from ..camera.intrinsics import intrinsics_from_fov
    from ..camera.presets import camera_preset
    from ..completion.classical import complete_classical
    from ..render.renderer import render_scene
    from ..weights import load_default_generator

    torch.set_num_threads(args.threads)
    (gh, gw), (rh, rw), frames = args.grid, args.render, args.frames
    gen = load_default_generator()
    g = torch.Generator().manual_seed(0)
    image, depth = torch.rand(gh, gw, 3, generator=g), 2.0 + torch.rand(gh, gw, generator=g)
    k = intrinsics_from_fov(gh, gw, 60.0)
    print(f"memory budget: {frames} frames, grid {gw}x{gh}, render {rw}x{rh}, {args.threads} threads "
          f"(limit now: {budget.memory_limit().describe()})")
    gc.collect()
    with PeakMemory("cpu") as mem:
        scene = gen.generate(image, depth, k, "the ball slides left", steps=args.steps, num_frames=frames,
                             grid_hw=(gh, gw))
    tracks = frames * gh * gw * 3 * budget.FLOAT
    print(_row("generation", mem.peak_bytes, budget.generation_bytes(frames, (gh, gw)), tracks))
    path = camera_preset("orbit", frames, scene_depth=scene.median_depth(), strength=0.3)
    gc.collect()
    with PeakMemory("cpu") as mem:
        result = render_scene(scene, path, output_hw=(rh, rw), return_point_index=True)
    unit = frames * rh * rw * budget.FLOAT
    print(_row("render", mem.peak_bytes, budget.render_bytes(frames, (rh, rw)), unit))
    gc.collect()
    with PeakMemory("cpu") as mem:
        complete_classical(result, scene, path)
    print(_row("completion", mem.peak_bytes, budget.completion_bytes(frames, (rh, rw)), unit))
    return 0
