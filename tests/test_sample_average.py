"""The sampler's mean of several samples (sampling.sample_average): noises, the mean, the generator, the config,
the evaluation's rows, the node and the defaults tool."""

import json

import pytest
import torch

from more4d_core.camera.intrinsics import intrinsics_from_fov
from more4d_core.checkpoints.bundle import read_header, save_bundle
from more4d_core.checkpoints.defaults import set_defaults
from more4d_core.errors import InputError
from more4d_core.eval.protocol import evaluate
from more4d_core.generator import build_generator, load_generator
from more4d_core.models.config import CONFIG_VERSION, MORE4D_TINY, STraGConfig
from more4d_core.sampling.flow_sampler import seeded_noise
from more4d_core.sampling.sample_average import check_sample_average, mean_of_samples, sample_noises

DCT = MORE4D_TINY.replace(codec="dct", dct_coefficients=8, latent_channels=24, spatial_compression=4,
                          normalization="focal", depth_condition="max_ratio")


def _scene():
    depth = torch.full((32, 32), 3.0)
    depth[8:20, 8:20] = 1.5
    return torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(1)), depth, \
        torch.tensor([[32.0, 0, 16], [0, 32.0, 16], [0, 0, 1]])


def test_the_first_noise_is_the_seeds_single_sample_noise_and_the_others_are_new():
    noises = list(sample_noises((2, 3, 4), 11, 3, "cpu"))
    assert len(noises) == 3
    assert torch.equal(noises[0], seeded_noise((2, 3, 4), 11, "cpu"))
    assert not torch.equal(noises[1], noises[0]) and not torch.equal(noises[2], noises[1])
    again = list(sample_noises((2, 3, 4), 11, 2, "cpu"))  # a smaller count shares the first samples
    assert all(torch.equal(a, b) for a, b in zip(again, noises))


@pytest.mark.parametrize("bad", [0, -1, 65, 1.5, True, "4", None])
def test_a_count_outside_one_to_sixty_four_is_refused(bad):
    with pytest.raises(InputError, match="samples to average"):
        check_sample_average(bad)


def test_one_and_sixty_four_are_allowed():
    assert check_sample_average(1) == 1 and check_sample_average(64) == 64


def test_the_mean_of_an_affine_sampler_and_the_progress_of_all_samples():
    noises = [torch.full((2,), float(v)) for v in (1.0, 2.0, 6.0)]
    seen = []

    def sample(k, noise, step_progress):
        assert noise is noises[k]  # each sample knows its number
        for i in (1, 2):
            step_progress(i, 2)
        return 2.0 * noise + 1.0

    out = mean_of_samples(sample, iter(noises), 3, lambda done, total: seen.append((done, total)))
    assert torch.equal(out, torch.full((2,), 2.0 * 3.0 + 1.0))  # 2 * mean(1, 2, 6) + 1
    assert seen == [(1, 6), (2, 6), (3, 6), (4, 6), (5, 6), (6, 6)]
    with pytest.raises(InputError, match="3 samples to average but 2 noises"):
        mean_of_samples(sample, noises[:2], 3)


def test_the_generated_motion_is_the_mean_of_the_single_samples_of_the_same_noises(monkeypatch):
    gen = build_generator(DCT, seed=0)
    img, depth, k = _scene()
    args = dict(steps=3, num_frames=5, motion_gate="off", still_threshold=0.0, motion_smoothing=0.0)
    shape = (1, 24, 1, 8, 8)
    fixed = [torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in (4, 5, 6)]

    def run(noises, count):
        monkeypatch.setattr("more4d_core.generator.sample_noises", lambda *a, **kw: iter(noises))
        return gen.generate(img, depth, k, "the ball slides right", sample_average=count, **args)

    singles = [run([n], 1).points.double() for n in fixed]
    mean = run(fixed, 3)
    p0 = singles[0][:1]
    expected = p0 + sum(s - p0 for s in singles) / 3  # the decoder is linear in the latents
    assert mean.metadata["sample_average"] == 3
    assert torch.allclose(mean.points.double(), expected, atol=1e-5)
    assert not torch.allclose(singles[0], singles[1], atol=1e-3)  # the samples do differ


def test_one_sample_is_the_seeds_sample_and_the_models_default_applies():
    img, depth, k = _scene()
    args = dict(seed=7, steps=2, num_frames=5)
    one = build_generator(DCT, seed=0)
    four = build_generator(DCT.replace(sample_average=4), seed=0)
    single = one.generate(img, depth, k, "the ball slides right", **args)
    assert single.metadata["sample_average"] == 1
    assert torch.equal(four.generate(img, depth, k, "the ball slides right", sample_average=1, **args).points,
                       single.points)
    default = four.generate(img, depth, k, "the ball slides right", **args)
    assert default.metadata["sample_average"] == 4
    assert torch.equal(default.points, one.generate(img, depth, k, "the ball slides right", sample_average=4, **args).points)
    assert not torch.equal(default.points, single.points)


def test_the_config_field_is_checked_and_older_files_generate_one_sample(monkeypatch):
    from more4d_core.models import config as config_module

    with pytest.raises(InputError, match="sample_average"):
        DCT.replace(sample_average=0)
    data = json.loads(DCT.replace(sample_average=4).to_json())
    assert data["config_version"] == CONFIG_VERSION and data.pop("sample_average") == 4
    data["config_version"] = 8
    data["name"] = "more4d-small"
    # a named config that averages (as a later small config may): a file written before the field still samples once
    averaging = config_module.NAMED_CONFIGS["more4d-small"].replace(sample_average=4)
    monkeypatch.setitem(config_module.NAMED_CONFIGS, "more4d-small", averaging)
    assert STraGConfig.from_dict(data).sample_average == 1
    data["config_version"] = 9  # a current file without the field takes the named config's value
    assert STraGConfig.from_dict(data).sample_average == 4


def test_the_evaluation_scores_the_mean_and_keeps_the_first_sample_as_its_own_row():
    gen = build_generator(DCT, seed=0)
    common = dict(samples=2, steps=1, mean_samples=2, with_controls=False, log=lambda *_: None)
    single = evaluate(gen, **common)
    assert single["sample_average"] == 1 and "model, one sample" not in single["cells"]["output"]
    averaged = evaluate(gen, sample_average=3, **common)
    rows = averaged["cells"]["output"]
    assert averaged["sample_average"] == 3
    assert rows["model, one sample"] == single["cells"]["output"]["model"]
    assert rows["model"] != rows["model, one sample"]


def test_the_node_passes_the_count_and_zero_means_the_models(monkeypatch):
    from contextlib import nullcontext

    from more4d_core.cache import MODEL_CACHE
    from more4d_core.depth import DepthResult
    from nodes.generate_nodes import GenerateTrajectories

    gen = build_generator(DCT.replace(sample_average=2), seed=0)
    monkeypatch.setattr("nodes.generate_nodes.require_handle", lambda *a: None)
    monkeypatch.setattr(MODEL_CACHE, "use", lambda handle: nullcontext(gen))
    spec = GenerateTrajectories.INPUT_TYPES()["optional"]["sample_average"][1]
    assert spec["default"] == 0 and spec["min"] == 0 and spec["max"] == 64
    img, depth, k = _scene()
    result = DepthResult(depth, k, torch.ones(32, 32, dtype=torch.bool), "external")
    used = {}
    for value in (0, 1, 3):
        (scene,) = GenerateTrajectories().generate(object(), img.unsqueeze(0), result, "the ball slides right", "",
                                                   0, 2, 0.0, 5.0, 5, 8.0, 1.0, "32", sample_average=value)
        used[value] = scene.metadata["sample_average"]
    assert used == {0: 2, 1: 1, 3: 3}
    with pytest.raises(InputError, match="samples to average"):
        GenerateTrajectories().generate(object(), img.unsqueeze(0), result, "the ball slides right", "",
                                        0, 2, 0.0, 5.0, 5, 8.0, 1.0, "32", sample_average=-2)


def test_the_defaults_tool_writes_the_count(tmp_path):
    gen = build_generator(DCT, seed=0)
    src = tmp_path / "m.safetensors"
    save_bundle(src, DCT, {"transformer": gen.transformer, "codec": gen.codec, "text_encoder": gen.text_encoder}, {})
    out = set_defaults(src, tmp_path / "out.safetensors", sample_average=4)
    assert read_header(out).config.sample_average == 4 and load_generator(out).config.sample_average == 4
    with pytest.raises(InputError, match="samples to average"):
        set_defaults(src, tmp_path / "bad.safetensors", sample_average=0)
    assert not (tmp_path / "bad.safetensors").exists()


def _with_default(tmp_path, **change):
    """A tiny DCT model file and its copy with one default changed by the defaults tool (checked written)."""
    gen = build_generator(DCT, seed=0)
    src = tmp_path / "m.safetensors"
    save_bundle(src, DCT, {"transformer": gen.transformer, "codec": gen.codec, "text_encoder": gen.text_encoder}, {})
    (name, value), = change.items()
    assert getattr(DCT, name) != value
    out = set_defaults(src, tmp_path / "out.safetensors", **change)
    assert getattr(read_header(out).config, name) == value
    assert read_header(out).info["defaults_set"][-1]["before"] == {name: getattr(DCT, name)}
    return src, out


def test_the_defaults_tool_writes_the_steps_and_generation_uses_them(tmp_path, monkeypatch):
    src, out = _with_default(tmp_path, steps=3)
    loaded = load_generator(out)
    calls = []
    real = loaded.transformer.forward
    monkeypatch.setattr(loaded.transformer, "forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    img = torch.rand(32, 32, 3)
    loaded.generate(img, torch.full((32, 32), 2.0), intrinsics_from_fov(32, 32, 60.0), "the ball slides right",
                    seed=0, sample_average=1)
    assert len(calls) == 3  # guidance 1: one transformer pass per step
    for bad in (0, 2.5, True):
        with pytest.raises(InputError, match="steps must be a positive integer"):
            set_defaults(src, tmp_path / "bad.safetensors", steps=bad)
    assert not (tmp_path / "bad.safetensors").exists()


def test_the_defaults_tool_writes_the_shift_and_generation_uses_it(tmp_path, monkeypatch):
    import more4d_core.sampling.flow_sampler as flow

    src, out = _with_default(tmp_path, shift=3.0)
    shifts = []
    real = flow.make_scheduler
    monkeypatch.setattr(flow, "make_scheduler", lambda shift: shifts.append(shift) or real(shift))
    loaded = load_generator(out)
    img = torch.rand(32, 32, 3)
    args = dict(seed=0, sample_average=1, steps=1, num_frames=5)
    loaded.generate(img, torch.full((32, 32), 2.0), intrinsics_from_fov(32, 32, 60.0), "the ball slides right", **args)
    loaded.generate(img, torch.full((32, 32), 2.0), intrinsics_from_fov(32, 32, 60.0), "the ball slides right",
                    shift=1.5, **args)
    assert shifts == [3.0, 1.5]  # the file's default, then the caller's
    for bad in (0, -1.0, float("nan"), True):
        with pytest.raises(InputError, match="shift must be a finite number above 0"):
            set_defaults(src, tmp_path / "bad.safetensors", shift=bad)
    assert not (tmp_path / "bad.safetensors").exists()
