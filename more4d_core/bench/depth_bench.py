"""The built-in depth prior on held-out procedural scenes: AbsRel and delta < 1.25 after median
scaling, against a constant-depth guess. An honest figure for an approximation."""

from __future__ import annotations

import argparse
import time

import torch

from ..data.procedural.scene_generator import generate_sample
from ..depth.prior import prior_depth


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--height", type=int, default=368)
    parser.add_argument("--width", type=int, default=512)


def depth_errors(pred: torch.Tensor, gt: torch.Tensor) -> tuple[float, float]:
    """(AbsRel, delta < 1.25) after scaling ``pred`` to the median of ``gt``."""
    scaled = pred.double() * (gt.double().median() / pred.double().median())
    absrel = float(((scaled - gt).abs() / gt).mean())
    ratio = torch.maximum(scaled / gt, gt / scaled)
    return absrel, float((ratio < 1.25).double().mean())


def run(args: argparse.Namespace) -> int:
    prior, const, took = [], [], 0.0
    for seed in range(args.samples):
        s = generate_sample(seed, "heldout", args.height, args.width, 2, with_visibility=False)
        start = time.perf_counter()
        pred = prior_depth(s.image, fov_deg=s.params["fov_deg"])
        took += time.perf_counter() - start
        prior.append(depth_errors(pred.depth, s.depth[0]))
        const.append(depth_errors(torch.ones_like(s.depth[0]), s.depth[0]))

    def mean(rows, i):
        return sum(r[i] for r in rows) / len(rows)

    print(f"held-out procedural scenes: {args.samples} at {args.width}x{args.height} (true field of view given)")
    print(f"{'method':16s} {'AbsRel':>8s} {'d<1.25':>8s}")
    print(f"{'built-in prior':16s} {mean(prior, 0):8.3f} {mean(prior, 1):8.3f}   ({took / args.samples * 1000:.0f} ms/image)")
    print(f"{'constant depth':16s} {mean(const, 0):8.3f} {mean(const, 1):8.3f}")
    return 0
