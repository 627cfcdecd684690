import pytest
import torch

from more4d_core.bench.reference_render import reference_render
from more4d_core.camera import CameraPath, camera_preset
from more4d_core.camera.intrinsics import intrinsics_from_fov, make_intrinsics
from more4d_core.errors import InputError, WrongTypeError
from more4d_core.geometry.projection import backproject_depth
from more4d_core.render import render_points, render_scene
from more4d_core.scene import Scene4D

BACKENDS = ["numba", "torch"]
EYE = torch.eye(4, dtype=torch.float64)


def _render1(points, colors, k, h, w, backend, **kw):
    pts = torch.as_tensor(points, dtype=torch.float32).unsqueeze(0)
    return render_points(pts, torch.as_tensor(colors), EYE.unsqueeze(0), k, h, w, backend=backend, **kw)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nearest_point_wins_in_any_order(backend):
    k = make_intrinsics(10, 10, 2, 2)  # 4x4 image
    near = [0.0, 0.0, 1.0]  # projects to the centre pixel (row 2, col 2)
    far = [0.0, 0.0, 3.0]
    red, blue = [255, 0, 0], [0, 0, 255]
    for pts, cols in (([near, far], [red, blue]), ([far, near], [blue, red])):
        res = _render1(pts, torch.tensor(cols, dtype=torch.uint8), k, 4, 4, backend, return_point_index=True)
        assert res.frames[0, 2, 2].tolist() == [1.0, 0.0, 0.0]
        assert res.depth[0, 2, 2] == pytest.approx(1.0)
        assert res.point_index[0, 2, 2] == pts.index(near)
        assert res.holes[0].sum() == 15


@pytest.mark.parametrize("backend", BACKENDS)
def test_points_behind_the_camera_never_show(backend):
    k = make_intrinsics(10, 10, 2, 2)
    pts = [[0.0, 0.0, -1.0], [0.05, 0.05, -0.1], [0.0, 0.0, 0.0], [float("nan"), 0, 1], [0, 0, float("inf")]]
    cols = torch.full((5, 3), 200, dtype=torch.uint8)
    res = _render1(pts, cols, k, 4, 4, backend, background=(0.25, 0.5, 0.75))
    assert res.holes.all()
    assert torch.equal(res.frames, torch.tensor([0.25, 0.5, 0.75]).expand(1, 4, 4, 3))
    assert (res.depth == 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_hole_mask_is_exact_and_black_points_are_not_holes(backend):
    h, w = 12, 16
    k = intrinsics_from_fov(h, w, 60.0)
    depth = torch.rand(h, w) + 1.0
    pts = backproject_depth(depth, k).float()
    keep = torch.rand(h * w) > 0.4
    colors = (torch.rand(h * w, 3) * 255).to(torch.uint8)
    colors[::3] = 0  # black points are still points
    res = _render1(pts[keep], colors[keep], k, h, w, backend, return_point_index=True)
    assert torch.equal(res.holes[0].reshape(-1), ~keep)
    expect = colors.float() / 255
    torch.testing.assert_close(res.frames[0].reshape(-1, 3)[keep], expect[keep], rtol=0, atol=0)
    assert torch.equal(res.point_index[0].reshape(-1)[keep], torch.arange(int(keep.sum()), dtype=torch.int32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_identity_camera_reproduces_the_input_image(backend, small_scene):
    res = render_scene(small_scene, camera_preset("static", small_scene.num_frames), backend=backend)
    assert not res.holes[0].any()
    torch.testing.assert_close(res.frames[0].reshape(-1, 3), small_scene.colors_float(), rtol=0, atol=0)
    torch.testing.assert_close(res.depth[0].reshape(-1), small_scene.points0[:, 2], rtol=1e-6, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_splat_footprints(backend):
    k = make_intrinsics(10, 10, 4, 4)  # 8x8 image
    point = [[0.02, 0.02, 1.0]]  # u = v = 4.2: inside pixel (4, 4), nearest to centres of (3..4, 3..4)? no: 4.2 -> (4,4) and (3..4)
    cols = torch.tensor([[10, 20, 30]], dtype=torch.uint8)
    covered = {r: (~_render1(point, cols, k, 8, 8, backend, splat_radius=r).holes[0]).nonzero().tolist() for r in (1, 2, 3)}
    assert covered[1] == [[4, 4]]
    assert covered[2] == [[3, 3], [3, 4], [4, 3], [4, 4]]
    assert covered[3] == [[r, c] for r in (3, 4, 5) for c in (3, 4, 5)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_bigger_output_with_splats_has_no_cracks(backend):
    h, w = 16, 20
    k = intrinsics_from_fov(h, w, 60.0)
    scene = Scene4D.from_depth(torch.full((h, w), 2.0), torch.rand(h, w, 3), k)
    one = render_scene(scene, camera_preset("static", 1), output_hw=(2 * h, 2 * w), backend=backend)
    two = render_scene(scene, camera_preset("static", 1), output_hw=(2 * h, 2 * w), splat_radius=2, backend=backend)
    assert one.holes.float().mean() > 0.5  # 1 point per 4 pixels
    assert not two.holes[0, 1:-1, 1:-1].any()


def test_backends_agree(small_scene):
    path = camera_preset("orbit", small_scene.num_frames, scene_depth=small_scene.median_depth())
    a = render_scene(small_scene, path, backend="numba", return_point_index=True)
    b = render_scene(small_scene, path, backend="torch", return_point_index=True)
    same = (a.point_index == b.point_index).float().mean()
    assert same > 0.995  # only float rounding at pixel borders may differ
    assert (a.holes != b.holes).float().mean() < 0.005


def test_matches_the_reference_renderer_where_no_ties(small_scene):
    path = camera_preset("dolly", small_scene.num_frames, scene_depth=small_scene.median_depth())
    ours = render_scene(small_scene, path)
    k = path.intrinsics_for(small_scene.intrinsics, small_scene.grid_hw, small_scene.grid_hw).float()
    ref_frames, ref_holes = reference_render(
        small_scene.points, small_scene.colors_float(), path.poses.float(), k, small_scene.height, small_scene.width
    )
    assert (ours.holes == ref_holes).float().mean() > 0.99
    both = ~ours.holes & ~ref_holes
    close = ((ours.frames - ref_frames).abs().amax(-1) < 1e-6)[both].float().mean()
    assert close > 0.97


def test_visibility_and_frame_matching(small_scene):
    vis = small_scene.visibility.clone()
    vis[:, : small_scene.width] = False  # hide the first row of points
    scene = Scene4D(small_scene.points, small_scene.colors, grid_hw=small_scene.grid_hw,
                    intrinsics=small_scene.intrinsics, visibility=vis)
    static = camera_preset("static", scene.num_frames)
    assert render_scene(scene, static, use_visibility=True).holes[0, 0].all()
    assert not render_scene(scene, static).holes[0, 0].any()
    one_pose = render_scene(scene, camera_preset("static", 1))
    assert one_pose.num_frames == scene.num_frames
    with pytest.raises(InputError, match="camera path has 5 frames but the scene has 9"):
        render_scene(scene, camera_preset("orbit", 5))


def test_progress_and_bad_arguments(small_scene):
    calls = []
    path = camera_preset("static", small_scene.num_frames)
    render_scene(small_scene, path, progress=lambda done, total: calls.append((done, total)), backend="torch", chunk_points=2000)
    assert calls[-1] == (9, 9) and len(calls) > 1
    with pytest.raises(WrongTypeError, match="Scene4D"):
        render_scene(small_scene.points, path)
    with pytest.raises(InputError, match="splat radius"):
        render_scene(small_scene, path, splat_radius=0)
    with pytest.raises(InputError, match="background"):
        render_scene(small_scene, path, background=(2, 0, 0))
    with pytest.raises(InputError, match="output size"):
        render_scene(small_scene, path, output_hw=(0, 10))
    with pytest.raises(InputError, match="backend"):
        render_scene(small_scene, path, backend="opengl")


def test_empty_frames_render_as_holes():
    k = intrinsics_from_fov(8, 8, 60)
    pts = torch.zeros(3, 64, 3)
    pts[..., 2] = -1.0  # everything behind the camera
    res = render_points(pts, torch.zeros(64, 3), EYE.expand(3, 4, 4), k, 8, 8)
    assert res.holes.all() and res.hole_fraction() == 1.0
    assert res.hole_mask().dtype == torch.float32 and res.hole_mask().shape == (3, 8, 8)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(small_scene):
    path = camera_preset("orbit", small_scene.num_frames, scene_depth=small_scene.median_depth())
    cpu = render_scene(small_scene, path, backend="torch")
    gpu = render_scene(small_scene, path, device="cuda")
    assert (cpu.holes == gpu.holes).float().mean() > 0.995
    assert gpu.frames.device.type == "cpu"


def test_cuda_request_without_cuda_is_explained(small_scene):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(InputError, match="no CUDA device"):
        render_scene(small_scene, camera_preset("static", 1), device="cuda")


def test_one_frame_path_with_intrinsics():
    k = intrinsics_from_fov(8, 8, 60.0)
    path = CameraPath(EYE, intrinsics=k * torch.tensor([[2.0], [2.0], [1.0]], dtype=torch.float64), intrinsics_hw=(16, 16))
    scene = Scene4D.from_depth(torch.full((8, 8), 1.0), torch.rand(8, 8, 3), k)
    res = render_scene(scene, path, output_hw=(8, 8))
    # path intrinsics for 16x16 rescaled to 8x8 equal the scene's: exact image
    torch.testing.assert_close(res.frames[0].reshape(-1, 3), scene.colors_float(), rtol=0, atol=0)
