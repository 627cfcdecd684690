"""Synthetic shallow-depth-of-field photographs with true depth, for the depth prior's benchmark.

A portrait or close-up taken with a wide aperture: a sharp, textured subject (one to three
overlapping ellipses, some reaching past the frame's edges, as a head and shoulders or an animal
filling the frame do) before a textured backdrop that the lens blurs (a Gaussian of ``blur`` pixels
at the 320 px working size of the prior; 0 leaves it sharp, the control). Both are flat, facing the
camera: the subject at depth ``Z_s``, the backdrop at ``Z_b`` 1.6 to 4 times as far. Textures are
windows of the procedural generator's photographs of the chosen split (train / validation / held-out
photographs are disjoint, so the validation and held-out scenes share no photograph), shrunk or
kept at their own size, never enlarged: an enlarged photograph's edges are soft, and a backdrop
meant to be sharp would read as defocused.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..data.procedural.textures import SPLITS, photo_window

SPLIT_OFFSET = {"train": 0, "validation": 500_000, "heldout": 900_000}


@dataclass
class BokehScene:
    image: torch.Tensor  # [H, W, 3] 0..1
    depth: torch.Tensor  # [H, W] metres
    subject: torch.Tensor  # [H, W] bool
    blur: float  # the backdrop's blur, pixels at the 320 px working size


def _subject_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """One to three overlapping ellipses covering 10-70% of the frame."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    while True:
        mask = np.zeros((h, w), bool)
        cx, cy = rng.uniform(0.25, 0.75) * w, rng.uniform(0.35, 0.85) * h
        for _ in range(int(rng.integers(1, 4))):
            ax, ay = rng.uniform(0.12, 0.45) * w, rng.uniform(0.15, 0.5) * h
            ex, ey = cx + rng.normal(0, 0.08) * w, cy + rng.normal(0, 0.1) * h
            angle = rng.uniform(0, np.pi)
            u = (xs - ex) * np.cos(angle) + (ys - ey) * np.sin(angle)
            v = -(xs - ex) * np.sin(angle) + (ys - ey) * np.cos(angle)
            mask |= (u / ax) ** 2 + (v / ay) ** 2 <= 1.0
        if 0.1 <= mask.mean() <= 0.7:
            return mask


def bokeh_scene(seed: int, split: str = "validation", height: int = 240, width: int = 320, *,
                sharp_backdrop: bool = False) -> BokehScene:
    """Scene ``seed`` of ``split`` (see the module doc); ``sharp_backdrop``: the same scene with the
    backdrop in focus (the control)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    rng = np.random.default_rng(SPLIT_OFFSET[split] + seed)
    side = max(height, width)
    backdrop = photo_window(rng, split, height, width).permute(1, 2, 0).numpy()
    subject_tex = photo_window(rng, split, height, width).permute(1, 2, 0).numpy()
    blur = float(rng.uniform(2.0, 6.0)) * side / 320.0
    z_b = float(rng.uniform(2.5, 6.0))
    z_s = z_b / float(rng.uniform(1.6, 4.0))
    mask = _subject_mask(rng, height, width)
    if not sharp_backdrop:
        backdrop = cv2.GaussianBlur(np.ascontiguousarray(backdrop), (0, 0), blur)
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.5)[..., None]  # an in-focus outline
    image = alpha * subject_tex + (1 - alpha) * backdrop
    depth = np.where(mask, z_s, z_b)
    return BokehScene(torch.from_numpy(np.clip(image, 0, 1).astype(np.float32)), torch.from_numpy(depth),
                      torch.from_numpy(mask), 0.0 if sharp_backdrop else blur * 320.0 / side)
