"""Memory and disk estimates are checked before the work: a job too big for the machine is refused
with the sizes and the input to lower, and nothing is written or half-done."""

import shutil
from collections import namedtuple

import pytest
import torch

import more4d_core.generator as generator_module
from more4d_core.camera.intrinsics import intrinsics_from_fov
from more4d_core.camera.presets import camera_preset
from more4d_core.completion.classical import complete_classical
from more4d_core.errors import InputError
from more4d_core.export.gltf import export_glb
from more4d_core.export.ply import export_ply_sequence
from more4d_core.export.scene_file import save_scene
from more4d_core.generator import build_generator
from more4d_core.memory import budget
from more4d_core.memory.budget import ENV, GIB, ResourceError
from more4d_core.models.config import MORE4D_TINY
from more4d_core.render.renderer import render_scene


def test_estimates_cover_the_buffers_they_must_hold():
    # a 4000x3000 photo on the "image" grid, 49 frames: the tracks alone are 49 x 12e6 x 3 float32
    tracks = 49 * 3000 * 4000 * 3 * 4
    assert tracks <= budget.generation_bytes(49, (3000, 4000)) <= 10 * tracks
    # a render holds at least colour (3 floats) + depth (1 float) per pixel and frame
    pixels = 100 * 720 * 1280
    assert 4 * 4 * pixels <= budget.render_bytes(100, (720, 1280)) <= 10 * 4 * pixels
    # completion writes a new colour frame and depth per frame
    assert 4 * 4 * pixels <= budget.completion_bytes(100, (720, 1280)) <= 10 * 4 * pixels


def test_default_limit_is_the_available_ram(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    limit = budget.memory_limit()
    if limit.bytes is None:
        pytest.skip("this system does not report its available memory")
    with open("/proc/meminfo") as fh:
        total = int(next(line for line in fh if line.startswith("MemTotal:")).split()[1]) * 1024
    assert 0 < limit.bytes <= total
    assert "available" in limit.source


@pytest.mark.parametrize("raw, expected", [("2", 2 * GIB), ("0.5", GIB // 2), ("off", None), ("0", None)])
def test_limit_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv(ENV, raw)
    assert budget.memory_limit().bytes == expected


@pytest.mark.parametrize("raw", ["lots", "-1", "inf", "nan"])
def test_a_bad_limit_setting_is_named(monkeypatch, raw):
    monkeypatch.setenv(ENV, raw)
    with pytest.raises(InputError, match=ENV):
        budget.memory_limit()


def test_render_too_big_is_refused_before_rendering(monkeypatch, small_scene):
    path = camera_preset("orbit", small_scene.num_frames, scene_depth=2.0)
    monkeypatch.setenv(ENV, "0.3")  # 300 MiB: a 9-frame 720x1280 render needs ~470 MiB
    with pytest.raises(ResourceError, match=r"rendering 9 frames of 1280x720 .*width/height or the number of frames"):
        render_scene(small_scene, path, output_hw=(720, 1280))
    result = render_scene(small_scene, path, output_hw=(24, 32))  # a small one still renders
    assert result.frames.shape == (9, 24, 32, 3)


def test_completion_too_big_is_refused(monkeypatch, small_scene):
    path = camera_preset("orbit", small_scene.num_frames, scene_depth=2.0)
    result = render_scene(small_scene, path, output_hw=(240, 320), return_point_index=True)
    monkeypatch.setenv(ENV, "0.255")  # 261 MiB; completing 9 x 240 x 320 needs 256 + ~14 MiB
    with pytest.raises(ResourceError, match=r"completing 9 frames of 320x240"):
        complete_classical(result, small_scene, path)


def test_generation_on_a_huge_grid_is_refused_before_any_model_runs(monkeypatch):
    gen = build_generator(MORE4D_TINY, seed=0)
    called = []
    monkeypatch.setattr(generator_module, "sample_flow", lambda *a, **k: called.append(1))
    monkeypatch.setattr(gen.text_encoder, "forward", lambda *a, **k: called.append(1))
    monkeypatch.setenv(ENV, "1")
    image, depth = torch.rand(30, 40, 3), torch.full((30, 40), 2.0)
    k = intrinsics_from_fov(30, 40, 60.0)
    # the "image" grid of a 4000x3000 photo: 49 frames x 12 million points
    with pytest.raises(ResourceError, match=r"generating 9 frames on a 4000x3000 point grid .*smaller grid"):
        gen.generate(image, depth, k, "the ball slides left", num_frames=9, grid_hw=(3000, 4000), steps=1)
    assert called == []


def test_generate_node_refuses_the_image_grid_of_a_big_photo(monkeypatch):
    from more4d_core.cache import MODEL_CACHE
    from more4d_core.depth import DepthResult
    from nodes.generate_nodes import GenerateTrajectories

    gen = build_generator(MORE4D_TINY, seed=0)

    class Handle:  # what Load Trajectory Model returns, reduced to what Generate uses
        kind = "trajectory"

    monkeypatch.setattr("nodes.generate_nodes.require_handle", lambda *a: None)
    monkeypatch.setattr(MODEL_CACHE, "use", lambda handle: _Using(gen))
    monkeypatch.setenv(ENV, "1")
    h, w = 1500, 2000
    depth = DepthResult(torch.full((h, w), 3.0), intrinsics_from_fov(h, w, 60.0), torch.ones(h, w, dtype=torch.bool), "external")
    image = torch.rand(1, h, w, 3)
    with pytest.raises(ResourceError, match=r"2000x1500 point grid"):
        GenerateTrajectories().generate(Handle(), image, depth, "the ball slides left", "", 0, 1, 0.0, 5.0, 49, 8.0,
                                        1.0, "image")


class _Using:
    def __init__(self, gen):
        self.gen = gen

    def __enter__(self):
        return self.gen

    def __exit__(self, *exc):
        return False


Usage = namedtuple("Usage", "total used free")


@pytest.mark.parametrize("export", ["scene", "glb", "ply"])
def test_exports_refuse_a_full_disk_and_leave_nothing(monkeypatch, tmp_path, small_scene, export):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(ResourceError, match=r"GiB of disk.*free some disk space"):
        if export == "scene":
            save_scene(small_scene, tmp_path, "s")
        elif export == "glb":
            export_glb(small_scene, tmp_path, "s")
        else:
            export_ply_sequence(small_scene, tmp_path, "s")
    assert list(tmp_path.iterdir()) == []
