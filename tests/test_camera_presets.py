import math

import pytest
import torch

from more4d_core.camera import ALIASES, PRESET_NAMES, CameraPath, camera_preset, canonical_preset_name
from more4d_core.camera.rotations import is_rotation, rotation_angle
from more4d_core.errors import InputError
from more4d_core.geometry.projection import project_points

EYE = torch.eye(4, dtype=torch.float64)
ALL_NAMES = list(PRESET_NAMES) + list(ALIASES)


def _steps(path: CameraPath):
    pos = path.positions()
    trans = (pos[1:] - pos[:-1]).norm(dim=1)
    rot = torch.tensor(
        [rotation_angle(path.poses[i, :3, :3].T @ path.poses[i + 1, :3, :3]) for i in range(path.num_frames - 1)]
    )
    return trans, rot


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("frames", [1, 2, 49, 120])
def test_every_preset_starts_at_the_input_camera(name, frames):
    path = camera_preset(name, frames, scene_depth=3.0)
    assert path.num_frames == frames
    assert torch.equal(path.poses[0], EYE)
    assert is_rotation(path.poses[:, :3, :3], tol=1e-9)
    assert torch.equal(path.poses[:, 3], torch.tensor([0, 0, 0, 1.0], dtype=torch.float64).expand(frames, 4))


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_presets_are_smooth(name):
    path = camera_preset(name, 49, scene_depth=2.0)
    trans, rot = _steps(path)
    if name == "static":
        assert trans.max() == 0 and rot.max() == 0
        return
    # no jumps: no single step is much larger than the average step of the motion
    for steps in (trans, rot):
        if steps.max() > 1e-12:
            assert steps.max() <= 3.0 * steps.mean() + 1e-12, (name, steps.max(), steps.mean())
    # and the step size itself changes gradually (bounded second difference)
    pos = path.positions()
    accel = (pos[2:] - 2 * pos[1:-1] + pos[:-2]).norm(dim=1)
    assert accel.max() <= 0.25 * max(trans.max(), 1e-12) + 1e-12


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_amplitude_scales_with_scene_depth(name):
    a = camera_preset(name, 25, scene_depth=1.0)
    b = camera_preset(name, 25, scene_depth=4.0)
    torch.testing.assert_close(b.positions(), 4.0 * a.positions())
    torch.testing.assert_close(b.poses[:, :3, :3], a.poses[:, :3, :3])


@pytest.mark.parametrize("name", [n for n in PRESET_NAMES if n != "static"])
def test_strength_zero_is_static_and_strength_scales(name):
    still = camera_preset(name, 13, scene_depth=2.0, strength=0.0)
    torch.testing.assert_close(still.poses, EYE.expand(13, 4, 4))
    one = camera_preset(name, 13, scene_depth=2.0, strength=1.0)
    two = camera_preset(name, 13, scene_depth=2.0, strength=2.0)
    assert one.positions().norm(dim=1).max() > 0 or rotation_angle(one.poses[6, :3, :3]) > 0
    assert two.positions().norm(dim=1).max() >= one.positions().norm(dim=1).max() - 1e-12


def test_negative_strength_reverses_orbit():
    torch.testing.assert_close(
        camera_preset("orbit", 21, scene_depth=2.0, strength=-1.0).poses,
        camera_preset("orbit_reverse", 21, scene_depth=2.0).poses,
    )


def test_reference_aliases():
    assert canonical_preset_name("forward_backward") == "dolly"
    assert canonical_preset_name("surrounding") == "orbit"
    assert canonical_preset_name("anti-surrounding") == "orbit_reverse"
    assert canonical_preset_name("camera_rotate") == "roll"
    assert canonical_preset_name("x_moving") == "pan_x"
    assert canonical_preset_name("Circle_Rotating") == "circle"


def test_reference_amplitudes():
    d = 5.0
    orbit = camera_preset("orbit", 49, scene_depth=d)
    # the last camera has swung 45 degrees about the vertical axis and moved left
    assert rotation_angle(orbit.poses[-1, :3, :3]) == pytest.approx(math.radians(45.0))
    assert orbit.poses[-1, 0, 3] < 0
    roll = camera_preset("roll", 49, scene_depth=d)
    assert max(rotation_angle(p[:3, :3]) for p in roll.poses) == pytest.approx(math.radians(30.0), rel=1e-3)
    dolly = camera_preset("dolly", 49, scene_depth=d)
    assert dolly.positions()[:, 2].max() == pytest.approx(0.1 * d, rel=1e-3)
    assert dolly.positions()[:, 2].min() == pytest.approx(-0.1 * d, rel=1e-3)


@pytest.mark.parametrize("name", ["orbit", "orbit_reverse", "circle", "mix1", "mix2"])
def test_look_at_presets_keep_the_scene_centre_in_view(name):
    d = 3.0
    path = camera_preset(name, 31, scene_depth=d)
    centre = torch.tensor([[0.0, 0.0, d]], dtype=torch.float64)
    k = torch.tensor([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]], dtype=torch.float64)
    for pose in path.poses:
        uv, z = project_points(centre, k, pose)
        assert z.item() > 0
        if name in ("orbit", "orbit_reverse", "mix1", "circle"):
            torch.testing.assert_close(uv[0], torch.tensor([50.0, 40.0], dtype=torch.float64), atol=1e-9, rtol=0)


def test_bad_requests():
    with pytest.raises(InputError, match="unknown camera preset 'zoomy'.*orbit"):
        camera_preset("zoomy")
    with pytest.raises(InputError, match="frame count"):
        camera_preset("orbit", 0)
    with pytest.raises(InputError, match="scene depth"):
        camera_preset("orbit", 10, scene_depth=0.0)
    with pytest.raises(InputError, match="empty"):
        CameraPath(torch.zeros(0, 4, 4))
    bad = EYE.clone()
    bad[0, 0] = 2.0
    with pytest.raises(InputError, match="orthonormal"):
        CameraPath(bad)


def test_resample_keeps_endpoints():
    path = camera_preset("orbit", 49, scene_depth=2.0)
    short = path.resampled(13)
    assert short.num_frames == 13
    torch.testing.assert_close(short.poses[0], path.poses[0])
    torch.testing.assert_close(short.poses[-1], path.poses[-1])
    torch.testing.assert_close(short.poses[6], path.poses[24], atol=1e-9, rtol=0)
