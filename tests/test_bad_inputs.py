"""The bad-input sweep (issue 14), one case per input: each is refused with a message that names the
input, what was wrong and what to do, and the output folder holds no file afterwards.

Cases that need a process (SIGTERM during an export, several processes saving with one prefix, a
batch with a corrupt image) live in test_shutdown.py, test_output_naming.py and test_cli_and_bench.py;
the legacy ``.bin`` converter case has a correct result (test_checkpoints.py).
"""

from __future__ import annotations

import math
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from more4d_core.camera.intrinsics import intrinsics_from_fov
from more4d_core.camera.keyframes import parse_keyframes
from more4d_core.camera.presets import MAX_FRAMES, camera_preset
from more4d_core.data.analytic import make_analytic_scene
from more4d_core.data.trajscene import convert_authors_dataset
from more4d_core.depth.estimate import external_depth
from more4d_core.errors import FormatError, InputError, UnsafePathError
from more4d_core.export.scene_file import save_scene
from more4d_core.generator import build_generator, load_generator
from more4d_core.interop.cameras import path_from_camera_file
from more4d_core.memory.budget import ENV
from more4d_core.models.config import MAX_GENERATED_FRAMES, MORE4D_TINY
from more4d_core.render.renderer import render_scene
from more4d_core.sampling.conditioning import as_image_tensor
from nodes import comfy_bridge
from nodes.complete_nodes import CompleteFrames
from nodes.render_nodes import Render4D
from nodes.scene_io_nodes import SaveScene4D, resolve_scene_file
from nodes.video_nodes import SaveVideo

PROMPT = "the ball slides left"


@pytest.fixture(scope="module")
def tiny_gen():
    return build_generator(MORE4D_TINY, seed=0)


@pytest.fixture
def out(tmp_path, monkeypatch):
    folder = tmp_path / "output"
    folder.mkdir()
    monkeypatch.setattr(comfy_bridge, "OUTPUT_OVERRIDE", str(folder))
    return folder


def _inputs(h=24, w=32):
    return torch.rand(h, w, 3), torch.rand(h, w) + 2.0, intrinsics_from_fov(h, w, 60.0)


# --- the cases: (input folder, output folder, tiny generator) -> the call that must be refused --------------

def _trust_flag_string(inp, out, gen):
    (inp / "p.txt").write_text("a ball\n")
    (inp / "v.txt").write_text("clip.mp4\n")
    convert_authors_dataset(inp / "p.txt", inp / "v.txt", out / "ds", trust_pickles="no")


def _keyframe_at_1e9(inp, out, gen):
    parse_keyframes('{"keyframes": [{"frame": 0}, {"frame": 1e9, "position": [1, 0, 0]}]}')


def _keyframes_huge_num_frames(inp, out, gen):
    parse_keyframes('{"keyframes": [{"frame": 0}, {"frame": 10, "position": [1, 0, 0]}]}', num_frames=10**7)


def _preset_ten_million_frames(inp, out, gen):
    camera_preset("orbit", 10**7)


def _generate_10000_frames(inp, out, gen):
    gen.generate(*_inputs(), PROMPT, num_frames=10_000, steps=1)


def _image_grid_of_a_big_photo(inp, out, gen):
    gen.generate(*_inputs(), PROMPT, num_frames=49, grid_hw=(3000, 4000), steps=1)


def _all_invalid_depth(inp, out, gen):
    image, _, k = _inputs()
    gen.generate(image, torch.zeros(24, 32), k, PROMPT, steps=1)


def _median_depth_inf(inp, out, gen):
    external_depth(torch.rand(1, 24, 32, 3), median_depth=math.inf)


def _depth_of_another_shape(inp, out, gen):
    external_depth(torch.rand(1, 100, 10, 3), size_hw=(96, 128))


def _nan_weights(inp, out, gen):
    broken = build_generator(MORE4D_TINY, seed=0)
    with torch.no_grad():
        broken.transformer.blocks[0].ffn.net[0].proj.weight.fill_(float("nan"))
    broken.generate(*_inputs(), PROMPT, steps=1)


def _nan_video_frames(inp, out, gen):
    frames = torch.rand(4, 16, 16, 3)
    frames[2, 3, 3] = float("nan")
    SaveVideo().save(frames, "v", 8.0)


def _empty_image(inp, out, gen):
    as_image_tensor(torch.zeros(1, 0, 0, 3))


def _swapped_scene_file(inp, out, gen):
    from more4d_core.export.scene_file import load_scene

    path = save_scene(make_analytic_scene(24, 32, 3), inp, "good")
    with np.load(path) as data:
        arrays = dict(data)
    arrays["grid_hw"] = np.array([32, 24])  # what a writer that mixed up (height, width) stores
    np.savez(inp / "swapped.npz", **arrays)
    load_scene(inp / "swapped.npz")


def _empty_npz(inp, out, gen):
    from more4d_core.export.scene_file import load_scene

    (inp / "empty.npz").write_bytes(b"")
    load_scene(inp / "empty.npz")


def _npz_header_claims_112_gib(inp, out, gen):
    from more4d_core.export.scene_file import load_scene

    path = save_scene(make_analytic_scene(8, 8, 2), inp, "good")
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 64, 3), np.float32))
    header["shape"] = (10**4, 10**6, 3)  # 112 GiB of float32
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(inp / "bomb.npz", "w") as dst:
        for name in src.namelist():
            if name == "points.npy":
                with dst.open(name, "w") as fh:
                    np.lib.format.write_array_header_1_0(fh, header)
                    fh.write(np.zeros((1, 64, 3), np.float32).tobytes())
            else:
                dst.writestr(name, src.read(name))
    load_scene(inp / "bomb.npz")


def _npy_with_zero_poses(inp, out, gen):
    np.save(inp / "cams.npy", np.zeros((0, 4, 4)))
    path_from_camera_file(inp / "cams.npy")


def _npy_with_objects(inp, out, gen):
    np.save(inp / "cams.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    path_from_camera_file(inp / "cams.npy")


def _binary_realestate_txt(inp, out, gen):
    (inp / "cams.txt").write_bytes(bytes(range(256)) * 8)
    path_from_camera_file(inp / "cams.txt")


def _empty_safetensors(inp, out, gen):
    (inp / "model.safetensors").write_bytes(b"")
    load_generator(inp / "model.safetensors")


def _random_safetensors(inp, out, gen):
    (inp / "model.safetensors").write_bytes(np.random.default_rng(0).bytes(4096))
    load_generator(inp / "model.safetensors")


@pytest.mark.parametrize("prefix", [".hidden", "..", "a/.b", "nul\x00byte", "x" * 300, "../escape", "/etc/passwd"])
def test_bad_prefixes(out, prefix):
    with pytest.raises((InputError, UnsafePathError), match=r"(?i)prefix|name|outside|refusing"):
        SaveVideo().save(torch.rand(2, 8, 8, 3), prefix, 8.0)
    assert _files(out) == []


def _render_bigger_than_the_renderer(inp, out, gen):
    scene = make_analytic_scene(8, 8, 2)
    render_scene(scene, camera_preset("static", 2), output_hw=(6000, 6000))


def _render_widget_above_its_maximum(inp, out, gen):
    spec = Render4D.INPUT_TYPES()["required"]["width"][1]
    render_scene(make_analytic_scene(8, 8, 2), camera_preset("static", 2), output_hw=(spec["max"] * 2, spec["max"] * 2))


def _unknown_completion_method(inp, out, gen):
    scene = make_analytic_scene(8, 8, 2)
    result = render_scene(scene, camera_preset("static", 2), return_point_index=True)
    from nodes.types import RenderBundle

    CompleteFrames().complete(RenderBundle(result, scene, camera_preset("static", 2)), "bogus")


def _read_outside_input(inp, out, gen):
    resolve_scene_file("input/../../../etc/passwd")


def _memory_limit_setting(inp, out, gen):
    import os

    os.environ[ENV] = "lots"
    try:
        render_scene(make_analytic_scene(8, 8, 2), camera_preset("static", 2))
    finally:
        del os.environ[ENV]


def _failed_scene_save_leaves_no_npz(inp, out, gen):
    import nodes.scene_io_nodes as sio

    def failing_glb(*a, **k):
        raise OSError("disk went away")

    original = sio.export_glb
    sio.export_glb = failing_glb
    try:
        SaveScene4D().save(make_analytic_scene(8, 8, 2), "scene", True, False, True, 1)
    finally:
        sio.export_glb = original


CASES = [
    # (case, exception, what the message must say)
    (_trust_flag_string, InputError, r"trust_pickles=True.*--trust-pickles.*got trust_pickles='no'"),
    (_keyframe_at_1e9, InputError, rf"keyframes\[1\]\.frame must be a frame index from 0 to {MAX_FRAMES - 1}"),
    (_keyframes_huge_num_frames, InputError, rf"{MAX_FRAMES}"),
    (_preset_ten_million_frames, InputError, rf"{MAX_FRAMES}"),
    (_generate_10000_frames, InputError, rf"{MAX_GENERATED_FRAMES}"),
    (_image_grid_of_a_big_photo, InputError, r"4000x3000 point grid.*GiB.*smaller grid"),
    (_all_invalid_depth, InputError, r"depth has no usable value.*estimate the depth again"),
    (_median_depth_inf, InputError, r"(?i)median.*depth"),
    (_depth_of_another_shape, InputError, r"10x100.*128x96|100x10.*96x128"),
    (_nan_weights, InputError, r"non-finite positions.*weights are likely corrupt"),
    (_nan_video_frames, InputError, r"(?i)NaN"),
    (_empty_image, InputError, r"the input image is empty \(0x0 pixels\)"),
    (_swapped_scene_file, FormatError, r"swapped\.npz: its grid_hw says 32 rows x 24 columns.*24 rows x 32 columns"),
    (_empty_npz, FormatError, r"empty\.npz \(0 bytes\) is not a readable \.npz scene file"),
    (_npz_header_claims_112_gib, FormatError, r"bomb\.npz \(array 'points'\): its header states 120,000,000,000 bytes"),
    (_npy_with_zero_poses, InputError, r"\(cams\) hold 0 poses; a path needs 1 to"),
    (_npy_with_objects, FormatError, r"cams\.npy holds Python objects.*refusing to unpickle"),
    (_binary_realestate_txt, InputError, r"cams\.txt is not a text file.*\.npy"),
    (_empty_safetensors, FormatError, r"model\.safetensors"),
    (_random_safetensors, FormatError, r"model\.safetensors"),
    (_render_bigger_than_the_renderer, InputError, r"6000x6000 is too large to render.*smaller width or height"),
    (_render_widget_above_its_maximum, InputError, r"too large to render"),
    (_unknown_completion_method, InputError, r"bogus"),
    (_read_outside_input, UnsafePathError, r"refusing to read .*outside the folder .*input"),
    (_memory_limit_setting, InputError, rf"{ENV} must be a number of GiB"),
    (_failed_scene_save_leaves_no_npz, OSError, r"disk went away"),
]


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("case, error, message", CASES, ids=[c[0].__name__.strip("_") for c in CASES])
def test_bad_input_is_refused_and_writes_nothing(tmp_path, out, tiny_gen, case, error, message):
    inp = tmp_path / "input"
    inp.mkdir()
    with pytest.raises(error, match=message):
        case(inp, out, tiny_gen)
    assert _files(out) == [], "a refused input left files in the output folder"


def test_prompt_warnings_are_shown_on_the_generate_node(monkeypatch, out):
    """A prompt the bundled model cannot read (another script) is not silently the empty prompt: the
    node shows why on itself (ComfyUI's progress text), as well as in the log and the metadata."""
    from more4d_core.cache import MODEL_CACHE
    from more4d_core.depth import DepthResult
    from more4d_core.weights import load_default_generator
    from nodes.generate_nodes import GenerateTrajectories

    shown = []

    class Server:
        def send_progress_text(self, text, node_id):
            shown.append((node_id, text))

    monkeypatch.setattr(comfy_bridge, "IN_COMFY", True)
    monkeypatch.setitem(sys.modules, "server", type(sys)("server"))
    sys.modules["server"].PromptServer = type("PromptServer", (), {"instance": Server()})
    gen = load_default_generator()

    class Using:
        def __enter__(self):
            return gen

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr("nodes.generate_nodes.require_handle", lambda *a: None)
    monkeypatch.setattr(MODEL_CACHE, "use", lambda handle: Using())
    image, depth, k = _inputs(32, 48)
    result = DepthResult(depth, k, torch.ones(32, 48, dtype=torch.bool), "external")
    (scene,) = GenerateTrajectories().generate(object(), image[None], result, "球向左滑动", "", 0, 1, 0.0, 5.0, 5, 8.0,
                                               1.0, "128", unique_id="7")
    assert shown and shown[0][0] == "7" and "script the model does not read" in shown[0][1]
    assert "script" in scene.metadata["prompt_reading"]["warnings"][0]
    shown.clear()
    GenerateTrajectories().generate(object(), image[None], result, PROMPT, "", 0, 1, 0.0, 5.0, 5, 8.0, 1.0, "128",
                                    unique_id="7")
    # a prompt it reads: no warning, only where the model reads the prompt's objects (its object binding) and
    # how much of the image its motion gate lets move (on: the depth is not the built-in prior's)
    assert len(shown) == 1 and "does not read" not in shown[0][1]
    assert shown[0][1].startswith(("Prompt: the prompt names", "Prompt: the model finds nothing"))
    assert "the motion gate lets" in shown[0][1] or "nothing in the image moves" in shown[0][1]
