"""Shipped workflows (validated against the node definitions, equal to their generator), the
headless runner, the model cache, interruption and actionable errors."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from more4d_core.cache import MODEL_CACHE, MemoryManager, ModelCache, ModelHandle
from more4d_core.errors import InputError
from more4d_core.run import main as run_main
from nodes import NODE_CLASS_MAPPINGS, comfy_bridge, model_files
from nodes.model_nodes import LoadTrajectoryModel
from nodes.runner import execute
from nodes.workflow_format import check_workflow, read_workflow, widget_slots
from nodes.workflow_library import CORE_NODES, WORKFLOWS

REPO = Path(__file__).resolve().parents[1]
QUICK = {"grid": "128", "steps": 2, "frames": 9}


@pytest.fixture
def out_dir(tmp_path):
    comfy_bridge.set_output_directory(str(tmp_path / "out"))
    yield tmp_path / "out"
    comfy_bridge.set_output_directory(None)
    comfy_bridge.PROGRESS_HOOK = None


def _generate_id(doc):
    return next(n["id"] for n in doc["nodes"] if n["type"] == "More4DGenerate")


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_shipped_workflows_are_valid_and_current(name):
    path = REPO / "workflows" / f"{name}.json"
    doc = json.loads(path.read_text())
    assert doc == json.loads(json.dumps(WORKFLOWS[name]())), f"{path} is stale: run python -m nodes.workflow_library"
    assert check_workflow(doc, NODE_CLASS_MAPPINGS, CORE_NODES) == []


def _placeholders(doc, models: Path) -> list[str]:
    """Create an empty stand-in at every model path the workflow names (folders get a config.json,
    what makes a folder a model folder); return the names."""
    names = []
    for n in doc["nodes"]:
        cls = NODE_CLASS_MAPPINGS.get(n["type"])
        dynamic = set(getattr(cls, "DYNAMIC_INPUTS", ()))
        for (slot, _), value in zip(widget_slots(cls) if cls else [], n.get("widgets_values") or []):
            if slot not in dynamic or value in (model_files.NONE, model_files.BUNDLED):
                continue
            head, _, rest = value.partition("/")
            shared = head == "models" and rest.split("/")[0] in (*model_files.SHARED_FOLDERS, "depth")
            path = models.parent / rest if shared else models / value  # ComfyUI's own folders sit beside ours
            if value.endswith("/"):
                path.mkdir(parents=True, exist_ok=True)
                (path / "config.json").write_text("{}")
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"")
            names.append(value)
    return names


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_every_shipped_workflow_validates_once_its_files_exist(name, tmp_path, monkeypatch):
    # ComfyUI rejects a queued workflow whose file names are not in the lists the nodes offer ("value not in list")
    models = tmp_path / "models" / "more4d"
    monkeypatch.setenv("MORE4D_MODELS_DIR", str(models))
    doc = WORKFLOWS[name]()
    named = _placeholders(doc, models)
    assert check_workflow(doc, NODE_CLASS_MAPPINGS, CORE_NODES, files="listed") == []
    if named:  # and the same check fails while the files are missing
        shutil.rmtree(models.parent)
        problems = check_workflow(doc, NODE_CLASS_MAPPINGS, CORE_NODES, files="listed")
        assert len(problems) == len(named), problems


def test_checker_catches_broken_workflows():
    doc = WORKFLOWS["more4d_default"]()
    gen = next(n for n in doc["nodes"] if n["type"] == "More4DGenerate")
    slots = [name for name, _ in widget_slots(NODE_CLASS_MAPPINGS["More4DGenerate"])]
    gen["widgets_values"][slots.index("steps")] = 9999
    doc["links"][0][5] = "LATENT"
    doc["nodes"].append({"id": 99, "type": "NoSuchNode", "inputs": [], "outputs": []})
    problems = "\n".join(check_workflow(doc, NODE_CLASS_MAPPINGS, CORE_NODES))
    assert "9999 is outside" in problems and "labelled LATENT" in problems and "NoSuchNode" in problems


def test_default_workflow_runs_and_the_cache_loads_once(out_dir):
    doc = WORKFLOWS["more4d_default"]()
    overrides = {_generate_id(doc): QUICK}
    loads_before = MODEL_CACHE.loads
    results = execute(doc, overrides=overrides)
    files = [p.relative_to(out_dir).as_posix() for p in sorted(out_dir.rglob("*")) if p.is_file()]
    assert files == ["more4d/dolly_00001.mp4", "more4d/orbit_00001.mp4", "more4d/scene_00001.glb", "more4d/scene_00001.npz"]
    scene = results[_generate_id(doc)][0]
    assert scene.num_frames == 9 and max(scene.grid_hw) == 128
    assert MODEL_CACHE.loads - loads_before <= 1  # loaded once (or already loaded by an earlier test)
    loads_after_first, hits_after_first = MODEL_CACHE.loads, MODEL_CACHE.hits
    execute(doc, overrides=overrides)  # a second queue run
    assert MODEL_CACHE.loads == loads_after_first, "the second run loaded a model again; it must come from the cache"
    assert MODEL_CACHE.hits > hits_after_first
    assert (out_dir / "more4d" / "orbit_00002.mp4").is_file()


class Interrupted(Exception):
    """Stands for ComfyUI's interrupt (the cancel button) arriving while the run works."""


def _output_files(out_dir):
    """Every file under the output folder, hidden temporaries included."""
    return sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file()) if out_dir.exists() else []


# The default workflow saves, in node order: the orbit video, the dolly video, then the scene (.npz, then .glb).
# The rule (README, Exports): each save node's output is all or nothing; what earlier saves finished stays.
@pytest.mark.parametrize("at, placed_before, stays", [
    ("generation", [], []),  # during sampling: nothing was written, nothing stays
    ("file 2", ["orbit_00001.mp4"], ["more4d/orbit_00001.mp4"]),  # while the dolly video is placed
    # while the scene's .glb is placed: the .npz that save already wrote is removed with it
    ("file 4", ["orbit_00001.mp4", "dolly_00001.mp4", "scene_00001.npz"],
     ["more4d/dolly_00001.mp4", "more4d/orbit_00001.mp4"]),
], ids=["during-generation", "at-the-second-file", "at-the-scene-glb"])
def test_interrupting_a_run_keeps_finished_saves_and_removes_the_rest(out_dir, monkeypatch, at, placed_before, stays):
    from more4d_core.export import atomic

    doc = WORKFLOWS["more4d_default"]()
    overrides = {_generate_id(doc): QUICK}
    placed = []
    if at == "generation":
        def interrupt(done, total):
            if done >= 1:
                raise Interrupted("user pressed cancel")

        comfy_bridge.PROGRESS_HOOK = interrupt
    else:
        place_file = atomic._place_file

        def place(tmp, target, overwrite):
            if len(placed) + 1 == int(at.split()[1]):
                raise Interrupted(f"user pressed cancel while {target.name} was written")
            place_file(tmp, target, overwrite)
            placed.append(target.name)

        monkeypatch.setattr(atomic, "_place_file", place)
    with pytest.raises(Interrupted):
        execute(doc, overrides=overrides)
    assert placed == placed_before
    assert _output_files(out_dir) == stays  # no partial output, no temporary file
    comfy_bridge.PROGRESS_HOOK = None
    monkeypatch.undo()
    results = execute(doc, overrides=overrides)  # the next run works and takes the next free numbers
    written = sorted(p for out in results.values() if isinstance(out, dict) for p in out["ui"].get("text", []))
    assert len(written) == 4 and not set(written) & set(stays)
    assert _output_files(out_dir) == sorted(stays + written)


def test_runner_command_line(tmp_path, capsys):
    assert run_main(["--out", str(tmp_path), "--steps", "2", "--frames", "9", "--grid", "128",
                     "--camera", "roll", "pan_x", "--prompt", "the box grows"]) == 0
    out = capsys.readouterr().out
    assert "More4DGenerate" in out and "peak memory" in out
    assert "loading the model ..." in out and "writing the video ..." in out  # stages without a progress bar
    assert "More4DPreview                skipped (the browser viewer" in out
    # the bundled example's true motion is known: the runner scores the generated motion against it
    assert "bundled example vs its true motion" in out and "nothing moves" in out and "share of the model's motion" in out
    assert "generated with the prompt 'the box grows'" in out
    assert "depth: the built-in prior" in out and "--depth FILE" in out  # names the depth and how to do better
    # the example's enlarged wall textures read out of focus, but it shows ground (a room, not a close-up)
    assert "out of focus" not in out
    assert "camera roll: strength" in out and "(auto: the largest move within the hole budget)" in out
    # outputs are named after the image and the camera each video shows, with their sizes printed
    names = sorted(p.name for p in (tmp_path / "more4d").iterdir())
    assert names == ["example_pan_x_00001.mp4", "example_roll_00001.mp4", "example_scene_00001.glb",
                     "example_scene_00001.npz"], names
    size = (tmp_path / "more4d" / "example_roll_00001.mp4").stat().st_size
    assert re.search(rf"example_roll_00001\.mp4  \({size / 1024:.1f} KB\)", out), out
    _refused(capsys, ["--out", str(tmp_path), "--camera", "a", "b", "c"], "camera preset nodes")
    loads = MODEL_CACHE.loads
    MODEL_CACHE.drop()  # a refused run must not load the model first (it took ~55 s before the preset was checked)
    _refused(capsys, ["--out", str(tmp_path), "--camera", "orbitt"], r"unknown camera preset 'orbitt'.*orbit")
    _refused(capsys, ["--out", str(tmp_path), "--frames", "10000"], r"frames: 10000 is outside 2\.\.257")
    _refused(capsys, ["--out", str(tmp_path), "--seed", "-1"], r"seed: -1 is outside 0\.\.4294967295")
    _refused(capsys, ["--out", str(tmp_path), "--workflow", str(REPO / "workflows" / "more4d_native_wan_completion.json")],
             r"cannot run: .*WanVaceToVideo.*queue it in ComfyUI")
    assert MODEL_CACHE.loads == loads
    (tmp_path / "x.png").write_bytes(b"x\n")
    _refused(capsys, ["--out", str(tmp_path), "--image", str(tmp_path / "x.png")],
             r"image .*x\.png \(2 bytes\) cannot be read as an image .*PNG, JPEG")
    _refused(capsys, ["--out", str(tmp_path), "--image", str(tmp_path / "missing.png")], r"missing\.png not found")
    _refused(capsys, ["--out", str(tmp_path), "--workflow", str(tmp_path / "x.png")],
             r"workflow .*x\.png is not a ComfyUI workflow JSON file")


def test_depth_option_rewires_estimate_depth_to_a_depth_map():
    from nodes.workflow_depth import use_depth_image

    doc = WORKFLOWS["more4d_default"]()
    before = json.dumps(doc)
    new = use_depth_image(doc, "/maps/d.png", median_depth=2.0)
    assert json.dumps(doc) == before  # the shipped graph is not touched
    assert check_workflow(new, NODE_CLASS_MAPPINGS, CORE_NODES) == []
    nodes = read_workflow(new, {**NODE_CLASS_MAPPINGS, "LoadImage": None})
    swapped = next(n for n in nodes.values() if n.type == "More4DDepthFromImage")
    assert not any(n.type == "More4DEstimateDepth" for n in nodes.values())
    # the node's own widgets, in its declared order: mode, median_depth, fov, cleanup (fov, cleanup carried over)
    example_fov = round(json.loads((REPO / "more4d_core" / "assets" / "example.json").read_text())["fov_deg"], 2)
    assert swapped.widgets == {"mode": "disparity", "median_depth": 2.0, "fov": example_fov, "cleanup": "snap"}
    loader = nodes[swapped.links["depth_image"][0]]
    assert loader.type == "LoadImage" and next(n for n in new["nodes"] if n["id"] == loader.id)["widgets_values"][0] == "/maps/d.png"
    image_source = next(n for n in nodes.values() if n.type == "More4DGenerate").links["image"]
    assert swapped.links["image"] == image_source  # the same colour image as before
    with pytest.raises(ValueError, match="depth mode"):
        use_depth_image(doc, "d.png", mode="inverse")


def test_runner_depth_option(tmp_path, capsys):
    depth_map = REPO / "more4d_core" / "assets" / "example_depth.png"
    assert run_main(["--out", str(tmp_path), "--depth", str(depth_map), "--median-depth", "2.5", "--camera", "static",
                     *[a for k, v in QUICK.items() for a in (f"--{k}", str(v))]]) == 0
    out = capsys.readouterr().out
    assert "More4DDepthFromImage" in out and "depth: the depth map given (disparity, median 2.50 m)" in out
    _refused(capsys, ["--out", str(tmp_path), "--depth", str(tmp_path / "nope.png")], "depth map")
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "wide.png", np.zeros((10, 100, 3), np.uint8))
    _refused(capsys, ["--out", str(tmp_path), "--depth", str(tmp_path / "wide.png")], "wide.png is 100x10 but the image is 512x368")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    _refused(capsys, ["--out", str(tmp_path), "--depth", str(tmp_path / "bad.png")], "cannot be read as an image")
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(REPO / "more4d_core" / "assets" / "example.png", photos / "a.png")
    _refused(capsys, ["--out", str(tmp_path), "--image", str(photos), "--depth", str(depth_map)], "give --depth a folder")
    _refused(capsys, ["--out", str(tmp_path), "--image", str(photos), "--depth", str(tmp_path)], "no depth map named a")


def test_runner_prior_subjects_option(tmp_path, capsys):
    """A close-up before an out-of-focus backdrop: the summary says so and names the option; with
    --prior-subjects focus the Estimate Depth node takes what is in focus as the subject."""
    import imageio.v3 as iio
    from test_depth_defocus import _close_up

    iio.imwrite(tmp_path / "close_up.png", _close_up(4.0)[0])
    quick = [a for k, v in QUICK.items() for a in (f"--{k}", str(v))]
    base = ["--out", str(tmp_path / "out"), "--image", str(tmp_path / "close_up.png"), "--camera", "static", *quick]
    assert run_main(base) == 0
    out = capsys.readouterr().out
    assert "the photo's borders are out of focus" in out and "--prior-subjects focus" in out
    assert run_main([*base, "--prior-subjects", "focus"]) == 0
    out = capsys.readouterr().out
    assert "depth: the built-in prior (layout 'backdrop', subjects by focus)" in out and "borders are out of focus" not in out
    depth_map = REPO / "more4d_core" / "assets" / "example_depth.png"
    _refused(capsys, ["--out", str(tmp_path), "--depth", str(depth_map), "--prior-subjects", "focus"], "--depth replaces it")
    _refused(capsys, ["--out", str(tmp_path), "--workflow", str(REPO / "workflows" / "more4d_external_depth.json"),
                      "--prior-subjects", "colour"], "this workflow has none")
    _refused(capsys, ["--out", str(tmp_path), "--workflow", str(REPO / "workflows" / "more4d_full_wan.json"),
                      "--prior-subjects", "focus"], "node 2 uses the 'transformers' backend")


def test_runner_depth_model_option(tmp_path, capsys):
    """--depth-model FOLDER: the Estimate Depth node runs that local transformers model."""
    from test_depth import _tiny_dpt

    folder = _tiny_dpt(tmp_path / "tiny-dpt")
    quick = [a for k, v in QUICK.items() for a in (f"--{k}", str(v))]
    assert run_main(["--out", str(tmp_path / "out"), "--depth-model", str(folder), "--camera", "static", *quick]) == 0
    out = capsys.readouterr().out
    assert "depth: transformers:tiny-dpt (relative, median" in out and "built-in prior" not in out
    _refused(capsys, ["--out", str(tmp_path), "--depth-model", str(tmp_path / "nowhere")], "nowhere does not exist")
    _refused(capsys, ["--out", str(tmp_path), "--depth-model", str(folder), "--depth",
                      str(REPO / "more4d_core" / "assets" / "example_depth.png")], "--depth, not both")
    _refused(capsys, ["--out", str(tmp_path), "--depth-model", str(folder), "--prior-subjects", "focus"],
             "--prior-subjects, not both")


def test_external_depth_workflow_runs(out_dir):
    doc = WORKFLOWS["more4d_external_depth"]()
    results = execute(doc, overrides={_generate_id(doc): QUICK})
    depth = next(v for k, v in results.items() if read_workflow(doc, {})[k].type == "More4DDepthFromImage")[0]
    assert depth.backend == "external" and depth.depth.shape == (368, 512)


def test_model_cache_shares_and_releases():
    events = []

    class Recorder(MemoryManager):
        def before_load(self, nbytes, device):
            events.append("before_load")

        def activate(self, entry):
            events.append("activate")

        def release(self, entry):
            events.append("release")

        def forget(self, entry):
            events.append("forget")

    cache = ModelCache(Recorder(), max_entries=1)
    calls = []
    a = cache.handle("k", ("x",), "model x", lambda: calls.append(1) or torch.nn.Linear(2, 2))
    b = cache.handle("k", ("x",), "model x", lambda: calls.append(1) or torch.nn.Linear(2, 2))
    assert a == b and len(calls) == 1 and cache.stats() == {"loaded_models": 1, "loads": 1, "hits": 1}
    with cache.use(a) as model:
        assert isinstance(model, torch.nn.Linear)
    cache.handle("k", ("y",), "model y", lambda: torch.nn.Linear(2, 2))  # evicts x (max 1 entry)
    assert events == ["before_load", "activate", "release", "before_load", "forget"]
    with pytest.raises(InputError, match="no longer loaded"):
        cache.entry(a)
    with pytest.raises(InputError, match="model handle"):
        cache.entry("not a handle")
    assert cache.drop() == 1 and len(cache) == 0


def test_model_errors_are_actionable(tmp_path, monkeypatch):
    monkeypatch.setenv("MORE4D_MODELS_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        LoadTrajectoryModel().load("nope.safetensors", "auto", "auto", "cpu")
    from nodes.generate_nodes import GenerateTrajectories

    handle = ModelHandle("completion", ("c",), "a completion model")
    with pytest.raises(TypeError, match="needs a trajectory model"):
        GenerateTrajectories().generate(handle, torch.rand(1, 8, 8, 3), None, "", "", 0, 1, 1.0, 5.0, 9, 8.0, 1.0, "image")
    # bad settings and an unusable depth are refused before any model is used (the handle is never loaded)
    from more4d_core.depth import DepthResult

    trajectory = ModelHandle("trajectory", ("never loaded",), "a trajectory model")
    good = DepthResult(torch.ones(8, 8), torch.eye(3), torch.ones(8, 8, dtype=torch.bool), "test")
    nothing = DepthResult(torch.zeros(8, 8), torch.eye(3), torch.zeros(8, 8, dtype=torch.bool), "test")
    image = torch.rand(1, 8, 8, 3)
    for fps, scale, depth, message in [(float("nan"), 1.0, good, "fps must be a number from 1 to 60"),
                                       (0.0, 1.0, good, "fps"), (8.0, float("inf"), good, "motion_scale must be"),
                                       (8.0, -1.0, good, "motion_scale"), (8.0, 1.0, nothing, "no valid pixel")]:
        with pytest.raises(InputError, match=message):
            GenerateTrajectories().generate(trajectory, image, depth, "", "", 0, 1, 1.0, 5.0, 9, fps, scale, "image")


def test_example_images_are_installed_where_the_workflows_look(tmp_path):
    from nodes import model_files
    copied = model_files.install_example_images(tmp_path)
    names = {p.name for p in copied}
    assert names == {"more4d_example.png", "more4d_example_depth.png"}
    # every image a shipped workflow loads is one of the installed files
    for name, build in WORKFLOWS.items():
        images = [n["widgets_values"][0] for n in build()["nodes"] if n["type"] == "LoadImage"]
        assert images and set(images) <= names, name
    # existing files (e.g. the user's own edit) are never overwritten
    (tmp_path / "more4d_example.png").write_bytes(b"mine")
    assert model_files.install_example_images(tmp_path) == []
    assert (tmp_path / "more4d_example.png").read_bytes() == b"mine"


def test_example_image_copy_failure_only_warns(tmp_path, caplog):
    from nodes import model_files

    blocker = tmp_path / "input"
    blocker.write_text("a file where the folder should be")
    assert model_files.install_example_images(blocker) == []
    assert "could not copy the example image" in caplog.text


def _model_names(doc):
    names = []
    for n in doc["nodes"]:
        cls = NODE_CLASS_MAPPINGS.get(n["type"])
        if cls is None or not hasattr(cls, "VALIDATE_INPUTS"):
            continue
        for (slot, _), value in zip(widget_slots(cls), n.get("widgets_values") or []):
            if slot in getattr(cls, "DYNAMIC_INPUTS", ()) and value not in (model_files.NONE, model_files.BUNDLED):
                names.append(value)
    return names


def test_the_manifest_knows_every_model_file_the_workflows_name_and_the_readme_lists_it():
    from more4d_core.model_manifest import BY_NAME, MANIFEST

    named = {name for build in WORKFLOWS.values() for name in _model_names(build())}
    assert named and named <= set(BY_NAME), named - set(BY_NAME)
    readme = (REPO / "README.md").read_text()
    for entry in MANIFEST:
        assert f"| `{entry.folder}/{entry.file}` | {entry.what} | {entry.size} | {entry.source} |" in readme, entry.name


def test_missing_model_files_are_all_reported_before_anything_runs(tmp_path, monkeypatch, out_dir):
    monkeypatch.setenv("MORE4D_MODELS_DIR", str(tmp_path / "models" / "more4d"))
    doc = WORKFLOWS["more4d_full_wan"]()
    named = sorted(set(_model_names(doc)))
    with pytest.raises(FileNotFoundError) as err:
        execute(doc)
    text = str(err.value)
    # every file at once, each with where it goes, its size and its source
    assert text.count("\n- ") == len(named) == 9
    assert "put the file umt5_xxl_fp8_e4m3fn_scaled.safetensors (6.7 GB; umT5-XXL text encoder, float8) in " \
           "models/text_encoders/; it comes from Comfy-Org/Wan_2.1_ComfyUI_repackaged" in text
    assert not any(out_dir.rglob("*")) if out_dir.exists() else True
    # ComfyUI's queue-time check of a loader node says the same instead of "value not in list"
    loader = NODE_CLASS_MAPPINGS["More4DLoadCompletionModel"]
    message = loader.VALIDATE_INPUTS(transformer="Wan2.1-Fun-V1.1-14B-InP/", vae="models/vae/wan_2.1_vae.safetensors")
    assert message.count("\n- ") == 2 and "alibaba-pai/Wan2.1-Fun-V1.1-14B-InP" in message
    _placeholders(doc, tmp_path / "models" / "more4d")
    assert loader.VALIDATE_INPUTS(transformer="Wan2.1-Fun-V1.1-14B-InP/", vae="models/vae/wan_2.1_vae.safetensors") is True


def test_a_missing_file_the_manifest_does_not_know_is_reported_once_with_its_folder(tmp_path, monkeypatch):
    from nodes.model_files import missing

    root = tmp_path / "models" / "more4d"
    monkeypatch.setenv("MORE4D_MODELS_DIR", str(root))
    (problem,) = missing(["my-finetune/model.safetensors"])
    assert problem == f"{root / 'my-finetune' / 'model.safetensors'} not found: put the file or folder under {root} and refresh"
    (problem,) = missing([str(tmp_path / "elsewhere.safetensors")])
    assert problem == f"{tmp_path / 'elsewhere.safetensors'} does not exist"


def test_a_batch_skips_a_bad_image_and_reports_it(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(REPO / "more4d_core" / "assets" / "example.png", photos / "a.png")
    (photos / "b.png").write_bytes(b"\\x89PNG but broken")  # a corrupt image in the folder
    shutil.copy(REPO / "more4d_core" / "assets" / "example.png", photos / "c.png")
    code = run_main(["--out", str(tmp_path / "out"), "--image", str(photos), "--camera", "static",
                     *[a for k, v in QUICK.items() for a in (f"--{k}", str(v))]])
    out = capsys.readouterr().out
    assert code == 1
    assert "1 of 3 images failed:" in out and "b.png:" in out and "skipping b.png" in out
    videos = sorted(p.name for p in (tmp_path / "out").rglob("*.mp4"))  # a and c: two videos each, named for them
    assert videos == ["a_dolly_00001.mp4", "a_static_00001.mp4", "c_dolly_00001.mp4", "c_static_00001.mp4"], videos


def _refused(capsys, argv, message):
    """The runner refuses: exit status 2 and one line 'error: ...' (no traceback) saying what was wrong."""
    capsys.readouterr()
    assert run_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and re.search(message, err), err


def test_runner_help_lists_presets_workflows_and_words(capsys):
    with pytest.raises(SystemExit) as done:
        run_main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for option in ("--workflow", "--seed", "--out", "--debug"):
        line = next(line for line in text.splitlines() if line.strip().startswith(option))
        assert len(line.split(option, 1)[1].strip()) > 10 or option == "--workflow", line  # each has its text
    for preset in ("static", "dolly", "orbit_reverse", "pan_x", "mix2"):
        assert re.search(rf"^  {preset} +\S", text, re.M), preset
    for flow in sorted((REPO / "workflows").glob("*.json")):
        assert f"workflows/{flow.name}" in text
    assert "more4d_native_wan_completion.json  (needs ComfyUI" in text
    assert "ball" in text and "bounces" in text and "counterclockwise" in text


# ComfyUI's template lookup (app/custom_node_manager.py, ComfyUI 0.3x): every custom node folder's
# <name>/*.json for these folder names, in this order; "workflows" is accepted as a legacy alias
COMFY_TEMPLATE_FOLDERS = ["example_workflows", "example", "examples", "workflow", "workflows"]


def test_comfyui_lists_each_shipped_template_once(tmp_path):
    custom_nodes = tmp_path / "custom_nodes"
    custom_nodes.mkdir()
    (custom_nodes / "ComfyUI-MoRe4D").symlink_to(REPO, target_is_directory=True)
    found = [p for name in COMFY_TEMPLATE_FOLDERS for p in sorted(custom_nodes.glob(f"*/{name}/*.json"))]
    listed = [p.stem for p in found]
    assert sorted(listed) == sorted(WORKFLOWS), listed  # each template once: no second folder doubling the list
    assert {p.parent.name for p in found} == {"workflows"}
