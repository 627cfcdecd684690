"""The generated pool of the temporal decoder's fit (``train/generated_pool.py``; ``decoder_fit --pool generated``):
the decode step observed without changing it, the pairs (the model's output coefficients against what the true
trajectory adds to their cosine curve), the pixels it picks, and the command's warm start and pool cache."""

import math
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from more4d_core.checkpoints import bundle
from more4d_core.generator import build_generator
from more4d_core.models.config import MORE4D_TINY
from more4d_core.train import generated_pool as pool_module
from more4d_core.train.decoder_fit import main
from more4d_core.train.generated_pool import generated_pairs, recorded_decode, select_pixels

TINY_DCT = MORE4D_TINY.replace(codec="dct", dct_coefficients=4, latent_channels=12, decode_guide="depth")
TINY_LEARNED = TINY_DCT.replace(temporal_decoder="learned", temporal_decoder_width=8)
K = torch.tensor([[30.0, 0, 16], [0, 30.0, 16], [0, 0, 1]])


def _image():
    return torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(0))


def test_the_recorded_latents_are_what_the_scene_was_decoded_from_and_the_codec_comes_back():
    gen = build_generator(TINY_DCT, seed=3)
    with recorded_decode(gen) as seen:
        scene = gen.generate(_image(), torch.full((32, 32), 2.0), K, "the ball slides right", seed=1,
                             still_threshold=0.0, motion_smoothing=0.0)
    assert len(seen) == 1
    latents, points0 = seen[0]
    assert "decode_tracks" not in vars(gen.codec)  # the class's method again
    again = gen.codec.decode_tracks(latents, points0, gen.normalization_factors(K, (32, 32)), num_frames=9)[0]
    torch.testing.assert_close(again.reshape(9, -1, 3), scene.points, rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match="inside"):
        with recorded_decode(gen):
            raise RuntimeError("inside")
    assert "decode_tracks" not in vars(gen.codec)


def test_select_pixels_takes_the_moving_then_the_still_ones_the_model_moved():
    peak = torch.zeros(100)
    peak[:10] = 1.0  # ten truly moving pixels
    units = torch.zeros(100, 6)
    units[50:60, 0] = 1.0  # the model moved ten still pixels
    pick = select_pixels(peak, units, 8, torch.Generator().manual_seed(0))
    assert len(pick) == 8 + 2 + 1
    assert set(pick[:8].tolist()) <= set(range(10)) and len(set(pick[:8].tolist())) == 8
    assert set(pick[8:10].tolist()) <= set(range(50, 60))
    assert pick[10] >= 10
    assert len(select_pixels(peak, units, 40, torch.Generator().manual_seed(0))) == 10 + 10 + 5  # all there are


def test_the_pairs_add_up_to_the_true_trajectory():
    frames, h, w = 9, 32, 32
    s = (torch.arange(frames, dtype=torch.float64) + 0.5) / frames
    v, u = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5,
                          indexing="ij")
    z = torch.full((frames, h, w), 2.0, dtype=torch.float64)
    z[:, :, :16] = 2.0 * (1.0 + 0.1 * s).view(-1, 1, 1)  # the left half recedes; x and y stay
    x0, y0 = (u - 16) * 2.0 / 30.0, (v - 16) * 2.0 / 30.0
    tracks = torch.stack([x0.expand(frames, h, w), y0.expand(frames, h, w), z], -1)
    sample = SimpleNamespace(image=_image(), tracks=tracks.reshape(frames, h * w, 3).float(), intrinsics=K,
                             caption="the ball moves away")
    gen = build_generator(TINY_DCT, seed=3)
    units, missing = generated_pairs(gen, sample, torch.full((h, w), 2.0), 1, 1000, torch.Generator().manual_seed(0))
    assert len(units) == 16 * 32 + 250 + 125 and missing.shape == (len(units), 3, frames)
    k = TINY_DCT.dct_coefficients
    cosines = torch.cos(math.pi * torch.arange(k).view(1, -1) * s.view(-1, 1)).float()  # the basis, from its formula
    coeffs = (units * gen.codec.latent_scale.view(1, -1)).view(-1, 3, k)
    total = torch.einsum("tk,pck->pct", cosines, coeffs) + missing  # what the pair says the true trajectory is
    assert total[:, :2].abs().max() < 1e-5
    receding = (0.1 * (s - s[0]) / (1 + 0.1 * s[0])).float()  # (Z_t - Z_0) / Z_0
    is_moving = (total[:, 2] - receding).abs().amax(-1) < 1e-5
    assert int(is_moving.sum()) == 16 * 32 and bool(is_moving[:16 * 32].all())
    assert total[~is_moving, 2].abs().max() < 1e-5  # still points: the target cancels the model's motion
    assert units[~is_moving].abs().sum() > 0  # the model did move some of them: pairs to learn shrinking from


def _save(path, cfg, seed=3):
    gen = build_generator(cfg, seed=seed)
    bundle.save_bundle(path, cfg, {"transformer": gen.transformer, "codec": gen.codec,
                                   "text_encoder": gen.text_encoder}, {})


def test_the_command_starts_from_the_files_decoder_and_keeps_its_pool(tmp_path, monkeypatch):
    src, cache = tmp_path / "model.safetensors", tmp_path / "pool.safetensors"
    _save(src, TINY_LEARNED)
    args = ["--pool", "generated", "--scenes", "2", "--pixels", "30", "--pool-cache", str(cache)]
    assert main([str(src), "--out", str(tmp_path / "a.safetensors"), "--steps", "3", "--lr", "0", *args]) == 0
    before, after = load_file(str(src)), load_file(str(tmp_path / "a.safetensors"))
    keys = [k for k in before if k.startswith("codec.residual.")]
    assert keys and all(torch.equal(before[k].half(), after[k]) for k in keys)  # lr 0 (float16 written): the start is the file's decoder
    fit = bundle.read_header(tmp_path / "a.safetensors").info["temporal_decoder_fit"]
    assert fit["pool"] == "generated" and fit["scenes"] == 2 and fit["basis_rmse"] == fit["fitted_rmse"]
    assert cache.is_file()

    calls = []
    real = pool_module.generated_pool
    monkeypatch.setattr(pool_module, "generated_pool", lambda *a, **k: calls.append(k) or real(*a, **k))
    assert main([str(src), "--out", str(tmp_path / "b.safetensors"), "--steps", "20", *args]) == 0
    assert calls == []  # the same pool's arguments: read back from the cache
    b = bundle.read_header(tmp_path / "b.safetensors").info["temporal_decoder_fit"]
    assert b["fitted_rmse"] < b["basis_rmse"] == fit["basis_rmse"]  # the same pool, and the fit lowers its error
    other = [a if a != "30" else "31" for a in args]
    assert main([str(src), "--out", str(tmp_path / "c.safetensors"), "--steps", "1", *other]) == 0
    assert len(calls) == 1  # other arguments: built again, not mixed in

    # a codec-pool fit replaces the decoder with a new one (even at lr 0)
    assert main([str(src), "--out", str(tmp_path / "d.safetensors"), "--steps", "3", "--lr", "0", "--scenes", "2",
                 "--pixels", "10", "--width", "8"]) == 0
    d = load_file(str(tmp_path / "d.safetensors"))
    assert not all(torch.equal(before[k].half(), d[k]) for k in keys)


def test_the_command_refuses_before_the_pool(tmp_path, monkeypatch):
    src, out = tmp_path / "model.safetensors", tmp_path / "out.safetensors"
    _save(src, TINY_LEARNED)
    out.write_bytes(b"keep me")
    monkeypatch.setattr(pool_module, "generated_pool", lambda *a, **k: pytest.fail("the pool was built"))
    with pytest.raises(FileExistsError, match="--overwrite"):
        main([str(src), "--out", str(out), "--pool", "generated", "--scenes", "1"])
    assert out.read_bytes() == b"keep me"
    with pytest.raises(SystemExit):
        main([str(src), "--out", str(tmp_path / "x.safetensors"), "--pool", "denoiser"])
    assert not (tmp_path / "x.safetensors").exists()


def test_a_pool_cache_path_holding_something_else_is_refused_and_kept(tmp_path):
    src = tmp_path / "model.safetensors"
    _save(src, TINY_LEARNED)
    before = src.read_bytes()
    for cache in (src, tmp_path / "notes.txt"):
        if cache.suffix == ".txt":
            cache.write_text("not a pool")
        kept = cache.read_bytes()
        with pytest.raises(ValueError, match="--pool-cache"):
            main([str(src), "--out", str(tmp_path / "o.safetensors"), "--pool", "generated", "--scenes", "1",
                  "--pixels", "5", "--steps", "1", "--pool-cache", str(cache)])
        assert cache.read_bytes() == kept and not (tmp_path / "o.safetensors").exists()
    assert src.read_bytes() == before


def test_a_pool_cache_of_another_model_is_rebuilt(tmp_path, monkeypatch):
    from more4d_core.train import decoder_fit

    a, b, cache = tmp_path / "a.safetensors", tmp_path / "b.safetensors", tmp_path / "pool.safetensors"
    _save(a, TINY_DCT, seed=3)
    _save(b, TINY_DCT, seed=4)
    calls = []
    real = decoder_fit.codec_pool
    monkeypatch.setattr(decoder_fit, "codec_pool", lambda *x, **k: calls.append(1) or real(*x, **k))
    args = ["--scenes", "1", "--pixels", "5", "--steps", "1", "--width", "8", "--pool-cache", str(cache)]
    for src, out in ((a, "1"), (a, "2"), (b, "3")):
        assert main([str(src), "--out", str(tmp_path / f"out{out}.safetensors"), *args]) == 0
    assert len(calls) == 2  # a's pool read back once; b's codec (another file) gets its own
