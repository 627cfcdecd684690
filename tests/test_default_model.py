"""The bundled default model and the evaluation harness."""

import json

import pytest
import torch

from more4d_core.camera.intrinsics import intrinsics_from_fov
from more4d_core.checkpoints.bundle import read_header
from more4d_core.eval.protocol import METHODS, evaluate
from more4d_core.eval.report import check_targets, format_controls, format_table
from more4d_core.generator import build_generator
from more4d_core.models.config import MORE4D_TINY
from more4d_core.weights import DEFAULT_MODEL, load_default_generator

REQUIRED_INFO = ("seed", "config", "data_recipe", "git_revision", "train_args", "steps", "batch_size", "weights",
                 "samples_per_s", "wall_time_s")


def test_default_model_ships_with_complete_metadata():
    assert DEFAULT_MODEL.is_file(), "the default model must be inside the package"
    assert DEFAULT_MODEL.stat().st_size < 25 * 2**20
    header = read_header(DEFAULT_MODEL)
    assert header.config.name == "more4d-small"
    missing = [k for k in REQUIRED_INFO if k not in header.info]
    assert not missing, missing
    assert set(header.components) == {"transformer", "codec", "text_encoder"}


def test_default_model_generates_at_the_users_resolution():
    gen = load_default_generator()
    h, w = 184, 256
    image = torch.rand(h, w, 3)
    depth = torch.rand(h, w) * 2 + 2
    scene = gen.generate(image, depth, intrinsics_from_fov(h, w, 60.0), "the ball slides left", steps=2, seed=0)
    assert scene.grid_hw == (h, w) and scene.num_frames == 49
    assert torch.isfinite(scene.points).all() and torch.equal(scene.points[0], scene.points0)


def test_evaluation_harness_scores_every_cell_and_control(tmp_path, capsys):
    gen = build_generator(MORE4D_TINY)
    result = evaluate(gen, samples=4, steps=1, mean_samples=4, output_width=4 * MORE4D_TINY.width,
                      log=lambda *_: None)
    assert result["split"] == "heldout" and result["seeds"] == [0, 3]
    for unit in ("grid", "output"):
        cells = result["cells"][unit]
        assert set(cells) == set(METHODS) - {"model + smoothing", "model, one sample"}  # the tiny model neither smooths nor averages
        static = cells["nothing moves"]
        # "nothing moves" is right on still points (they move less than 2 output pixels)
        assert static["camera still / still"]["within"]["16"] == 1.0 and static["camera still / still"]["epe3d"] < 1e-3
        assert static["camera still / moving"]["within_avg"] < 1.0
        oracle = cells["codec oracle"]["all scenes / all"]
        assert oracle["epe3d"] < static["all scenes / all"]["epe3d"]  # the codec keeps the motion it is given
    grid, output = result["cells"]["grid"], result["cells"]["output"]
    for method in grid:  # same predictions: same EPE, a threshold of 4 output pixels is one grid pixel
        a, b = grid[method]["all scenes / all"], output[method]["all scenes / all"]
        assert a["epe3d"] == b["epe3d"] and b["within"]["4"] == pytest.approx(a["within"]["1"])
    controls = result["controls"]
    assert set(controls["still_prompt_drift_p99_px"]) == {"nothing moves", "the scene is still", "(empty prompt)"}
    assert controls["named_object_share"]["cases"] >= 0 and controls["direction_correct"]["cases"] >= 0
    named = controls["named_object_share"]  # each case is kept, and the mean is theirs
    assert len(named["per_case"]) == named["cases"] >= 1
    assert named["mean"] == pytest.approx(sum(c["share"] for c in named["per_case"]) / named["cases"])
    assert all(c["caption"].startswith("the ") and 0 <= c["seed"] <= 3 for c in named["per_case"])
    text = format_table(result) + format_controls(result)
    assert "camera still / moving" in text and "nothing moves" in text and "named object" in text
    assert len(check_targets(result)) == 6
    # a chosen control alone: the same cases with the same shares (each generation has its own seed), the rest not run
    named_only = evaluate(gen, samples=4, steps=1, mean_samples=4, output_width=4 * MORE4D_TINY.width,
                          with_controls=("named",), log=lambda *_: None)
    assert set(named_only["controls"]) == {"named_object_share"}
    assert named_only["controls"]["named_object_share"]["per_case"] == named["per_case"]
    assert named_only["cells"] == result["cells"]
    assert "direction: not run" in format_controls(named_only) and "still prompts: not run" in format_controls(named_only)
    assert [label for label, _, _ in check_targets(named_only)] == [label for label, _, _ in check_targets(result)][:4]
    path = tmp_path / "r.json"
    from more4d_core.eval.__main__ import main

    tiny = str(_tiny_model(tmp_path))
    assert main(["--model", tiny, "--samples", "2", "--steps", "1", "--mean-samples", "2",
                 "--split", "validation", "--json", str(path), "--no-controls", "--still-sweep", "0,0.004"]) in (0, 1)
    saved = json.loads(path.read_text())
    assert saved["split"] == "validation" and "targets" in saved and "model" in saved["cells"]["output"]
    rows = saved["cells"]["output"]
    assert rows["model + still hold 0"] == rows["model"]  # a zero threshold holds nothing
    assert "model + still hold 0.004" in rows
    assert "controls" not in saved
    header = capsys.readouterr().out.splitlines()[0]
    assert header.endswith("mirror averaging: off")  # as the generations resolve "auto" (the model's default)
    with pytest.raises(SystemExit):  # an unknown control is refused before any scene is generated
        main(["--model", tiny, "--controls", "named,drift"])
    with pytest.raises(SystemExit):  # both flags: which one wins would be a guess, so neither does
        main(["--model", tiny, "--samples", "2", "--no-controls", "--controls", "named"])


def test_controls_to_run_are_named_or_all_or_none():
    from more4d_core.eval.controls import CONTROLS, to_run

    assert to_run(True) == set(CONTROLS) == {"named", "direction", "still"}
    assert to_run(False) == to_run(None) == to_run([]) == frozenset()
    assert to_run("still") == {"still"} and to_run(["named", "direction"]) == {"named", "direction"}
    with pytest.raises(ValueError, match="'drift'"):
        to_run(["named", "drift"])


def _tiny_model(tmp_path):
    from more4d_core.checkpoints.bundle import save_bundle

    gen = build_generator(MORE4D_TINY)
    path = tmp_path / "tiny.safetensors"
    save_bundle(path, MORE4D_TINY, {"transformer": gen.transformer, "codec": gen.codec, "text_encoder": gen.text_encoder})
    return path
