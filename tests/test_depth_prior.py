"""The weight-free depth prior: its cues on synthetic scenes with known geometry, and its score on
the one real photograph with true disparity (scikit-image's stereo_motorcycle)."""

import math

import cv2
import numpy as np
import pytest
import torch

from more4d_core.bench.depth_bench import (
    MOTORCYCLE,
    depth_errors,
    disparity_fit_errors,
    motorcycle_truth,
    real_photo_table,
)
from more4d_core.depth.layout import camera_pitch, find_ground, foot_line
from more4d_core.depth.prior import RELIEF, prior_depth, prior_nearness


def _verticals(pitch_deg: float, h: int = 480, w: int = 640, f: float = 500.0) -> np.ndarray:
    """Upright poles 3-9 m away, from the floor 1.5 m below the camera to 2 m above it, seen by a
    camera pitched down by ``pitch_deg``; drawn white on grey."""
    img = np.full((h, w), 90, np.uint8)
    t = math.radians(pitch_deg)
    rot = np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])  # world -> camera (y down)
    for x_world, z_world in [(-3, 5), (-1.5, 7), (0.5, 4), (2, 6), (3.5, 8), (-2.5, 9), (1.2, 3.5), (-0.6, 6.5)]:
        ends = []
        for y_world in (1.5, -2.0):
            p = rot @ np.array([x_world, y_world, z_world])
            ends.append((int(round(w / 2 + f * p[0] / p[2])), int(round(h / 2 + f * p[1] / p[2]))))
        cv2.line(img, ends[0], ends[1], 255, 3)
    return img


@pytest.mark.parametrize("pitch", [0.0, 12.0, -8.0])
def test_the_pitch_is_read_from_converging_verticals(pitch):
    est, used = camera_pitch(_verticals(pitch), 500.0)
    assert used >= 5
    assert math.degrees(est) == pytest.approx(pitch, abs=1.0)


def test_too_few_verticals_mean_a_level_camera():
    img = np.full((200, 300), 90, np.uint8)
    cv2.line(img, (150, 20), (152, 180), 255, 3)
    assert camera_pitch(img, 300.0)[0] == 0.0


def test_the_foot_line_is_an_upper_envelope_of_the_ground_tops():
    # the ground visibly ends at row 50 at both sides; a subject standing on it hides its end in
    # the middle columns, where the ground's top is its contact line (rows 80..100)
    top = np.full(120, 50.0)
    top[30:90] = np.linspace(80, 100, 60)
    foot, inliers = foot_line(top, np.ones(120, bool), 200)
    np.testing.assert_allclose(foot, 50.0, atol=1.0)
    assert inliers[:30].all() and not inliers[40:80].any()


def _room(h=216, w=320, box=True):
    """A brown wall above row 110, a grey floor below, a red box standing on the floor at row 180."""
    rng = np.random.default_rng(0)
    img = np.zeros((h, w, 3), np.float32)
    img[:110] = (0.45, 0.32, 0.2)
    img[110:] = (0.62, 0.62, 0.6)
    img += rng.normal(0, 0.01, img.shape).astype(np.float32)
    if box:
        img[120:180, 120:200] = (0.8, 0.1, 0.1)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def test_a_room_gets_a_floor_a_wall_standing_on_it_and_a_box_at_its_contact_depth():
    u8 = _room()
    ground = find_ground(u8)
    assert ground.fraction > 0.2
    np.testing.assert_allclose(ground.foot, 110, atol=3)
    near, info = prior_nearness(u8, 320.0, horizon=None, camera_height=1.5)
    assert info["layout"] == "ground" and info["subjects"] == 1
    floor = near[115:, 20]
    assert (np.diff(floor) > 0).all()  # the floor comes nearer row by row
    # the wall stands on the floor: same depth at the foot, one depth all the way up (a level camera)
    assert near[5:105, 20] == pytest.approx(near[111, 20], rel=0.03)
    # the box stands on the floor: at the floor's depth at its contact row (plus its rounded relief)
    box = near[125:175, 125:195]
    contact = near[179, 20]
    assert box.min() == pytest.approx(contact, rel=0.03)
    assert box.max() <= contact * (1 + RELIEF) * 1.01


def test_a_subject_before_a_plain_backdrop_is_one_rounded_surface_in_front():
    h, w = 200, 260
    img = np.full((h, w, 3), 200, np.uint8)
    cv2.ellipse(img, (130, 110), (45, 60), 0, 0, 360, (200, 40, 30), -1)
    cv2.ellipse(img, (130, 90), (25, 20), 0, 0, 360, (230, 180, 60), -1)  # a differently coloured part
    near, info = prior_nearness(img, 260.0, horizon=None, camera_height=1.5)
    assert info["layout"] == "backdrop" and info["subjects"] == 1
    inside = np.zeros((h, w), np.uint8)
    cv2.ellipse(inside, (130, 110), (38, 52), 0, 0, 360, 1, -1)
    subject, backdrop = near[inside > 0], near[50:170, 5:40]  # the backdrop beside it, down to its foot
    assert subject.min() > 1.2 * backdrop.max()  # well in front of the backdrop
    # one surface: the two colours of the subject get no depth step between them
    assert subject.max() / subject.min() <= 1 + RELIEF + 0.02


def test_prior_options_are_checked():
    from more4d_core.errors import InputError

    with pytest.raises(InputError, match="median depth"):
        prior_depth(torch.rand(16, 16, 3), median_depth=float("inf"))
    with pytest.raises(InputError, match="horizon"):
        prior_depth(torch.rand(16, 16, 3), horizon=2.0)
    fixed = prior_depth(torch.from_numpy(_room() / 255.0).float(), horizon=0.3)
    assert fixed.metadata["layout"] == "ground" and fixed.metadata["horizon_row"] == pytest.approx(0.3, abs=0.01)


def test_alignment_metrics_on_analytic_cases():
    gt = torch.rand(20, 30).double() * 4 + 1
    assert depth_errors(3.0 * gt, gt) == pytest.approx((0.0, 1.0), abs=1e-9)
    affine = 1.0 / (2.0 / gt + 0.7)  # its inverse is an affine map of the truth's inverse
    assert disparity_fit_errors(affine, gt) == pytest.approx((0.0, 1.0), abs=1e-6)
    assert depth_errors(affine, gt)[0] > 0.01  # a single scale cannot undo the shift


def test_the_motorcycle_truth_follows_its_documented_calibration():
    skimage = pytest.importorskip("skimage")
    _, _, disparity = skimage.data.stereo_motorcycle()
    _, depth, valid = motorcycle_truth()
    i, j = 400, 40  # a floor pixel with a disparity
    assert valid[i, j]
    # Z = f B / (d + doffs) with skimage's numbers for the quarter-size images
    assert float(depth[i, j]) == pytest.approx(994.978 * 0.193001 / (disparity[i, j] + 31.086), rel=1e-9)
    assert MOTORCYCLE == {"f": 994.978, "baseline_m": 0.193001, "doffs": 31.086}
    assert not valid[~np.isfinite(disparity)].any()


def test_on_the_real_photograph_the_prior_beats_every_baseline():
    pytest.importorskip("skimage")
    rows = real_photo_table(None)
    table = {(c, m): cells for c, m, cells in rows}
    prior = table[("metric depth", "built-in prior")]
    assert prior["median"][0] <= 0.3 and prior["median"][1] >= 0.5 and prior["disparity fit"][1] >= 0.5
    for convention in ("metric depth", "1 / disparity"):
        ours = table[(convention, "built-in prior")]
        for baseline in ("constant", "row gradient (fitted)", "ground plane (fitted)"):
            for align in ("median", "disparity fit"):
                assert ours[align][1] > table[(convention, baseline)][align][1], (convention, baseline, align)


def test_the_true_metric_depth_is_exact_in_the_disparity_fit_of_either_convention():
    """1 / Z = (d + doffs) / (f B) is a scale and shift of the disparity d: the disparity fit of the
    true metric depth onto 1 / d is exact; a single median scale cannot undo the shift."""
    pytest.importorskip("skimage")
    table = {(c, m): cells for c, m, cells in real_photo_table(None)}
    truth = table[("1 / disparity", "true metric depth")]
    assert truth["disparity fit"] == pytest.approx((0.0, 1.0), abs=1e-6)
    assert 0.1 < truth["median"][0] and truth["median"][1] < 0.7
    assert ("metric depth", "true metric depth") not in table


def test_photographs_come_as_rgb_bytes():
    pytest.importorskip("skimage")
    from more4d_core.bench.depth_bench import photograph

    for name in ("camera", "horse", "astronaut"):  # grey, binary, colour
        img = photograph(name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert photograph("horse").max() == 255 and set(np.unique(photograph("horse"))) <= {0, 255}
