"""4D-ViSM: diffusion completion of rendered frames with Wan2.1-Fun-InP (+ the MoRe4D LoRA).

Model input per latent frame: ``[noisy (16) | mask (4) | masked-video latents (16)]``. Following
the reference pipeline: the hole mask (1 = hole) zeroes the masked pixels of the [-1, 1] video
before it is encoded; the mask channels are ``1 - hole`` (1 = known) with frame 0 repeated four
times and the frames packed in groups of four, resized to the latent grid. CLIP tokens come from
the first frame (the input view). Flow-matching Euler sampling with text guidance.

Loading: the transformer from the authors' / VideoX-Fun layout (original Wan key names, sharded
safetensors, Wan ``config.json``) or a diffusers folder, the VAE and umT5 as for the trajectory
model, the LoRA merged at a user weight (0.55 by default). Offloading: ``"model"`` keeps only the
running component on the GPU; ``"block"`` streams transformer blocks (diffusers group offload) for
24 GB cards.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import keymap
from ..checkpoints.apply import load_into
from ..checkpoints.io import iter_weights, safe_open
from ..checkpoints.transformer_loading import rebuild_rope
from ..errors import InputError
from ..models.image_context import clip_vision_encoder
from ..models.trajectory_codec import WanVideoLatents
from ..sampling.flow_sampler import guided_velocity, sample_flow, seeded_noise
from .lora import merge_lora

log = logging.getLogger("more4d")
OFFLOAD_MODES = ("none", "model", "block")


def pack_hole_mask(holes: torch.Tensor, latent_hw: tuple[int, int], temporal: int = 4) -> torch.Tensor:
    """Hole mask ``[T, H, W]`` (1 = hole) -> mask latent ``[1, temporal, T', h, w]`` (1 = known)."""
    t = holes.shape[0]
    if (t - 1) % temporal:
        raise InputError(f"frame count {t} must be 1 + a multiple of {temporal}")
    m = holes.float().unsqueeze(0).unsqueeze(0)  # [1, 1, T, H, W]
    m = torch.cat([m[:, :, :1].repeat_interleave(temporal, dim=2), m[:, :, 1:]], dim=2)
    groups = m.shape[2] // temporal
    m = m.view(1, groups, temporal, *m.shape[-2:]).transpose(1, 2)  # [1, temporal, T', H, W]
    known = 1.0 - m
    return F.interpolate(known.flatten(1, 2), size=latent_hw, mode="bilinear", align_corners=False).view(
        1, temporal, groups, *latent_hw)


def _weight_shape(folder: Path, key: str) -> tuple[int, ...] | None:
    from ..checkpoints.io import shard_files

    for shard in shard_files(folder):
        with safe_open(str(shard), framework="pt") as fh:
            if key in fh.keys():
                return tuple(fh.get_slice(key).get_shape())
    return None


def _wan_config(folder: Path) -> dict:
    data = json.loads((folder / "config.json").read_text())
    if data.get("_class_name") == "WanTransformer3DModel":
        return {"diffusers": data}
    image = _weight_shape(folder, "img_emb.proj.0.weight") if data.get("model_type", "i2v") == "i2v" else None
    return {
        "patch_size": tuple(data.get("patch_size", (1, 2, 2))),
        "num_attention_heads": data["num_heads"],
        "attention_head_dim": data["dim"] // data["num_heads"],
        "in_channels": data["in_dim"],
        "out_channels": data["out_dim"],
        "text_dim": data.get("text_dim", 4096),
        "freq_dim": data.get("freq_dim", 256),
        "ffn_dim": data["ffn_dim"],
        "num_layers": data["num_layers"],
        "eps": data.get("eps", 1e-6),
        "image_dim": image[0] if image else None,  # 1280 for CLIP ViT-H
        "added_kv_proj_dim": data["dim"] if image else None,
    }


def load_inpaint_transformer(folder: str | os.PathLike, *, dtype=torch.bfloat16, device="cpu") -> nn.Module:
    """The Fun-InP transformer as a diffusers ``WanTransformer3DModel`` (meta-device build + load)."""
    from diffusers import WanTransformer3DModel

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"Wan2.1-Fun-InP transformer not found: expected {folder / 'config.json'} and its safetensors "
            "(e.g. models/more4d/Wan2.1-Fun-V1.1-14B-InP/ or its transformer/ folder)"
        )
    cfg = _wan_config(folder)
    if "diffusers" in cfg:
        return WanTransformer3DModel.from_pretrained(folder, torch_dtype=dtype).to(device).eval()
    with torch.device("meta"):
        model = WanTransformer3DModel(**cfg)
    load_into(model, iter_weights(folder), source=str(folder), dtype=dtype, device=device,
              rename=keymap.authors_to_ours, keep_fp32=model._keep_in_fp32_modules or (), rebuild=rebuild_rope)
    return model.eval()


class ViSMCompleter:
    """Diffusion completion of rendered videos with holes."""

    def __init__(self, transformer: nn.Module, vae: nn.Module | None, text_encoder: nn.Module | None,
                 clip_tokens: Callable[[torch.Tensor], torch.Tensor] | None, *, device="cpu", offload: str = "none",
                 placement=None):
        if offload not in OFFLOAD_MODES:
            raise InputError(f"offload must be one of {OFFLOAD_MODES}, got {offload!r}")
        self.transformer = transformer
        self.latents = WanVideoLatents(vae) if vae is not None else None  # None: core's VAE comes with each call
        self.text_encoder = text_encoder
        self.clip_tokens = clip_tokens
        self.device = torch.device(device)
        self.offload = offload
        self.placement = placement  # a memory.placement.Placement (memory modes) instead of ``offload``
        if placement is not None:
            placement.install(self.text_encoder, self.latents, transformer=transformer)
        elif offload == "block" and self.device.type == "cuda":
            transformer.enable_group_offload(self.device, torch.device("cpu"), offload_type="block_level",
                                             num_blocks_per_group=1)

    @property
    def text_dim(self) -> int:
        """Width of the text states the transformer reads (umT5-XXL: 4096)."""
        return int(self.transformer.config.text_dim)

    def _video_latents(self, vae):
        """The VAE of this call: core's (``vae``) when given, else the loaded one."""
        if vae is not None:
            from ..models.comfy_vae import ComfyVideoLatents

            return ComfyVideoLatents(vae)
        if self.latents is None:
            raise InputError("the completion model was loaded without a VAE: connect core's Load VAE "
                             "(wan_2.1_vae.safetensors) to Complete Frames' vae input, or give Load Completion "
                             "Model the VAE file")
        return self.latents

    def _on(self, module):
        if not isinstance(module, nn.Module):
            return module  # ComfyUI's own objects: ComfyUI places them
        if self.placement is not None:
            return self.placement.enter(module)
        if self.offload == "model":
            module.to(self.device)
        return module

    def _off(self, module) -> None:
        if not isinstance(module, nn.Module):
            return
        if self.placement is not None:
            self.placement.leave(module)
        elif self.offload == "model" and self.device.type == "cuda":
            module.to("cpu")
            torch.cuda.empty_cache()

    @torch.no_grad()
    def complete(
        self,
        frames: torch.Tensor,
        holes: torch.Tensor,
        prompt: str = "",
        *,
        negative_prompt: str = "",
        steps: int = 50,
        guidance_scale: float = 6.0,
        shift: float = 5.0,
        seed: int = 0,
        preserve_known: bool = False,
        progress=None,
        should_cancel=None,
        text_states: torch.Tensor | None = None,
        clip_vision=None,
        vae=None,
    ) -> torch.Tensor:
        """Completed frames ``[T, H, W, 3]`` (0..1) of ``frames`` with ``holes`` (1 = hole).
        ``text_states`` ``[2, 512, dim]`` (prompt, negative prompt; e.g. from ComfyUI's CONDITIONING) replace the
        text encoder; ``clip_vision`` (ComfyUI's CLIP_VISION) replaces the loaded CLIP encoder; ``vae`` (ComfyUI's
        VAE with the Wan 2.1 VAE) replaces the loaded VAE."""
        frames = torch.as_tensor(frames).float()
        holes = torch.as_tensor(holes).float()
        if frames.ndim != 4 or frames.shape[-1] != 3 or tuple(holes.shape) != tuple(frames.shape[:3]):
            raise InputError(f"need frames [T, H, W, 3] and holes [T, H, W]; got {list(frames.shape)}, {list(holes.shape)}")
        t, h, w = holes.shape
        video_latents = self._video_latents(vae)
        stride = video_latents.spatial * 2
        if h % stride or w % stride:
            raise InputError(f"frame size {w}x{h} must be a multiple of {stride}")
        dtype = next(self.transformer.parameters()).dtype
        video = frames.permute(3, 0, 1, 2).unsqueeze(0) * 2 - 1  # [1, 3, T, H, W]
        masked = video * (holes < 0.5).float().unsqueeze(0).unsqueeze(0)
        masked_lat = self._on(video_latents).encode(masked.to(self.device))
        self._off(video_latents)
        mask_lat = pack_hole_mask(holes, tuple(masked_lat.shape[-2:]), video_latents.temporal).to(masked_lat)
        cond = torch.cat([mask_lat, masked_lat], dim=1).to(dtype)
        if text_states is not None:
            texts = torch.as_tensor(text_states).to(self.device, dtype)
        elif self.text_encoder is None:
            raise InputError("the completion model was loaded without its text encoder: connect the prompt as "
                             "CONDITIONING (core's CLIP Text Encode with the Wan umT5) to positive / negative, or "
                             "give Load Completion Model the umT5 text_encoder file")
        else:
            texts = self._on(self.text_encoder)([prompt, negative_prompt]).to(self.device, dtype)
            self._off(self.text_encoder)
        clip = None
        if clip_vision is not None:
            from ..sampling.external_conditioning import clip_vision_tokens

            clip = clip_vision_tokens(clip_vision, frames[0]).to(self.device, dtype)
        elif self.clip_tokens is not None:
            clip = self.clip_tokens(frames[0]).to(self.device, dtype)
        model = self._on(self.transformer)

        def batched(x, tt, rows):
            n = x.shape[0]
            inputs = torch.cat([x.to(dtype), cond.expand(n, -1, -1, -1, -1)], dim=1)
            return model(inputs, tt, texts[rows],
                         encoder_hidden_states_image=None if clip is None else clip.expand(n, -1, -1),
                         return_dict=False)[0].float()

        noise = seeded_noise(tuple(masked_lat.shape), seed, self.device)
        as_batch = self.placement is None or self.placement.mode.guidance_batch
        latents = sample_flow(guided_velocity(batched, guidance_scale, as_batch=as_batch), noise, steps=steps, shift=shift,
                              progress=progress, should_cancel=should_cancel)
        self._off(self.transformer)
        out = self._on(video_latents).decode(latents.float())
        self._off(video_latents)
        out = ((out[0].permute(1, 2, 3, 0).float().cpu() + 1) / 2).clamp(0, 1)[:t]
        if preserve_known:
            known = (holes < 0.5).unsqueeze(-1)
            out = torch.where(known, frames, out)
        return out


def load_completer(
    transformer: str | os.PathLike,
    *,
    vae: str | os.PathLike | None,
    text_encoder: str | os.PathLike | None = None,
    clip: str | os.PathLike | None = None,
    lora: str | os.PathLike | None = None,
    lora_weight: float = 0.55,
    dtype=torch.bfloat16,
    device="cpu",
    offload: str = "none",
    memory: str | None = None,
    attention: str = "auto",
    compile: bool = False,
) -> ViSMCompleter:
    """Everything 4D-ViSM needs, from local folders and files (ComfyUI's umT5 / CLIP / VAE files
    included; umT5, CLIP and the VAE may be None when ComfyUI's own objects come with each call). ``memory``: a memory mode (:mod:`..memory.modes`, or ``"auto"``) instead of ``offload``:
    the LoRA is merged into the bf16 weights, then the blocks are quantized to float8 when the mode says so."""
    from ..checkpoints.vae_loading import load_wan_vae
    from ..models.text_encoders import UMT5TextEncoder

    mode = placement = None
    if memory is not None:
        from ..memory.placement import Placement, choose_mode
        from ..models.fp8 import in_blocks, quantize_linears

        mode, why = choose_mode(memory, torch.device(device), "vism")
        log.info("MoRe4D ViSM memory mode %s (%s)", mode.describe(), why)
        placement = Placement(mode, device)
    load_device = "cpu" if offload != "none" or mode is not None else device
    model = load_inpaint_transformer(transformer, dtype=dtype, device=load_device)
    if lora is not None:
        merge_lora(model, lora, lora_weight)
    from ..models.attention import compile_blocks, set_attention

    set_attention(model, attention, device)
    if compile:
        compile_blocks(model)
    fp8 = mode is not None and mode.weights == "fp8"
    if fp8:
        quantize_linears(model, dtype, where=in_blocks)
    # without a VAE file the VAE comes from ComfyUI's Load VAE (Complete Frames' vae input)
    vae_model = load_wan_vae(vae, dtype=torch.float32, device=load_device) if vae is not None else None
    # without umT5 the prompt comes as CONDITIONING from ComfyUI's own text encoder (Complete Frames' positive input)
    text = UMT5TextEncoder(text_encoder, dtype=dtype, fp8=fp8).to(load_device) if text_encoder is not None else None
    clip_fn = clip_vision_encoder(clip, load_device) if clip is not None else None
    return ViSMCompleter(model, vae_model, text, clip_fn, device=device, offload=offload, placement=placement)
