"""Procedural training scenes: seconds per sample, with and without the visibility z-test.

Training draws samples without visibility (the loss does not need it); the evaluation and written
datasets compute it. Times ``generate_sample`` on train-split seeds of the chosen recipe, one process.
"""

from __future__ import annotations

import argparse
import time

from ..data.procedural.scene_generator import generate_sample


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--recipe", default="v3")


def run(args: argparse.Namespace) -> int:
    generate_sample(0, "train", args.height, args.width, args.frames, with_visibility=False, recipe=args.recipe)  # warm-up
    print(f"procedural samples: {args.samples} of recipe {args.recipe}, {args.frames} frames at {args.width}x{args.height}")
    for visibility in (False, True):
        started = time.perf_counter()
        for seed in range(1, args.samples + 1):
            generate_sample(seed, "train", args.height, args.width, args.frames, with_visibility=visibility,
                            recipe=args.recipe)
        took = (time.perf_counter() - started) / args.samples
        print(f"  {'with' if visibility else 'without'} visibility: {took:.3f} s per sample")
    return 0
