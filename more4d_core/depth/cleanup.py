"""Depth cleanup and alignment.

* :func:`flying_pixels` finds the pixels that sit on a depth discontinuity — monocular depth models
  blend foreground and background there, and back-projected they become streaks of points floating
  between the two surfaces. :func:`clean_depth` snaps each of them to the nearer or farther side
  (whichever its value is closer to) or marks it invalid.
* :func:`fit_scale_shift` fits ``a * depth + b`` (or the same in inverse depth) to a reference
  robustly, e.g. to put a relative estimate in metric units from a few known depths.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..errors import InputError
from .result import DepthResult


def flying_pixels(depth: torch.Tensor, threshold: float = 0.05) -> torch.Tensor:
    """``[H, W]`` bool: pixels whose 3x3 neighbourhood spans a log-depth jump above ``threshold``
    and whose own value lies strictly between the two sides (not on either surface)."""
    d = torch.as_tensor(depth).float().numpy()
    logd = np.log(np.maximum(d, 1e-6)).astype(np.float32)
    kernel = np.ones((3, 3), np.uint8)
    lo = cv2.erode(logd, kernel)
    hi = cv2.dilate(logd, kernel)
    jump = (hi - lo) > threshold
    margin = 0.25 * (hi - lo)
    between = (logd > lo + margin) & (logd < hi - margin)
    return torch.from_numpy(jump & between)


def clean_depth(result: DepthResult, *, threshold: float = 0.05, mode: str = "snap") -> DepthResult:
    """A copy of ``result`` with flying pixels snapped to a side (``"snap"``) or marked invalid
    (``"drop"``: their depth is kept but ``valid`` is False, so they can be skipped)."""
    if mode not in ("snap", "drop"):
        raise InputError(f"cleanup mode must be 'snap' or 'drop', got {mode!r}")
    mask = flying_pixels(result.depth, threshold)
    depth = result.depth.clone()
    valid = result.valid.clone()
    if mode == "drop":
        valid &= ~mask
    else:
        d = depth.numpy()
        kernel = np.ones((3, 3), np.uint8)
        near = cv2.erode(d, kernel)
        far = cv2.dilate(d, kernel)
        snapped = np.where(np.abs(np.log(d / near)) < np.abs(np.log(far / d)), near, far)
        depth = torch.from_numpy(np.where(mask.numpy(), snapped, d).astype(np.float32))
    meta = {**result.metadata, "cleanup": {"mode": mode, "threshold": threshold, "pixels": int(mask.sum())}}
    return DepthResult(depth, result.intrinsics, valid, result.backend, result.metric, meta)


def fit_scale_shift(depth: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor | None = None, *,
                    inverse: bool = False, shift: bool = True) -> tuple[float, float]:
    """``(a, b)`` minimizing the L1 error of ``a * x + b`` to the reference on ``mask`` (``x`` is the
    depth, or its inverse with ``inverse=True``), by iteratively reweighted least squares."""
    x = torch.as_tensor(depth).double().flatten()
    y = torch.as_tensor(reference).double().flatten()
    ok = torch.isfinite(x) & torch.isfinite(y) & (x > 0) & (y > 0)
    if mask is not None:
        ok &= torch.as_tensor(mask).bool().flatten()
    if int(ok.sum()) < 2:
        raise InputError("need at least two valid pixels to fit a depth scale")
    x, y = x[ok], y[ok]
    if inverse:
        x, y = 1.0 / x, 1.0 / y
    weights = torch.ones_like(x)
    a, b = 1.0, 0.0
    for _ in range(20):
        w = weights.sqrt()
        design = torch.stack([x, torch.ones_like(x)], 1) if shift else x.unsqueeze(1)
        sol = torch.linalg.lstsq(design * w.unsqueeze(1), (y * w).unsqueeze(1)).solution.flatten()
        a, b = float(sol[0]), float(sol[1]) if shift else 0.0
        weights = 1.0 / (a * x + b - y).abs().clamp(min=1e-6)
    return a, b
