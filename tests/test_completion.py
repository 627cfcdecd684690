"""Completion: classical (no holes, known pixels untouched, low flicker), the diffusion completer
with a tiny Fun-InP-shaped model and a LoRA in the reference key format, and native Wan inputs."""

import json
import types

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from tiny_models import save_tiny_clip, save_tiny_umt5, save_tiny_vae

from more4d_core.camera import camera_preset
from more4d_core.checkpoints import keymap
from more4d_core.completion import complete_classical, flicker, inpaint_spatial, motion_maps, to_vace_inputs
from more4d_core.completion.diffusion import load_completer, load_inpaint_transformer, pack_hole_mask
from more4d_core.completion.lora import merge_lora
from more4d_core.data.analytic import make_analytic_scene
from more4d_core.errors import FormatError, InputError
from more4d_core.render import render_scene


@pytest.fixture(scope="module")
def rendered():
    scene = make_analytic_scene(48, 64, 9)
    path = camera_preset("dolly", 9, scene_depth=scene.median_depth())
    return scene, path, render_scene(scene, path, return_point_index=True)


def test_classical_fill_is_complete_and_leaves_rendered_pixels(rendered):
    scene, path, result = rendered
    assert result.holes.any()
    out = complete_classical(result, scene, path)
    assert out.shape == result.frames.shape and torch.isfinite(out).all()
    assert (out >= 0).all() and (out <= 1).all()
    assert torch.equal(out[~result.holes], result.frames[~result.holes])
    maps = motion_maps(result, scene, path)
    base = torch.stack([torch.from_numpy(inpaint_spatial(f.numpy(), h.numpy())) for f, h in zip(result.frames, result.holes)])
    assert flicker(out, result.holes, maps) < flicker(base, result.holes, maps)


def test_classical_needs_the_point_index(rendered):
    scene, path, _ = rendered
    with pytest.raises(InputError, match="return_point_index"):
        complete_classical(render_scene(scene, path), scene, path)


def test_hole_mask_packing():
    holes = torch.zeros(9, 16, 16)
    holes[0, :8] = 1
    holes[5:, :, :8] = 1
    packed = pack_hole_mask(holes, (2, 2))
    assert packed.shape == (1, 4, 3, 2, 2)
    assert torch.equal(packed[0, :, 0], packed[0, :1, 0].expand(4, 2, 2))  # frame 0 repeated four times
    assert packed[0, 0, 0, 0, 0] == 0 and packed[0, 0, 0, 1, 0] == 1  # 1 = known
    assert packed[0, 3, 1, 0, 0] == 1 and packed[0, 0, 2, 0, 0] == 0  # frames 1-4 known, frame 5 holed on the left


def _tiny_inp(tmp_path, lora_modules=("blocks.0.attn1.to_q", "blocks.1.ffn.net.2"), latent_channels=4):
    """A Fun-InP-shaped model (noise | 4 mask channels | masked-video latents in, latents out) in the
    authors' layout, and a LoRA for it; with 4 latent channels it has CLIP image attention (i2v)."""
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    image = latent_channels == 4
    in_dim = 2 * latent_channels + 4
    model = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=in_dim,
                                  out_channels=latent_channels, text_dim=16, freq_dim=16, ffn_dim=32, num_layers=2,
                                  image_dim=24 if image else None, added_kv_proj_dim=16 if image else None)
    folder = tmp_path / "fun_inp"
    folder.mkdir()
    save_file({keymap.ours_to_authors(k): v.contiguous() for k, v in model.state_dict().items()},
              str(folder / "diffusion_pytorch_model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"dim": 16, "num_heads": 2, "num_layers": 2, "ffn_dim": 32, "freq_dim": 16,
                                                    "in_dim": in_dim, "out_dim": latent_channels, "text_dim": 16,
                                                    "model_type": "i2v" if image else "t2v"}))
    lora = {}
    for path in lora_modules:
        layer = model.get_submodule(path)
        name = "lora_unet__" + keymap.ours_to_authors(f"{path}.weight")[: -len(".weight")].replace(".", "_")
        lora[f"{name}.lora_down.weight"] = torch.randn(4, layer.in_features)
        lora[f"{name}.lora_up.weight"] = torch.randn(layer.out_features, 4)
        lora[f"{name}.alpha"] = torch.tensor(2.0)
    save_file(lora, str(tmp_path / "vism_lora.safetensors"))
    return model, folder, lora


def test_fun_inp_loads_and_the_lora_merges(tmp_path):
    model, folder, lora = _tiny_inp(tmp_path)
    loaded = load_inpaint_transformer(folder, dtype=torch.float32)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    before = loaded.blocks[0].attn1.to_q.weight.clone()
    assert merge_lora(loaded, tmp_path / "vism_lora.safetensors", 0.55) == {"merged": 2}
    down = lora["lora_unet__blocks_0_self_attn_q.lora_down.weight"]
    up = lora["lora_unet__blocks_0_self_attn_q.lora_up.weight"]
    torch.testing.assert_close(loaded.blocks[0].attn1.to_q.weight, before + 0.55 * (2.0 / 4) * up @ down)
    save_file({"lora_unet__blocks_9_self_attn_q.lora_down.weight": torch.zeros(1, 1)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(FormatError, match="no matching layer"):
        merge_lora(loaded, tmp_path / "bad.safetensors")


def test_diffusion_completion_end_to_end(tmp_path, monkeypatch):
    _, folder, _ = _tiny_inp(tmp_path)
    save_tiny_vae(tmp_path / "wan" / "vae")
    save_tiny_umt5(tmp_path / "wan")
    save_tiny_clip(tmp_path / "wan")
    completer = load_completer(folder, vae=tmp_path / "wan", text_encoder=tmp_path / "wan", clip=tmp_path / "wan",
                               lora=tmp_path / "vism_lora.safetensors", dtype=torch.float32)
    frames = torch.rand(5, 32, 32, 3)
    holes = torch.zeros(5, 32, 32)
    holes[:, 8:20, 8:20] = 1
    steps = []
    out = completer.complete(frames, holes, "a ball", steps=2, seed=1, progress=lambda i, n: steps.append(i))
    assert out.shape == frames.shape and torch.isfinite(out).all() and steps == [1, 2]
    again = completer.complete(frames, holes, "a ball", steps=2, seed=1)
    assert torch.equal(out, again)
    kept = completer.complete(frames, holes, "a ball", steps=1, preserve_known=True)
    assert torch.equal(kept[holes < 0.5], frames[holes < 0.5])
    with pytest.raises(InputError, match="multiple of"):
        completer.complete(torch.rand(5, 24, 24, 3), torch.zeros(5, 24, 24))

    # ComfyUI's own Wan components: the prompt as CONDITIONING (core's CLIP Text Encode) and a CLIP_VISION
    # replace the loader's umT5 and CLIP; the same states and tokens give the same video
    from more4d_core.sampling.external_conditioning import text_states

    states = completer.text_encoder(["a ball", ""]).float()
    first = completer.clip_tokens(frames[0])

    class CoreClipVision:  # encode_image(image [B, H, W, 3]) -> output.penultimate_hidden_states
        def encode_image(self, image, crop=True):
            assert image.shape == (1, 32, 32, 3) and torch.equal(image[0], frames[0])  # the first rendered frame
            return types.SimpleNamespace(penultimate_hidden_states=first)

    bare = load_completer(folder, vae=tmp_path / "wan", lora=tmp_path / "vism_lora.safetensors", dtype=torch.float32)
    with pytest.raises(InputError, match="without its text encoder: connect the prompt as CONDITIONING"):
        bare.complete(frames, holes, "a ball", steps=1)
    given = text_states([[states[:1], {}]], [[states[1:], {}]], 512, bare.text_dim)
    core = bare.complete(frames, holes, "", steps=2, seed=1, text_states=given, clip_vision=CoreClipVision())
    assert torch.equal(core, out)
    # ... and through the Complete Frames node's positive / negative / clip_vision inputs
    node_out = _complete_frames_node(monkeypatch, bare, frames, holes, positive=[[states[:1], {}]],
                                     negative=[[states[1:], {}]], clip_vision=CoreClipVision())
    assert torch.equal(node_out, out)


def _complete_frames_node(monkeypatch, completer, frames, holes, **inputs):
    """The Complete Frames node's diffusion output (2 steps, guidance 6, seed 1) with ``completer`` as
    its loaded completion model and ``inputs`` on its optional sockets."""
    from more4d_core.cache import MODEL_CACHE
    from nodes.complete_nodes import CompleteFrames
    from nodes.types import RenderBundle

    class Using:
        def __enter__(self):
            return completer

        def __exit__(self, *exc):
            return False

    import nodes.complete_nodes as complete_nodes

    monkeypatch.setattr(complete_nodes, "require_handle", lambda *a: None)
    monkeypatch.setattr(MODEL_CACHE, "use", lambda handle: Using())
    bundle = RenderBundle(types.SimpleNamespace(frames=frames, holes=holes > 0.5, num_frames=len(frames)), None, None)
    (out,) = CompleteFrames().complete(bundle, "diffusion", object(), "", 2, 6.0, 1, False, **inputs)
    return out


def test_vace_inputs():
    frames = torch.rand(3, 4, 5, 3)
    holes = torch.zeros(3, 4, 5, dtype=torch.bool)
    holes[1, 2, 3] = True
    video, mask = to_vace_inputs(frames, holes)
    assert mask.dtype == torch.float32 and mask[1, 2, 3] == 1 and mask.sum() == 1
    assert video[1, 2, 3].tolist() == [0.5, 0.5, 0.5] and torch.equal(video[0], frames[0])


def test_diffusion_completion_under_memory_modes(tmp_path, monkeypatch):
    from more4d_core.memory import modes
    from more4d_core.models.fp8 import FP8Linear

    _, folder, _ = _tiny_inp(tmp_path)
    save_tiny_vae(tmp_path / "wan" / "vae")
    save_tiny_umt5(tmp_path / "wan")
    save_tiny_clip(tmp_path / "wan")
    paths = dict(vae=tmp_path / "wan", text_encoder=tmp_path / "wan", clip=tmp_path / "wan",
                 lora=tmp_path / "vism_lora.safetensors", dtype=torch.float32)
    frames, holes = torch.rand(5, 32, 32, 3, generator=torch.Generator().manual_seed(0)), torch.zeros(5, 32, 32)
    holes[:, 8:20, 8:20] = 1
    plain = load_completer(folder, **paths).complete(frames, holes, "a ball", steps=2, seed=1)
    # float32 weights, 1 of 2 blocks streamed, models visiting the device, guidance in two passes: the same result
    monkeypatch.setitem(modes.MODES, "16gb", modes.MemoryMode("16gb", "bf16", 1, True, False))
    streamed = load_completer(folder, memory="16gb", **paths)
    assert len(streamed.placement.streamers) == 1
    torch.testing.assert_close(streamed.complete(frames, holes, "a ball", steps=2, seed=1), plain, rtol=1e-4, atol=1e-4)
    fp8 = load_completer(folder, memory="24gb", **paths)
    assert isinstance(fp8.transformer.blocks[0].ffn.net[2], FP8Linear)
    out = fp8.complete(frames, holes, "a ball", steps=2, seed=1)
    assert torch.isfinite(out).all() and 0 < (out - plain).abs().mean() < 0.05  # float8 rounding of a toy model


def test_cracks_inside_a_surface_close_and_dis_occlusions_stay_open():
    from more4d_core.completion.classical import close_cracks

    frame = np.zeros((9, 12, 3), np.float32)
    frame[:, :6] = 0.2
    frame[:, 6:] = 0.8
    depth = np.full((9, 12), 2.0, np.float32)
    depth[:, 6:] = 5.0  # a far surface on the right
    hole = np.zeros((9, 12), bool)
    hole[4, 2] = True  # a one-pixel crack inside the near surface
    hole[:, 6] = True  # a one-pixel gap between the near and the far surface: a dis-occlusion
    filled, left, new_depth = close_cracks(frame, hole, depth)
    assert not left[4, 2] and filled[4, 2] == pytest.approx([0.2, 0.2, 0.2]) and new_depth[4, 2] == pytest.approx(2.0)
    assert left[:, 6].all()  # neighbours at 2 m and 5 m: not one surface
    assert np.array_equal(filled[~hole], frame[~hole])


def test_temporal_share_is_checked(rendered):
    scene, path, result = rendered
    with pytest.raises(InputError, match="temporal share"):
        complete_classical(result, scene, path, temporal=1.0)
    still = complete_classical(result, scene, path, temporal=0.0)
    assert torch.equal(still[~result.holes], result.frames[~result.holes])


class CoreWanVAE:
    """ComfyUI's VAE surface (comfy.sd.VAE): encode(frames [T, H, W, 3] in 0..1) -> raw latents [1, C, T', h, w];
    decode(raw latents) -> frames [1, T, H, W, 3] in 0..1; latent_channels, latent_dim."""

    latent_dim = 3

    def __init__(self, vae):
        self.vae = vae
        self.latent_channels = vae.config.z_dim
        self.calls = []

    def encode(self, frames):
        self.calls.append("encode")
        assert frames.ndim == 4 and frames.shape[-1] == 3 and 0 <= frames.min() and frames.max() <= 1
        return self.vae.encode(frames.permute(3, 0, 1, 2).unsqueeze(0) * 2 - 1).latent_dist.mode()

    def decode(self, latents):
        self.calls.append("decode")
        return ((self.vae.decode(latents).sample.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 4, 1)


def test_the_wan21_latent_constants_are_wans():
    from more4d_core.models.comfy_vae import wan21_latent_statistics

    mean, std = wan21_latent_statistics()
    # Wan2.1's published per-channel latent statistics (its VAE code; ComfyUI's Wan21 latent format)
    assert mean.shape == std.shape == (1, 16, 1, 1, 1)
    assert mean.flatten()[:4].tolist() == pytest.approx([-0.7571, -0.7089, -0.9113, 0.1075])
    assert std.flatten()[-4:].tolist() == pytest.approx([1.6382, 1.1253, 2.8251, 1.9160])


def test_diffusion_completion_with_cores_vae(tmp_path, monkeypatch):
    from diffusers import AutoencoderKLWan

    _, folder, _ = _tiny_inp(tmp_path, latent_channels=16)  # on the Wan 2.1 VAE's 16 latent channels
    torch.manual_seed(1)
    vae = AutoencoderKLWan(base_dim=8, z_dim=16, dim_mult=[1, 1, 1, 1])  # diffusers' defaults: Wan 2.1's statistics
    vae.save_pretrained(tmp_path / "vae", safe_serialization=True)
    frames = torch.rand(5, 32, 32, 3)
    holes = torch.zeros(5, 32, 32)
    holes[:, 8:20, 8:20] = 1
    states = torch.randn(2, 512, 16)
    with_file = load_completer(folder, vae=tmp_path / "vae", dtype=torch.float32)
    expected = with_file.complete(frames, holes, steps=2, seed=1, text_states=states)

    bare = load_completer(folder, vae=None, dtype=torch.float32)
    with pytest.raises(InputError, match="without a VAE: connect core's Load VAE"):
        bare.complete(frames, holes, steps=1, text_states=states)
    core = CoreWanVAE(with_file.latents.vae)
    got = bare.complete(frames, holes, steps=2, seed=1, text_states=states, vae=core)
    assert core.calls == ["encode", "decode"]
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=0)

    class OtherVAE(CoreWanVAE):  # e.g. the Wan 2.2 VAE (48 channels) or an image VAE
        latent_dim = 2

    with pytest.raises(InputError, match="needs the Wan 2.1 video VAE"):
        bare.complete(frames, holes, steps=1, text_states=states, vae=OtherVAE(with_file.latents.vae))
    with pytest.raises(InputError, match="expected core's VAE"):
        bare.complete(frames, holes, steps=1, text_states=states, vae="wan_2.1_vae.safetensors")

    # through the Complete Frames node's vae input
    node_out = _complete_frames_node(monkeypatch, bare, frames, holes, positive=[[states[:1], {}]],
                                     negative=[[states[1:], {}]], vae=core)
    torch.testing.assert_close(node_out, expected, atol=2e-5, rtol=0)
