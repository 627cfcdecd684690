"""The bundled default model and the evaluation harness."""

import pytest
import torch

from more4d_core.camera.intrinsics import intrinsics_from_fov
from more4d_core.checkpoints.bundle import read_header
from more4d_core.eval.__main__ import check_targets, evaluate, format_table
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


def test_evaluation_harness_runs():
    gen = build_generator(MORE4D_TINY)
    result = evaluate(gen, samples=3, steps=1, mean_samples=4, output_width=4 * MORE4D_TINY.width,
                      log=lambda *_: None)
    grid, output = result["tables"]["grid"], result["tables"]["output"]
    assert set(grid) == set(output) == {"model", "model, no still hold", "model, wrong caption", "static",
                                        "mean motion", "codec oracle"}
    # the per-scene-type breakdown covers the same scenes
    groups = result["by_camera"]["grid"]["static"]
    assert groups and set(groups) <= {True, False}
    assert grid["codec oracle"].epe3d < grid["static"].epe3d  # the codec keeps the motion it is given
    assert grid["static"].smoothness == pytest.approx(0.0)  # nothing moves
    for method in grid:  # same predictions: same EPE, but finer pixels are stricter thresholds
        assert output[method].epe3d == grid[method].epe3d
        assert all(output[method].within[d] <= grid[method].within[d] for d in grid[method].within)
        # a threshold of 4 output pixels is one grid pixel
        assert output[method].within[4] == pytest.approx(grid[method].within[1])
    text = format_table(result)
    assert "EPE3D" in text and "mean motion" in text and "output" in text and "by scene" in text
    assert len(check_targets(result, "grid")) == len(check_targets(result, "output")) == 3
