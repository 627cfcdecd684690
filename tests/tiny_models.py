"""Builders of tiny, randomly initialized stand-ins for the large models (written the way users
have them on disk), shared by the tests."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from more4d_core.models.config import MORE4D_TINY

# every feature of the 14B configuration at toy size: Wan VAE codec, umT5, CLIP tokens, MPM
TINY_FULL = MORE4D_TINY.replace(
    name="tiny-full",
    image_dim=24,
    image_tokens=5,
    text_len=512,
    text_dim=16,
    text_encoder="umt5",
    codec="wan_vae",
    latent_channels=4,
    spatial_compression=8,
    vae_base_dim=8,
    vae_z_dim=4,
    adaptor_channels=8,
    normalization="reference",
    reference_image="zero",
    mpm_alignment="reference",
)


def save_tiny_model(path: Path, config) -> Path:
    """A single-file model of ``config`` with random weights (seed 0), as the training exports write them."""
    from more4d_core.checkpoints.bundle import save_bundle
    from more4d_core.generator import build_generator

    gen = build_generator(config, seed=0)
    save_bundle(path, config, {"transformer": gen.transformer, "codec": gen.codec, "text_encoder": gen.text_encoder}, {})
    return path


def through_the_defaults_tool(folder: Path, name: str, flags: list[str]):
    """A tiny model with the pixel gate and rigid segments (``folder/m.safetensors``), the defaults tool
    run on it with ``flags`` into ``folder/name``: (the model's path, the config written, that config
    after ``set_defaults`` turns the segments off)."""
    from more4d_core.checkpoints.bundle import read_header
    from more4d_core.checkpoints.defaults import main, set_defaults

    model = save_tiny_model(folder / "m.safetensors", GATED_DCT.replace(motion_gate_pixels=True, rigid_segments=True))
    assert main([str(model), "--out", str(folder / name), *flags]) == 0
    off = set_defaults(folder / name, folder / "off.safetensors", rigid_segments=False)
    return model, read_header(folder / name).config, read_header(off).config


def save_tiny_vae(folder: Path) -> Path:
    from diffusers import AutoencoderKLWan

    torch.manual_seed(1)
    vae = AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 1, 1, 1], latents_mean=[0.1] * 4, latents_std=[2.0] * 4)
    vae.save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_umt5(folder: Path, d_model: int = 16) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    torch.manual_seed(2)
    words = ["<pad>", "</s>", "<unk>", "a", "the", "ball", "cat", "slides", "left", "right", "moves"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>")
    fast.save_pretrained(folder / "tokenizer")
    cfg = UMT5Config(vocab_size=len(words), d_model=d_model, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                     relative_attention_num_buckets=8, relative_attention_max_distance=16, pad_token_id=0,
                     eos_token_id=1, decoder_start_token_id=0)
    UMT5EncoderModel(cfg).save_pretrained(folder / "text_encoder", safe_serialization=True)
    return folder


def save_tiny_clip(folder: Path, hidden: int = 24) -> Path:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(3)
    cfg = CLIPVisionConfig(hidden_size=hidden, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=16, projection_dim=hidden)
    CLIPVisionModel(cfg).save_pretrained(folder / "image_encoder", safe_serialization=True)
    return folder


def save_encoder_model(path: Path, seed: int):
    """A tiny generator with an object encoder whose map into the tokens is not zero (as after training),
    saved as a single-file model at ``path``; returns the generator."""
    from more4d_core.checkpoints.bundle import save_bundle
    from more4d_core.generator import build_generator

    cfg = MORE4D_TINY.replace(object_encoder="conv")  # the named config has none; the file decides
    gen = build_generator(cfg, seed=seed)
    with torch.no_grad():
        gen.transformer.object_encoder.proj.weight.normal_(0, 0.1)
    save_bundle(path, cfg, {"transformer": gen.transformer, "codec": gen.codec, "text_encoder": gen.text_encoder}, {})
    return gen


def record_generate_option(monkeypatch, gen, option: str) -> list:
    """Replace ``gen.generate`` by a stand-in that returns still tracks and records, per call, the keyword
    ``option`` it was given (None when absent): what an evaluation passes to every generation."""
    from types import SimpleNamespace

    seen = []

    def fake_generate(image, depth, intrinsics, prompt, **kwargs):
        seen.append(kwargs.get(option))
        return SimpleNamespace(points=torch.zeros(gen.config.num_frames, image.shape[0] * image.shape[1], 3))

    monkeypatch.setattr(gen, "generate", fake_generate)
    return seen


# a tiny model with an object encoder and a motion gate, the camera and inputs its tests generate from
TINY_GATE = MORE4D_TINY.replace(object_encoder="conv", object_encoder_width=16, motion_gate="attention",
                                motion_gate_width=2)
GATE_INTRINSICS = torch.tensor([[30.0, 0, 16], [0, 30.0, 16], [0, 0, 1]])
# the same gate on the small models' dct codec with its depth-guided decoder (the pixel gate's setting)
GATED_DCT = MORE4D_TINY.replace(codec="dct", dct_coefficients=8, latent_channels=24, spatial_compression=4,
                                normalization="focal", depth_condition="max_ratio", decode_guide="depth",
                                object_encoder="conv", object_encoder_width=16, motion_gate="attention",
                                motion_gate_width=2, motion_gate_threshold=0.5)


def gate_inputs(seed=2):
    """A random 32x32 image and a depth between 1 and 2."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(32, 32, 3, generator=g), torch.rand(32, 32, generator=g) + 1.0


def force_gate(gate, logit: float) -> None:
    """Every position's "moves" score: ``logit`` above "still" for any real word (query 0, key bias ``logit``)."""
    with torch.no_grad():
        for p in gate.parameters():
            p.zero_()
        gate.query.bias[0] = 1.0
        gate.key.bias[0] = logit * math.sqrt(gate.width)


def record_decoded_latents(monkeypatch, gen) -> list:
    """Keep, per generation, a copy of the latents ``gen`` hands its codec to decode (what the sampler and the gate
    made), decoding them as before."""
    seen = []
    decode = gen.codec.decode_tracks

    def spy(latents, *args, **kwargs):
        seen.append(latents.detach().clone())
        return decode(latents, *args, **kwargs)

    monkeypatch.setattr(gen.codec, "decode_tracks", spy)
    return seen


def node_switch_results(monkeypatch, gen, widget: str, read) -> dict:
    """The Generate node run on ``gen`` (a 32 x 32 image, an object at depth 1 over a depth of 3, the depth a depth
    map's) with its auto/on/off ``widget`` at each value: ``{value: read(scene.metadata)}``; checks the widget is
    offered as auto/on/off, default auto."""
    from contextlib import nullcontext

    from more4d_core.cache import MODEL_CACHE
    from more4d_core.depth import DepthResult
    from nodes.generate_nodes import GenerateTrajectories

    monkeypatch.setattr("nodes.generate_nodes.require_handle", lambda *a: None)
    monkeypatch.setattr(MODEL_CACHE, "use", lambda handle: nullcontext(gen))
    spec = GenerateTrajectories.INPUT_TYPES()["optional"][widget]
    assert spec[0] == ["auto", "on", "off"] and spec[1]["default"] == "auto"
    depth = torch.full((32, 32), 3.0)
    depth[10:19, 10:19] = 1.0
    image = torch.rand(1, 32, 32, 3, generator=torch.Generator().manual_seed(2))
    result = DepthResult(depth, GATE_INTRINSICS, torch.ones(32, 32, dtype=torch.bool), "external")
    used = {}
    for value in ("auto", "off", "on"):
        (scene,) = GenerateTrajectories().generate(object(), image, result, "the ball moves right", "", 0, 1, 0.0, 5.0,
                                                   5, 8.0, 1.0, "32", **{widget: value})
        used[value] = read(scene.metadata)
    return used
