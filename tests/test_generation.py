
"""Sampling and the generator: determinism, frame 0, scale invariance, progress/cancel, codecs,
text encoders, CLIP grey tokens, and the full 14B-layout pipeline at toy size."""

import types

import pytest
import torch
from tiny_models import TINY_FULL, save_tiny_clip, save_tiny_umt5, save_tiny_vae

from more4d_core.camera.intrinsics import intrinsics_from_fov
from more4d_core.checkpoints import save_authors_layout
from more4d_core.data.analytic import make_analytic_scene
from more4d_core.errors import InputError
from more4d_core.generator import build_generator, load_generator
from more4d_core.geometry.normalization import NormalizationFactors
from more4d_core.models.config import MORE4D_SMALL, MORE4D_TINY
from more4d_core.models.dit import STraGTransformer
from more4d_core.models.image_context import grey_tokens
from more4d_core.models.text_encoders import UMT5TextEncoder, WordHashTextEncoder, hash_words
from more4d_core.models.trajectory_codec import PatchifyCodec, WanVAECodec
from more4d_core.sampling import GenerationCancelled, sample_flow
from more4d_core.sampling.conditioning import depth_condition, generation_size
from more4d_core.scene import Scene4D

PROMPT = "the ball slides left"


@pytest.fixture(scope="module")
def tiny_gen():
    gen = build_generator(MORE4D_TINY, seed=0)
    for blk in gen.transformer.blocks:  # a non-trivial MPM
        blk.spatial_guidance_self.gate.data.fill_(0.3)
        blk.spatial_guidance_ffn.gate.data.fill_(0.3)
    return gen


@pytest.fixture
def inputs():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(40, 48, 3, generator=g)
    depth = torch.rand(40, 48, generator=g) * 3 + 1
    return image, depth, intrinsics_from_fov(40, 48, 60.0)


def test_generation_is_deterministic_and_starts_at_p0(tiny_gen, inputs):
    image, depth, k = inputs
    a = tiny_gen.generate(image, depth, k, PROMPT, seed=7)
    b = tiny_gen.generate(image, depth, k, PROMPT, seed=7)
    c = tiny_gen.generate(image, depth, k, PROMPT, seed=8)
    assert isinstance(a, Scene4D) and a.num_frames == MORE4D_TINY.num_frames and a.grid_hw == (40, 48)
    assert torch.isfinite(a.points).all()
    assert torch.equal(a.points, b.points) and not torch.equal(a.points, c.points)
    assert torch.equal(a.points[0], a.points0)
    torch.testing.assert_close(a.points_grid()[0, ..., 2], depth)
    assert a.metadata["seed"] == 7 and a.metadata["prompt"] == PROMPT
    assert (a.points[1:] - a.points[:1]).abs().max() > 0  # it moves


def test_scale_invariance(tiny_gen, inputs):
    image, depth, k = inputs
    a = tiny_gen.generate(image, depth, k, PROMPT, seed=3)
    b = tiny_gen.generate(image, depth * 4.0, k, PROMPT, seed=3)
    torch.testing.assert_close(b.points, a.points * 4.0, rtol=1e-4, atol=1e-4)


def test_output_grid_and_strength(tiny_gen, inputs):
    image, depth, k = inputs
    big = tiny_gen.generate(image, depth, k, PROMPT, seed=1, grid_hw=(80, 96))
    assert big.grid_hw == (80, 96) and torch.isfinite(big.points).all()
    off = tiny_gen.generate(image, depth, k, PROMPT, seed=1, motion_strength=0.0)
    on = tiny_gen.generate(image, depth, k, PROMPT, seed=1, motion_strength=1.0)
    assert not torch.equal(off.points, on.points)
    with pytest.raises(InputError, match="multiple of"):
        tiny_gen.generate(image, depth, k, PROMPT, generation_hw=(36, 40))
    with pytest.raises(InputError, match="frame count"):
        tiny_gen.generate(image, depth, k, PROMPT, num_frames=10)
    with pytest.raises(InputError, match="motion strength"):
        tiny_gen.generate(image, depth, k, PROMPT, motion_strength=-1)


def test_progress_and_cancellation(tiny_gen, inputs):
    image, depth, k = inputs
    seen = []
    tiny_gen.generate(image, depth, k, PROMPT, steps=3, progress=lambda i, n: seen.append((i, n)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    polls = []

    def cancel():
        polls.append(1)
        return len(polls) > 2

    with pytest.raises(GenerationCancelled, match="before step 3"):
        tiny_gen.generate(image, depth, k, PROMPT, steps=5, should_cancel=cancel)


def test_guidance_one_runs_a_single_batch():
    sizes = []

    def velocity(x, t, rows):
        sizes.append((x.shape[0], rows.start, rows.stop))
        return torch.zeros_like(x)

    from more4d_core.sampling import guided_velocity

    noise = torch.randn(1, 2, 3)
    out = sample_flow(guided_velocity(velocity, 1.0), noise, steps=4, shift=5.0)
    assert sizes == [(1, 0, 1)] * 4 and torch.equal(out, noise)  # zero velocity: nothing moves
    sizes.clear()
    sample_flow(guided_velocity(velocity, 6.0), noise, steps=2, shift=5.0)
    assert sizes == [(2, 0, 2)] * 2
    sizes.clear()
    sample_flow(guided_velocity(velocity, 6.0, as_batch=False), noise, steps=2, shift=5.0)
    assert sizes == [(1, 0, 1), (1, 1, 2)] * 2


def test_guidance_as_two_passes_equals_guidance_as_a_batch():
    from more4d_core.sampling import guided_velocity

    weight = torch.tensor([[1.5], [-0.5]])  # a different "model" for the conditional and unconditional rows

    def velocity(x, t, rows):
        w = weight[rows].repeat(x.shape[0] // weight[rows].shape[0], 1)
        return x * w.view(-1, 1, 1) + t.view(-1, 1, 1)

    x, t = torch.randn(1, 2, 3), torch.tensor([0.3])
    batch = guided_velocity(velocity, 4.0)(x, t)
    passes = guided_velocity(velocity, 4.0, as_batch=False)(x, t)
    expected = (x * -0.5 + 0.3) + 4.0 * ((x * 1.5 + 0.3) - (x * -0.5 + 0.3))  # v_u + g (v_c - v_u), by hand
    torch.testing.assert_close(batch, expected)
    torch.testing.assert_close(passes, expected)


def test_flow_sampler_recovers_a_known_target():
    """With the exact velocity noise - x0 the Euler sampler lands on x0."""
    x0 = torch.linspace(-1, 1, 10).view(1, 10)
    noise = torch.randn(1, 10)
    out = sample_flow(lambda x, t: noise - x0, noise, steps=7, shift=3.0)
    torch.testing.assert_close(out, x0, rtol=1e-5, atol=1e-5)


def _smooth_tracks(frames=9, h=32, w=32):
    """A plane whose points drift smoothly (no object boundaries), [1, T, H, W, 3]."""
    from more4d_core.geometry.projection import backproject_depth

    k = intrinsics_from_fov(h, w, 60.0)
    depth = 2.0 + torch.linspace(0, 1, h).view(h, 1).expand(h, w)
    p0 = backproject_depth(depth, k).float().view(h, w, 3)
    t = torch.linspace(0, 1, frames).view(frames, 1, 1, 1)
    drift = torch.stack([torch.sin(p0[..., 1] * 2), torch.cos(p0[..., 0] * 2), p0[..., 0] * 0.5], dim=-1)
    return (p0 + 0.2 * t * drift).unsqueeze(0), k


def test_patchify_codec_round_trips():
    pts, k = _smooth_tracks()
    f = NormalizationFactors.from_intrinsics(k, 32, 32)
    exact = PatchifyCodec(4, 1)
    back = exact.decode_tracks(exact.encode_tracks(pts, f), pts[:, 0], f)
    torch.testing.assert_close(back, pts, rtol=1e-5, atol=1e-5)
    coarse = PatchifyCodec(4, 4)
    z = coarse.encode_tracks(pts, f)
    assert z.shape == (1, 12, 3, 8, 8)
    back = coarse.decode_tracks(z, pts[:, 0], f)
    assert torch.equal(back[:, 0], pts[:, 0])
    motion = (pts - pts[:, :1]).abs().max()
    err = (back - pts).abs()
    assert err.mean() < 0.05 * motion  # smooth motion survives 4x pooling ...
    assert err[:, :, 4:-4, 4:-4].max() < 0.15 * motion  # ... well inside the image
    assert err.max() < 0.5 * motion  # (bilinear upsampling cannot extrapolate at the borders)
    coarse.motion_scale.fill_(0.1)
    torch.testing.assert_close(coarse.encode_tracks(pts, f), z * 10)


def test_wan_codec_wiring_with_an_identity_vae():
    class IdentityVAE(torch.nn.Module):
        class config:  # noqa: N801 - mimics diffusers' config object
            z_dim, scale_factor_temporal, scale_factor_spatial = 3, 1, 1
            latents_mean, latents_std = [0.5] * 3, [2.0] * 3

        dtype = torch.float32

        def encode(self, x):
            class Dist:
                def mode(self):
                    return x

            return type("Out", (), {"latent_dist": Dist()})()

        def decode(self, z):
            return type("Out", (), {"sample": z})()

    class ExactInverse(torch.nn.Module):
        def forward(self, video):
            return 2 * torch.atanh(video.clamp(-0.999999, 0.999999))

    from more4d_core.models.vae_adaptors import EncoderAdaptor

    codec = WanVAECodec(IdentityVAE(), EncoderAdaptor(8), ExactInverse())
    scene = make_analytic_scene(16, 16, 5)
    pts = scene.points_grid().unsqueeze(0)
    f = NormalizationFactors()
    z = codec.encode_tracks(pts, f)
    back = codec.decode_tracks(z, pts[:, 0], f)
    torch.testing.assert_close(back, pts, rtol=1e-3, atol=1e-3)
    assert torch.equal(back[:, 0], pts[:, 0])


def test_word_hash_text_encoder():
    assert hash_words("The Ball, slides!", 4096, 8) == hash_words("the ball slides", 4096, 8)
    assert hash_words("ball", 4096, 8) == [1 + __import__("zlib").crc32(b"ball") % 4095]
    enc = WordHashTextEncoder(256, 32, 8, layers=1)
    out = enc(["a ball", "", "one two three four five six seven eight nine"])
    assert out.shape == (3, 8, 32)
    assert not out[1].any() and not out[0, 2:].any() and out[0, :2].abs().sum() > 0
    assert torch.isfinite(out).all()


def test_umt5_and_clip_from_local_folders(tmp_path):
    save_tiny_umt5(tmp_path / "wan")
    enc = UMT5TextEncoder(tmp_path / "wan", max_len=12, dtype=torch.float32)
    out = enc(["the ball slides left", "a cat"])
    assert out.shape == (2, 12, 16)
    assert not out[1, 2:].any() and out[1, :2].abs().sum() > 0
    with pytest.raises(FileNotFoundError, match="text_encoder/"):
        UMT5TextEncoder(tmp_path / "nowhere")
    save_tiny_clip(tmp_path / "clip")
    tokens = grey_tokens(tmp_path / "clip")
    assert tokens.shape == (1, 5, 24)
    cache = list((tmp_path / "clip").glob("more4d_grey_tokens_*.safetensors"))
    assert len(cache) == 1 and torch.equal(grey_tokens(cache[0]), tokens)


def test_full_14b_layout_pipeline_at_toy_size(full_layout):
    """Authors' sharded transformer + diffusers VAE folder + authors' adaptors + umT5 + CLIP."""
    source, paths, _ = full_layout
    gen = load_generator(source, **{**paths, "dtype": torch.float32})
    image = torch.rand(32, 32, 3)
    depth = torch.rand(32, 32) + 2
    scene = gen.generate(image, depth, intrinsics_from_fov(32, 32, 60.0), PROMPT, steps=2, seed=0)
    assert scene.num_frames == TINY_FULL.num_frames and torch.isfinite(scene.points).all()
    assert torch.equal(scene.points[0], scene.points0)
    assert scene.metadata["normalization"]["fx"] == pytest.approx(1.0434783, abs=1e-6)
    # without CLIP the model loads (the tokens may come from ComfyUI's CLIP_VISION) and generating says so
    no_clip = load_generator(source, **{k: v for k, v in paths.items() if k != "clip"})
    with pytest.raises(InputError, match="needs CLIP image tokens: connect a CLIP_VISION"):
        no_clip.generate(image, depth, intrinsics_from_fov(32, 32, 60.0), PROMPT, steps=1)
    # the decoder adaptor is trained: without it the motion would come from random layers
    with pytest.raises(FileNotFoundError, match="decoder adaptor.*decoder_prompt"):
        load_generator(source, **{k: v for k, v in paths.items() if k != "decoder_adaptor"})


def test_conditioning_helpers():
    assert generation_size((368, 512), MORE4D_SMALL) == (96, 128)
    gh, gw = generation_size((512, 512), MORE4D_SMALL)
    assert gh == gw and gh % MORE4D_SMALL.pixel_stride == 0
    d = torch.tensor([[1.0, 3.0], [float("nan"), 5.0]])
    out = depth_condition(d)
    assert out.min() == -1 and out.max() == pytest.approx(1.0) and torch.isfinite(out).all()
    # max_ratio keeps depth ratios (lost by min-max) and ignores a global scale, as min-max does
    near_far = torch.tensor([[2.0, 8.0]])
    assert depth_condition(near_far, "max_ratio")[0].tolist() == pytest.approx([-0.5, 1.0])
    assert depth_condition(3 * near_far, "max_ratio")[0].tolist() == pytest.approx([-0.5, 1.0])
    assert depth_condition(torch.tensor([[4.0, 8.0]]), "max_ratio")[0, 0] == pytest.approx(0.0)
    assert depth_condition(torch.tensor([[4.0, 8.0]]))[0, 0] == -1  # min-max: both maps look alike
    with pytest.raises(InputError, match="depth condition"):
        depth_condition(d, "inverse")


def test_hold_still_ramps_small_motion_to_zero():
    from more4d_core.sampling.still import hold_still

    field = torch.zeros(1, 3, 5, 1, 4)
    field[0, 0, :, 0, 0] = torch.linspace(0, 0.003, 5)  # peak 0.003 < threshold / 2: held still
    field[0, 1, :, 0, 1] = torch.linspace(0, 0.006, 5)  # peak halfway up the ramp: halved
    field[0, 2, :, 0, 2] = torch.linspace(0, 0.05, 5)  # above the threshold: untouched
    out = hold_still(field, 0.008)
    assert torch.equal(out[..., 0], torch.zeros_like(out[..., 0]))
    torch.testing.assert_close(out[..., 1], field[..., 1] * 0.5)
    assert torch.equal(out[..., 2], field[..., 2]) and torch.equal(out[..., 3], field[..., 3])
    assert hold_still(field, 0.0) is field
    with pytest.raises(InputError, match="still threshold"):
        hold_still(field, -0.1)


def test_generator_still_threshold(tiny_gen, inputs):
    import copy

    from more4d_core.geometry.normalization import normalize_motion

    image, depth, k = inputs
    gen = copy.deepcopy(tiny_gen)
    gen.codec.motion_scale.fill_(0.004)  # an untrained model moves everything a lot: make motions small
    free = gen.generate(image, depth, k, PROMPT, seed=2, still_threshold=0.0)
    held = gen.generate(image, depth, k, PROMPT, seed=2, still_threshold=0.016)
    assert free.metadata["still_threshold"] == 0.0 and held.metadata["still_threshold"] == 0.016
    assert MORE4D_TINY.still_threshold == 0.0  # the model's default: off for this config
    assert torch.equal(gen.generate(image, depth, k, PROMPT, seed=2).points, free.points)
    peak = normalize_motion(free.points.double(), gen.normalization_factors(k, (40, 48))).norm(dim=-1).amax(0)
    still = peak < 0.0079
    moving = peak > 0.0161
    assert still.any() and moving.any()
    assert torch.equal(held.points[:, still], held.points[:1, still].expand(held.num_frames, -1, -1))
    torch.testing.assert_close(held.points[:, moving], free.points[:, moving])
    with pytest.raises(InputError, match="still threshold"):
        gen.generate(image, depth, k, PROMPT, still_threshold=0.5)


@pytest.fixture(scope="module")
def full_layout(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("full_layout")
    torch.manual_seed(0)
    transformer = STraGTransformer.from_stgconfig(TINY_FULL)
    for blk in transformer.blocks:
        blk.spatial_guidance_self.gate.data.fill_(0.3)
        blk.spatial_guidance_ffn.gate.data.fill_(0.3)
    save_authors_layout(transformer, tmp_path / "transformer", shards=2)
    save_tiny_vae(tmp_path / "wan" / "vae")
    save_tiny_umt5(tmp_path / "wan", d_model=TINY_FULL.text_dim)
    save_tiny_clip(tmp_path / "wan", hidden=TINY_FULL.image_dim)
    from more4d_core.models.vae_adaptors import DecoderAdaptor

    (tmp_path / "decoder_prompt").mkdir()
    torch.save(DecoderAdaptor(8).state_dict(), tmp_path / "decoder_prompt" / "pytorch_model.bin")
    paths = dict(config=TINY_FULL, vae=tmp_path / "wan", text_encoder=tmp_path / "wan", clip=tmp_path / "wan",
                 decoder_adaptor=tmp_path / "decoder_prompt", dtype=torch.bfloat16)
    plain = load_generator(tmp_path / "transformer", **paths)
    return tmp_path / "transformer", paths, plain


def _motion(gen, guidance):
    g = torch.Generator().manual_seed(0)
    image, depth = torch.rand(32, 32, 3, generator=g), torch.rand(32, 32, generator=g) + 2
    s = gen.generate(image, depth, intrinsics_from_fov(32, 32, 60.0), PROMPT, steps=2, seed=0, guidance_scale=guidance)
    return s.points - s.points0


def test_placement_and_streaming_do_not_change_the_result(full_layout, monkeypatch):
    from more4d_core.memory import modes

    source, paths, plain = full_layout
    assert torch.equal(_motion(load_generator(source, memory="bf16", **paths), 3.0), _motion(plain, 3.0))
    # 1 of 2 blocks streamed, each model on the device only for its stage: the same numbers
    monkeypatch.setitem(modes.MODES, "16gb", modes.MemoryMode("16gb", "bf16", 1, True, True))
    streamed = load_generator(source, memory="16gb", **paths)
    assert len(streamed.placement.streamers) == 1
    assert torch.equal(_motion(streamed, 3.0), _motion(plain, 3.0))
    # guidance as two passes: the same function (in float32; bf16 kernels round differently per batch size)
    fp32 = {**paths, "dtype": torch.float32}
    monkeypatch.setitem(modes.MODES, "16gb", modes.MemoryMode("16gb", "bf16", 1, True, False))
    torch.testing.assert_close(_motion(load_generator(source, memory="16gb", **fp32), 3.0),
                               _motion(load_generator(source, **fp32), 3.0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("memory", ["24gb", "16gb"])
def test_float8_modes_run_the_14b_layout_pipeline(full_layout, memory, monkeypatch, caplog):
    from more4d_core.memory import modes
    from more4d_core.models.fp8 import FP8Linear

    source, paths, plain = full_layout
    # at toy size "16gb" keeps 1 of the 2 blocks resident and streams the other
    monkeypatch.setitem(modes.MODES, "16gb", modes.MemoryMode("16gb", "fp8", 1, True, False))
    with caplog.at_level("INFO", logger="more4d"):
        moded = load_generator(source, memory=memory, **paths)
    assert f"memory mode {memory}" in caplog.text and "chosen" in caplog.text
    assert isinstance(moded.transformer.blocks[0].ffn.net[2], FP8Linear)
    assert any(isinstance(m, FP8Linear) for m in moded.text_encoder.model.modules())
    a, b = _motion(plain, 1.0), _motion(moded, 1.0)
    exact = _motion(load_generator(source, **{**paths, "dtype": torch.float32}), 1.0)
    fp8_error, bf16_error = float((a - b).norm() / a.norm()), float((a - exact).norm() / exact.norm())
    print(f"{memory}: tracks vs bf16 {fp8_error:.3f}; bf16 vs float32 {bf16_error:.3f}")
    # this random toy pipeline amplifies rounding: float8 may change it at most twice as much as bf16 does
    assert 0 < fp8_error <= 2 * bf16_error
    with pytest.raises(InputError, match="memory mode"):
        load_generator(source, memory="8gb", **paths)


def test_a_depth_without_any_usable_value_is_refused(tiny_gen, inputs):
    image, depth, k = inputs[:3]
    for bad in (torch.zeros_like(depth), torch.full_like(depth, float("nan")), -torch.ones_like(depth)):
        with pytest.raises(InputError, match="no usable value"):
            tiny_gen.generate(image, bad, k, "the ball moves", seed=0, steps=1, num_frames=5)


class _CoreClipVision:
    """ComfyUI's CLIP_VISION surface: encode_image(image [B, H, W, 3] 0..1) -> output.penultimate_hidden_states."""

    def __init__(self, tokens):
        self.tokens, self.seen = tokens, []

    def encode_image(self, image, crop=True):
        self.seen.append(image)
        return types.SimpleNamespace(penultimate_hidden_states=self.tokens)


def test_comfyui_core_text_and_clip_vision_replace_the_loaders_encoders(full_layout):
    """A Wan user's own umT5 (core CLIP Text Encode -> CONDITIONING) and clip_vision_h (Load CLIP Vision):
    the model loaded without them generates exactly what it generates with its own encoders given the same states."""
    from more4d_core.sampling.external_conditioning import text_states

    source, paths, _ = full_layout
    full = load_generator(source, **{**paths, "dtype": torch.float32})
    bare = load_generator(source, **{**{k: v for k, v in paths.items() if k not in ("clip", "text_encoder")},
                                     "dtype": torch.float32})
    image, depth, k = torch.rand(32, 32, 3), torch.rand(32, 32) + 2, intrinsics_from_fov(32, 32, 60.0)
    states = full.text_encoder([PROMPT, "blurry"]).float()  # what core's Wan text encode gives: [1, 512, dim] each
    positive, negative = [[states[:1], {"pooled_output": None}]], [[states[1:], {}]]
    clip = _CoreClipVision(full.image_tokens.clone())
    kw = dict(steps=2, seed=3, guidance_scale=3.0)
    reference = full.generate(image, depth, k, PROMPT, negative_prompt="blurry", **kw)
    with pytest.raises(InputError, match="loaded without its text encoder: connect the prompt as CONDITIONING"):
        bare.generate(image, depth, k, PROMPT, image_tokens=full.image_tokens, **kw)
    from nodes.generate_nodes import core_components

    given = core_components(bare.config, positive, negative, clip)
    scene = bare.generate(image, depth, k, "", **given, **kw)
    assert torch.equal(scene.points, reference.points)
    assert scene.metadata["prompt"] == "(text conditioning given)"
    grey = clip.seen[0]  # the authors' model saw the tokens of a uniform mid-grey image
    assert grey.shape == (1, 224, 224, 3) and torch.all(grey == 127 / 255)
    # ComfyUI pads Wan prompts to at least 512 tokens with zeros; shorter or longer states are fitted
    short = text_states([[states[:1, :7], {}]], None, 512, states.shape[2])
    assert short.shape == (2, 512, states.shape[2]) and torch.equal(short[0, :7], states[0, :7])
    assert not short[:, 7:].any() and torch.equal(short[0], short[1])
    long = text_states([[torch.cat([states[:1], states[:1]], 1), {}]], negative, 512, states.shape[2])
    assert torch.equal(long[0], states[0]) and torch.equal(long[1], states[1])
    with pytest.raises(InputError, match="8 wide but the model reads 16"):
        text_states([[torch.zeros(1, 512, 8), {}]], None, 512, 16)
    with pytest.raises(InputError, match="2 entries"):
        text_states(positive + positive, None, 512, 16)
    with pytest.raises(InputError, match="to 'positive' too"):  # a negative alone: the prompt is missing
        core_components(bare.config, None, negative, None)
    with pytest.raises(InputError, match="reads its own words"):
        core_components(MORE4D_SMALL, positive, None, None)
