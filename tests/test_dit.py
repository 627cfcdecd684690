"""The trajectory DiT: diffusers equivalence, MAdaNorm identities, reference tokens, MPM."""

import pytest
import torch
from diffusers import WanTransformer3DModel

from more4d_core.errors import InputError
from more4d_core.models.config import MORE4D_TINY, STraGConfig
from more4d_core.models.dit import MotionModulation, STraGTransformer
from more4d_core.models.madanorm import MAdaNorm
from more4d_core.models.motion_encoder import MotionEncoder, sinusoid_table

TINY_I2V = MORE4D_TINY.replace(name="tiny-i2v", image_dim=24, image_tokens=5, text_len=512)


def _inputs(cfg: STraGConfig, batch=2, frames=3, hw=(8, 8), seed=0):
    g = torch.Generator().manual_seed(seed)
    c = cfg.latent_channels
    return dict(
        latents=torch.randn(batch, 4 * c, frames, *hw, generator=g),
        timestep=torch.tensor([900.0, 250.0][:batch]),
        text=torch.randn(batch, cfg.text_len, cfg.text_dim, generator=g),
        image_tokens=torch.randn(batch, cfg.image_tokens, cfg.image_dim, generator=g) if cfg.image_dim else None,
    )


def _model(cfg, seed=0, gates=True):
    torch.manual_seed(seed)
    m = STraGTransformer.from_stgconfig(cfg).eval()
    if gates and cfg.use_mpm:
        for blk in m.blocks:
            blk.spatial_guidance_self.gate.data.normal_()
            blk.spatial_guidance_ffn.gate.data.normal_()
    return m


def _stock(cfg: STraGConfig, ours: STraGTransformer) -> WanTransformer3DModel:
    stock = WanTransformer3DModel(
        patch_size=cfg.patch_size, num_attention_heads=cfg.num_heads, attention_head_dim=cfg.head_dim,
        in_channels=cfg.in_channels, out_channels=cfg.latent_channels, text_dim=cfg.text_dim, freq_dim=cfg.freq_dim,
        ffn_dim=cfg.ffn_dim, num_layers=cfg.num_layers, cross_attn_norm=cfg.cross_attn_norm, eps=cfg.eps,
        image_dim=cfg.image_dim, added_kv_proj_dim=cfg.dim if cfg.image_dim else None,
        rope_max_seq_len=cfg.rope_max_seq_len,
    ).eval()
    extra = ("ref_conv", "omnimae_extractor", "feature_adapter")
    state = {k: v for k, v in ours.state_dict().items() if not k.startswith(extra) and "spatial_guidance" not in k}
    missing, unexpected = stock.load_state_dict(state, strict=True)
    assert not missing and not unexpected
    return stock


@pytest.mark.parametrize("cfg", [MORE4D_TINY, TINY_I2V], ids=["t2v", "i2v"])
def test_plain_path_equals_stock_diffusers_bit_for_bit(cfg):
    ours = _model(cfg)
    stock = _stock(cfg, ours)
    x = _inputs(cfg)
    with torch.no_grad():
        a = ours(x["latents"], x["timestep"], x["text"], image_tokens=x["image_tokens"])
        b = stock(x["latents"], x["timestep"], x["text"], encoder_hidden_states_image=x["image_tokens"], return_dict=False)[0]
    assert torch.equal(a, b)


def test_lambda_zero_and_untrained_mpm_are_the_plain_model():
    cfg = MORE4D_TINY
    x = _inputs(cfg)
    image = torch.rand(2, 3, 24, 24)
    ref = torch.randn(2, cfg.latent_channels, 8, 8)
    trained = _model(cfg)
    with torch.no_grad():
        feats = trained.encode_motion(image)
        plain = trained(x["latents"], x["timestep"], x["text"], reference_latent=ref)
        off = trained(x["latents"], x["timestep"], x["text"], reference_latent=ref, motion_features=feats, motion_strength=0.0)
        on = trained(x["latents"], x["timestep"], x["text"], reference_latent=ref, motion_features=feats)
        half = trained(x["latents"], x["timestep"], x["text"], reference_latent=ref, motion_features=feats, motion_strength=0.5)
    assert torch.equal(off, plain)
    assert (on - plain).abs().max() > 1e-3 and (half - plain).abs().max() > 1e-4
    fresh = _model(cfg, gates=False)  # gates start at zero: identity
    with torch.no_grad():
        f = fresh.encode_motion(image)
        assert torch.equal(
            fresh(x["latents"], x["timestep"], x["text"], motion_features=f),
            fresh(x["latents"], x["timestep"], x["text"]),
        )


def test_zero_gate_still_learns():
    """With the gate at zero, gradients must reach the gate (a fully zero-initialized MAdaNorm never trains)."""
    cfg = MORE4D_TINY
    m = _model(cfg, gates=False).train()
    x = _inputs(cfg)
    feats = m.encode_motion(torch.rand(2, 3, 24, 24))
    out = m(x["latents"], x["timestep"], x["text"], motion_features=feats)
    out.square().mean().backward()
    gate = m.blocks[0].spatial_guidance_self.gate
    assert gate.grad is not None and gate.grad.abs().sum() > 0
    adapter_grad = m.feature_adapter[0].weight.grad
    assert adapter_grad is None or not adapter_grad.any()  # the gate is zero, so nothing upstream moves yet
    assert all(p.grad is None for p in m.omnimae_extractor.parameters())  # frozen


def test_reference_tokens_are_prepended_and_dropped():
    cfg = MORE4D_TINY
    m = _model(cfg)
    x = _inputs(cfg)
    ref_a = torch.randn(2, cfg.latent_channels, 8, 8)
    with torch.no_grad():
        a = m(x["latents"], x["timestep"], x["text"], reference_latent=ref_a)
        b = m(x["latents"], x["timestep"], x["text"], reference_latent=ref_a * 2)
        c = m(x["latents"], x["timestep"], x["text"])
    assert a.shape == c.shape == (2, cfg.latent_channels, 3, 8, 8)
    assert (a - b).abs().max() > 1e-4 and (a - c).abs().max() > 1e-4


def test_mpm_alignment_modes():
    mod = MAdaNorm(4, 6)
    mod.gate.data.fill_(1.0)
    feats = torch.randn(1, 5, 4)  # 5 spatial positions
    x = torch.randn(1, 3 * 5, 6)  # reference frame + 2 video frames
    ref_mode = MotionModulation(feats, 1.0, "reference", 3).apply(mod, x)
    all_mode = MotionModulation(feats, 1.0, "all_frames", 3).apply(mod, x)
    assert torch.equal(ref_mode[:, 10:], x[:, 10:])  # the authors' layout: last frame unmodulated
    assert not torch.equal(all_mode[:, 10:], x[:, 10:])
    torch.testing.assert_close(ref_mode[:, :10], all_mode[:, :10])
    scale, shift = mod.modulation(feats, 1.0)
    torch.testing.assert_close(all_mode[:, :5], x[:, :5] * (1 + scale) + shift)


def test_motion_encoder_layout():
    table = sinusoid_table(10, 8)
    assert table.shape == (1, 10, 8)
    assert table[0, 0].tolist() == pytest.approx([0, 1, 0, 1, 0, 1, 0, 1])  # sin(0), cos(0) interleaved
    assert table[0, 3, 0].item() == pytest.approx(torch.sin(torch.tensor(3.0)).item())
    enc = MotionEncoder(MORE4D_TINY.motion_encoder)
    keys = set(enc.state_dict())
    assert {"trunk.pos_embed", "trunk.patch_embed.proj.1.weight", "trunk.blocks.0.attn.qkv.weight", "trunk.norm.weight"} <= keys
    out = enc(torch.rand(2, 3, 50, 70))
    g = MORE4D_TINY.motion_encoder.grid
    assert out.shape == (2, MORE4D_TINY.motion_encoder.embed_dim, g, g)
    assert not any(p.requires_grad for p in enc.parameters())


def test_wrong_inputs_are_explained():
    cfg = MORE4D_TINY
    m = _model(cfg)
    x = _inputs(cfg)
    with pytest.raises(InputError, match="latent channels"):
        m(x["latents"][:, :5], x["timestep"], x["text"])
    i2v = _model(TINY_I2V)
    y = _inputs(TINY_I2V)
    with pytest.raises(InputError, match="CLIP image tokens"):
        i2v(y["latents"], y["timestep"], y["text"])
    with pytest.raises(InputError, match="divisible"):
        STraGConfig(dim=50, num_heads=4)
    with pytest.raises(InputError, match="text_len = 512"):
        MORE4D_TINY.replace(image_dim=8)


def test_14b_config_on_the_meta_device():
    from more4d_core.models.config import MORE4D_14B

    with torch.device("meta"):
        m = STraGTransformer.from_stgconfig(MORE4D_14B)
    total = sum(p.numel() for p in m.parameters())
    mpm = sum(p.numel() for n, p in m.named_parameters() if "spatial_guidance" in n or n.startswith(("feature_adapter", "omnimae")))
    image_xattn = sum(p.numel() for n, p in m.named_parameters() if ".add_" in n or "norm_added" in n or "image_embedder" in n)
    assert all(p.is_meta for p in m.parameters())
    assert 14.2e9 < total - mpm - image_xattn < 14.4e9  # Wan2.1 14B text-to-video backbone
    assert 2.0e9 < image_xattn < 2.2e9  # CLIP image cross-attention of the i2v-type Fun model
    assert 0.7e9 < mpm < 0.75e9
