"""The learned temporal decoder (temporal_decoder="learned"): its built-in properties (1-homogeneous, zero
at rest, re-timed like the cosine basis), its config, its fit on kinked trajectories the cosines cannot draw,
the command that adds it to a model file, and the generator decoding with it."""

import math

import pytest
import torch
from safetensors.torch import load_file

from more4d_core.checkpoints import bundle
from more4d_core.errors import InputError
from more4d_core.generator import build_generator, load_generator
from more4d_core.models.config import MORE4D_TINY, STraGConfig
from more4d_core.models.temporal_decoder import TemporalResidual, retime
from more4d_core.models.trajectory_codec import TemporalBasisCodec
from more4d_core.train.decoder_fit import fit_temporal_residual, main

TINY_DCT = MORE4D_TINY.replace(codec="dct", dct_coefficients=4, latent_channels=12, decode_guide="depth")
TINY_LEARNED = TINY_DCT.replace(temporal_decoder="learned", temporal_decoder_width=16)


def test_it_is_positively_homogeneous_and_zero_at_rest():
    torch.manual_seed(0)
    r = TemporalResidual(4, 9, width=16)
    c = torch.randn(2, 12, 3, 5)
    out = r(c, 9)
    assert out.shape == (2, 3, 9, 3, 5)
    for a in (0.5, 3.0):
        torch.testing.assert_close(r(a * c, 9), a * out, rtol=1e-5, atol=1e-7)
    assert torch.equal(r(torch.zeros(1, 12, 2, 2), 9), torch.zeros(1, 3, 9, 2, 2))
    with pytest.raises(InputError, match="reads 12 coefficients"):
        r(torch.randn(1, 9, 2, 2), 9)


def test_retiming_keeps_the_motion_over_the_same_time_span():
    frames = 9
    times = (torch.arange(frames) + 0.5) / frames
    curves = (2.0 * times - 1.0).view(1, 1, -1)  # a straight line of the basis' frame times
    assert torch.equal(retime(curves, frames), curves)
    for count in (5, 17):
        t = (torch.arange(count) + 0.5) / count
        inside = (t >= times[0]) & (t <= times[-1])
        torch.testing.assert_close(retime(curves, count)[0, 0, inside], (2.0 * t - 1.0)[inside])


def test_the_config_takes_it_and_old_files_keep_the_basis():
    assert STraGConfig.from_dict(TINY_LEARNED.to_dict()) == TINY_LEARNED
    assert TINY_LEARNED.to_dict()["config_version"] >= 12
    old = TINY_LEARNED.to_dict()
    old["config_version"] = 11
    del old["temporal_decoder"], old["temporal_decoder_width"]
    assert STraGConfig.from_dict(old).temporal_decoder == "basis"
    with pytest.raises(InputError, match="needs codec 'dct'"):
        MORE4D_TINY.replace(temporal_decoder="learned")
    with pytest.raises(InputError, match="temporal_decoder must be one of"):
        TINY_DCT.replace(temporal_decoder="spline")


def _bounces(n, frames, seed=0):
    """Trajectories ``[n, 3, frames]`` of bounces: ``-a |sin(pi c s)|`` on the vertical axis (c = 1 or 2 bounces,
    a > 0 random) at the basis' frame times; their kinks are what a few cosines cannot draw."""
    g = torch.Generator().manual_seed(seed)
    s = (torch.arange(frames, dtype=torch.float64) + 0.5) / frames
    count = torch.randint(1, 3, (n, 1), generator=g).double()
    height = 0.05 + 0.2 * torch.rand(n, 1, generator=g, dtype=torch.float64)
    out = torch.zeros(n, 3, frames, dtype=torch.float64)
    out[:, 1] = -height * torch.sin(math.pi * count * s).abs()
    return out


def test_fitted_it_draws_the_kinks_of_bounces_that_the_cosines_miss():
    codec = TemporalBasisCodec(coefficients=8, spatial=1)
    frames = 49
    curves = _bounces(512, frames)
    basis = codec.basis(frames, dtype=torch.float64)  # [T, K]
    coeffs = torch.einsum("kt,nct->nck", torch.linalg.pinv(basis), curves)  # least-squares cosines
    drawn = torch.einsum("tk,nck->nct", basis, coeffs)
    units, missing = coeffs.reshape(len(curves), -1).float(), (curves - drawn).float()
    torch.manual_seed(0)
    residual = TemporalResidual(8, frames, width=64)
    fit_temporal_residual(residual, units[:384], missing[:384], steps=600, batch_size=128, lr=3e-3, loss="mse")
    with torch.no_grad():
        after = curves[384:].float() - drawn[384:].float() - residual.per_pixel(units[384:])
    before = (curves[384:] - drawn[384:]).float()
    # on bounces it has not seen, the error left is a fraction of the cosines' own
    assert after.pow(2).mean().sqrt() < 0.3 * before.pow(2).mean().sqrt()


def test_the_codec_adds_it_and_keeps_still_latents_still():
    torch.manual_seed(1)
    residual = TemporalResidual(4, 9, width=8)
    codec = TemporalBasisCodec(4, 4, decode_guide="depth", residual=residual)
    plain = TemporalBasisCodec(4, 4, decode_guide="depth")
    points0 = torch.rand(1, 16, 16, 3) + 1.0
    latents = torch.randn(1, 12, 1, 4, 4)
    assert torch.equal(codec.decode_field_on(torch.zeros_like(latents), points0, 9), torch.zeros(1, 3, 9, 16, 16))
    moved = codec.decode_field_on(latents, points0, 9) - plain.decode_field_on(latents, points0, 9)
    assert moved.abs().max() > 0
    assert codec.decode_field_on(latents, points0, 17).shape == (1, 3, 17, 16, 16)
    with pytest.raises(InputError, match="reads 3 coefficients per axis"):
        TemporalBasisCodec(4, 4, residual=TemporalResidual(3, 9))


def _save_dct_model(path, seed=3):
    gen = build_generator(TINY_DCT, seed=seed)
    bundle.save_bundle(path, TINY_DCT, {"transformer": gen.transformer, "codec": gen.codec,
                                        "text_encoder": gen.text_encoder}, {})


def test_the_command_adds_a_decoder_and_the_file_decodes_with_it(tmp_path):
    src, out = tmp_path / "model.safetensors", tmp_path / "decoded.safetensors"
    _save_dct_model(src)
    assert main([str(src), "--out", str(out), "--scenes", "3", "--pixels", "20", "--steps", "4", "--width", "8"]) == 0
    loaded = load_generator(out)
    assert loaded.config.temporal_decoder == "learned" and loaded.config.temporal_decoder_width == 8
    before, after = load_file(str(src)), load_file(str(out))
    keys = set(after) - set(before)
    assert keys and all(k.startswith("codec.residual.") for k in keys)
    assert set(before) <= set(after)
    fit = bundle.read_header(out).info["temporal_decoder_fit"]
    assert fit["scenes"] == 3 and fit["steps"] == 4 and fit["loss"] == "huber"
    assert loaded.codec.residual is not None
    k = torch.tensor([[30.0, 0, 16], [0, 30.0, 16], [0, 0, 1]])
    image = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(0))
    scene = loaded.generate(image, torch.full((32, 32), 2.0), k, "the ball bounces", seed=0)
    assert torch.isfinite(scene.points).all()
    assert scene.metadata["temporal_decoder"] == "learned"
    # the residual takes part: without it the same file decodes differently
    loaded.codec.residual = None
    plain = loaded.generate(image, torch.full((32, 32), 2.0), k, "the ball bounces", seed=0)
    assert not torch.equal(plain.points, scene.points)
    with pytest.raises(SystemExit):
        main([str(src), "--out", str(tmp_path / "x.safetensors"), "--loss", "l1"])
    assert not (tmp_path / "x.safetensors").exists()


def test_the_command_refuses_a_model_without_the_basis_codec(tmp_path):
    from tiny_models import save_encoder_model

    src = tmp_path / "patchify.safetensors"
    save_encoder_model(src, seed=4)
    with pytest.raises(ValueError, match="temporal-basis"):
        main([str(src), "--out", str(tmp_path / "y.safetensors"), "--scenes", "1", "--steps", "1"])
    assert not (tmp_path / "y.safetensors").exists()


def test_the_pool_pairs_each_pixels_coefficients_with_what_the_cosines_miss():
    from more4d_core.geometry.normalization import NormalizationFactors
    from more4d_core.train.decoder_fit import pixel_pool

    frames, h, w, k = 17, 8, 8, 4
    codec = TemporalBasisCodec(k, 4, decode_guide="depth")
    codec.latent_scale.fill_(0.5)
    s = (torch.arange(frames, dtype=torch.float64) + 0.5) / frames
    bounce = -0.1 * torch.sin(2 * math.pi * s).abs()  # the whole image bounces twice, at depth 2
    tracks = torch.zeros(frames, h, w, 3, dtype=torch.float64)
    tracks[..., 2] = 2.0
    tracks[..., 1] = 2.0 * bounce.view(-1, 1, 1)  # Y = n_y * Z0 / fy with fy = 1
    units, missing = pixel_pool(codec, tracks, NormalizationFactors(1.0, 1.0), 10, torch.Generator().manual_seed(0))
    assert units.shape == (10, 3 * k) and missing.shape == (10, 3, frames)
    cosines = torch.cos(math.pi * torch.arange(k).view(1, -1) * s.view(-1, 1))  # the codec's basis, from its formula
    moved = bounce - bounce[0]  # the normalized field is the displacement from frame 0
    fit = torch.linalg.lstsq(cosines, moved.view(-1, 1)).solution[:, 0]
    torch.testing.assert_close(units[:, k:2 * k], (fit / 0.5).float().expand(10, -1), rtol=1e-4, atol=1e-5)
    assert units[:, :k].abs().max() < 1e-6 and units[:, 2 * k:].abs().max() < 1e-6
    torch.testing.assert_close(missing[:, 1], (moved - cosines @ fit).float().expand(10, -1), rtol=1e-4, atol=1e-5)
    assert missing[:, 0].abs().max() < 1e-6


def test_a_warm_start_keeps_the_decoder_of_its_init_file(tmp_path):
    from more4d_core.train.loop import TrainArgs, train

    init = "more4d_core/weights/more4d-small.safetensors"
    assert bundle.read_header(init).config.temporal_decoder == "learned", "the bundled file is expected to carry one"
    train(TrainArgs(config="more4d-small", out=str(tmp_path / "run"), steps=1, batch_size=1, warmup=1, lr=0.0,
                    recipe="v3", checkpoint_every=1, init=init))
    saved = tmp_path / "run" / "step-0000001" / "model.safetensors"
    assert bundle.read_header(saved).config.temporal_decoder == "learned"
    before, after = load_file(init), load_file(str(saved))
    keys = [k for k in before if k.startswith("codec.residual.")]
    assert keys and all(torch.equal(before[k].float(), after[k].float()) for k in keys)


def test_the_command_gives_the_same_decoder_whatever_random_state_it_starts_in(tmp_path):
    src = tmp_path / "model.safetensors"
    _save_dct_model(src)
    outs = []
    for state in (0, 12345):
        torch.manual_seed(state)
        torch.rand(state % 7 + 1)  # and some draws, as loading another model would leave
        outs.append(tmp_path / f"out-{state}.safetensors")
        assert main([str(src), "--out", str(outs[-1]), "--scenes", "2", "--pixels", "10", "--steps", "3", "--width", "8"]) == 0
    a, b = load_file(str(outs[0])), load_file(str(outs[1]))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_fitting_leaves_the_callers_random_state_as_it_was():
    g = torch.Generator().manual_seed(0)
    units, missing = torch.randn(64, 12, generator=g), torch.randn(64, 3, 9, generator=g)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    residual = TemporalResidual(4, 9, width=8)
    after_init = torch.get_rng_state()
    fit_temporal_residual(residual, units, missing, steps=3, batch_size=16, seed=5)
    assert not torch.equal(before, after_init)  # the residual's own initialisation drew from it (the caller's doing)
    assert torch.equal(torch.get_rng_state(), after_init)  # the fit, seeded by its own seed, did not touch it
