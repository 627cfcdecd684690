import pytest
import torch

from more4d_core.camera.intrinsics import make_intrinsics
from more4d_core.camera.rotations import euler_to_matrix
from more4d_core.errors import InputError
from more4d_core.geometry.projection import backproject_depth, pixel_centers, project_points, world_to_camera


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backproject_then_project_round_trips(dtype):
    h, w = 37, 53
    k = make_intrinsics(61.5, 58.25, 25.0, 19.5)  # off-centre principal point, non-square pixels
    depth = (torch.rand(h, w, dtype=dtype) * 9 + 0.5)
    pts = backproject_depth(depth, k)
    assert pts.shape == (h * w, 3)
    uv, z = project_points(pts, k)
    uu, vv = pixel_centers(h, w, dtype=dtype)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(uv[:, 0].reshape(h, w), uu, rtol=tol, atol=tol)
    torch.testing.assert_close(uv[:, 1].reshape(h, w), vv, rtol=tol, atol=tol)
    torch.testing.assert_close(z.reshape(h, w), depth, rtol=tol, atol=0)


def test_pixel_centre_convention():
    k = make_intrinsics(10.0, 10.0, 2.0, 1.5)  # 4x3 image, principal point at the centre
    pts = backproject_depth(torch.full((3, 4), 2.0), k)
    # the centre of pixel (row 1, col 1) sits at u = 1.5, v = 1.5 -> x = (1.5 - 2) / 10 * 2
    assert pts[1 * 4 + 1].tolist() == pytest.approx([-0.1, 0.0, 2.0])


def test_nan_depth_is_rejected_with_advice():
    depth = torch.ones(4, 5)
    depth[1, 2] = float("nan")
    depth[0, 0] = 0.0
    with pytest.raises(InputError, match="2 of 20 pixels"):
        backproject_depth(depth, make_intrinsics(5, 5, 2.5, 2))
    pts = backproject_depth(depth, make_intrinsics(5, 5, 2.5, 2), allow_invalid=True)
    assert torch.isnan(pts[1 * 5 + 2]).all() and torch.isnan(pts[0]).all()
    assert torch.isfinite(pts[1]).all()


def test_wrong_shapes_are_rejected():
    with pytest.raises(InputError, match=r"\[H, W\]"):
        backproject_depth(torch.ones(2, 3, 4), make_intrinsics(1, 1, 0, 0))
    with pytest.raises(InputError, match="3, 3"):
        backproject_depth(torch.ones(2, 3), torch.eye(4))
    with pytest.raises(InputError, match="last dimension of 3"):
        project_points(torch.ones(5, 2), make_intrinsics(1, 1, 0, 0))


def test_world_to_camera_inverts_the_pose():
    rot = euler_to_matrix(10.0, -25.0, 5.0)
    pose = torch.eye(4, dtype=torch.float64)
    pose[:3, :3] = rot
    pose[:3, 3] = torch.tensor([0.3, -0.1, 0.7], dtype=torch.float64)
    cam_pts = torch.randn(20, 3, dtype=torch.float64)
    world = cam_pts @ rot.T + pose[:3, 3]
    torch.testing.assert_close(world_to_camera(world, pose), cam_pts)
    batched = world_to_camera(world.expand(2, 20, 3), pose.expand(2, 4, 4))
    torch.testing.assert_close(batched[1], cam_pts)
