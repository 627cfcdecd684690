"""Exact behaviour of the core modules, written to kill mutants that survived the rest of the suite
(``tools/mutation_score``, README "Mutation testing"). Every expected value comes from outside the
code: hand arithmetic, the pinhole model, or a case with a known answer."""

import errno
import math
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from more4d_core.camera.intrinsics import make_intrinsics
from more4d_core.errors import InputError, OutputExistsError, UnsafePathError
from more4d_core.eval.metrics import TrajectoryScores, mean_scores, moving_points, pixel_focal, score
from more4d_core.export import atomic
from more4d_core.geometry.normalization import (
    NormalizationFactors,
    denormalize_motion,
    factors_for,
    normalize_motion,
    rebase_motion,
)
from more4d_core.geometry.projection import backproject_depth, project_points, world_to_camera
from more4d_core.models.madanorm import MAdaNorm
from more4d_core.render.renderer import (
    MAX_PIXELS,
    RenderResult,
    _background,
    _check_size,
    _choose_backend,
    render_points,
)
from more4d_core.render.visualize import depth_to_image, parse_color
from more4d_core.sampling.conditioning import (
    Conditions,
    as_image_tensor,
    depth_condition,
    generation_size,
    repeat_video,
    resize_depth,
    resize_image,
)
from more4d_core.sampling.flow_sampler import GenerationCancelled, guided_velocity, sample_flow, seeded_noise
from more4d_core.sampling.still import check_still_threshold, hold_still

BACKENDS = ["numba", "torch"]
EYE = torch.eye(4, dtype=torch.float64)
K4 = make_intrinsics(10, 10, 2, 2)  # fx = fy = 10, principal point (2, 2): a 4x4 image


# -- render/visualize ------------------------------------------------------------------------------------------------


def test_depth_image_is_inverse_depth_normalized_over_the_whole_clip():
    depth = torch.tensor([[[1.0, 2.0, 5.0, 0.0]], [[4.0, 3.0, 1.0, 0.0]]])  # [T=2, H=1, W=4]
    holes = torch.tensor([[[False, False, True, False]], [[False, True, False, True]]])
    img = depth_to_image(depth, holes)
    assert img.shape == (2, 1, 4, 3) and img.dtype == torch.float32
    # valid inverse depths 1, 1/2, 1/4, 1: lo = 1/4, hi = 1; 0.1 + 0.9 (1/z - 1/4) / (3/4)
    expected = [[[1.0, 0.4, 0.0, 0.0]], [[0.1, 0.0, 1.0, 0.0]]]  # holes and zero depth are black
    for c in range(3):
        torch.testing.assert_close(img[..., c], torch.tensor(expected), rtol=0, atol=1e-6)


def test_depth_image_of_one_depth_is_white_and_of_no_depth_black():
    assert torch.equal(depth_to_image(torch.full((1, 2, 2), 3.0), torch.zeros(1, 2, 2, dtype=torch.bool)),
                       torch.ones(1, 2, 2, 3))
    assert torch.equal(depth_to_image(torch.full((1, 2, 2), 3.0), torch.ones(1, 2, 2, dtype=torch.bool)),
                       torch.zeros(1, 2, 2, 3))


@pytest.mark.parametrize(("text", "rgb"), [
    ("#FF8000", (1.0, 128 / 255, 0.0)),
    ("  ff8000 ", (1.0, 128 / 255, 0.0)),
    ("255, 0 ,51", (1.0, 0.0, 0.2)),
    ("0.5 0.25 1", (0.5, 0.25, 1.0)),
    ("1,1,1", (1.0, 1.0, 1.0)),  # all <= 1: read as 0..1
    ("0,0,2", (0.0, 0.0, 2 / 255)),
    ("255 255 255", (1.0, 1.0, 1.0)),
])
def test_colours_as_text(text, rgb):
    assert parse_color(text) == pytest.approx(rgb)


@pytest.mark.parametrize(("text", "message"), [
    ("256,0,0", "components must be 0..255"),
    ("-1,0,0", "not understood"),
    ("1,2", "not understood"),
    ("1,2,3,4", "not understood"),
    ("a,b,c", "not understood"),
    ("#12345", "not understood"),
])
def test_bad_colours_are_refused(text, message):
    with pytest.raises(InputError, match=message):
        parse_color(text)


# -- render/renderer -------------------------------------------------------------------------------------------------


def test_output_size_limits():
    assert MAX_PIXELS == 2**31 // 64 - 1 == 33_554_431  # depth and pixel index share one 64-bit key
    size = _check_size(3.0, 5)
    assert size == (3, 5) and all(type(v) is int for v in size)
    assert _check_size(1, MAX_PIXELS) == (1, MAX_PIXELS)
    with pytest.raises(InputError, match="too large"):
        _check_size(1, MAX_PIXELS + 1)
    for bad in ((0, 5), (5, 0), (2.5, 4), (4, 2.5), (-1, 4)):
        with pytest.raises(InputError, match="positive integers"):
            _check_size(*bad)


def test_background_colours():
    assert _background(0.5).tolist() == [0.5, 0.5, 0.5]
    assert _background((0.0, 1.0, 0.25)).tolist() == [0.0, 1.0, 0.25]
    assert _background([[0.0], [1.0], [0.25]]).tolist() == [0.0, 1.0, 0.25]
    for bad in ((-0.01, 0, 0), (0, 0, 1.01), (float("nan"), 0, 0), (0, 0), (0, 0, 0, 0)):
        with pytest.raises(InputError, match="background"):
            _background(bad)


def test_backend_choice():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert _choose_backend("torch", cpu) is False
    assert _choose_backend("auto", cpu) is True  # numba is a dependency
    assert _choose_backend("numba", cpu) is True
    assert _choose_backend("auto", cuda) is False
    assert _choose_backend("torch", cuda) is False
    with pytest.raises(InputError, match="CPU only"):
        _choose_backend("numba", cuda)
    with pytest.raises(InputError, match="'auto', 'numba' or 'torch'"):
        _choose_backend("vulkan", cpu)


def test_render_result_fractions():
    holes = torch.tensor([[[True, False], [False, False]]])
    res = RenderResult(torch.zeros(1, 2, 2, 3), holes, torch.zeros(1, 2, 2))
    assert res.num_frames == 1 and res.hole_fraction() == 0.25
    assert res.hole_mask().tolist() == [[[1.0, 0.0], [0.0, 0.0]]]
    empty = RenderResult(torch.zeros(0, 2, 2, 3), torch.zeros(0, 2, 2, dtype=torch.bool), torch.zeros(0, 2, 2))
    assert empty.hole_fraction() == 0.0 and empty.num_frames == 0


def _one_point(point, backend, colors=((10, 20, 30),), **kw):
    pts = torch.tensor([point], dtype=torch.float32).unsqueeze(0)
    cols = torch.tensor(colors, dtype=torch.uint8 if isinstance(colors[0][0], int) else torch.float32)
    return render_points(pts, cols, EYE.unsqueeze(0), K4, 4, 4, backend=backend, return_point_index=True, **kw)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_point_lands_on_its_pinhole_pixel(backend):
    # u = 10 * 0.1 / 1 + 2 = 3, v = 10 * -0.1 / 1 + 2 = 1: pixel (row 1, col 3), at depth 1
    res = _one_point([0.1, -0.1, 1.0], backend)
    assert (~res.holes[0]).nonzero().tolist() == [[1, 3]]
    assert res.depth[0, 1, 3] == 1.0 and res.depth.sum() == 1.0
    assert res.point_index[0, 1, 3] == 0 and (res.point_index[0] == -1).sum() == 15
    assert res.frames[0, 1, 3].tolist() == pytest.approx([10 / 255, 20 / 255, 30 / 255])
    # float colours are used as they are
    res = _one_point([0.1, -0.1, 1.0], backend, colors=((0.2, 0.4, 0.6),))
    assert res.frames[0, 1, 3].tolist() == pytest.approx([0.2, 0.4, 0.6])


@pytest.mark.parametrize("backend", BACKENDS)
def test_image_borders_and_the_near_plane(backend):
    inside = 0.1999  # u = 3.999: the last column
    assert (~_one_point([inside, 0.0, 1.0], backend).holes[0]).nonzero().tolist() == [[2, 3]]
    assert _one_point([0.2, 0.0, 1.0], backend).holes.all()  # u = 4: just outside
    assert (~_one_point([-0.2, -0.2, 1.0], backend).holes[0]).nonzero().tolist() == [[0, 0]]  # u = v = 0
    assert _one_point([-0.2001, 0.0, 1.0], backend).holes.all()  # u < 0
    assert _one_point([0.0, 0.0, 1.0], backend, near=1.0).holes.all()  # z must exceed the near plane
    assert not _one_point([0.0, 0.0, 1.0], backend, near=0.999).holes.all()
    # a 3x3 footprint half outside the image still covers the pixels that are inside
    res = _one_point([-0.2, -0.2, 1.0], backend, splat_radius=3)  # centre (0, 0): rows/cols -1..1
    assert (~res.holes[0]).nonzero().tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    res = _one_point([0.1999, 0.1999, 1.0], backend, splat_radius=2)  # u = v = 3.999: pixels 3..4
    assert (~res.holes[0]).nonzero().tolist() == [[3, 3]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_equal_depths_go_to_the_lower_point_index(backend):
    pts = torch.tensor([[[0.0, 0.0, 2.0], [0.0, 0.0, 2.0], [0.0, 0.0, 2.5]]])
    cols = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=torch.uint8)
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        res = render_points(pts[:, order], cols[order], EYE.unsqueeze(0), K4, 4, 4, backend=backend,
                            return_point_index=True)
        first = min(order.index(0), order.index(1))
        assert res.point_index[0, 2, 2] == first and res.depth[0, 2, 2] == 2.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_frame_uses_its_own_camera_and_mask(backend):
    pts = torch.tensor([[0.1, -0.1, 1.0]], dtype=torch.float32).expand(3, 1, 3)
    poses = EYE.repeat(3, 1, 1)
    poses[1, 0, 3] = 0.1  # camera 0.1 to the right: the point is at x = 0 in it -> u = 2
    k = K4.repeat(3, 1, 1)
    k[2, 0, 2] = 1.0  # frame 2: principal point moved left -> u = 2
    mask = torch.tensor([[True], [True], [True]])
    cols = torch.tensor([[10, 20, 30]], dtype=torch.uint8)
    res = render_points(pts, cols, poses, k, 4, 4, backend=backend, point_mask=mask)
    assert [(~res.holes[t]).nonzero().tolist() for t in range(3)] == [[[1, 3]], [[1, 2]], [[1, 2]]]
    mask[1, 0] = False
    res = render_points(pts, cols, poses, k, 4, 4, backend=backend, point_mask=mask)
    assert res.holes[1].all() and not res.holes[0].all() and not res.holes[2].all()
    assert res.point_index is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_progress_counts_every_frame(backend):
    pts = torch.tensor([[0.0, 0.0, 1.0]]).expand(5, 1, 3)
    calls = []
    kw = {"chunk_points": 1} if backend == "torch" else {}
    res = render_points(pts, torch.zeros(1, 3), EYE.expand(5, 4, 4), K4, 4, 4, backend=backend,
                        progress=lambda done, total: calls.append((done, total)), **kw)
    assert calls[-1] == (5, 5) and [d for d, _ in calls] == sorted({d for d, _ in calls})
    if backend == "torch":
        assert calls == [(t, 5) for t in range(1, 6)]  # one point per chunk: one frame per chunk
    assert (~res.holes).sum() == 5


def test_numba_progress_comes_every_two_frames_per_thread():
    step = 2 * torch.get_num_threads()
    frames = step + 1
    pts = torch.tensor([[0.0, 0.0, 1.0]]).expand(frames, 1, 3)
    calls = []
    res = render_points(pts, torch.zeros(1, 3), EYE.expand(frames, 4, 4), K4, 4, 4, backend="numba",
                        progress=lambda done, total: calls.append((done, total)))
    assert calls == [(step, frames), (frames, frames)] and (~res.holes).sum() == frames


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_mask_never_brings_back_a_point_behind_the_camera(backend):
    pts = torch.tensor([[[0.0, 0.0, -1.0], [0.0, 0.0, float("nan")], [0.1, 0.1, 1.0]]])
    res = render_points(pts, torch.zeros(3, 3), EYE.unsqueeze(0), K4, 4, 4, backend=backend,
                        point_mask=torch.ones(1, 3, dtype=torch.bool), return_point_index=True)
    assert (~res.holes[0]).nonzero().tolist() == [[3, 3]] and res.point_index[0, 3, 3] == 2


def test_torch_chunks_give_the_same_render(small_scene):
    from more4d_core.camera import camera_preset
    from more4d_core.render import render_scene

    path = camera_preset("orbit", small_scene.num_frames, scene_depth=small_scene.median_depth())
    whole = render_scene(small_scene, path, backend="torch", return_point_index=True)
    n = small_scene.points.shape[1]
    for budget in (n, 2 * n + 1):  # one, two frames per chunk
        part = render_scene(small_scene, path, backend="torch", return_point_index=True, chunk_points=budget)
        assert torch.equal(part.point_index, whole.point_index) and torch.equal(part.frames, whole.frames)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"splat_radius": 6}, "splat radius"),
    ({"splat_radius": 1.5}, "splat radius"),
    ({"near": 0.0}, "near plane"),
    ({"near": float("nan")}, "near plane"),
    ({"points": torch.zeros(1, 2, 3, dtype=torch.int64)}, "float tensor"),
    ({"points": torch.zeros(2, 3)}, "float tensor"),
    ({"points": torch.zeros(1, 2, 2)}, "float tensor"),
    ({"points": torch.zeros(0, 2, 3)}, "zero frames"),
    ({"cam_to_world": torch.eye(4).repeat(2, 1, 1)}, "cam_to_world"),
    ({"cam_to_world": torch.eye(3).unsqueeze(0)}, "cam_to_world"),
    ({"intrinsics": K4.repeat(2, 1, 1)}, "one intrinsics matrix or 1"),
    ({"colors": torch.zeros(3, 3)}, "colours"),
    ({"colors": torch.zeros(2, 4)}, "colours"),
    ({"point_mask": torch.ones(1, 3, dtype=torch.bool)}, "point mask"),
])
def test_bad_render_arguments_are_explained(kwargs, message):
    args = {"points": torch.zeros(1, 2, 3), "colors": torch.zeros(2, 3), "cam_to_world": EYE.unsqueeze(0),
            "intrinsics": K4, "height": 4, "width": 4}
    args.update(kwargs)
    with pytest.raises(InputError, match=message):
        render_points(**args)


def test_radius_five_is_the_largest_footprint():
    res = _one_point([0.0, 0.0, 1.0], "torch", splat_radius=5)  # centre (2, 2): rows/cols 0..4, clipped to 0..3
    assert not res.holes.any()


# -- geometry --------------------------------------------------------------------------------------------------------


def test_backprojection_by_hand():
    k = make_intrinsics(2.0, 4.0, 1.0, 0.5)  # fx, fy, cx, cy
    pts = backproject_depth(torch.tensor([[2.0, 4.0]]), k)
    # pixel centres u = 0.5, 1.5 and v = 0.5: x = (u - cx) / fx * z, y = (v - cy) / fy * z
    assert pts.tolist() == [[-0.5, 0.0, 2.0], [1.0, 0.0, 4.0]] and pts.dtype == torch.float32
    pts = backproject_depth(torch.tensor([[2.0, 4.0], [6.0, 8.0]], dtype=torch.float64), k)
    assert pts.dtype == torch.float64 and pts[3].tolist() == [2.0, 2.0, 8.0]  # u = v = 1.5
    assert backproject_depth(torch.tensor([[2, 4]]), k).dtype == torch.float32  # integer depth
    pts = backproject_depth(torch.tensor([[2.0, 0.0, -1.0]]), make_intrinsics(2, 2, 1.5, 0.5), allow_invalid=True)
    assert pts[0].tolist() == [-1.0, 0.0, 2.0] and torch.isnan(pts[1:]).all()


def test_projection_by_hand():
    k = make_intrinsics(100.0, 50.0, 10.0, 20.0)
    uv, z = project_points(torch.tensor([[1.0, 2.0, 4.0]]), k)
    assert uv.tolist() == [[35.0, 45.0]] and z.tolist() == [4.0]  # u = 1/4 * 100 + 10, v = 2/4 * 50 + 20
    pose = torch.eye(4)
    pose[2, 3] = -1.0  # the camera one unit behind the origin
    uv, z = project_points(torch.tensor([[1.0, 2.0, 4.0]]), k, pose)
    assert uv.tolist() == [[30.0, 40.0]] and z.tolist() == [5.0]


def test_world_to_camera_rotation_and_batches():
    pose = torch.tensor([[0.0, -1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0, 0, 0, 1]])
    # camera turned 90 degrees about z and moved to x = 1: p_cam = R^T (p - t)
    p = torch.tensor([[2.0, 0.0, 3.0]])
    assert world_to_camera(p, pose).tolist() == [[0.0, -1.0, 3.0]]
    poses = torch.stack([torch.eye(4), pose])
    out = world_to_camera(torch.stack([p, p]), poses)
    assert out.tolist() == [[[2.0, 0.0, 3.0]], [[0.0, -1.0, 3.0]]]


def test_normalization_by_hand():
    f = NormalizationFactors(2.0, 0.5)
    tracks = torch.tensor([[[1.0, 2.0, 4.0]], [[2.0, 4.0, 5.0]]])
    n = normalize_motion(tracks, f)
    # displacement (1, 2, 1) at Z0 = 4: (1 * 2 / 4, 2 * 0.5 / 4, 1 / 4)
    assert n.tolist() == [[[0.0, 0.0, 0.0]], [[0.5, 0.25, 0.25]]]
    assert torch.equal(denormalize_motion(n, tracks[0], f), tracks)
    shifted = n + torch.tensor([0.5, 0.0, 0.0])  # frame 0 not zero: only force_frame0 pins it
    assert denormalize_motion(shifted, tracks[0], f)[0].tolist() == [[1.0, 2.0, 4.0]]
    assert denormalize_motion(shifted, tracks[0], f, force_frame0=False)[0].tolist() == [[2.0, 2.0, 4.0]]
    with pytest.raises(InputError, match="same grid"):
        denormalize_motion(n, tracks[0, :, :2], f)


def test_normalization_factors_by_mode():
    k = make_intrinsics(100.0, 50.0, 20.0, 10.0)
    assert factors_for("intrinsics", k, 20, 40).to_dict() == {"fx": 2.5, "fy": 2.5}  # 100 / 40, 50 / 20
    assert factors_for("focal", k, 20, 40) == NormalizationFactors(1.0, 1.0)
    assert factors_for("reference", k, 20, 40) == NormalizationFactors() == NormalizationFactors.reference()
    assert NormalizationFactors().to_dict() == {"fx": 0.75 * 512 / 368, "fy": 1.0}
    with pytest.raises(InputError, match="reference, intrinsics, focal"):
        factors_for("pixels", k, 20, 40)
    for fx, fy in ((0.0, 1.0), (1.0, 0.0), (-1.0, 1.0), (1.0, float("nan"))):
        with pytest.raises(InputError, match="positive"):
            NormalizationFactors(fx, fy)


def test_rebased_motion_by_hand():
    tracks = torch.tensor([[[0.0, 0.0, 2.0]], [[1.0, 0.0, 3.0]]])
    # normalized (focal units): (1 / 2, 0, 1 / 2); on Z0 = 4: x = 0.5 * 4, z = 4 * 1.5
    out = rebase_motion(tracks, torch.tensor([[0.0, 1.0, 4.0]]))
    assert out.tolist() == [[[0.0, 1.0, 4.0]], [[2.0, 1.0, 6.0]]]


# -- sampling --------------------------------------------------------------------------------------------------------


def test_seeded_noise():
    a = seeded_noise((2, 3), 7, "cpu")
    assert torch.equal(a, seeded_noise((2, 3), 7, "cpu")) and not torch.equal(a, seeded_noise((2, 3), 8, "cpu"))
    assert torch.equal(a, torch.randn((2, 3), generator=torch.Generator().manual_seed(7)))
    b = seeded_noise((2, 3), 7, "cpu", dtype=torch.float64)
    assert b.dtype == torch.float64 and torch.equal(b, a.double())


def test_sampler_steps_progress_and_cancellation():
    noise = torch.ones(2, 3)
    seen, calls = [], []

    def velocity(x, t):
        seen.append((tuple(t.shape), t.dtype))
        return torch.full_like(x, 0.5)

    out = sample_flow(velocity, noise, steps=3, shift=1.0, progress=lambda i, n: calls.append((i, n)))
    # Euler from sigma 1 to 0 with a constant velocity v: x0 = noise - v
    torch.testing.assert_close(out, torch.full((2, 3), 0.5))
    assert calls == [(1, 3), (2, 3), (3, 3)] and seen == [((2,), torch.float32)] * 3
    polls = []
    with pytest.raises(GenerationCancelled, match="before step 3 of 3"):
        sample_flow(velocity, noise, steps=3, shift=1.0, should_cancel=lambda: polls.append(1) or len(polls) > 2)
    for bad in (0, 2.5, -1):
        with pytest.raises(InputError, match="steps"):
            sample_flow(velocity, noise, steps=bad, shift=1.0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(InputError, match="shift"):
            sample_flow(velocity, noise, steps=2, shift=bad)


def test_timesteps_follow_the_shifted_schedule():
    def timesteps(shift):
        ts = []
        sample_flow(lambda x, t: ts.append(float(t[0])) or torch.zeros_like(x), torch.zeros(1, 1), steps=3, shift=shift)
        return ts

    plain, shifted = timesteps(1.0), timesteps(3.0)
    # timesteps are 1000 sigma from sigma = 1; the shift 3 s / (1 + 2 s) keeps later steps at higher noise
    assert plain[0] == shifted[0] == 1000.0
    assert plain[1] == pytest.approx(500.5) and shifted[1] > plain[1] and shifted[2] > plain[2]


def test_guidance_formula_and_its_checks():
    def batched(x, t, rows):
        v = torch.tensor([[3.0], [1.0]])[rows]  # conditional 3, unconditional 1
        return v.repeat(x.shape[0] // v.shape[0], 1)

    x, t = torch.zeros(1, 1), torch.zeros(1)
    assert guided_velocity(batched, 2.5)(x, t).item() == 6.0  # 1 + 2.5 (3 - 1)
    assert guided_velocity(batched, 2.5, as_batch=False)(x, t).item() == 6.0
    assert guided_velocity(batched, 1.0)(x, t).item() == 3.0
    assert guided_velocity(batched, 0.0)(x, t).item() == 1.0
    for bad in (float("nan"), float("inf")):
        with pytest.raises(InputError, match="guidance"):
            guided_velocity(batched, bad)


def test_generation_grid_by_hand():
    cfg = SimpleNamespace(pixel_stride=16, height=64, width=64)
    # area 4096; (100, 400): scale sqrt(4096 / 40000) = 0.32 -> 32 x 128
    assert generation_size((100, 400), cfg) == (32, 128)
    # (10, 1000): scale 0.64 -> 6.4 rounds to no stride at all: at least one stride
    assert generation_size((10, 1000), cfg) == (16, 640)
    assert generation_size((1000, 10), cfg) == (640, 16)
    assert generation_size((88, 88), cfg) == (64, 64)  # rounded to the nearest stride


def test_input_images():
    u8 = torch.tensor([[[255, 0, 51]]], dtype=torch.uint8)
    assert as_image_tensor(u8)[0, 0].tolist() == pytest.approx([1.0, 0.0, 0.2])
    rgba = torch.tensor([[[[0.5, 0.25, 1.0, 0.0]]]])  # ComfyUI batch of one, with alpha
    assert as_image_tensor(rgba).tolist() == [[[0.5, 0.25, 1.0]]]
    assert as_image_tensor(torch.tensor([[[1.0009, -0.0009, 0.5]]])).tolist() == [[[1.0, 0.0, 0.5]]]
    for bad in ([[[1.002, 0.0, 0.0]]], [[[-0.002, 0.0, 0.0]]], [[[float("nan"), 0.0, 0.0]]]):
        with pytest.raises(InputError, match="finite values in 0..1"):
            as_image_tensor(torch.tensor(bad))
    for bad in (torch.zeros(2, 1, 1, 3), torch.zeros(1, 1, 2), torch.zeros(1, 1, 5)):
        with pytest.raises(InputError, match=r"\[H, W, 3\]"):
            as_image_tensor(bad)
    with pytest.raises(InputError, match="empty"):
        as_image_tensor(torch.zeros(0, 4, 3))


def test_resizing_images_and_depth():
    img = torch.rand(2, 3, 3)
    same = resize_image(img, (2, 3))
    assert same.shape == (1, 3, 2, 3) and torch.equal(same[0].permute(1, 2, 0), img)
    assert resize_image(img, (4, 6)).shape == (1, 3, 4, 6)
    flat = resize_image(torch.full((2, 2, 3), 0.75), (5, 3))
    torch.testing.assert_close(flat, torch.full((1, 3, 5, 3), 0.75))
    d = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert resize_depth(d, (2, 2)) is d
    assert resize_depth(d, (4, 4)).tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]


def test_depth_condition_by_hand():
    d = torch.tensor([[1.0, 3.0], [float("nan"), 5.0]])  # NaN -> 1; min-max over 1..5
    assert depth_condition(d).tolist() == [[-1.0, 0.0], [-1.0, 1.0]]
    tiny = torch.tensor([[1e-6, 2.0, 4.0]])  # below 1e-5 -> 1
    assert depth_condition(tiny)[0].tolist() == pytest.approx([-1.0, -1 / 3, 1.0])
    assert depth_condition(tiny, "max_ratio")[0].tolist() == pytest.approx([-0.5, 0.0, 1.0])
    far = torch.tensor([[0.0, 5e3, 2e4]])  # 0 -> 1, far depths clamp to 1e4
    assert depth_condition(far, "max_ratio")[0].tolist() == pytest.approx([-0.9998, 0.0, 1.0], abs=1e-6)
    assert depth_condition(torch.tensor([[1e-5, 3.0]]))[0].tolist() == pytest.approx([-1.0, 1.0])


def test_conditions_are_stacked_in_order():
    video = repeat_video(torch.arange(2.0).view(1, 2, 1, 1), 3)
    assert video.shape == (1, 2, 3, 1, 1) and video[0, :, :, 0, 0].tolist() == [[0, 0, 0], [1, 1, 1]]
    c = Conditions(torch.full((1, 1, 1), 1.0), torch.full((1, 1, 1), 2.0), torch.full((1, 1, 1), 3.0),
                   None, torch.full((1, 2), 4.0))
    stacked = c.model_input(torch.zeros(2, 1, 1, dtype=torch.float64))
    assert stacked.dtype == torch.float64 and stacked[:, :, 0].tolist() == [[0, 1, 2, 3], [0, 1, 2, 3]]
    ref, mot = c.expanded(3)
    assert ref is None and mot.shape == (3, 2)
    c3 = Conditions(torch.zeros(3, 1, 1), torch.zeros(3, 1, 1), torch.zeros(3, 1, 1), torch.ones(1, 2), None)
    assert c3.model_input(torch.zeros(3, 1, 1)).shape == (3, 4, 1)
    assert c3.expanded(3)[0].shape == (3, 2) and c3.expanded(3)[1] is None
    with pytest.raises(InputError, match="batch of 2"):
        c3.model_input(torch.zeros(2, 1, 1))


def test_still_threshold_limits_and_ramp():
    assert check_still_threshold(0) == 0.0 and check_still_threshold(0.1) == 0.1
    for bad in (0.1001, -1e-9, float("nan")):
        with pytest.raises(InputError, match="still threshold"):
            check_still_threshold(bad)
    field = torch.zeros(1, 3, 2, 1, 3, dtype=torch.float64)
    field[0, 0, 1, 0] = torch.tensor([0.01, 0.015, 0.02])  # threshold 0.02: weights 0, 1/2, 1
    field[0, 1, 1, 0, 2] = 0.0
    out = hold_still(field, 0.02)
    assert out[0, 0, 1, 0].tolist() == pytest.approx([0.0, 0.0075, 0.02])
    # the peak is the length of the 3-vector: (0.006, 0.008, 0) has length 0.01 -> weight 0
    v = torch.zeros(1, 3, 1, 1, 1)
    v[0, :2, 0, 0, 0] = torch.tensor([0.009, 0.012])  # length 0.015 -> weight 1/2
    assert hold_still(v, 0.02)[0, :2, 0, 0, 0].tolist() == pytest.approx([0.0045, 0.006])


# -- models/madanorm -------------------------------------------------------------------------------------------------


def test_madanorm_starts_as_identity_and_applies_the_formula():
    torch.manual_seed(0)
    mod = MAdaNorm(4, 3)
    assert mod.gate.tolist() == [0.0, 0.0, 0.0] and mod.spatial_guide[1].bias.abs().sum() == 0
    w = mod.spatial_guide[1].weight
    assert w.shape == (6, 4) and w.abs().sum() > 0 and w.abs().max() <= math.sqrt(6 / (4 + 6))  # Xavier bound
    scale, shift = mod.modulation(torch.randn(1, 2, 4), 1.0)
    assert scale.abs().sum() == 0 and shift.abs().sum() == 0
    x = torch.tensor([[1.0, -2.0, 4.0]], dtype=torch.bfloat16)
    out = MAdaNorm.apply(x, torch.tensor([[0.5, 1.0, -1.0]]), torch.tensor([[1.0, 0.0, 2.0]]))
    assert out.dtype == torch.bfloat16 and out.tolist() == [[2.5, -4.0, 2.0]]  # x (1 + s) + b


# -- eval/metrics ----------------------------------------------------------------------------------------------------


def test_pixel_focal_and_the_moving_threshold():
    k = make_intrinsics(100.0, 25.0, 0.0, 0.0)
    assert pixel_focal(k) == 50.0 and pixel_focal(k, 2.0) == 100.0  # sqrt(100 * 25)
    k = make_intrinsics(100.0, 100.0, 0.0, 0.0)
    gt = torch.zeros(3, 3, 3, dtype=torch.float64)
    gt[..., 2] = -10.0  # |z| = 10: 2 px are 2 * 10 / 100 = 0.2
    gt[2, 0, 0] = 0.2  # exactly 2 px: not moving
    gt[1, 1, 1] = 0.21  # a bit more, at one frame only
    gt[2, 2, 0] = 0.15
    assert moving_points(gt, k).tolist() == [False, True, False]
    assert moving_points(gt, k, threshold_px=1.4).tolist() == [True, True, True]
    assert moving_points(gt, k, pixel_scale=1.5).tolist() == [True, True, True]  # 2 px of 1.5x finer pixels


def test_scores_by_hand():
    k = make_intrinsics(100.0, 100.0, 0.0, 0.0)
    gt = torch.tensor([[[0.0, 0.0, 10.0]]] * 3, dtype=torch.float64)
    pred = torch.tensor([[[0.0, 0.0, 10.0]], [[0.15, 0.0, 10.0]], [[0.5, 0.0, 10.0]]], dtype=torch.float64)
    s = score(pred, gt, torch.ones(3, 1, dtype=torch.bool), k, NormalizationFactors(1.0, 1.0))
    # thresholds delta * 10 / 100; errors about 0.15 and 0.5 (the median scaling changes them by < 1e-3)
    assert s.within == {1: 0.0, 2: 0.5, 4: 0.5, 8: 1.0, 16: 1.0} and s.points == 2
    assert s.within_avg == pytest.approx(0.6)
    assert s.epe3d == pytest.approx((0.015 + 0.05) / 2)  # normalized displacements 0.15 / 10 and 0.5 / 10
    assert s.smoothness == pytest.approx(0.05 - 2 * 0.015)
    d = s.to_dict()
    assert d["within"] == {"1": 0.0, "2": 0.5, "4": 0.5, "8": 1.0, "16": 1.0} and d["points"] == 2
    assert d["within_avg"] == pytest.approx(0.6) and d["epe3d"] == s.epe3d and d["smoothness"] == s.smoothness
    # twice as far from the camera, the same pixel errors: the prediction is scaled, then scored
    s2 = score(pred * 2, gt, torch.ones(3, 1, dtype=torch.bool), k, NormalizationFactors(1.0, 1.0))
    assert s2.within == s.within
    # nothing visible: no median scaling, no within fractions
    hidden = score(pred, gt, torch.zeros(3, 1, dtype=torch.bool), k, NormalizationFactors(1.0, 1.0))
    assert hidden.points == 0 and all(math.isnan(v) for v in hidden.within.values())
    assert hidden.epe3d == pytest.approx(s.epe3d)
    none = score(pred, gt, torch.ones(3, 1, dtype=torch.bool), k, NormalizationFactors(1.0, 1.0),
                 points=torch.zeros(1, dtype=torch.bool))
    assert math.isnan(none.epe3d) and math.isnan(none.smoothness) and none.points == 0


def test_median_scaling_uses_the_visible_points():
    k = make_intrinsics(100.0, 100.0, 0.0, 0.0)
    gt = torch.tensor([[[0.0, 0.0, 10.0], [0.0, 0.0, 10.0], [0.0, 0.0, 1.0]]] * 2, dtype=torch.float64)
    pred = gt * 2
    pred[:, 2] = torch.tensor([0.0, 0.0, 5.0])  # a hidden point far off would move the median
    vis = torch.tensor([[True, True, False]] * 2)
    s = score(pred, gt, vis, k, NormalizationFactors(1.0, 1.0))
    assert s.within[1] == 1.0 and s.points == 2


def test_mean_over_scenes():
    a = TrajectoryScores(0.2, {d: 0.5 for d in (1, 2, 4, 8, 16)}, 0.1, 10)
    b = TrajectoryScores(0.4, {d: 1.0 for d in (1, 2, 4, 8, 16)}, 0.3, 30)
    empty = TrajectoryScores(float("nan"), {d: float("nan") for d in (1, 2, 4, 8, 16)}, 9.0, 0)
    m = mean_scores([a, b, empty])
    assert m.epe3d == pytest.approx(0.3) and m.within == {d: 0.75 for d in (1, 2, 4, 8, 16)}
    assert m.smoothness == pytest.approx(0.2) and m.points == 40
    only_empty = mean_scores([empty, empty])
    assert only_empty.smoothness == 9.0 and only_empty.points == 0
    assert mean_scores([]) is None


# -- completion/classical --------------------------------------------------------------------------------------------


def test_completion_helpers_by_hand():
    from more4d_core.completion.classical import _to_u8, close_cracks, inpaint_spatial

    assert _to_u8(np.array([0.5, 1.2, -0.1, 0.998, 0.002])).tolist() == [128, 255, 0, 254, 1]
    frame = np.random.default_rng(0).random((4, 4, 3)).astype(np.float32)
    none = np.zeros((4, 4), bool)
    out = inpaint_spatial(frame, none)
    assert out is not frame and np.array_equal(out, frame)
    holes = none.copy()
    holes[1, 2] = True
    out = inpaint_spatial(frame, holes)
    assert np.array_equal(out[~holes], frame[~holes]) and not np.array_equal(out[1, 2], frame[1, 2])

    # one-pixel crack in a flat surface: filled with the mean of its 8 neighbours
    img = np.zeros((5, 5, 3), np.float32)
    img[..., 0] = np.arange(25, dtype=np.float32).reshape(5, 5)
    hole = np.zeros((5, 5), bool)
    hole[2, 2] = True
    depth = np.full((5, 5), 2.0, np.float32)
    depth[1, 1] = 2.5
    filled, left, dep = close_cracks(img, hole, depth, same_surface=1.25)
    assert not left.any() and filled[2, 2, 0] == pytest.approx(12.0)  # mean of 6..8, 11, 13, 16..18
    assert dep[2, 2] == pytest.approx((7 * 2.0 + 2.5) / 8)
    assert img[2, 2, 0] == 12.0 and hole[2, 2]  # inputs untouched
    # a gap between surfaces farther apart than the factor is a dis-occlusion: left open
    _, left, _ = close_cracks(img, hole, depth, same_surface=1.125)
    assert left[2, 2]
    # a crack three pixels wide closes only with max_width 2 (a 3x3 closing bridges two pixels)
    wide = np.zeros((6, 6), bool)
    wide[:, 2:5] = True
    flat = np.ones((6, 6), np.float32)
    assert close_cracks(np.zeros((6, 6, 3), np.float32), wide, flat, max_width=1)[1].sum() == 18
    assert not close_cracks(np.zeros((6, 6, 3), np.float32), wide, flat, max_width=2)[1].any()


def test_a_render_with_nothing_on_it_completes_to_grey():
    from more4d_core.camera import camera_preset
    from more4d_core.completion import complete_classical
    from more4d_core.data.analytic import make_analytic_scene
    from more4d_core.render import render_scene

    scene = make_analytic_scene(8, 8, 2)
    path = camera_preset("static", 2)
    res = render_scene(scene, path, return_point_index=True)
    res.holes[:] = True
    res.point_index[:] = -1
    out = complete_classical(res, scene, path)
    assert torch.equal(out, torch.full_like(out, 0.5))
    with pytest.raises(InputError, match="temporal share"):
        complete_classical(res, scene, path, temporal=1.0)
    with pytest.raises(InputError, match="temporal share"):
        complete_classical(res, scene, path, temporal=-0.1)


# -- export/atomic ---------------------------------------------------------------------------------------------------


def test_remove_path(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"x")
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "g").write_bytes(b"y")
    link = tmp_path / "link"
    link.symlink_to(d)
    atomic.remove_path(link)  # the link goes, not what it points to
    assert not link.exists() and (d / "sub" / "g").exists()
    atomic.remove_path(f)
    atomic.remove_path(d)
    atomic.remove_path(tmp_path / "missing")
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_by_depth_and_age(tmp_path):
    old = 7200.0
    made = []
    for rel in ("a", "1/a", "1/2/3/a", "1/2/3/4/a"):
        p = tmp_path / rel.replace("a", f"x{atomic.TMP_MARK}y")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
        os.utime(p, (p.stat().st_atime - old, p.stat().st_mtime - old))
        made.append(p)
    young = tmp_path / f"z{atomic.TMP_MARK}w"
    young.write_bytes(b"")
    assert atomic.remove_stale_temporaries(tmp_path, max_age_s=3600) == 3  # three levels of sub-folders
    assert [p.exists() for p in made] == [False, False, False, True] and young.exists()
    assert atomic.remove_stale_temporaries(tmp_path, max_age_s=3600, depth=4) == 1
    assert atomic.remove_stale_temporaries(tmp_path, max_age_s=0) == 1  # now the young one is old enough
    assert atomic.remove_stale_temporaries(tmp_path / "missing") == 0
    assert atomic.remove_stale_temporaries(young) == 0  # a file is no folder


def test_resolve_inside_refusals(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    for name in ("", ".", "..", "sub/.."):
        with pytest.raises(InputError, match="empty or not a file name"):
            atomic.resolve_inside(root, name)
    with pytest.raises(InputError, match="file name"):
        atomic.resolve_inside(root, "", reading=True)
    with pytest.raises(UnsafePathError, match="refusing to write"):
        atomic.resolve_inside(root, "../x")
    with pytest.raises(UnsafePathError, match="refusing to read"):
        atomic.resolve_inside(root, tmp_path / "x", reading=True)
    with pytest.raises(UnsafePathError, match="the folder .* itself"):
        atomic.resolve_inside(root, root)
    assert atomic.resolve_inside(root, "a/b.npz") == root.resolve() / "a" / "b.npz"
    assert atomic.resolve_inside(root, root / "c") == root.resolve() / "c"


def test_written_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        assert atomic._default_mode() == 0o640 and atomic._default_mode(folder=True) == 0o750
        assert os.umask(0o027) == 0o027  # the umask is left as it was
        target = atomic.write_file_atomic(tmp_path / "f.bin", lambda fh: fh.write(b"abc"))
        assert target.read_bytes() == b"abc" and (target.stat().st_mode & 0o777) == 0o640
        with atomic.atomic_folder(tmp_path / "d") as tmp:
            (tmp / "x").write_bytes(b"1")
        assert ((tmp_path / "d").stat().st_mode & 0o777) == 0o750
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "f.bin"]  # no temporaries left


def test_placing_a_file_without_hard_links(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EPERM, "no hard links here")

    monkeypatch.setattr(atomic.os, "link", no_links)
    target = atomic.write_file_atomic(tmp_path / "f.bin", lambda fh: fh.write(b"new"))
    assert target.read_bytes() == b"new"
    with pytest.raises(OutputExistsError):
        atomic._place_file(tmp_path / "other", target, False)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]

    def broken(src, dst):
        raise OSError(errno.EIO, "disk error")

    monkeypatch.setattr(atomic.os, "link", broken)
    with pytest.raises(OSError, match="disk error"):
        atomic.write_file_atomic(tmp_path / "g.bin", lambda fh: fh.write(b"x"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_placing_a_folder_where_rename_cannot_replace(tmp_path, monkeypatch):
    real_replace = os.replace

    def windows_replace(src, dst):
        if os.path.isdir(dst):
            raise PermissionError(errno.EACCES, "access denied")
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", windows_replace)
    with atomic.atomic_folder(tmp_path / "seq") as tmp:
        (tmp / "a").write_bytes(b"1")
    assert [p.name for p in tmp_path.iterdir()] == ["seq"] and (tmp_path / "seq" / "a").read_bytes() == b"1"
    with pytest.raises(OutputExistsError):
        atomic._place_folder(tmp_path / "other", tmp_path / "seq")


def test_folder_overwrite_replaces_and_a_failure_restores(tmp_path):
    target = tmp_path / "seq"
    target.mkdir()
    (target / "old").write_bytes(b"o")
    with atomic.atomic_folder(target, overwrite=True) as tmp:
        (tmp / "new").write_bytes(b"n")
    assert [p.name for p in target.iterdir()] == ["new"] and [p.name for p in tmp_path.iterdir()] == ["seq"]
    with pytest.raises(RuntimeError):
        with atomic.atomic_folder(target, overwrite=True) as tmp:
            (tmp / "newer").write_bytes(b"x")
            raise RuntimeError("writer failed")
    assert [p.name for p in target.iterdir()] == ["new"] and [p.name for p in tmp_path.iterdir()] == ["seq"]
    (tmp_path / "file").write_bytes(b"f")
    with pytest.raises(OutputExistsError, match="not a folder"):
        with atomic.atomic_folder(tmp_path / "file", overwrite=True):
            pass
    with pytest.raises(OutputExistsError, match="is a folder"):
        atomic.write_file_atomic(target, lambda fh: fh.write(b"x"), overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "seq"]


def test_flicker_by_hand():
    from more4d_core.completion.classical import flicker

    frames = torch.tensor([[0.2, 0.6], [0.5, 0.1], [0.5, 0.1]]).view(3, 1, 2, 1).expand(3, 1, 2, 3)
    holes = torch.tensor([[True, True], [True, False], [True, True]]).view(3, 1, 2)
    # filled in both frames: pixel 0 at t = 1 (|0.5 - 0.2|) and at t = 2 (|0.5 - 0.5|)
    assert flicker(frames, holes) == pytest.approx(0.15)
    # following the motion: at t = 1 both pixels came from pixel 1 of frame 0 (|0.5 - 0.6|)
    grid_x, grid_y = np.array([[0.0, 1.0]], np.float32), np.zeros((1, 2), np.float32)
    maps = [None, (np.ones((1, 2), np.float32), grid_y), (grid_x, grid_y)]
    assert flicker(frames, holes, maps) == pytest.approx(0.05)
    assert flicker(frames, torch.zeros(3, 1, 2, dtype=torch.bool)) == 0.0


# -- one-frame scenes and one-pose paths -----------------------------------------------------------------------------


def test_a_one_frame_scene_is_rendered_along_a_whole_path():
    from more4d_core.camera import CameraPath
    from more4d_core.render import render_scene
    from more4d_core.render.renderer import _match_frames
    from more4d_core.scene import Scene4D

    scene = Scene4D(torch.tensor([[[0.1, -0.1, 1.0], [0.0, 0.0, 2.0]]]), torch.tensor([[10, 20, 30], [40, 50, 60]],
                    dtype=torch.uint8), grid_hw=(1, 2), intrinsics=make_intrinsics(5, 5, 1, 0.5))
    poses = EYE.repeat(3, 1, 1)
    poses[:, 0, 3] = torch.tensor([0.0, 0.1, 0.2])  # the camera slides right
    points, path = _match_frames(scene, CameraPath(poses))
    assert points.shape == (3, 2, 3) and torch.equal(points[2], scene.points[0])
    res = render_scene(scene, CameraPath(poses, intrinsics=K4, intrinsics_hw=(4, 4)), output_hw=(4, 4),
                       return_point_index=True)
    # point 0 (row 1): u = 10 (0.1 - x_cam) + 2 = 3, 2, 1; point 1 (row 2, z = 2): u = 5 (0 - x_cam) + 2 = 2, 1.5, 1
    assert [(~res.holes[t]).nonzero().tolist() for t in range(3)] == [[[1, 3], [2, 2]], [[1, 2], [2, 1]],
                                                                     [[1, 1], [2, 1]]]
    assert res.point_index[2, 1, 1] == 0 and res.depth[2, 2, 1] == 2.0


def test_a_one_pose_path_keeps_everything_for_every_frame():
    from more4d_core.camera import CameraPath
    from more4d_core.render.renderer import _match_frames
    from more4d_core.scene import Scene4D

    scene = Scene4D(torch.rand(3, 2, 3) + torch.tensor([0.0, 0.0, 1.0]), torch.zeros(2, 3, dtype=torch.uint8),
                    grid_hw=(1, 2), intrinsics=make_intrinsics(5, 5, 1, 0.5))
    one = CameraPath(EYE, name="still", intrinsics=K4, intrinsics_hw=(4, 4), zoom=torch.tensor([1.5]),
                     metadata={"a": 1})
    points, path = _match_frames(scene, one)
    assert points is scene.points and path.num_frames == 3
    assert path.name == "still" and path.metadata == {"a": 1} and path.intrinsics_hw == (4, 4)
    assert torch.equal(path.intrinsics, K4.expand(3, 3, 3)) and path.zoom.tolist() == [1.5, 1.5, 1.5]
    plain, _ = _match_frames(scene, CameraPath(EYE))
    _, bare = _match_frames(scene, CameraPath(EYE))
    assert bare.intrinsics is None and bare.zoom is None and plain is scene.points
    with pytest.raises(InputError, match="has 2 frames but the scene has 3"):
        _match_frames(scene, CameraPath(EYE.repeat(2, 1, 1)))


def _wall_with_a_hole(first_colour, first_depth):
    """A still 12x12 wall at depth 2 seen by a still camera for 2 frames, rendered with a 6x6 hole
    (too wide for crack closing) in the middle; frame 0 is painted ``first_colour`` at
    ``first_depth``, frame 1 grey 0.6 at depth 2 (a render made by hand: completion only reads it)."""
    from more4d_core.camera import CameraPath
    from more4d_core.camera.intrinsics import intrinsics_from_fov
    from more4d_core.render import render_scene
    from more4d_core.scene import Scene4D

    k = intrinsics_from_fov(12, 12, 60.0)
    scene = Scene4D.from_depth(torch.full((12, 12), 2.0), torch.zeros(12, 12, 3), k, num_frames=2)
    path = CameraPath(EYE.repeat(2, 1, 1))
    res = render_scene(scene, path, return_point_index=True)
    assert not res.holes.any()
    res.holes[:, 3:9, 3:9] = True
    res.point_index[res.holes] = -1
    res.frames[0] = first_colour
    res.frames[1] = 0.6
    res.depth[0] = first_depth
    res.depth[res.holes] = 0.0
    return res, scene, path


def test_completion_carries_the_previous_fill_over_by_the_temporal_share():
    from more4d_core.completion import complete_classical

    res, scene, path = _wall_with_a_hole(0.0, 2.0)
    calls = []
    out = complete_classical(res, scene, path, temporal=0.75, progress=lambda i, n: calls.append((i, n)))
    assert calls == [(1, 2), (2, 2)]
    assert torch.equal(out[0], torch.zeros(12, 12, 3))  # a black wall is filled black
    # frame 1: its own fill (0.6) blended with the black fill carried over: 0.25 * 0.6 + 0.75 * 0
    torch.testing.assert_close(out[1, 3:9, 3:9], torch.full((6, 6, 3), 0.15), rtol=0, atol=0.01)
    assert torch.equal(out[1, :3], res.frames[1, :3])  # rendered pixels untouched
    alone = complete_classical(res, scene, path, temporal=0.0)
    torch.testing.assert_close(alone[1, 3:9, 3:9], torch.full((6, 6, 3), 0.6), rtol=0, atol=0.01)  # Telea: +-2/255
    # a one-pose path stands for the whole clip
    from more4d_core.camera import CameraPath

    one = complete_classical(res, scene, CameraPath(EYE), temporal=0.75)
    assert torch.equal(one, out)


def test_completion_carries_nothing_over_from_a_nearer_surface():
    from more4d_core.completion import complete_classical

    res, scene, path = _wall_with_a_hole(0.0, 1.0)  # frame 0 showed something at half the depth
    out = complete_classical(res, scene, path, temporal=0.75)
    torch.testing.assert_close(out[1, 3:9, 3:9], torch.full((6, 6, 3), 0.6), rtol=0, atol=0.01)  # Telea: +-2/255


def test_scene_points_project_onto_their_pixels_in_the_warp():
    from more4d_core.camera import CameraPath
    from more4d_core.completion.classical import _project_frame
    from more4d_core.scene import Scene4D

    k = make_intrinsics(3.0, 5.0, 3.0, 2.0)  # a 4x6 grid, fx != fy and cx != cy
    scene = Scene4D.from_depth(torch.full((4, 6), 0.5), torch.zeros(4, 6, 3), k, num_frames=2)
    poses = EYE.repeat(2, 1, 1)
    poses[1, 0, 3] = 0.5 / 3.0  # moved right by z / fx: everything shifts one pixel left
    xy = [_project_frame(scene, CameraPath(poses), k.expand(2, 3, 3), t) for t in (0, 1)]
    rows, cols = np.mgrid[0:4, 0:6]
    # array coordinates of the pixel each point came from: (col, row), then (col - 1, row)
    np.testing.assert_allclose(xy[0], np.stack([cols.ravel(), rows.ravel()], 1), atol=1e-5)
    np.testing.assert_allclose(xy[1], np.stack([cols.ravel() - 1, rows.ravel()], 1), atol=1e-5)


@pytest.mark.parametrize("reference_image", ["image", "zero"])
def test_conditions_are_encoded_from_the_image_in_minus_one_to_one(reference_image):
    from more4d_core.sampling.conditioning import encode_conditions

    calls = []
    codec = SimpleNamespace(encode_still=lambda x, frames: calls.append(frames) or x.clone(),
                            encode_image=lambda x: x[:, :1].clone())
    transformer = SimpleNamespace(patch_embedding=SimpleNamespace(weight=torch.zeros(1, dtype=torch.float64)),
                                  encode_motion=lambda img: img.sum(dim=1), encode_objects=lambda planes: planes.clone())
    cfg = SimpleNamespace(depth_condition="minmax", use_reference_tokens=True, reference_image=reference_image,
                          use_mpm=True, condition_detail="none", object_encoder="none")
    image = torch.tensor([0.0, 0.25, 1.0]).view(1, 3, 1, 1).expand(1, 3, 1, 2)
    depth = torch.tensor([[[1.0, 3.0]]])
    c = encode_conditions(cfg, codec, transformer, image, depth, 5)
    assert calls == [5, 5]
    assert c.control.dtype == torch.float64 and c.control[0, :, 0, 0].tolist() == [-1.0, -0.5, 1.0]
    assert torch.equal(c.start, torch.zeros_like(c.control))
    assert c.depth.dtype == torch.float64 and c.depth[0, :, 0].tolist() == [[-1.0, 1.0]] * 3
    expected_ref = [[[0.0, 0.0]]] if reference_image == "zero" else [[[-1.0, -1.0]]]
    assert c.reference.dtype == torch.float64 and c.reference[0].tolist() == expected_ref
    assert c.motion.dtype == torch.float64 and c.motion[0].tolist() == [[1.25, 1.25]]
    assert encode_conditions(cfg, codec, transformer, image, depth, 5, with_motion=False).motion is None
    assert c.objects is None
    cfg.object_encoder = "conv"  # the object encoder sees the signed image and the depth condition, full size
    planes = encode_conditions(cfg, codec, transformer, image, depth, 5).objects
    assert planes[0, :, 0].tolist() == [[-1.0, -1.0], [-0.5, -0.5], [1.0, 1.0], [-1.0, 1.0]]
    cfg.use_mpm, cfg.use_reference_tokens = False, False
    bare = encode_conditions(cfg, codec, transformer, image, depth, 5)
    assert bare.motion is None and bare.reference is None


def test_scores_in_finer_pixels_near_the_camera_and_smoothness_by_hand():
    k = make_intrinsics(100.0, 100.0, 0.0, 0.0)
    unit = NormalizationFactors(1.0, 1.0)
    gt = torch.tensor([[[0.0, 0.0, 10.0]]] * 3, dtype=torch.float64)
    pred = torch.tensor([[[0.0, 0.0, 10.0]], [[0.15, 0.0, 10.0]], [[0.5, 0.0, 10.0]]], dtype=torch.float64)
    vis = torch.ones(3, 1, dtype=torch.bool)
    # pixels of a 2x finer image: thresholds 0.05 delta for errors of about 0.15 and 0.5
    assert score(pred, gt, vis, k, unit, pixel_scale=2.0).within == {1: 0.0, 2: 0.0, 4: 0.5, 8: 0.5, 16: 1.0}
    # half a unit from the camera: the median scale (here 2) is not clamped
    near = gt / 20
    assert all(v == 1.0 for v in score(near / 2, near, vis, k, unit).within.values())
    # smoothness: normalized x = 0, .01, .03, .07 -> second differences .01 and .02
    four = torch.tensor([[[x, 0.0, 10.0]] for x in (0.0, 0.1, 0.3, 0.7)], dtype=torch.float64)
    s = score(four, four, torch.ones(4, 1, dtype=torch.bool), k, unit)
    assert s.smoothness == pytest.approx(0.015)
