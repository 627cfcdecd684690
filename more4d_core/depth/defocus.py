"""Defocus read from edges, without weights: how blurred the image is where it has edges.

An edge blurred by a Gaussian of width ``sigma`` and blurred again by a known ``sigma0`` keeps the
ratio ``R`` of gradient magnitudes, before over after, ``R = sqrt(sigma^2 + sigma0^2) / sigma``;
so ``sigma = sigma0 / sqrt(R^2 - 1)`` at each edge pixel (Zhuo and Sim, "Defocus map estimation
from a single image", 2011). Unlike local contrast (Laplacian energy), this tells a defocused
backdrop from a plain one: a plain, textureless region has no edges and so no reading at all,
where a sharpness measure would call it blurred.
"""

from __future__ import annotations

import cv2
import numpy as np

REBLUR = 1.0  # sigma0, pixels
MAX_BLUR = 8.0  # readings are clipped here (an edge this soft is far out of focus)


def edge_blur(grey: np.ndarray, *, reblur: float = REBLUR) -> tuple[np.ndarray, np.ndarray]:
    """(blur sigma in pixels at every pixel, edge pixels) of the float32 ``grey`` image (0..1);
    the blur is only meaningful on the edge pixels."""
    g = grey.astype(np.float32)
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
    b = cv2.GaussianBlur(g, (0, 0), reblur)
    bx, by = cv2.Sobel(b, cv2.CV_32F, 1, 0), cv2.Sobel(b, cv2.CV_32F, 0, 1)
    ratio = np.hypot(gx, gy) / np.maximum(np.hypot(bx, by), 1e-6)
    sigma = np.where(ratio > 1.0 + 1e-3, reblur / np.sqrt(np.maximum(ratio * ratio - 1.0, 1e-12)), MAX_BLUR)
    edges = cv2.Canny((np.clip(g, 0, 1) * 255).astype(np.uint8), 20, 50) > 0
    return np.clip(sigma, 0.0, MAX_BLUR).astype(np.float32), edges


def defocus_map(grey: np.ndarray, *, radius: float = 0.04, min_edges: float = 0.02) -> np.ndarray:
    """Local blur (pixels) of ``grey``: the edge readings averaged over a Gaussian window of
    ``radius`` times the long side; NaN where fewer than ``min_edges`` of the window are edges."""
    h, w = grey.shape
    sigma, edges = edge_blur(grey)
    e = edges.astype(np.float32)
    spread = radius * max(h, w)
    num = cv2.GaussianBlur(sigma * e, (0, 0), spread)
    den = cv2.GaussianBlur(e, (0, 0), spread)
    return np.where(den >= min_edges, num / np.maximum(den, 1e-6), np.nan).astype(np.float32)
