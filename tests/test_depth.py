"""Depth: the built-in prior, external depth images, transformers models, cleanup and alignment."""

import pytest
import torch

from more4d_core.bench.depth_bench import depth_errors
from more4d_core.data.procedural.scene_generator import generate_sample
from more4d_core.depth import (
    DEFAULT_FOV_DEG,
    DepthResult,
    clean_depth,
    depth_to_image,
    estimate_depth,
    external_depth,
    fit_scale_shift,
    flying_pixels,
    prior_depth,
    to_metric,
)
from more4d_core.errors import InputError


def test_prior_gives_a_usable_metric_guess():
    scores, const = [], []
    for seed in range(4):
        s = generate_sample(seed, "heldout", 48, 64, 2, with_visibility=False)
        r = prior_depth(s.image, fov_deg=s.params["fov_deg"], median_depth=4.0)
        assert isinstance(r, DepthResult) and r.backend == "prior" and not r.metric
        assert r.depth.shape == (48, 64) and torch.isfinite(r.depth).all() and (r.depth > 0).all()
        assert r.median_depth() == pytest.approx(4.0, rel=1e-4)
        scores.append(depth_errors(r.depth, s.depth[0])[1])
        const.append(depth_errors(torch.ones(48, 64), s.depth[0])[1])
    assert sum(scores) > sum(const)  # better than a constant guess on procedural rooms
    with pytest.raises(InputError, match="horizon"):
        prior_depth(torch.rand(8, 8, 3), horizon=1.5)


def test_default_intrinsics_follow_the_reference():
    r = estimate_depth(torch.rand(30, 40, 3), "prior", cleanup=None)
    assert r.intrinsics[0, 0] == pytest.approx(40.0)  # f = width
    assert DEFAULT_FOV_DEG == pytest.approx(53.130102, abs=1e-5)
    assert estimate_depth(torch.rand(30, 40, 3), "prior", fov_deg=90.0).intrinsics[0, 0] == pytest.approx(20.0)


@pytest.mark.parametrize("mode", ["disparity", "depth"])
def test_external_depth_round_trip(mode):
    depth = torch.rand(20, 30) * 4 + 1
    image = depth_to_image(depth, mode)
    assert image.shape == (1, 20, 30, 3) and image.max() == pytest.approx(1.0)
    back = external_depth(image, mode=mode, median_depth=float(depth.median()), cleanup=None)
    torch.testing.assert_close(back.depth, depth, rtol=1e-4, atol=1e-4)
    resized = external_depth(image, mode=mode, size_hw=(40, 60), cleanup=None)
    assert resized.depth.shape == (40, 60)


def test_conversion_errors():
    with pytest.raises(InputError, match="depth mode"):
        to_metric(torch.ones(3, 3), "inverse", 2.0)
    with pytest.raises(InputError, match="no usable pixel"):
        to_metric(torch.zeros(3, 3), "disparity", 2.0)
    with pytest.raises(InputError, match="median depth"):
        to_metric(torch.ones(3, 3), "depth", 0.0)


def test_depth_result_sanitizes():
    d = torch.ones(4, 4)
    d[0, 0] = float("nan")
    d[1, 1] = -2.0
    r = DepthResult(d, torch.eye(3) * 4 + torch.tensor([[0, 0, 2.0], [0, 0, 2.0], [0, 0, -3.0]]), torch.ones(4, 4), "x")
    assert torch.isfinite(r.depth).all() and not r.valid[0, 0] and not r.valid[1, 1] and r.valid[2, 2]


def test_flying_pixels_are_snapped_or_dropped():
    d = torch.full((9, 12), 2.0)
    d[:, 6:] = 6.0
    d[:, 6] = 3.5  # blended edge column: between the two surfaces
    mask = flying_pixels(d)
    assert mask[:, 6].all() and not mask[:, :5].any() and not mask[:, 8:].any()
    res = DepthResult(d, torch.tensor([[10.0, 0, 6], [0, 10.0, 4.5], [0, 0, 1]]), torch.ones(9, 12), "t")
    snapped = clean_depth(res, mode="snap")
    assert set(snapped.depth[:, 6].tolist()) <= {2.0, 6.0}
    dropped = clean_depth(res, mode="drop")
    assert not dropped.valid[:, 6].any() and torch.equal(dropped.depth, d)


def test_fit_scale_shift_is_robust():
    x = torch.rand(50, 50) + 0.5
    y = 2.5 * x + 0.3
    y[:5] = 100.0  # outliers
    a, b = fit_scale_shift(x, y)
    assert a == pytest.approx(2.5, rel=1e-3) and b == pytest.approx(0.3, abs=1e-2)
    a_inv, _ = fit_scale_shift(x, 3.0 * x, inverse=True, shift=False)
    assert a_inv == pytest.approx(1 / 3, rel=1e-3)


def _tiny_dpt(folder, metric=False):
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    torch.manual_seed(0)
    cfg = DPTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=37, image_size=32,
                    patch_size=8, neck_hidden_sizes=[8, 16, 16, 16], fusion_hidden_size=16, backbone_out_indices=[0, 1, 2, 3],
                    head_in_index=-1)
    if metric:
        cfg.depth_estimation_type = "metric"
    model = DPTForDepthEstimation(cfg)
    last_conv = [m for m in model.head.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    torch.nn.init.constant_(last_conv.bias, 1.0)  # a random head would often output all zeros
    model.save_pretrained(folder)
    DPTImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=False).save_pretrained(folder)
    return folder


def test_transformers_backend_from_a_local_folder(tmp_path):
    folder = _tiny_dpt(tmp_path / "dpt")
    image = torch.rand(24, 40, 3)
    r = estimate_depth(image, "transformers", model_folder=folder, median_depth=5.0, cleanup=None)
    assert r.backend == "transformers:dpt" and r.depth.shape == (24, 40) and not r.metric
    assert r.median_depth() == pytest.approx(5.0, rel=1e-3)
    as_depth = estimate_depth(image, "transformers", model_folder=folder, relative_mode="depth", cleanup=None)
    assert as_depth.metadata["relative_mode"] == "depth"


def test_depth_models_live_in_the_shared_model_cache(tmp_path):
    from more4d_core.cache import MODEL_CACHE

    folder = _tiny_dpt(tmp_path / "dpt")
    image = torch.rand(24, 40, 3)
    loads = MODEL_CACHE.loads
    first = estimate_depth(image, "transformers", model_folder=folder, cleanup=None)
    assert MODEL_CACHE.loads == loads + 1
    entry = list(MODEL_CACHE._entries.values())[-1]  # the newest entry: this model
    assert entry.handle.kind == "depth" and str(folder.resolve()) in str(entry.handle.key)
    assert entry.nbytes > 0  # counted, so the memory manager can weigh it against the other models
    again = estimate_depth(image, "transformers", model_folder=folder, cleanup=None)
    assert MODEL_CACHE.loads == loads + 1 and torch.equal(first.depth, again.depth)  # loaded once
    assert MODEL_CACHE.drop(entry.handle) == 1  # evictable like every other model
    estimate_depth(image, "transformers", model_folder=folder, cleanup=None)
    assert MODEL_CACHE.loads == loads + 2


def test_missing_depth_models_are_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        estimate_depth(torch.rand(8, 8, 3), "transformers", model_folder=tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="model folder"):
        estimate_depth(torch.rand(8, 8, 3), "unidepth")
    try:
        import unidepth  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="unidepth"):
            estimate_depth(torch.rand(8, 8, 3), "unidepth", model_folder=tmp_path)
    with pytest.raises(InputError, match="backend"):
        estimate_depth(torch.rand(8, 8, 3), "magic")


def test_depth_node_finds_models_in_the_shared_depth_folder(tmp_path, monkeypatch):
    from nodes import model_files
    from nodes.depth_nodes import EstimateDepth

    monkeypatch.setenv("MORE4D_MODELS_DIR", str(tmp_path / "models" / "more4d"))
    (tmp_path / "models" / "more4d").mkdir(parents=True)
    _tiny_dpt(tmp_path / "models" / "depth" / "tiny-dpt")
    (tmp_path / "models" / "depth" / "not-a-model").mkdir()
    choices = EstimateDepth.INPUT_TYPES()["required"]["model_folder"][0]
    assert "models/depth/tiny-dpt/" in choices and "models/depth/not-a-model/" not in choices
    assert model_files.resolve("models/depth/tiny-dpt/") == tmp_path / "models" / "depth" / "tiny-dpt"
    depth, _ = EstimateDepth().estimate(torch.rand(1, 24, 32, 3), "transformers", "models/depth/tiny-dpt/",
                                        0.0, 3.0, "auto", "none")
    assert depth.backend == "transformers:tiny-dpt" and depth.depth.shape == (24, 32)
    with pytest.raises(FileNotFoundError, match="models/depth"):
        model_files.resolve("models/depth/missing/")


def test_a_depth_map_of_another_shape_is_refused():
    depth_image = torch.rand(1, 10, 100, 3)  # 100 wide, 10 high
    with pytest.raises(InputError, match="depth map is 100x10 but the image is 128x96"):
        external_depth(depth_image, size_hw=(96, 128), cleanup=None)
    # the same aspect at another size is resized onto the image
    assert external_depth(torch.rand(1, 48, 64, 3), size_hw=(96, 128), cleanup=None).depth.shape == (96, 128)
