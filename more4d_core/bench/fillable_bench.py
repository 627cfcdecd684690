"""Camera presets on real photographs: how much each move reveals at strength 1 and with the ``auto``
strength (the largest move whose every frame keeps its holes under the budget).

Every scikit-image photograph (long side 512) becomes a still 4D scene from the built-in depth
prior; each preset's worst frame is measured at the probe size the auto strength uses and, for the
chosen move, at the full grid size with a 2-pixel splat (what the completion gets to fill). The last
column is the mean time of the auto strength's search per photograph.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ..camera import camera_preset
from ..camera.fillable import MAX_HOLES, HoleProbe, fillable_preset
from ..depth.prior import prior_depth
from ..render import render_scene
from ..scene import Scene4D
from .depth_bench import PHOTOS, photograph

PRESETS = ("orbit", "orbit_reverse", "dolly", "circle", "pan_x", "pan_y", "roll", "mix1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--side", type=int, default=512, help="long side of the scenes (the default grid)")
    parser.add_argument("--max-holes", type=float, default=MAX_HOLES)


def photo_scene(name: str, side: int, frames: int) -> Scene4D:
    """A still scene of a scikit-image photograph at ``side`` pixels (long side) on the prior's depth."""
    import cv2

    img = photograph(name)
    h, w = img.shape[:2]
    s = side / max(h, w)
    img = cv2.resize(img, (int(round(w * s)), int(round(h * s))), interpolation=cv2.INTER_AREA)
    image = torch.from_numpy(img / 255.0).float()
    depth = prior_depth(image)
    return Scene4D.from_depth(depth.depth, image, depth.intrinsics, num_frames=frames)


def run(args: argparse.Namespace) -> int:
    rows: dict[str, list[tuple[float, float, float, float, float]]] = {p: [] for p in PRESETS}
    print(f"worst frame's hole share per preset and photograph ({args.frames} frames, long side {args.side}, "
          f"budget {args.max_holes:.0%}): strength 1 -> auto strength, its probe and full-size holes")
    for name in PHOTOS:
        scene = photo_scene(name, args.side, args.frames)
        probe = HoleProbe(scene)
        cells = []
        for preset in PRESETS:
            full_move = camera_preset(preset, args.frames, scene_depth=scene.median_depth(), strength=1.0)
            at_one = float(probe(full_move).max())
            started = time.perf_counter()
            move = fillable_preset(scene, preset, args.frames, max_holes=args.max_holes)
            took = time.perf_counter() - started
            full = float(render_scene(scene, move.path, splat_radius=2).holes.flatten(1).float().mean(1).max())
            rows[preset].append((at_one, move.strength, move.worst_holes, full, took))
            cells.append(f"{preset} {at_one:.0%}->{move.strength:.2f} ({move.worst_holes:.0%}/{full:.0%})")
        print(f"  {name:18s} " + "  ".join(cells))
    print(f"\n{'preset':14s} {'holes at strength 1':>20s} {'auto strength':>14s} {'holes at auto (probe)':>22s} {'(full size)':>12s} {'search s':>9s}")
    for preset, values in rows.items():
        v = np.array(values)
        print(f"{preset:14s} {v[:, 0].mean():12.1%} (max {v[:, 0].max():.0%}) {v[:, 1].mean():8.2f} "
              f"({v[:, 1].min():.2f}-{v[:, 1].max():.2f}) {v[:, 2].mean():10.1%} (max {v[:, 2].max():.0%}) "
              f"{v[:, 3].mean():8.1%} (max {v[:, 3].max():.0%}) {v[:, 4].mean():9.2f}")
    return 0
