"""Defocus read from edges, and the subject before a defocused backdrop (shallow depth of field):
blur widths of edges blurred by known Gaussians, and a close-up whose subject fills the frame's
borders where the backdrop is out of focus."""

import cv2
import numpy as np
import pytest
import torch

from more4d_core.depth.defocus import defocus_map, edge_blur
from more4d_core.depth.estimate import estimate_depth
from more4d_core.depth.prior import prior_depth
from more4d_core.depth.subject import border_strips, defocused_backdrop, extract_subjects


def _step(sigma: float, n: int = 96) -> np.ndarray:
    img = np.zeros((n, n), np.float32)
    img[:, n // 2:] = 0.8
    return cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0 else img


@pytest.mark.parametrize("sigma", [2.0, 3.0, 4.0])
def test_the_blur_of_an_edge_is_the_gaussian_that_blurred_it(sigma):
    reading, edges = edge_blur(_step(sigma))
    at_edge = reading[:, 46:50][edges[:, 46:50]]
    assert len(at_edge) > 50
    # the reading is the Gaussian's width with the pixel grid's own (an ideal step reads about 0.8)
    assert float(np.median(at_edge)) == pytest.approx(np.hypot(sigma, 0.8), rel=0.08)


def test_a_plain_region_gives_no_reading():
    blur = defocus_map(_step(2.0), radius=0.04)  # plain but for the one edge at column 48
    assert np.isfinite(blur[:, 44:52]).all() and np.isnan(blur[:, :20]).all() and np.isnan(blur[:, 76:]).all()
    assert float(np.median(blur[:, 47:49])) == pytest.approx(np.hypot(2.0, 0.8), rel=0.08)
    assert np.isnan(defocus_map(np.full((64, 64), 0.5, np.float32))).all()


def _tan_texture(rng, h, w, cell):
    """Shades of one tan colour in square cells of ``cell`` pixels (fur, a wall: one hue)."""
    small = rng.random((h // cell + 1, w // cell + 1, 1)).astype(np.float32)
    shade = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)[:h, :w, None]
    return (0.35 + 0.6 * shade) * np.array([0.9, 0.7, 0.5], np.float32)


def _close_up(blur: float, h: int = 192, w: int = 256):
    """A subject filling the left two thirds of the frame (touching its top, left and bottom) in a
    fine sharp texture, before a backdrop of the same colours in coarser cells blurred by ``blur``
    pixels: the borders' colours are the subject's as much as the backdrop's."""
    rng = np.random.default_rng(3)
    subject = _tan_texture(rng, h, w, 3)
    backdrop = _tan_texture(rng, h, w, 10)
    if blur > 0:
        backdrop = cv2.GaussianBlur(backdrop, (0, 0), blur)
    ys, xs = np.mgrid[0:h, 0:w]
    mask = ((xs - 0.0) / (0.68 * w)) ** 2 + ((ys - 0.55 * h) / (0.75 * h)) ** 2 <= 1.0
    img = np.where(mask[..., None], subject, backdrop)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8), mask


def test_a_defocused_backdrop_is_read_only_when_the_borders_show_one():
    for blur, shows in ((4.0, True), (0.0, False)):
        u8, mask = _close_up(blur)
        h, w = mask.shape
        grey = cv2.cvtColor(u8, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        backdrop = defocused_backdrop(defocus_map(grey), border_strips(h, w))
        assert (backdrop is not None) == shows
        if shows:  # the in-focus subject is not backdrop; most of the blurred backdrop may be
            assert backdrop[mask].mean() < 0.1 and backdrop[~mask].mean() > 0.7


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def test_a_subject_reaching_the_borders_before_a_defocused_backdrop_is_found_whole_by_focus():
    u8, mask = _close_up(4.0)
    by_focus = extract_subjects(u8, from_focus=True)
    assert _iou(by_focus.mask, mask) >= 0.85 and by_focus.defocused_backdrop
    # by colour (the default) the borders' colours are the subject's too: it is not found
    by_colour = extract_subjects(u8)
    assert _iou(by_colour.mask, mask) < 0.5 and by_colour.defocused_backdrop
    # and in depth: by focus the subject stands in front of the backdrop, as one surface
    result = prior_depth(torch.from_numpy(u8 / 255.0).float(), subjects_from_focus=True)
    depth = result.depth.numpy()
    assert np.median(depth[mask]) * 1.2 < np.median(depth[~mask])
    assert (depth[mask] < np.median(depth[~mask])).mean() > 0.9
    assert result.metadata["subjects_by"] == "focus" and result.metadata["defocused_backdrop"] is True
    assert result.backend == "prior"  # still the prior for the gate and the smoothing


def test_focus_changes_nothing_when_the_backdrop_is_in_focus():
    u8, _ = _close_up(0.0)
    image = torch.from_numpy(u8 / 255.0).float()
    plain, focus = prior_depth(image), prior_depth(image, subjects_from_focus=True)
    assert torch.equal(plain.depth, focus.depth) and plain.metadata["defocused_backdrop"] is False


def test_the_estimate_entry_point_offers_the_prior_by_focus():
    u8, mask = _close_up(4.0)
    image = torch.from_numpy(u8 / 255.0).float()
    direct = prior_depth(image, subjects_from_focus=True, median_depth=3.0)
    via = estimate_depth(image, "prior_focus", cleanup=None)
    assert torch.allclose(via.depth, direct.depth) and via.metadata["subjects_by"] == "focus"
    assert estimate_depth(image, "prior", cleanup=None).metadata["subjects_by"] == "colour"


def test_the_estimate_depth_node_says_when_the_borders_are_out_of_focus(caplog):
    from nodes.depth_nodes import EstimateDepth

    blurred = torch.from_numpy(_close_up(4.0)[0] / 255.0).float()[None]
    sharp = torch.from_numpy(_close_up(0.0)[0] / 255.0).float()[None]
    with caplog.at_level("INFO", logger="more4d"):
        EstimateDepth().estimate(sharp, "prior", "(none)", 0.0, 3.0, "auto", "snap")
        assert "out of focus" not in caplog.text
        EstimateDepth().estimate(blurred, "prior_focus", "(none)", 0.0, 3.0, "auto", "snap")
        assert "out of focus" not in caplog.text  # already by focus: nothing to suggest
        depth, _ = EstimateDepth().estimate(blurred, "prior", "(none)", 0.0, 3.0, "auto", "snap")
    assert "borders are out of focus" in caplog.text and "prior_focus" in caplog.text
    assert depth.metadata["subjects_by"] == "colour"


def test_the_benchmark_computes_the_prior_by_focus_again_only_where_it_can_differ():
    from more4d_core.bench.depth_bench import by_focus

    blurred = torch.from_numpy(_close_up(4.0)[0] / 255.0).float()
    focus = by_focus(blurred, prior_depth(blurred))
    assert focus is not None and torch.equal(focus.depth, prior_depth(blurred, subjects_from_focus=True).depth)
    sharp = torch.from_numpy(_close_up(0.0)[0] / 255.0).float()
    assert by_focus(sharp, prior_depth(sharp)) is None  # the same as shipped there (the test above)
