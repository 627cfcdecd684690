"""Motion smoothing within surfaces (post-processing of the small codec's coarse motion grid)."""

import math

import pytest
import torch

from more4d_core.checkpoints.bundle import read_header, save_bundle
from more4d_core.checkpoints.defaults import main as defaults_main
from more4d_core.checkpoints.defaults import set_defaults
from more4d_core.checkpoints.io import safe_open
from more4d_core.errors import InputError
from more4d_core.eval.protocol import evaluate
from more4d_core.generator import build_generator, load_generator
from more4d_core.geometry.normalization import NormalizationFactors
from more4d_core.models.config import MORE4D_TINY, STraGConfig
from more4d_core.models.trajectory_codec import PatchifyCodec, TemporalBasisCodec
from more4d_core.sampling.motion_smoothing import blocks_sigma, check_motion_smoothing, smooth_motion_blocks

DCT = MORE4D_TINY.replace(codec="dct", dct_coefficients=8, latent_channels=24, spatial_compression=4,
                          normalization="focal", depth_condition="max_ratio")


def _gaussian_weights(sigma):
    r = math.ceil(2 * sigma)
    return [math.exp(-(dy * dy + dx * dx) / (2 * sigma * sigma)) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]


def test_a_constant_motion_and_a_linear_slope_on_one_surface_are_kept():
    flat = torch.zeros(1, 12, 16)
    const = torch.full((1, 3, 12, 16), 0.3)
    assert torch.allclose(smooth_motion_blocks(const, flat, 2.0), const, atol=1e-6)
    # a slope (a spin's or a growth's motion across one surface): a symmetric average keeps it where the
    # window does not reach the border (2 sigma = 4 blocks from it)
    ys, xs = torch.meshgrid(torch.arange(12.0), torch.arange(16.0), indexing="ij")
    slope = (0.02 * xs - 0.01 * ys + 0.1).expand(1, 2, 12, 16)
    out = smooth_motion_blocks(slope, flat, 2.0)
    assert torch.allclose(out[..., 4:8, 4:12], slope[..., 4:8, 4:12], atol=1e-6)


def test_motion_is_not_averaged_across_a_depth_edge():
    # an object (depth 2) moving by 1 in front of a still wall (depth 6): log depths 0.69 and 1.79 apart, far
    # beyond the 0.03 range, so each side keeps its own motion exactly
    depth = torch.full((1, 12, 16), 6.0)
    depth[:, 3:8, 4:10] = 2.0
    motion = (depth == 2.0).float().unsqueeze(1)
    out = smooth_motion_blocks(motion, depth.log(), 3.0)
    assert torch.allclose(out, motion, atol=1e-9)


def test_independent_noise_on_one_surface_shrinks_as_the_weights_say():
    torch.manual_seed(0)
    sigma = 1.5
    noise = torch.randn(64, 1, 24, 32, dtype=torch.float64)
    out = smooth_motion_blocks(noise, torch.zeros(64, 24, 32, dtype=torch.float64), sigma)
    w = _gaussian_weights(sigma)
    expected = math.sqrt(sum(v * v for v in w)) / sum(w)  # std of a weighted mean of independent unit noise
    r = math.ceil(2 * sigma)
    inner = out[..., r:-r, r:-r]
    assert inner.std().item() == pytest.approx(expected, rel=0.05)


def test_strength_is_a_share_of_the_image_width_and_bad_values_are_refused():
    assert blocks_sigma(0.0625, 32) == pytest.approx(2.0)
    assert blocks_sigma(0.0, 32) == 0.0
    for bad in (-0.01, 0.3, float("nan")):
        with pytest.raises(InputError, match="motion smoothing"):
            check_motion_smoothing(bad)
    x = torch.randn(1, 2, 4, 5)
    assert smooth_motion_blocks(x, torch.zeros(1, 4, 5), 0.0) is x
    with pytest.raises(InputError, match="do not match"):
        smooth_motion_blocks(x, torch.zeros(1, 4, 6), 1.0)


def _field_latents(codec, motion):
    """Latents of a field ``[3, H, W]`` (pixels) whose frame t moves by ``motion * t / (T - 1)`` (a slide)."""
    t = torch.linspace(0, 1, 9).view(1, 1, 9, 1, 1)
    field = motion.view(1, 3, 1, *motion.shape[-2:]) * t
    return codec.encode_field(field)


def test_the_dct_codec_smooths_within_surfaces_and_other_codecs_refuse():
    codec = TemporalBasisCodec(8, 4, decode_guide="depth")
    depth = torch.full((1, 96, 128), 6.0)
    depth[:, 32:64, 48:96] = 2.0  # an object on whole blocks
    points0 = torch.stack([torch.zeros_like(depth), torch.zeros_like(depth), depth], -1)
    obj = (depth[0] == 2.0).float()
    truth = torch.stack([0.3 * obj, torch.zeros_like(obj), torch.zeros_like(obj)])  # the object slides right
    clean = _field_latents(codec, truth)
    torch.manual_seed(1)
    noisy = clean + 0.2 * torch.randn_like(clean)
    want = codec.decode_field_on(clean, points0, 9)
    plain = codec.decode_field_on(noisy, points0, 9)
    smooth = codec.decode_field_on(noisy, points0, 9, smoothing=0.05)
    assert (smooth - want).abs().mean() < 0.5 * (plain - want).abs().mean()
    # a clean rigid slide is unchanged: nothing is averaged across the object's edge
    assert torch.allclose(codec.decode_field_on(clean, points0, 9, smoothing=0.05), want, atol=1e-5)
    tracks = codec.decode_tracks(noisy, points0, NormalizationFactors(1.0, 1.0), 9, smoothing=0.05)
    assert torch.equal(tracks[:, 0], points0)
    with pytest.raises(InputError, match="coarse motion grid"):
        PatchifyCodec(4, 4).decode_field_on(torch.zeros(1, 12, 3, 24, 32), points0, 9, smoothing=0.05)


def test_config_field_old_files_and_codecs():
    assert STraGConfig.from_dict({**DCT.to_dict(), "config_version": 7}).motion_smoothing == 0.0
    old = DCT.to_dict()
    old.pop("motion_smoothing")
    old["config_version"] = 7
    assert STraGConfig.from_dict(old).motion_smoothing == 0.0
    assert DCT.replace(motion_smoothing=0.06).motion_smoothing == 0.06
    with pytest.raises(InputError, match="dct"):
        MORE4D_TINY.replace(motion_smoothing=0.06)  # the patchify codec has no coarse grid


def test_the_generator_uses_the_models_default_and_records_it():
    gen = build_generator(DCT)
    img, depth = torch.rand(32, 32, 3), torch.full((32, 32), 3.0)
    depth[8:20, 8:20] = 1.5
    k = torch.tensor([[32.0, 0, 16], [0, 32.0, 16], [0, 0, 1]])
    args = dict(seed=3, steps=2, num_frames=5)
    off = gen.generate(img, depth, k, "the ball slides right", **args)
    on = gen.generate(img, depth, k, "the ball slides right", motion_smoothing=0.1, **args)
    assert off.metadata["motion_smoothing"] == 0.0 and on.metadata["motion_smoothing"] == 0.1
    assert not torch.allclose(off.points, on.points)
    gen.config = gen.config.replace(motion_smoothing=0.1)
    assert torch.equal(gen.generate(img, depth, k, "the ball slides right", **args).points, on.points)
    with pytest.raises(InputError, match="motion smoothing"):
        gen.generate(img, depth, k, "the ball slides right", motion_smoothing=1.0, **args)
    tiny = build_generator(MORE4D_TINY)  # patchify codec: refused before sampling
    tiny.transformer.forward = None  # a sampling step would fail with another error
    with pytest.raises(InputError, match="coarse motion grid"):
        tiny.generate(img, depth, k, "the ball slides right", motion_smoothing=0.05, **args)


def _dct_model(tmp_path, cfg=DCT):
    gen = build_generator(cfg)
    path = tmp_path / "dct.safetensors"
    save_bundle(path, cfg, {"transformer": gen.transformer, "codec": gen.codec, "text_encoder": gen.text_encoder},
                {"note": "kept"})
    return path


def test_defaults_are_written_into_a_copy_with_the_same_weights(tmp_path):
    src = _dct_model(tmp_path)
    out = set_defaults(src, tmp_path / "out.safetensors", motion_smoothing=0.06, still_threshold=0.02)
    header = read_header(out)
    assert header.config.motion_smoothing == 0.06 and header.config.still_threshold == 0.02
    assert header.info["note"] == "kept" and header.info["defaults_set"][0]["after"]["motion_smoothing"] == 0.06
    with safe_open(str(src), framework="pt") as a, safe_open(str(out), framework="pt") as b:
        assert set(a.keys()) == set(b.keys())
        assert all(torch.equal(a.get_tensor(k), b.get_tensor(k)) for k in a.keys())
    assert load_generator(out).config.motion_smoothing == 0.06
    with pytest.raises(InputError, match="not over it"):
        set_defaults(src, src, motion_smoothing=0.06)
    with pytest.raises(InputError, match="nothing to change"):
        set_defaults(src, tmp_path / "none.safetensors")
    with pytest.raises(SystemExit):  # the command names the bad value instead of writing a file
        defaults_main([str(src), "--out", str(tmp_path / "bad.safetensors"), "--motion-smoothing", "0.5"])
    assert not (tmp_path / "bad.safetensors").exists()
    (tmp_path / "t").mkdir()
    tiny = _dct_model(tmp_path / "t", MORE4D_TINY)
    with pytest.raises(InputError, match="dct"):
        set_defaults(tiny, tmp_path / "tiny-out.safetensors", motion_smoothing=0.06)
    assert not (tmp_path / "tiny-out.safetensors").exists()


def test_the_evaluation_scores_smoothing_as_its_own_rows():
    gen = build_generator(DCT.replace(motion_smoothing=0.05))
    result = evaluate(gen, samples=2, steps=1, mean_samples=2, with_controls=False, smoothing_sweep=(0.0, 0.1),
                      log=lambda *_: None)
    rows = result["cells"]["output"]
    assert result["motion_smoothing"] == 0.05
    assert rows["model + smoothing 0"] == rows["model"]  # the headline row is the model without it
    assert rows["model + smoothing"] != rows["model"] and "model + smoothing 0.1" in rows


def test_the_generate_node_passes_the_smoothing_and_minus_one_means_the_models(monkeypatch):
    from contextlib import nullcontext

    from more4d_core.cache import MODEL_CACHE
    from more4d_core.depth import DepthResult
    from nodes.generate_nodes import GenerateTrajectories

    gen = build_generator(DCT.replace(motion_smoothing=0.1))
    monkeypatch.setattr("nodes.generate_nodes.require_handle", lambda *a: None)
    monkeypatch.setattr(MODEL_CACHE, "use", lambda handle: nullcontext(gen))
    spec = GenerateTrajectories.INPUT_TYPES()["optional"]["motion_smoothing"][1]
    assert spec["default"] == -1.0 and spec["max"] == 0.25
    depth = torch.full((32, 32), 3.0)
    depth[8:20, 8:20] = 1.5
    result = DepthResult(depth, torch.tensor([[32.0, 0, 16], [0, 32.0, 16], [0, 0, 1]]),
                         torch.ones(32, 32, dtype=torch.bool), "external")
    used = {}
    for value in (-1.0, 0.0, 0.05):
        (scene,) = GenerateTrajectories().generate(object(), torch.rand(1, 32, 32, 3), result, "the ball slides right", "",
                                                   0, 2, 0.0, 5.0, 5, 8.0, 1.0, "32", motion_smoothing=value)
        used[value] = scene.metadata["motion_smoothing"]
    assert used == {-1.0: 0.1, 0.0: 0.0, 0.05: 0.05}
    prior = DepthResult(depth, result.intrinsics, result.valid, "prior")  # the default is left off on the prior's depth
    (scene,) = GenerateTrajectories().generate(object(), torch.rand(1, 32, 32, 3), prior, "the ball slides right", "",
                                               0, 2, 0.0, 5.0, 5, 8.0, 1.0, "32", motion_smoothing=-1.0)
    assert scene.metadata["motion_smoothing"] == 0.0


def test_the_models_default_is_left_off_on_the_built_in_priors_depth_but_a_given_value_applies():
    gen = build_generator(DCT.replace(motion_smoothing=0.1))
    img, depth = torch.rand(32, 32, 3), torch.full((32, 32), 3.0)
    depth[8:20, 8:20] = 1.5
    k = torch.tensor([[32.0, 0, 16], [0, 32.0, 16], [0, 0, 1]])
    args = dict(seed=3, steps=2, num_frames=5)
    run = {src: gen.generate(img, depth, k, "the ball slides right", depth_source=src, **args)
           for src in ("prior", "external", None)}
    assert run["prior"].metadata["motion_smoothing"] == 0.0
    assert run["prior"].metadata["motion_smoothing_default_off"] == "the built-in prior's depth"
    assert torch.equal(run["prior"].points,
                       gen.generate(img, depth, k, "the ball slides right", motion_smoothing=0.0, **args).points)
    for src in ("external", None):  # a depth model's or a depth map's depth, or an unknown source: the default
        assert run[src].metadata["motion_smoothing"] == 0.1 and "motion_smoothing_default_off" not in run[src].metadata
    given = gen.generate(img, depth, k, "the ball slides right", depth_source="prior", motion_smoothing=0.05, **args)
    assert given.metadata["motion_smoothing"] == 0.05
    result = evaluate(gen, samples=2, steps=1, mean_samples=2, with_controls=False, depth="prior", log=lambda *_: None)
    assert result["motion_smoothing"] == 0.0 and "model + smoothing" not in result["cells"]["output"]


def test_the_runner_says_when_the_models_smoothing_was_left_off():
    from types import SimpleNamespace

    from more4d_core.run import _binding_summary

    doc = {"nodes": [{"id": 3, "type": "More4DGenerate"}]}
    off = SimpleNamespace(metadata={"motion_smoothing": 0.0, "motion_smoothing_default_off": "the built-in prior's depth"})
    (line,) = _binding_summary(doc, {3: (off,)})
    assert "left off for the built-in prior's depth" in line and "set motion_smoothing" in line
    assert _binding_summary(doc, {3: (SimpleNamespace(metadata={"motion_smoothing": 0.06}),)}) == []


def test_one_block_by_hand_and_a_negative_sigma_refused():
    # two blocks in a row, motion 0 and 1, the second sigma_range farther in log depth; sigma 0.5 -> radius 1,
    # spatial weights exp(-2 (dx^2 + dy^2)), range weight exp(-1/2) across the step; the rows above and below repeat
    # the row (the edge repeated), so their weights cancel: block 0 = e^-2.5 / (1 + e^-2 + e^-2.5)
    sigma_range = 0.03
    coarse = torch.tensor([[[[0.0, 1.0]]]], dtype=torch.float64)
    log_depth = torch.tensor([[[sigma_range, 0.0]]], dtype=torch.float64)
    out = smooth_motion_blocks(coarse, log_depth, 0.5, sigma_range=sigma_range)
    e = math.exp
    assert out[0, 0, 0, 0].item() == pytest.approx(e(-2.5) / (1 + e(-2) + e(-2.5)), rel=1e-12)
    assert out[0, 0, 0, 1].item() == pytest.approx((1 + e(-2)) / (1 + e(-2) + e(-2.5)), rel=1e-12)
    with pytest.raises(InputError, match="non-negative"):
        smooth_motion_blocks(coarse, log_depth, -0.5)
