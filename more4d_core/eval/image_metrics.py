"""Image fidelity inside a region: PSNR and SSIM of frames against true frames, counted only on
the pixels of a mask (the holes a completion filled)."""

from __future__ import annotations

import cv2
import numpy as np

SSIM_C1, SSIM_C2 = 0.01**2, 0.03**2  # Wang et al. 2004 constants for a 0..1 range
SSIM_SIGMA = 1.5  # Gaussian window of the standard SSIM


def masked_psnr(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB, peak 1) over the masked pixels of ``[..., H, W, 3]`` frames in 0..1 (inf when exact, nan when empty)."""
    if not mask.any():
        return float("nan")
    mse = float(((pred.astype(np.float64) - truth.astype(np.float64)) ** 2)[mask].mean())
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of two grey ``[H, W]`` images in 0..1 (Gaussian window, sigma 1.5)."""
    a, b = a.astype(np.float64), b.astype(np.float64)

    def blur(x):
        return cv2.GaussianBlur(x, (0, 0), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + SSIM_C1) * (2 * cov + SSIM_C2)) / ((mu_a**2 + mu_b**2 + SSIM_C1) * (var_a + var_b + SSIM_C2))


def _grey(frame: np.ndarray) -> np.ndarray:
    return frame[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _masked_mean(per_pixel, mask: np.ndarray, *frames: np.ndarray) -> float:
    """Mean of ``per_pixel(*frame_t)`` (an ``[H, W]`` map) over the masked pixels of every frame ``t``,
    computed only for frames whose mask is not empty (nan when all are)."""
    total, count = 0.0, 0
    for m, *frame in zip(mask, *frames):
        if m.any():
            total += float(per_pixel(*frame)[m].sum())
            count += int(m.sum())
    return total / count if count else float("nan")


def masked_ssim(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Mean SSIM (on luma) over the masked pixels of ``[T, H, W, 3]`` frames (nan when the mask is empty)."""
    return _masked_mean(lambda p, t: ssim_map(_grey(p), _grey(t)), mask, pred, truth)


def _gradient_magnitude(frame: np.ndarray) -> np.ndarray:
    """Per-pixel luma gradient magnitude (Sobel, in units of the 0..1 range per pixel) of an ``[H, W, 3]`` frame."""
    grey = _grey(frame)
    gx = cv2.Sobel(grey, cv2.CV_64F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT) / 8.0
    gy = cv2.Sobel(grey, cv2.CV_64F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT) / 8.0
    return np.hypot(gx, gy)


def masked_detail(frames: np.ndarray, mask: np.ndarray) -> float:
    """Fine structure inside a region: the mean luma gradient magnitude (Sobel, per pixel of a 0..1
    range) over the masked pixels of ``[T, H, W, 3]`` frames (nan when the mask is empty). A smooth
    fill scores low; a fill that carries the true texture scores what the true views score."""
    return _masked_mean(_gradient_magnitude, mask, frames)
