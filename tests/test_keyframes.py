import json
import math

import pytest
import torch

from more4d_core.camera import camera_preset, parse_keyframes, path_to_keyframes
from more4d_core.camera.rotations import matrix_to_quaternion, quaternion_to_matrix, rotation_y, slerp
from more4d_core.errors import InputError


def _spec(keyframes, **extra):
    return {"version": 1, "keyframes": keyframes, **extra}


def test_two_keyframes_give_a_straight_line_with_even_speed():
    path = parse_keyframes(
        _spec([{"frame": 0, "position": [0, 0, 0]}, {"frame": 10, "position": [1, 2, 0]}], units="metres")
    )
    assert path.num_frames == 11
    expected = torch.linspace(0, 1, 11, dtype=torch.float64).unsqueeze(1) * torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(path.positions(), expected)
    torch.testing.assert_close(path.poses[:, :3, :3], torch.eye(3, dtype=torch.float64).expand(11, 3, 3))


def test_spline_passes_through_keyframes_and_units_scale():
    kfs = [
        {"frame": 0, "position": [0, 0, 0]},
        {"frame": 8, "position": [0.2, -0.1, 0.1]},
        {"frame": 20, "position": [0.5, 0.0, 0.3]},
        {"frame": 24, "position": [0.4, 0.1, 0.2]},
    ]
    path = parse_keyframes(_spec(kfs), scene_depth=2.5)
    for kf in kfs:
        torch.testing.assert_close(
            path.positions()[kf["frame"]], torch.tensor(kf["position"], dtype=torch.float64) * 2.5
        )
    steps = (path.positions()[1:] - path.positions()[:-1]).norm(dim=1)
    assert steps.max() < 0.2  # no jumps


def test_look_at_points_the_optical_axis_at_the_target():
    path = parse_keyframes(
        _spec([{"frame": 0, "position": [0, 0, 0], "look_at": [0, 0, 1]},
               {"frame": 4, "position": [1, -0.5, 0], "look_at": [0, 0, 2]}], units="metres")
    )
    assert torch.allclose(path.poses[0], torch.eye(4, dtype=torch.float64))
    pose = path.poses[4]
    forward = pose[:3, 2]
    to_target = torch.tensor([0, 0, 2.0], dtype=torch.float64) - pose[:3, 3]
    torch.testing.assert_close(forward, to_target / to_target.norm())
    # image "down" stays as close as possible to world down (+y): camera x has no y component
    assert abs(float(pose[1, 0])) < 1e-12


def test_slerp_halfway():
    q0 = matrix_to_quaternion(torch.eye(3, dtype=torch.float64))
    q1 = matrix_to_quaternion(rotation_y(math.radians(90)))
    mid = quaternion_to_matrix(slerp(q0, q1, 0.5))
    torch.testing.assert_close(mid, rotation_y(math.radians(45)))


def test_rotation_forms_agree():
    r = rotation_y(math.radians(30))
    q = matrix_to_quaternion(r).tolist()
    forms = [{"quaternion_wxyz": q}, {"matrix": r.tolist()}, {"euler_deg": [0, 30, 0]}]
    paths = [parse_keyframes(_spec([{"frame": 0, "rotation": f}])) for f in forms]
    for p in paths:
        torch.testing.assert_close(p.poses[0, :3, :3], r)


@pytest.mark.parametrize("preset", ["orbit", "mix2", "dolly"])
def test_path_to_keyframes_round_trip(preset):
    path = camera_preset(preset, 25, scene_depth=3.0)
    spec = path_to_keyframes(path, scene_depth=3.0)
    back = parse_keyframes(json.dumps(spec), scene_depth=3.0)
    torch.testing.assert_close(back.poses, path.poses, atol=1e-9, rtol=0)


def test_time_keyframes_and_frame_override():
    spec = _spec([{"time": 0, "position": [0, 0, 0]}, {"time": 1, "position": [1, 0, 0]}], units="metres")
    assert parse_keyframes(spec).num_frames == 49  # default count when only times are given
    path = parse_keyframes(spec, num_frames=5)
    assert path.positions()[:, 0].tolist() == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    framed = _spec([{"frame": 0}, {"frame": 4, "position": [1, 0, 0]}], units="metres", num_frames=5)
    stretched = parse_keyframes(framed, num_frames=9)
    assert stretched.positions()[-1, 0] == pytest.approx(1.0)
    assert stretched.positions()[4, 0] == pytest.approx(0.5)


def test_zoom_is_interpolated():
    path = parse_keyframes(_spec([{"frame": 0}, {"frame": 4, "zoom": 2.0}]))
    assert path.zoom.tolist() == pytest.approx([1.0, 1.25, 1.5, 1.75, 2.0])
    k = path.intrinsics_for(torch.diag(torch.tensor([10.0, 10.0, 1.0], dtype=torch.float64)), (8, 8), (8, 8))
    assert k[4, 0, 0] == pytest.approx(20.0)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("{not json", "not valid JSON"),
        ({"keyframes": []}, "non-empty"),
        (_spec([{"frame": 0, "look_at": [0, 0, 1], "rotation": {"euler_deg": [0, 0, 0]}}]), "not both"),
        (_spec([{"frame": 0}, {"frame": 0}]), "same frame"),
        (_spec([{"frame": 0, "rotation": {"matrix": [[2, 0, 0], [0, 1, 0], [0, 0, 1]]}}]), "not a rotation"),
        (_spec([{"frame": 60}], num_frames=49), "only 49 frames"),
        ({"version": 7, "keyframes": [{"frame": 0}]}, "version 7"),
        (_spec([{"position": [0, 0, 0]}]), "exactly one of 'frame'"),
        (_spec([{"frame": 0, "position": [0, "a", 0]}]), "position"),
        (_spec([{"frame": 0, "look_at": [0, 0, 0]}]), "coincides"),
        (_spec([{"frame": 0, "zoom": 0}]), "zoom"),
        (_spec([{"frame": 0}], units="feet"), "units"),
    ],
)
def test_bad_keyframes_are_explained(spec, message):
    with pytest.raises(InputError, match=message):
        parse_keyframes(spec)


def test_roll_look_at_in_scene_units_up_and_a_mirror_matrix_by_hand():
    # a roll alone turns the camera about its optical axis: camera x is (cos, sin, 0) in the input frame
    path = parse_keyframes(_spec([{"frame": 0, "roll_deg": 90}, {"frame": 2, "roll_deg": 0}]))
    torch.testing.assert_close(path.poses[0, :3, 0], torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(path.poses[2, :3, :3], torch.eye(3, dtype=torch.float64))
    # a roll on top of a look-at: straight ahead, rolled 90 degrees, the same as the roll alone
    rolled = parse_keyframes(_spec([{"frame": 0, "look_at": [0, 0, 1], "roll_deg": 90}]))
    torch.testing.assert_close(rolled.poses[0, :3, :3], path.poses[0, :3, :3])
    # look-at targets are in scene-depth units like positions: from (1, 0, 0) d toward (0, 0, 1) d, 45 degrees
    for depth in (0.5, 4.0):
        p = parse_keyframes(_spec([{"frame": 0, "position": [1, 0, 0], "look_at": [0, 0, 1]}]), scene_depth=depth)
        s = 1 / math.sqrt(2)
        torch.testing.assert_close(p.poses[0, :3, 2], torch.tensor([-s, 0.0, s], dtype=torch.float64))
        torch.testing.assert_close(p.poses[0, :3, 3], torch.tensor([depth, 0.0, 0.0], dtype=torch.float64))
    # "up" sets the image's up: with +y up (instead of -y) the picture turns upside down about the optical axis
    flipped = parse_keyframes({**_spec([{"frame": 0, "look_at": [0, 0, 1]}]), "up": [0, 1, 0]})
    torch.testing.assert_close(flipped.poses[0, :3, :3], torch.diag(torch.tensor([-1.0, -1.0, 1.0], dtype=torch.float64)))
    with pytest.raises(InputError, match="not a rotation"):  # orthonormal but a mirror (determinant -1)
        parse_keyframes(_spec([{"frame": 0, "rotation": {"matrix": [[-1, 0, 0], [0, 1, 0], [0, 0, 1]]}}]))
    with pytest.raises(InputError, match="scene depth must be a positive distance"):
        parse_keyframes(_spec([{"frame": 0}]), scene_depth=0.0)
    with pytest.raises(InputError, match="interpolation"):
        parse_keyframes({**_spec([{"frame": 0}]), "interpolation": "cubic"})
