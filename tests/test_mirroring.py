"""Mirror averaging (sampling.mirroring): the caption and latent mirrors against the training data's mirrored clip,
when it runs, the generator's mean of both orientations, the config field and the evaluation's record."""

import json

import pytest
import torch
from tiny_models import record_decoded_latents

from more4d_core.errors import InputError
from more4d_core.eval.protocol import evaluate
from more4d_core.generator import build_generator
from more4d_core.geometry.normalization import NormalizationFactors
from more4d_core.models.config import CONFIG_VERSION, MORE4D_TINY, STraGConfig
from more4d_core.models.trajectory_codec import TemporalBasisCodec, tracks_to_field
from more4d_core.sampling.mirroring import mirror_averaging, mirror_caption, mirror_latents
from more4d_core.train.examples import mirror_example

DCT = MORE4D_TINY.replace(codec="dct", dct_coefficients=8, latent_channels=24, spatial_compression=4,
                          normalization="focal", depth_condition="max_ratio")


def _scene(width=32):
    depth = torch.full((32, width), 3.0)
    depth[8:20, 4:14] = 1.5  # an object off the middle: the mirror image differs from the image
    image = torch.rand(32, width, 3, generator=torch.Generator().manual_seed(1))
    return image, depth, torch.tensor([[32.0, 0, width / 2], [0, 32.0, 16], [0, 0, 1]])


def test_the_caption_swaps_left_and_right_and_the_turning_sense_only():
    assert mirror_caption("the ball moves left, while the camera pans right") == \
        "the ball moves right, while the camera pans left"
    assert mirror_caption("the box spins clockwise and the disc spins counterclockwise") == \
        "the box spins counterclockwise and the disc spins clockwise"
    assert mirror_caption("the card moves up toward the camera") == "the card moves up toward the camera"
    assert mirror_caption("leftover") == "leftover"  # whole words only


def test_the_latent_mirror_is_the_codec_encoding_of_the_training_datas_mirrored_clip():
    gen = torch.Generator().manual_seed(3)
    t, h, w = 6, 8, 12
    depth = 1.0 + torch.rand(h, w, generator=gen)
    xs = (torch.arange(w) + 0.5 - w / 2) / 10.0
    ys = (torch.arange(h) + 0.5 - h / 2) / 10.0
    p0 = torch.stack([xs.view(1, w).expand(h, w) * depth, ys.view(h, 1).expand(h, w) * depth, depth], -1)
    tracks = p0.unsqueeze(0) + 0.05 * torch.randn(t, h, w, 3, generator=gen).cumsum(0)
    tracks[0] = p0
    k = torch.tensor([[10.0, 0, w / 2], [0, 10.0, h / 2], [0, 0, 1]])
    example = {"image": torch.zeros(3, h, w), "depth": depth, "intrinsics": k, "tracks": tracks, "caption": "",
               "index": 0}
    mirrored = mirror_example(example)  # how training mirrors a clip
    codec = TemporalBasisCodec(coefficients=4, spatial=2)
    codec.latent_scale.copy_(torch.linspace(0.5, 2.0, 12))
    focal = NormalizationFactors(1.0, 1.0)
    latents = codec.encode_field(tracks_to_field(tracks.unsqueeze(0), focal))
    expected = codec.encode_field(tracks_to_field(mirrored["tracks"].unsqueeze(0), focal))
    assert torch.allclose(mirror_latents(latents, 4), expected, atol=1e-5)
    assert not torch.allclose(latents, expected, atol=1e-3)  # the clip is not its own mirror image
    assert torch.equal(mirror_latents(mirror_latents(latents, 4), 4), latents)
    with pytest.raises(InputError, match="cosine-basis latents of 12 channels"):
        mirror_latents(latents[:, :6], 4)


@pytest.mark.parametrize("setting, default, codec, samples, known, expected", [
    ("auto", False, "dct", 8, True, (False, "off")),
    ("auto", True, "dct", 8, True, (True, "on")),
    (None, True, "dct", 8, True, (True, "on")),
    ("on", False, "dct", 8, True, (True, "on")),
    (True, False, "dct", 8, True, (True, "on")),
    ("off", True, "dct", 8, True, (False, "off")),
    (False, True, "dct", 8, True, (False, "off")),
    ("auto", True, "dct", 1, True, (False, "off (one sample: nothing to average)")),
])
def test_when_it_runs(setting, default, codec, samples, known, expected):
    assert mirror_averaging(setting, default, codec=codec, samples=samples, caption_known=known) == expected


def test_it_is_left_off_or_refused_where_it_cannot_work():
    on, note = mirror_averaging("auto", True, codec="wan_vae", samples=8, caption_known=True)
    assert not on and "no mirror map" in note
    on, note = mirror_averaging("auto", True, codec="dct", samples=8, caption_known=False)
    assert not on and "cannot be mirrored" in note
    with pytest.raises(InputError, match="set it to auto or off"):
        mirror_averaging("on", False, codec="wan_vae", samples=8, caption_known=True)
    with pytest.raises(InputError, match="set it to auto or off"):
        mirror_averaging("on", False, codec="dct", samples=8, caption_known=False)
    with pytest.raises(InputError, match="auto, on, off"):
        mirror_averaging("sometimes", False, codec="dct", samples=8, caption_known=True)


def test_the_odd_samples_are_the_mirror_images_generations_mirrored_back(monkeypatch):
    gen = build_generator(DCT, seed=0)
    seen = record_decoded_latents(monkeypatch, gen)
    image, depth, k = _scene()
    args = dict(steps=2, num_frames=5, motion_gate="off", still_threshold=0.0, motion_smoothing=0.0,
                negative_prompt="the ball moves left")
    shape = (1, 24, 1, 8, 8)
    fixed = [torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in (4, 5, 6)]

    def run(noises, *a, **kw):
        monkeypatch.setattr("more4d_core.generator.sample_noises", lambda *_, **__: iter(noises))
        return gen.generate(*a, **kw, **args)

    both = run(fixed, image, depth, k, "the ball moves right quickly", sample_average=3, mirror_average="on")
    assert both.metadata["mirror_average"] == "on"
    mean = seen[-1]
    plain = []
    for noise in fixed[::2]:
        run([noise], image, depth, k, "the ball moves right quickly", sample_average=1)
        plain.append(seen[-1])
    # the mirror image, its depth and its prompts, written out here
    monkeypatch.setattr("more4d_core.generator.sample_noises", lambda *_, **__: iter(fixed[1:2]))
    gen.generate(image.flip(1), depth.flip(1), k, "the ball moves left quickly", sample_average=1,
                 **{**args, "negative_prompt": "the ball moves right"})
    back = seen[-1].flip(-1).clone()
    back[:, :8] = -back[:, :8]  # x coefficients change sign
    expected = (plain[0] + back + plain[1]) / 3
    assert torch.allclose(mean, expected, atol=1e-5)
    off = run(fixed, image, depth, k, "the ball moves right quickly", sample_average=3, mirror_average="off")
    assert off.metadata["mirror_average"] == "off"
    assert not torch.allclose(seen[-1], mean, atol=1e-4)  # the mirrored sample did change the mean


def test_a_synonym_is_mirrored_as_the_word_it_maps_to(monkeypatch):
    gen = build_generator(DCT.replace(text_vocabulary="procedural"), seed=0)
    seen = record_decoded_latents(monkeypatch, gen)
    image, depth, k = _scene()
    args = dict(steps=1, num_frames=5, motion_gate="off", still_threshold=0.0, motion_smoothing=0.0,
                sample_average=2, mirror_average="on")
    gen.generate(image, depth, k, "the sphere rolls leftwards", **args)
    gen.generate(image, depth, k, "the ball moves left", **args)
    assert torch.equal(seen[0], seen[1])


def test_the_model_default_applies_and_text_states_leave_it_off():
    image, depth, k = _scene()
    args = dict(steps=1, num_frames=5, motion_gate="off", sample_average=2)
    mirroring = build_generator(DCT.replace(mirror_average=True), seed=0)
    plain = build_generator(DCT, seed=0)
    default = mirroring.generate(image, depth, k, "the ball moves right", **args)
    assert default.metadata["mirror_average"] == "on"
    assert torch.equal(default.points, plain.generate(image, depth, k, "the ball moves right", mirror_average="on",
                                                      **args).points)
    assert not torch.equal(default.points, plain.generate(image, depth, k, "the ball moves right", **args).points)
    states = mirroring.text_encoder(["the ball moves right", ""])
    given = mirroring.generate(image, depth, k, "", text_states=states, **args)
    assert given.metadata["mirror_average"].startswith("off (the prompt's words are not known")
    with pytest.raises(InputError, match="mirror averaging cannot run here"):
        mirroring.generate(image, depth, k, "", text_states=states, mirror_average="on", **args)


def test_the_config_field_is_checked_and_older_files_do_not_mirror(monkeypatch):
    from more4d_core.models import config as config_module

    with pytest.raises(InputError, match="mirror_average"):
        MORE4D_TINY.replace(mirror_average=True)  # the Wan VAE's latents have no mirror map
    with pytest.raises(InputError, match="mirror_average"):
        DCT.replace(mirror_average="yes")
    data = json.loads(DCT.replace(mirror_average=True).to_json())
    assert data["config_version"] == CONFIG_VERSION and STraGConfig.from_dict(dict(data)).mirror_average is True
    data.pop("mirror_average")
    data["config_version"] = 13
    data["name"] = "more4d-small"
    mirroring = config_module.NAMED_CONFIGS["more4d-small"].replace(mirror_average=True)
    monkeypatch.setitem(config_module.NAMED_CONFIGS, "more4d-small", mirroring)
    assert STraGConfig.from_dict(dict(data)).mirror_average is False


def test_the_evaluation_records_the_setting_and_the_first_sample_stays_plain():
    gen = build_generator(DCT, seed=0)
    common = dict(samples=2, steps=1, mean_samples=2, with_controls=False, sample_average=2, log=lambda *_: None)
    plain = evaluate(gen, **common)
    mirrored = evaluate(gen, mirror_average="on", **common)
    assert plain["mirror_average"] == "off" and mirrored["mirror_average"] == "on"
    rows, plain_rows = mirrored["cells"]["output"], plain["cells"]["output"]
    assert rows["model, one sample"] == plain_rows["model, one sample"]
    assert rows["model"] != plain_rows["model"]


def test_the_defaults_tool_writes_it_and_refuses_a_codec_without_a_mirror_map(tmp_path):
    from more4d_core.checkpoints.bundle import read_header, save_bundle
    from more4d_core.checkpoints.defaults import set_defaults

    gen = build_generator(DCT, seed=0)
    src = tmp_path / "m.safetensors"
    save_bundle(src, DCT, {"transformer": gen.transformer, "codec": gen.codec, "text_encoder": gen.text_encoder}, {})
    out = set_defaults(src, tmp_path / "out.safetensors", mirror_average=True)
    assert read_header(out).config.mirror_average is True
    assert read_header(out).info["defaults_set"][-1]["before"] == {"mirror_average": False}
    wan = build_generator(MORE4D_TINY, seed=0)
    other = tmp_path / "wan.safetensors"
    save_bundle(other, MORE4D_TINY, {"transformer": wan.transformer, "codec": wan.codec,
                                     "text_encoder": wan.text_encoder}, {})
    with pytest.raises(InputError, match="mirror_average"):
        set_defaults(other, tmp_path / "bad.safetensors", mirror_average=True)
    assert not (tmp_path / "bad.safetensors").exists()

