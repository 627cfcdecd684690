import pytest
import torch

from more4d_core.camera.intrinsics import intrinsics_from_fov
from more4d_core.errors import InputError
from more4d_core.scene import Scene4D


def _scene(t=3, h=4, w=5, **kw):
    k = intrinsics_from_fov(h, w, 60.0)
    pts = torch.randn(t, h * w, 3)
    pts[..., 2] = pts[..., 2].abs() + 1
    cols = torch.rand(h * w, 3)
    return Scene4D(pts, cols, grid_hw=(h, w), intrinsics=k, **kw), pts, cols


def test_construction_and_accessors():
    scene, pts, cols = _scene(metadata={"prompt": "a cat"})
    assert scene.num_frames == 3 and scene.num_points == 20 and scene.grid_hw == (4, 5)
    assert scene.points.dtype == torch.float32 and torch.equal(scene.points, pts)
    assert scene.colors.dtype == torch.uint8
    assert torch.equal(scene.colors, (cols * 255).round().to(torch.uint8))
    assert scene.visibility.all() and scene.visibility.shape == (3, 20)
    assert scene.points_grid().shape == (3, 4, 5, 3)
    assert torch.equal(scene.frame(1), pts[1]) and torch.equal(scene.points0, pts[0])
    assert scene.median_depth() == pytest.approx(float(pts[0, :, 2].median()))
    assert "frames=3" in repr(scene)


def test_grid_shaped_inputs_are_accepted():
    k = intrinsics_from_fov(4, 5, 60.0)
    pts = torch.rand(2, 4, 5, 3) + 1
    img = (torch.rand(4, 5, 3) * 255).to(torch.uint8)
    scene = Scene4D(pts, img, grid_hw=(4, 5), intrinsics=k, visibility=torch.ones(2, 4, 5))
    assert torch.equal(scene.points_grid(), pts)
    assert torch.equal(scene.colors, img.reshape(20, 3))


def test_float16_storage_is_compact_and_exact_at_frame0():
    scene, pts, _ = _scene(t=49, h=16, w=16)
    half = scene.to_storage("float16")
    assert half.storage == "float16"
    assert torch.equal(half.points0, pts[0]) and torch.equal(half.points[0], pts[0])
    assert (half.points - pts).abs().max() < 5e-3
    assert half.nbytes < 0.6 * scene.nbytes
    assert half.to_storage("float32").storage == "float32"


def test_from_depth_is_static():
    k = intrinsics_from_fov(6, 8, 50.0)
    depth = torch.rand(6, 8) + 1
    scene = Scene4D.from_depth(depth, torch.rand(6, 8, 3), k, num_frames=4)
    assert scene.num_frames == 4
    assert torch.equal(scene.points[3], scene.points[0])
    torch.testing.assert_close(scene.points_grid()[0, ..., 2], depth)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(points=torch.zeros(2, 19, 3)), "N = 4\\*5 = 20"),
        (dict(points=torch.full((2, 20, 3), float("nan"))), "non-finite"),
        (dict(points=torch.zeros(2, 20, 3, dtype=torch.int32)), "floating point"),
        (dict(colors=torch.rand(19, 3)), "colours must have shape"),
        (dict(colors=torch.rand(20, 3) * 3), "0, 1"),
        (dict(visibility=torch.ones(3, 20)), "visibility"),
        (dict(fps=0), "fps"),
        (dict(metadata={"x": object()}), "JSON"),
        (dict(intrinsics=torch.zeros(3, 3)), "focal"),
        (dict(grid_hw=(0, 5)), "grid size"),
        (dict(storage="int8"), "storage"),
    ],
)
def test_bad_inputs_are_rejected(change, message):
    args = dict(
        points=torch.ones(2, 20, 3), colors=torch.rand(20, 3), grid_hw=(4, 5),
        intrinsics=intrinsics_from_fov(4, 5, 60.0), fps=8.0,
    )
    args.update(change)
    points = args.pop("points")
    colors = args.pop("colors")
    with pytest.raises(InputError, match=message):
        Scene4D(points, colors, **args)
