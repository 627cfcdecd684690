"""Checkpoint layouts: the authors' (sharded, original Wan names), diffusers folders, our single
file; safe legacy loading; mismatch reports; meta-device materialization."""

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_models import TINY_FULL

from more4d_core.checkpoints import CheckpointMismatchError, keymap, load_transformer, save_authors_layout, save_bundle
from more4d_core.checkpoints.convert import convert
from more4d_core.checkpoints.io import load_pickle_weights
from more4d_core.checkpoints.vae_loading import load_adaptor, load_wan_vae
from more4d_core.errors import FormatError, InputError
from more4d_core.generator import build_generator, load_generator
from more4d_core.models.config import MORE4D_TINY
from more4d_core.models.dit import STraGTransformer
from more4d_core.models.vae_adaptors import DecoderAdaptor, EncoderAdaptor

CFG = TINY_FULL


def _model(cfg=CFG, seed=0):
    torch.manual_seed(seed)
    m = STraGTransformer.from_stgconfig(cfg).eval()
    for blk in m.blocks:
        blk.spatial_guidance_self.gate.data.normal_()
        blk.spatial_guidance_ffn.gate.data.normal_()
    return m


def _forward(m, seed=0):
    cfg = m.cfg
    g = torch.Generator().manual_seed(seed)
    c = cfg.latent_channels
    with torch.no_grad():
        return m(
            torch.randn(1, 4 * c, 2, 4, 4, generator=g),
            torch.tensor([700.0]),
            torch.randn(1, cfg.text_len, cfg.text_dim, generator=g),
            image_tokens=torch.randn(1, cfg.image_tokens, cfg.image_dim, generator=g),
            reference_latent=torch.randn(1, c, 4, 4, generator=g),
            motion_features=m.encode_motion(torch.rand(1, 3, 16, 16, generator=g)),
        )


def _authors_checkpoint(tmp_path, model, extra=None, shards=3):
    folder = save_authors_layout(model, tmp_path / "transformer", shards=shards)
    if extra:
        save_file(extra, str(folder / "extra.safetensors"))
        index = json.loads((folder / "diffusion_pytorch_model.safetensors.index.json").read_text())
        index["weight_map"].update({k: "extra.safetensors" for k in extra})
        (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    return folder


def test_authors_layout_loads_exactly(tmp_path):
    model = _model()
    mae_parts = {
        "omnimae_extractor.trunk.mask_token": torch.zeros(1, 32),
        "omnimae_extractor.trunk.decoder.decoder_embed.weight": torch.zeros(16, 32),
        "omnimae_extractor.head.weight": torch.zeros(8, 16),
    }
    folder = _authors_checkpoint(tmp_path, model, extra=mae_parts)
    keys = set().union(*(load_file(str(p)).keys() for p in folder.glob("*.safetensors")))
    assert "blocks.0.self_attn.q.weight" in keys and "head.head.weight" in keys and "img_emb.proj.1.weight" in keys
    assert "blocks.1.spatial_guidance_ffn.gate" in keys and "omnimae_extractor.trunk.patch_embed.proj.1.weight" in keys
    loaded, report = load_transformer(folder, config=CFG)
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    assert sum(report.dropped.values()) == 3
    assert torch.equal(_forward(loaded), _forward(model))


def test_authors_layout_config_is_inferred(tmp_path):
    model = _model()
    folder = _authors_checkpoint(tmp_path, model)
    loaded, _ = load_transformer(folder, base=CFG)
    for field in ("dim", "num_layers", "ffn_dim", "num_heads", "latent_channels", "image_dim", "use_mpm", "use_reference_tokens"):
        assert getattr(loaded.cfg, field) == getattr(CFG, field), field
    assert torch.equal(_forward(loaded), _forward(model))


def test_key_map_round_trips():
    for key in _model().state_dict():
        theirs = keymap.ours_to_authors(key)
        assert keymap.authors_to_ours(theirs) == key


def test_mismatches_are_reported_by_name(tmp_path):
    model = _model()
    folder = _authors_checkpoint(tmp_path, model, shards=1)
    shard = next(folder.glob("diffusion*.safetensors"))
    state = load_file(str(shard))
    state["blocks.1.ffn.0.weight"] = torch.zeros(7, 3)
    del state["blocks.0.cross_attn.k_img.weight"]
    state["blocks.0.surprise.weight"] = torch.zeros(2)
    save_file(state, str(shard))
    index = folder / "diffusion_pytorch_model.safetensors.index.json"
    index.unlink()
    with pytest.raises(CheckpointMismatchError) as err:
        load_transformer(folder, config=CFG)
    text = str(err.value)
    assert "blocks.1.ffn.0.weight: checkpoint [7, 3]" in text
    assert "blocks.0.attn2.add_k_proj.weight" in text and "missing" in text
    assert "blocks.0.surprise.weight" in text and "unexpected" in text


def test_fun_control_48_channels_are_widened_with_zeros(tmp_path):
    model = _model()
    folder = _authors_checkpoint(tmp_path, model, shards=1)
    shard = next(folder.glob("diffusion*.safetensors"))
    state = load_file(str(shard))
    c = CFG.latent_channels
    state["patch_embedding.weight"] = state["patch_embedding.weight"][:, : 3 * c].clone()
    save_file(state, str(shard))
    loaded, _ = load_transformer(folder, config=CFG)
    w = loaded.patch_embedding.weight
    assert w.shape[1] == 4 * c and not w[:, 3 * c :].any()
    torch.testing.assert_close(w[:, : 3 * c], model.patch_embedding.weight[:, : 3 * c])


def test_diffusers_folder_and_precision(tmp_path):
    model = _model()
    model.save_pretrained(tmp_path / "ours", safe_serialization=True)
    loaded, report = load_transformer(tmp_path / "ours")
    assert report.missing == [] and torch.equal(_forward(loaded), _forward(model))
    half, _ = load_transformer(tmp_path / "ours", dtype=torch.bfloat16)
    assert half.patch_embedding.weight.dtype == torch.bfloat16
    assert half.blocks[0].scale_shift_table.dtype == torch.float32  # modulation tables stay fp32
    assert half.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32
    assert not any(t.is_meta for t in list(half.parameters()) + list(half.buffers()))


def test_legacy_pickles_only_with_weights_only(tmp_path):
    model = _model(MORE4D_TINY)
    torch.save(model.state_dict(), tmp_path / "weights.bin")
    assert set(load_pickle_weights(tmp_path / "weights.bin")) == set(model.state_dict())

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "evil.bin", "wb") as fh:
        pickle.dump({"x": Evil()}, fh)
    with pytest.raises(FormatError, match="weights_only=True"):
        load_pickle_weights(tmp_path / "evil.bin")
    written = convert(tmp_path / "weights.bin", tmp_path / "weights.safetensors")
    converted = load_file(str(written[0]))
    assert all(torch.equal(converted[k], v) for k, v in model.state_dict().items())
    shards = convert(tmp_path / "weights.bin", tmp_path / "sharded", max_shard_bytes=20_000)
    assert len(shards) > 1 and (tmp_path / "sharded" / "model.safetensors.index.json").is_file()


def test_vae_and_adaptors_in_the_authors_layout(tmp_path):
    from tiny_models import save_tiny_vae

    vae_dir = save_tiny_vae(tmp_path / "vae")
    vae = load_wan_vae(tmp_path)  # a repository folder with vae/
    assert vae.config.z_dim == 4
    prefixed = {f"model.{k}": v for k, v in load_wan_vae(vae_dir).state_dict().items()}
    torch.save(prefixed, tmp_path / "finetuned_vae.bin")  # the authors' fine-tuned VAE: 'model.' prefix
    again = load_wan_vae(tmp_path / "finetuned_vae.bin", config=dict(vae.config))
    assert all(torch.equal(a, b) for a, b in zip(vae.state_dict().values(), again.state_dict().values()))
    for kind, cls in (("encoder", EncoderAdaptor), ("decoder", DecoderAdaptor)):
        module = cls(8)
        (tmp_path / f"{kind}_prompt").mkdir()
        torch.save(module.state_dict(), tmp_path / f"{kind}_prompt" / "pytorch_model.bin")
        loaded = load_adaptor(tmp_path / f"{kind}_prompt", kind, 8)
        assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(CheckpointMismatchError):
        load_adaptor(tmp_path / "encoder_prompt", "decoder", 8)


def test_bundle_round_trip_reproduces_generation(tmp_path):
    gen = build_generator(MORE4D_TINY, seed=5)
    for blk in gen.transformer.blocks:
        blk.spatial_guidance_self.gate.data.fill_(0.5)
    gen.codec.motion_scale.fill_(0.25)
    path = save_bundle(tmp_path / "tiny.safetensors", MORE4D_TINY,
                       {"transformer": gen.transformer, "codec": gen.codec, "text_encoder": gen.text_encoder},
                       {"seed": 5, "recipe": "test"})
    loaded = load_generator(path)
    assert loaded.info == {"seed": 5, "recipe": "test"} and loaded.codec.motion_scale.item() == 0.25
    image, depth = torch.rand(32, 32, 3), torch.rand(32, 32) + 1
    k = torch.tensor([[30.0, 0, 16], [0, 30.0, 16], [0, 0, 1]])
    a = gen.generate(image, depth, k, "the ball slides left", seed=1)
    b = loaded.generate(image, depth, k, "the ball slides left", seed=1)
    assert torch.equal(a.points, b.points)
    with pytest.raises(FormatError, match="not a MoRe4D model"):
        from more4d_core.checkpoints.bundle import read_header

        save_file({"x": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
        read_header(tmp_path / "plain.safetensors")


def test_motion_encoder_from_an_omnimae_file(tmp_path):
    from more4d_core.checkpoints.transformer_loading import load_motion_encoder
    from more4d_core.models.motion_encoder import MotionEncoder

    model = _model(MORE4D_TINY)
    torch.manual_seed(9)
    other = MotionEncoder(MORE4D_TINY.motion_encoder)
    weights = dict(other.state_dict())
    weights["trunk.mask_token"] = torch.zeros(1, 32)
    weights["trunk.decoder.decoder_embed.weight"] = torch.zeros(4, 32)
    weights["head.weight"] = torch.zeros(4, 4)
    torch.save(weights, tmp_path / "vitb_pretrain.torch")
    report = load_motion_encoder(model, tmp_path / "vitb_pretrain.torch")
    assert sum(report.dropped.values()) == 3 and report.missing == []
    for key, value in other.state_dict().items():
        assert torch.equal(model.omnimae_extractor.state_dict()[key], value)


def test_config_fields_added_later_take_the_named_configs_value():
    from more4d_core.models.config import MORE4D_SMALL, STraGConfig

    old = MORE4D_SMALL.to_dict()
    del old["still_threshold"]  # a file written before the field existed
    assert STraGConfig.from_dict(old) == MORE4D_SMALL
    custom = {**old, "name": "my-model"}
    assert STraGConfig.from_dict(custom).still_threshold == 0.0  # unknown names: the dataclass default
    with pytest.raises(InputError, match="unknown model config fields"):
        STraGConfig.from_dict({**old, "colour": 1})


def test_version_1_configs_keep_the_min_max_depth_they_were_trained_with():
    from more4d_core.models.config import MORE4D_SMALL, STraGConfig

    assert MORE4D_SMALL.depth_condition == "max_ratio"
    v1 = MORE4D_SMALL.to_dict()
    v1["config_version"] = 1
    del v1["depth_condition"]  # version 1 had no such field: every model then saw min-max depth
    assert STraGConfig.from_dict(v1).depth_condition == "minmax"
    assert STraGConfig.from_dict(v1).replace(depth_condition="max_ratio") == MORE4D_SMALL
    with pytest.raises(InputError, match="depth_condition"):
        MORE4D_SMALL.replace(depth_condition="log")
    with pytest.raises(InputError, match="normalization"):
        MORE4D_SMALL.replace(normalization="pixels")



def test_without_config_json_an_unknown_size_asks_for_the_head_count(tmp_path):
    # 48 wide with 6 heads and 3 blocks: no architecture we know, and 48 / 128 would have "guessed" 1 head
    cfg = CFG.replace(num_heads=6, num_layers=3)
    model = _model(cfg)
    folder = _authors_checkpoint(tmp_path, model)
    (folder / "config.json").unlink()
    with pytest.raises(InputError, match="num_heads") as err:
        load_transformer(folder, base=CFG.replace(num_layers=40))
    assert "config.json" in str(err.value) and "48 wide, 3 blocks" in str(err.value)
    loaded, _ = load_transformer(folder, num_heads=6, base=CFG)
    assert loaded.cfg.num_heads == 6
    assert torch.equal(_forward(loaded), _forward(model))
    with pytest.raises(InputError, match="does not divide"):
        load_transformer(folder, num_heads=5, base=CFG)


def test_head_counts_of_known_architectures_come_from_their_published_configs():
    from more4d_core.checkpoints.transformer_loading import config_from_weights

    def shapes(dim, layers, ffn):
        out = {"patch_embedding.weight": torch.Size([dim, 64, 1, 2, 2]), "head.head.weight": torch.Size([64, dim]),
               "blocks.0.ffn.0.weight": torch.Size([ffn, dim]), "time_embedding.0.weight": torch.Size([dim, 256]),
               "text_embedding.0.weight": torch.Size([dim, 4096])}
        out.update({f"blocks.{i}.norm3.weight": torch.Size([dim]) for i in range(layers)})
        return out

    # Wan2.1-T2V-1.3B config.json: dim 1536, 30 layers, 12 heads; Wan2.1-14B: dim 5120, 40 layers, 40 heads
    small_base = MORE4D_TINY.replace(use_mpm=False)
    assert config_from_weights(shapes(1536, 30, 8960), small_base).num_heads == 12
    assert config_from_weights(shapes(5120, 40, 13824), small_base).num_heads == 40


@pytest.mark.parametrize("content", [b"", b"\x01\x02", b"garbage" * 40, None])
def test_unreadable_safetensors_name_the_file(tmp_path, content):
    from more4d_core.checkpoints.bundle import read_header
    from more4d_core.checkpoints.io import safetensors_metadata

    path = tmp_path / "model.safetensors"
    if content is None:  # a real file cut short
        save_file({"w": torch.zeros(64, 64)}, str(path))
        path.write_bytes(path.read_bytes()[:200])
    else:
        path.write_bytes(content)
    for reader in (safetensors_metadata, read_header):  # the generic reader and the model-bundle reader
        with pytest.raises(FormatError, match=r"model\.safetensors \(\d+ bytes\) is not a readable \.safetensors file"):
            reader(path)


def test_legacy_non_zip_torch_files_load(tmp_path):
    weights = {"a": torch.arange(6.0).view(2, 3), "b": torch.ones(4)}
    torch.save(weights, tmp_path / "old.bin", _use_new_zipfile_serialization=False)  # the pre-1.6 format
    loaded = load_pickle_weights(tmp_path / "old.bin")
    assert set(loaded) == {"a", "b"} and torch.equal(loaded["a"], weights["a"])
    with pytest.raises(FileNotFoundError, match="weights file"):
        load_pickle_weights(tmp_path / "missing.bin")
