"""Textured hole filling: a repeating background is continued into a hole exactly, never from the
occluder's side and never from another surface; where nothing can be copied the smooth fill stays."""

import numpy as np
import pytest
import torch

from more4d_core.completion.offset_fill import offset_fill


def stripes(h=48, w=64, period=8):
    """Vertical stripes, dark for the first half of every ``period`` columns: a background that repeats
    every ``period`` pixels along x and everywhere along y."""
    x = np.arange(w)
    row = np.where(x % period < period // 2, 0.2, 0.8).astype(np.float32)
    return np.repeat(np.repeat(row[None, :, None], h, 0), 3, 2)


def case(h=48, w=64):
    truth = stripes(h, w)
    hole = np.zeros((h, w), bool)
    hole[16:30, 22:37] = True  # 14 x 15 pixels
    image = truth.copy()
    image[hole] = 0.0  # what a render leaves in a hole (the background colour)
    depth = np.full((h, w), 3.0, np.float32)
    smooth = np.full_like(image, 0.5)  # a stand-in smooth fill: grey
    return truth, image, hole, depth, smooth


def test_a_repeating_background_is_continued_exactly():
    truth, image, hole, depth, smooth = case()
    out = offset_fill(image, hole, ~hole, depth, depth, smooth)
    np.testing.assert_array_equal(out[hole], truth[hole])  # the stripes go on through the hole
    np.testing.assert_array_equal(out[~hole], image[~hole])  # known pixels untouched


def test_the_occluders_side_is_never_copied():
    truth, image, hole, depth, smooth = case()
    occluder = np.zeros_like(hole)
    occluder[10:36, 37:50] = True  # right of the hole: the object that hid it, nearer, red
    image[occluder] = (1.0, 0.0, 0.0)
    depth = depth.copy()
    depth[occluder] = 1.0
    background = ~hole & ~occluder
    out = offset_fill(image, hole, background, depth, np.full_like(depth, 3.0), smooth)
    assert not (out[hole] == (1.0, 0.0, 0.0)).all(-1).any()
    np.testing.assert_array_equal(out[hole], truth[hole])


def test_another_surface_is_not_copied_and_the_smooth_fill_stays_without_a_source():
    truth, image, hole, depth, smooth = case()
    far = depth.copy()
    far[~hole] = 9.0  # everything around lies three times farther than the hole's surface
    out = offset_fill(image, hole, ~hole, far, depth, smooth)
    np.testing.assert_array_equal(out[hole], smooth[hole])


def test_a_background_that_does_not_repeat_keeps_the_smooth_fill():
    _, image, hole, depth, smooth = case()
    noise = np.random.default_rng(0).uniform(0.0, 1.0, image.shape).astype(np.float32)  # no offset repeats it
    noise[hole] = 0.0
    out = offset_fill(noise, hole, ~hole, depth, depth, smooth)
    np.testing.assert_array_equal(out[hole], smooth[hole])


def test_small_holes_keep_the_smooth_fill():
    truth, image, _, depth, smooth = case()
    hole = np.zeros(depth.shape, bool)
    hole[20:22, 30:33] = True  # 6 pixels
    out = offset_fill(image, hole, ~hole, depth, depth, smooth)
    np.testing.assert_array_equal(out[hole], smooth[hole])


def test_classical_completion_with_texture_keeps_its_guarantees():
    from more4d_core.camera import camera_preset
    from more4d_core.completion import complete_classical
    from more4d_core.data.analytic import make_analytic_scene
    from more4d_core.render import render_scene

    scene = make_analytic_scene(48, 64, 9)
    path = camera_preset("dolly", 9, scene_depth=scene.median_depth())
    result = render_scene(scene, path, return_point_index=True)
    out = complete_classical(result, scene, path, texture=True)
    assert torch.isfinite(out).all() and (out >= 0).all() and (out <= 1).all()
    assert torch.equal(out[~result.holes], result.frames[~result.holes])
    assert not torch.equal(out, complete_classical(result, scene, path, texture=False))


@pytest.mark.parametrize("shape", [(0, 0), (1, 1)])
def test_degenerate_frames(shape):
    h, w = shape
    image = np.zeros((h, w, 3), np.float32)
    hole = np.ones((h, w), bool)
    depth = np.ones((h, w), np.float32)
    out = offset_fill(image, hole, ~hole, depth, depth, image + 0.5)
    assert out.shape == image.shape and (out[hole] == 0.5).all()
