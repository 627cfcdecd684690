"""The ComfyUI node layer, exercised without ComfyUI (the bridge falls back to plain folders)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from more4d_core.camera import CameraPath
from more4d_core.errors import InputError, WrongTypeError
from more4d_core.export import save_scene
from more4d_core.scene import Scene4D
from nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from nodes.camera_nodes import CameraPathKeyframes, CameraPathPreset
from nodes.render_nodes import Render4D, output_size
from nodes.scene_io_nodes import LoadScene4D, SaveScene4D
from nodes.video_nodes import SaveVideo

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _folders(tmp_path, monkeypatch):
    monkeypatch.setenv("MORE4D_OUTPUT_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("node_id", sorted(NODE_CLASS_MAPPINGS))
def test_node_declarations(node_id):
    cls = NODE_CLASS_MAPPINGS[node_id]
    assert node_id in NODE_DISPLAY_NAME_MAPPINGS
    assert cls.CATEGORY == "MoRe4D" and cls.DESCRIPTION
    assert callable(getattr(cls(), cls.FUNCTION))
    spec = cls.INPUT_TYPES()
    assert set(spec) <= {"required", "optional", "hidden"}
    assert all(v in ("UNIQUE_ID", "PROMPT", "EXTRA_PNGINFO") for v in spec.get("hidden", {}).values())
    for section in (spec.get("required", {}), spec.get("optional", {})):
        for name, decl in section.items():
            assert isinstance(decl, tuple) and len(decl) == 2, name
            assert decl[1].get("tooltip"), f"{node_id}.{name} has no tooltip"
            if decl[0] in ("INT", "FLOAT"):
                assert decl[1]["min"] <= decl[1]["default"] <= decl[1]["max"]
            if isinstance(decl[0], list):
                assert decl[1].get("default", decl[0][0]) in decl[0]
    if cls.RETURN_TYPES:
        assert len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES) == len(cls.OUTPUT_TOOLTIPS)
    else:
        assert cls.OUTPUT_NODE


def test_preset_to_render_to_save_to_load(small_scene, _folders):
    (path,) = CameraPathPreset().build("orbit", 0, 1.0, scene=small_scene)
    assert isinstance(path, CameraPath) and path.num_frames == small_scene.num_frames
    frames, mask, depth, bundle = Render4D().render(small_scene, path, 0, 0, 1, "#102030", "cpu")
    assert bundle.scene is small_scene and bundle.result.point_index is not None
    assert frames.shape == (9, 24, 32, 3) and mask.shape == (9, 24, 32) and depth.shape == (9, 24, 32, 3)
    assert frames.dtype == mask.dtype == torch.float32
    holes = mask > 0.5
    assert holes.any()
    torch.testing.assert_close(frames[holes], torch.tensor([16, 32, 48]).float().div(255).expand(int(holes.sum()), 3))
    assert (depth[holes] == 0).all() and (depth[~holes] > 0).all()

    out = SaveScene4D().save(small_scene, "more4d/test", True, True, True, 2)
    names = out["ui"]["text"]
    assert names == ["more4d/test_00001.npz", "more4d/test_00001.glb", "more4d/test_00001_ply"]
    root = _folders / "output"
    assert all((root / n).exists() for n in names)
    again = SaveScene4D().save(small_scene, "more4d/test", True, False, False, 1)
    assert again["ui"]["text"] == ["more4d/test_00002.npz"]

    video = SaveVideo().save(frames, "more4d/clip", 8.0)["ui"]  # shown in the node like core's video nodes
    assert video["images"] == [{"filename": "clip_00001.mp4", "subfolder": "more4d", "type": "output"}]
    assert video["animated"] == (True,) and (root / "more4d" / "clip_00001.mp4").is_file()

    choices = LoadScene4D.INPUT_TYPES()["required"]["scene_file"][0]
    assert "output/more4d/test_00001.npz" in choices
    (loaded,) = LoadScene4D().load("output/more4d/test_00001.npz")
    assert isinstance(loaded, Scene4D) and loaded.storage == "float16"
    assert (loaded.points - small_scene.points).abs().max() < 1e-2
    assert LoadScene4D.IS_CHANGED("output/more4d/test_00001.npz") > 0


def test_render_resamples_a_mismatched_path_and_sizes(small_scene):
    (path,) = CameraPathPreset().build("dolly", 25, 1.0, scene_depth=2.0, strength_mode="fixed")
    frames, mask, _, _ = Render4D().render(small_scene, path, 64, 0, 2, "0,0,0", "auto")
    assert frames.shape == (9, 48, 64, 3)
    assert output_size((24, 32), 0, 12) == (12, 16)


def test_keyframes_node(small_scene):
    spec = json.dumps({"keyframes": [{"time": 0}, {"time": 1, "position": [0.1, 0, 0]}]})
    (path,) = CameraPathKeyframes().build(spec, 0, scene=small_scene)
    assert path.num_frames == small_scene.num_frames
    assert path.positions()[-1, 0] == pytest.approx(0.1 * small_scene.median_depth())
    (alone,) = CameraPathKeyframes().build(spec, 0, scene_depth=2.0)
    assert alone.num_frames == 49
    (example,) = CameraPathKeyframes().build(CameraPathKeyframes.INPUT_TYPES()["required"]["keyframes_json"][1]["default"], 17)
    assert example.num_frames == 17 and example.zoom is not None


def test_wrong_inputs_name_the_socket(small_scene):
    (path,) = CameraPathPreset().build("static", 0, 1.0, strength_mode="fixed")
    with pytest.raises(WrongTypeError, match="'scene' input must be a more4d_core.scene.Scene4D"):
        Render4D().render(torch.zeros(3), path, 0, 0, 1, "#000000", "cpu")
    with pytest.raises(WrongTypeError, match="'camera_path'"):
        Render4D().render(small_scene, small_scene, 0, 0, 1, "#000000", "cpu")
    with pytest.raises(InputError, match="colour"):
        Render4D().render(small_scene, path, 0, 0, 1, "blue-ish", "cpu")
    with pytest.raises(InputError, match="nothing to save"):
        SaveScene4D().save(small_scene, "x", False, False, False, 1)
    with pytest.raises(InputError, match="'input/' or 'output/'"):
        LoadScene4D().load("/etc/passwd")
    with pytest.raises(ValueError):
        LoadScene4D().load("output/../../secret.npz")


def test_load_lists_input_folder_files(small_scene, _folders):
    save_scene(small_scene, _folders / "input", "mine")
    assert "input/mine.npz" in LoadScene4D.INPUT_TYPES()["required"]["scene_file"][0]


def test_pack_loads_like_comfyui_loads_it(monkeypatch):
    """ComfyUI imports the folder as a package by file location; the entry point must register nodes."""
    spec = importlib.util.spec_from_file_location("more4d_pack_under_test", REPO / "__init__.py",
                                                  submodule_search_locations=[str(REPO)])
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    assert set(module.NODE_CLASS_MAPPINGS) == set(NODE_CLASS_MAPPINGS)
    assert module.WEB_DIRECTORY == "./web"


def test_comfyui_memory_management_leaves_memory_mode_models_where_their_mode_puts_them(monkeypatch):
    import types

    import torch

    from more4d_core.cache import MODEL_CACHE, CacheEntry, ModelHandle
    from nodes import comfy_bridge

    calls = []
    fake_mm = types.SimpleNamespace(free_memory=lambda *a: calls.append("free"),
                                    load_models_gpu=lambda p: calls.append("load"),
                                    unet_offload_device=lambda: torch.device("cpu"), soft_empty_cache=lambda: None,
                                    vram_state=None)
    monkeypatch.setattr(comfy_bridge, "_mm", fake_mm)
    manager = MODEL_CACHE.manager
    try:
        comfy_bridge.install_memory_manager()

        class Placed(torch.nn.Module):
            placement = object()  # a memory mode placed this model's parts

            def to(self, *a, **k):
                calls.append("to")
                return self

        entry = CacheEntry(ModelHandle("trajectory", ("x",), "x", {}), Placed(), torch.device("cuda"), 10)
        MODEL_CACHE.manager.activate(entry)
        MODEL_CACHE.manager.release(entry)
        assert calls == []  # neither a ModelPatcher load nor a whole-model move
    finally:
        MODEL_CACHE.set_manager(manager)


def test_comfyui_loads_plain_models_whole_through_a_model_patcher(monkeypatch):
    import sys
    import types

    import torch

    from more4d_core.cache import MODEL_CACHE, CacheEntry, ModelHandle
    from nodes import comfy_bridge

    loads = []

    def load_models_gpu(patchers, force_full_load=False):
        loads.append((patchers, force_full_load))

    class ModelPatcher:
        def __init__(self, model, load_device, offload_device, size):
            self.model, self.size = model, size

    fake_mm = types.SimpleNamespace(free_memory=lambda *a: None, load_models_gpu=load_models_gpu,
                                    unet_offload_device=lambda: torch.device("cpu"), soft_empty_cache=lambda: None,
                                    vram_state=None)
    monkeypatch.setattr(comfy_bridge, "_mm", fake_mm)
    monkeypatch.setitem(sys.modules, "comfy", types.ModuleType("comfy"))
    monkeypatch.setitem(sys.modules, "comfy.model_patcher", types.SimpleNamespace(ModelPatcher=ModelPatcher))
    manager = MODEL_CACHE.manager
    try:
        comfy_bridge.install_memory_manager()
        model = torch.nn.Linear(2, 2)
        entry = CacheEntry(ModelHandle("depth", ("x",), "x", {}), model, torch.device("cuda"), 24)
        MODEL_CACHE.manager.activate(entry)
        MODEL_CACHE.manager.activate(entry)  # the second use reuses the patcher
        # plain torch layers cannot run partially loaded: ComfyUI must load them whole
        assert [(len(p), p[0].model, p[0].size, full) for p, full in loads] == [(1, model, 24, True)] * 2
        assert loads[0][0][0] is loads[1][0][0]
    finally:
        MODEL_CACHE.set_manager(manager)


def test_render_size_widgets_stay_within_what_the_renderer_accepts(small_scene):
    from more4d_core.render.renderer import MAX_PIXELS, MAX_SIDE, _check_size

    spec = Render4D.INPUT_TYPES()["required"]
    assert spec["width"][1]["max"] == spec["height"][1]["max"] == MAX_SIDE
    assert _check_size(MAX_SIDE, MAX_SIDE) == (MAX_SIDE, MAX_SIDE)  # the largest the widgets allow renders
    with pytest.raises(InputError, match="at most 33,554,431 pixels"):
        _check_size(8192, 8192)
    assert MAX_PIXELS == 2**31 // 64 - 1
