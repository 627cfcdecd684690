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


def test_detail_is_the_luma_gradient_inside_the_mask():
    from more4d_core.eval.image_metrics import masked_detail

    x = np.arange(16, dtype=np.float64)
    ramp = np.repeat(np.repeat((0.01 * x)[None, :, None], 12, 0), 3, 2)[None]  # grey, rising 0.01 per pixel along x
    mask = np.zeros((1, 12, 16), bool)
    mask[:, 3:9, 3:13] = True  # away from the image border
    assert masked_detail(ramp, mask) == pytest.approx(0.01)
    both = ramp + np.transpose(np.repeat(np.repeat((0.01 * np.arange(12.0))[None, :, None], 16, 0), 3, 2)[None], (0, 2, 1, 3))
    assert masked_detail(both, mask) == pytest.approx(0.01 * np.sqrt(2))  # 0.01 along x and along y
    assert masked_detail(np.full_like(ramp, 0.3), mask) == pytest.approx(0.0)
    assert np.isnan(masked_detail(ramp, np.zeros_like(mask)))


def test_the_hole_interior_keeps_pixels_three_pixels_from_any_rendered_one():
    from more4d_core.bench.completion_bench import hole_interior

    holes = np.zeros((1, 20, 20), bool)
    holes[:, 5:15, 4:14] = True  # 10 x 10
    interior = hole_interior(holes)
    expected = np.zeros_like(holes)
    expected[:, 8:12, 7:11] = True  # 4 x 4: three pixels in from each side
    assert np.array_equal(interior, expected)
