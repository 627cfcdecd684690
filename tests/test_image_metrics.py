"""PSNR and SSIM inside a mask, on hand-computed cases."""

import numpy as np
import pytest

from more4d_core.eval.image_metrics import masked_psnr, masked_ssim, ssim_map


def test_psnr_counts_only_the_mask():
    truth = np.zeros((2, 8, 8, 3))
    pred = truth.copy()
    pred[:, :4] = 0.1  # error 0.1 in the top half: MSE 0.01 there -> 20 dB
    pred[:, 4:] = 0.5
    mask = np.zeros((2, 8, 8), bool)
    mask[:, :4] = True
    assert masked_psnr(pred, truth, mask) == pytest.approx(20.0)
    assert masked_psnr(truth, truth, mask) == float("inf")
    assert np.isnan(masked_psnr(pred, truth, np.zeros_like(mask)))


def test_ssim_is_one_for_equal_images_and_follows_its_formula_on_flat_ones():
    rng = np.random.default_rng(0)
    img = rng.random((16, 16))
    np.testing.assert_allclose(ssim_map(img, img), 1.0, atol=1e-9)
    # two flat images a, b: variances 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    a, b, c1 = 0.2, 0.6, 0.01**2
    np.testing.assert_allclose(ssim_map(np.full((8, 8), a), np.full((8, 8), b)), (2 * a * b + c1) / (a * a + b * b + c1), atol=1e-9)
    frames = np.repeat(np.full((1, 8, 8, 1), a), 3, axis=-1)
    other = np.repeat(np.full((1, 8, 8, 1), b), 3, axis=-1)
    mask = np.ones((1, 8, 8), bool)
    assert masked_ssim(frames, other, mask) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), abs=1e-6)
