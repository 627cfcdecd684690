"""The depth a model really gets: perturbations of the true depth for training.

At generation the depth comes from an estimator, not from the ray caster: its scale and shift are
off (affine-invariant estimates), its range is compressed or stretched, its edges are smoothed or
sit a pixel or two off the image edges, and a weight-free prior pulls everything towards a simple
layout (the built-in prior before December 2026 drew every scene as floor and wall; the current one,
:mod:`more4d_core.depth.prior`, draws a floor or a leaning backdrop with rounded subjects — the
"layout" perturbation below still models the former). :func:`perturb_depth` draws a few of these
errors at random, so the model learns to read motion from the depth it will see. Only the
depth *input* is perturbed; the training target (the true motion, normalized by the true depth)
is not.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

KINDS = ("disparity_shift", "range", "blur", "edges", "layout", "lowfreq")
# the errors of a depth model (not of the weight-free prior's layout): the evaluation's "perturbed" depth
ESTIMATOR_KINDS = tuple(k for k in KINDS if k != "layout")


def _layout(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A floor below a horizon and a wall above it, as the previous built-in prior drew (relative depth)."""
    horizon = rng.uniform(0.3, 0.6) * height
    rows = np.arange(height, dtype=np.float64)[:, None] + 0.5
    floor = np.where(rows > horizon, (height - horizon) / np.maximum(rows - horizon, 1.0), np.inf)
    return np.broadcast_to(np.minimum(floor, rng.uniform(1.5, 3.0)), (height, width)).astype(np.float64)


def perturb_depth(depth: torch.Tensor, rng: np.random.Generator, kinds: tuple[str, ...] | None = None,
                  pool: tuple[str, ...] = KINDS) -> torch.Tensor:
    """A perturbed copy of a metric depth map ``[H, W]`` (positive, finite).

    ``kinds`` (default: one to three drawn at random from ``pool``) picks the errors.
    """
    d = depth.double().numpy().copy()
    h, w = d.shape
    if kinds is None:
        count = int(rng.integers(1, 4))
        kinds = tuple(pool[i] for i in sorted(rng.choice(len(pool), size=count, replace=False)))
    median = float(np.median(d))
    for kind in kinds:
        if kind == "disparity_shift":  # affine in disparity: ratios change, the order does not
            disp = 1.0 / d
            disp = disp + rng.uniform(-0.3, 0.8) * float(np.median(disp))
            d = 1.0 / np.maximum(disp, 1e-3 / median)
        elif kind == "range":  # compressed or stretched depth range
            d = median * (d / median) ** rng.uniform(0.4, 1.3)
        elif kind == "blur":  # smoothed edges
            d = cv2.GaussianBlur(d, (0, 0), rng.uniform(0.7, 2.5))
        elif kind == "edges":  # foreground a pixel or two too large or too small, or shifted
            size = int(rng.choice([3, 5]))
            kernel = np.ones((size, size), np.uint8)
            choice = int(rng.integers(3))
            if choice == 0:
                d = cv2.erode(d, kernel)  # near (small) depths grow
            elif choice == 1:
                d = cv2.dilate(d, kernel)  # near depths shrink
            else:
                dx, dy = (int(v) for v in rng.integers(-2, 3, size=2))
                d = np.roll(d, (dy, dx), axis=(0, 1))
        elif kind == "layout":  # pulled towards the prior's floor-and-wall layout
            layout = _layout(h, w, rng) * median
            alpha = rng.uniform(0.2, 0.6)
            d = np.exp((1 - alpha) * np.log(d) + alpha * np.log(layout))
        elif kind == "lowfreq":  # smooth multiplicative error
            coarse = rng.normal(0.0, 0.12, size=(4, 4))
            d = d * np.exp(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC))
        else:
            raise ValueError(f"unknown depth perturbation {kind!r}; known: {', '.join(KINDS)}")
    d = np.clip(np.nan_to_num(d, nan=median, posinf=median, neginf=median), 1e-3 * median, 1e3 * median)
    return torch.from_numpy(d).to(depth.dtype)
