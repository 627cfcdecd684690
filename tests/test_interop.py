"""Adapters at the edges and the remaining nodes: MoGe depth, camera formats, tracks, drawings,
the preview node, external depth and Wan VACE inputs."""

import json

import numpy as np
import pytest
import torch

from more4d_core.camera import CameraPath, camera_preset
from more4d_core.camera.path import rigid_inverse
from more4d_core.data.analytic import make_analytic_scene
from more4d_core.depth import DepthResult
from more4d_core.errors import InputError
from more4d_core.interop import (
    depth_from_moge,
    path_from_load3d,
    path_from_realestate,
    path_from_realestate_text,
    scene_splat_fields,
    scene_tracks,
    splat_colors,
    tracks_to_json,
)
from nodes import comfy_bridge
from nodes.comfy_bridge import temp_directory
from nodes.complete_nodes import CompleteFrames, WanVaceInputs
from nodes.depth_nodes import DepthFromImage, EstimateDepth
from nodes.interop_nodes import (
    CameraPathFromCameraCtrl,
    CameraPathFromFile,
    CameraPathFromLoad3D,
    CameraPathPreview,
    DepthFromMoGe,
    SceneTo3DFiles,
    SceneToSplat,
    SceneToTracks,
)
from nodes.preview_nodes import Preview4D
from nodes.render_nodes import Render4D


@pytest.fixture(autouse=True)
def _folders(tmp_path, monkeypatch):
    monkeypatch.setenv("MORE4D_OUTPUT_DIR", str(tmp_path))
    return tmp_path


def _rows(path: CameraPath) -> list[list[float]]:
    w2c = rigid_inverse(path.poses)[:, :3, :].reshape(len(path), 12)
    return [[float(i), 0.9, 1.2, 0.5, 0.5, 0.0, 0.0, *w.tolist()] for i, w in enumerate(w2c)]


def test_moge_geometry_becomes_depth():
    depth = torch.rand(1, 6, 8) + 1
    k_norm = torch.tensor([[[0.8, 0, 0.5], [0, 1.1, 0.5], [0, 0, 1.0]]])
    mask = torch.ones(1, 6, 8, dtype=torch.bool)
    mask[0, 0, 0] = False
    r = DepthFromMoGe().convert({"image": torch.rand(1, 6, 8, 3), "depth": depth, "intrinsics": k_norm, "mask": mask})[0]
    assert isinstance(r, DepthResult) and r.backend == "moge" and torch.equal(r.depth, depth[0])
    assert r.intrinsics[0, 0] == pytest.approx(6.4) and r.intrinsics[1, 1] == pytest.approx(6.6) and not r.valid[0, 0]
    points_only = depth_from_moge({"points": torch.rand(1, 6, 8, 3) + 1})
    assert points_only.depth.shape == (6, 8)


def test_realestate_rows_round_trip(tmp_path):
    path = camera_preset("orbit", 7, scene_depth=2.0)
    back = path_from_realestate(_rows(path))
    torch.testing.assert_close(back.poses, path.poses, atol=1e-9, rtol=0)
    text = "https://www.youtube.com/watch?v=x\n" + "\n".join(" ".join(f"{v:.12g}" for v in r) for r in _rows(path))
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "cams.txt").write_text(text)
    torch.testing.assert_close(path_from_realestate_text(text).poses, path.poses, atol=1e-9, rtol=0)
    from_node = CameraPathFromFile().load("input/cams.txt", True, False)[0]
    torch.testing.assert_close(from_node.poses, path.poses, atol=1e-9, rtol=0)
    with_k = path_from_realestate(_rows(path), image_hw=(100, 200))
    assert with_k.intrinsics[0, 0, 0] == pytest.approx(180.0) and with_k.intrinsics[0, 1, 2] == pytest.approx(50.0)
    ctrl = CameraPathFromCameraCtrl().convert([r[1:] for r in _rows(path)], True)[0]
    torch.testing.assert_close(ctrl.poses, path.poses, atol=1e-9, rtol=0)
    np.save(tmp_path / "input" / "cams.npy", path.poses.numpy() @ np.diag([1, 1, 1, 1.0]))
    torch.testing.assert_close(CameraPathFromFile().load("input/cams.npy", True, False)[0].poses, path.poses)


def test_load3d_view_gives_a_move_from_the_input_camera():
    info = {"position": {"x": 1.0, "y": 0.0, "z": 1.0}, "target": {"x": 0.0, "y": 0.0, "z": -2.0}, "zoom": 1, "cameraType": "perspective"}
    single = path_from_load3d(info)
    assert single.positions()[0].tolist() == pytest.approx([1.0, 0.0, -1.0])  # three.js -> OpenCV axes
    move = CameraPathFromLoad3D().convert(info, 9, 1.0)[0]
    assert move.num_frames == 9 and torch.allclose(move.poses[0], torch.eye(4, dtype=torch.float64))
    torch.testing.assert_close(move.poses[-1], single.poses[0])


def test_tracks_follow_points_and_know_occlusion():
    scene = make_analytic_scene(24, 32, 5)
    tracks = scene_tracks(scene, camera_preset("static", 5), grid=4)
    assert tracks["track_path"].shape == (5, 16, 2) and tracks["track_visibility"].shape == (5, 16)
    first = tracks["track_path"][0]
    expected_cols = ((torch.arange(4) + 0.5) * 32 / 4).long().float() + 0.5
    assert first[:4, 0].tolist() == pytest.approx(expected_cols.tolist(), abs=1e-3)
    assert tracks["track_visibility"][0].all()
    data = json.loads(tracks_to_json(tracks))
    assert len(data) == 16 and len(data[0]) == 5 and set(data[0][0]) == {"x", "y"}
    node_tracks, text = SceneToTracks().convert(scene, camera_preset("orbit", 5, scene_depth=scene.median_depth()), 4, 64, 48)
    assert node_tracks["track_path"].shape == (5, 16, 2) and json.loads(text)


def test_drawings_and_preview(tmp_path):
    scene = make_analytic_scene(24, 32, 5)
    path = camera_preset("mix1", 5, scene_depth=scene.median_depth())
    image = CameraPathPreview().draw(path, 128, scene)[0]
    assert image.shape == (1, 128, 256, 3) and image.std() > 0.01
    ui = Preview4D().preview(scene, 1000, path)["ui"]["more4d_glb"][0]
    glb = temp_directory() + "/" + ui["filename"]
    import pygltflib

    gltf = pygltflib.GLTF2().load(glb)
    assert gltf.extras["more4d"]["camera_path"][0][0] == 1.0 and len(gltf.extras["more4d"]["camera_path"]) == 5


def test_depth_nodes_and_vace_inputs():
    image = torch.rand(1, 24, 32, 3)
    depth, preview = EstimateDepth().estimate(image, "prior", "(none)", 0.0, 3.0, "auto", "snap")
    assert depth.backend == "prior" and preview.shape == (1, 24, 32, 3)
    external, _ = DepthFromImage().convert(image, preview, "disparity", float(depth.median_depth()), 0.0, "none")
    assert external.depth.shape == (24, 32)
    with pytest.raises(FileNotFoundError, match="model folder"):
        EstimateDepth().estimate(image, "transformers", "(none)", 0.0, 3.0, "auto", "snap")
    frames = torch.rand(3, 8, 8, 3)
    mask = torch.zeros(3, 8, 8)
    mask[:, 2:4, 2:4] = 1
    video, masks = WanVaceInputs().convert(frames, mask)
    assert torch.equal(masks, mask) and (video[:, 2:4, 2:4] == 0.5).all()


def test_complete_node(tmp_path):
    scene = make_analytic_scene(24, 32, 5)
    path = camera_preset("dolly", 5, scene_depth=scene.median_depth())
    frames, mask, _, bundle = Render4D().render(scene, path, 0, 0, 1, "#000000", "cpu")
    done = CompleteFrames().complete(bundle, "classical")[0]
    assert done.shape == frames.shape and torch.equal(done[mask < 0.5], frames[mask < 0.5])
    with pytest.raises(ValueError, match="completion_model"):
        CompleteFrames().complete(bundle, "diffusion")
    with pytest.raises(InputError, match="completion method must be one of classical, diffusion, got 'bogus'"):
        CompleteFrames().complete(bundle, "bogus")  # not "needs a completion_model"
    from more4d_core.completion import complete_classical

    textured = CompleteFrames().complete(bundle, "classical", fill="textured")[0]
    assert torch.equal(textured, complete_classical(bundle.result, bundle.scene, bundle.path, texture=True))
    assert torch.equal(done, complete_classical(bundle.result, bundle.scene, bundle.path, texture=False))
    assert CompleteFrames.INPUT_TYPES()["optional"]["fill"][1]["default"] == "smooth"
    with pytest.raises(InputError, match="fill must be one of smooth, textured, got 'grainy'"):
        CompleteFrames().complete(bundle, "classical", fill="grainy")
    assert comfy_bridge.output_directory()


class _FakeTypes:
    """Stand-in for ``comfy_api.latest.Types``: records what our nodes hand to core."""

    class SPLAT:
        def __init__(self, positions, scales, rotations, opacities, sh, counts=None):
            self.positions, self.scales, self.rotations = positions, scales, rotations
            self.opacities, self.sh, self.counts = opacities, sh, counts

    class File3D:
        def __init__(self, source, file_format=""):
            self.source, self.format = source, file_format


@pytest.fixture
def fake_comfy_api(monkeypatch):
    import sys
    import types

    pkg, latest = types.ModuleType("comfy_api"), types.ModuleType("comfy_api.latest")
    latest.Types = _FakeTypes
    pkg.latest = latest
    monkeypatch.setitem(sys.modules, "comfy_api", pkg)
    monkeypatch.setitem(sys.modules, "comfy_api.latest", latest)


def test_scene_splats_sit_on_the_points_with_pixel_footprints():
    scene = make_analytic_scene(24, 32, 5)
    f = scene_splat_fields(scene)
    n = 24 * 32
    assert f["positions"].shape == (5, n, 3) and f["sh"].shape == (5, n, 1, 3)
    assert torch.allclose(f["positions"][3], scene.frame(3).float())
    # frame 0 projects to the pixel centres; a splat's sigma is half a pixel there
    p0, k = f["positions"][0].double(), scene.intrinsics
    u = p0[:, 0] * k[0, 0] / p0[:, 2] + k[0, 2]
    j = torch.arange(n) % 32
    assert torch.allclose(u, j.double() + 0.5, atol=1e-3)
    sigma_px = f["scales"][0, :, 0].double() * (k[0, 0] + k[1, 1]) / 2 / p0[:, 2]
    assert torch.allclose(sigma_px, torch.full_like(sigma_px, 0.5), atol=1e-4)
    assert torch.allclose(f["rotations"].norm(dim=-1), torch.ones(5, n))
    assert f["opacities"].min() == 1.0  # every point is finite
    rgb = splat_colors(f["sh"][0])
    assert torch.allclose(rgb * 255, scene.colors.float(), atol=0.01)
    # a stride keeps grid points and grows the footprint; hidden points vanish with visible_only
    g = scene_splat_fields(scene, [0, 4], point_stride=2, size=1.5, visible_only=True)
    assert g["positions"].shape == (2, 12 * 16, 3)
    assert torch.allclose(g["scales"][0, 0], f["scales"][0, 0] * 3)
    keep = (torch.arange(0, 24, 2)[:, None] * 32 + torch.arange(0, 32, 2)[None]).reshape(-1)
    assert torch.equal(g["opacities"][1, :, 0].bool(), scene.visibility[4][keep].bool())
    with pytest.raises(InputError, match="out of range"):
        scene_splat_fields(scene, [7])


def test_core_3d_nodes(fake_comfy_api):
    scene = make_analytic_scene(24, 32, 5)
    (splat,) = SceneToSplat().convert(scene, -1, 1, 1.0, False)
    assert isinstance(splat, _FakeTypes.SPLAT) and splat.positions.shape == (5, 24 * 32, 3)
    (one,) = SceneToSplat().convert(scene, 2, 2, 1.0, True)
    assert one.positions.shape == (1, 12 * 16, 3)
    glb, ply = SceneTo3DFiles().convert(scene, 4, 2, 2)
    assert glb.format == "glb" and ply.format == "ply"
    import pygltflib

    gltf = pygltflib.GLTF2().load(glb.source)
    assert len(gltf.nodes) >= 3  # one node per kept frame (0, 2, 4)
    with open(ply.source, "rb") as fh:
        header = fh.read(200).decode("latin-1")
    assert header.startswith("ply") and "element vertex 192" in header
    again = SceneTo3DFiles().convert(scene, 0, 1, 1)
    assert again[0].source != glb.source  # a new file each run, nothing overwritten


def test_core_types_need_comfyui(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "comfy_api", None)
    with pytest.raises(RuntimeError, match="inside ComfyUI"):
        SceneToSplat().convert(make_analytic_scene(8, 8, 2), 0, 1, 1.0, False)
