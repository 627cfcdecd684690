"""ComfyUI's single-file Wan components, as every Wan user already has them.

* ``models/text_encoders/umt5_xxl_fp16.safetensors`` / ``umt5_xxl_fp8_e4m3fn_scaled.safetensors``:
  transformers' ``UMT5EncoderModel`` tensor names without prefix, the tokenizer inside the file (a
  ``spiece_model`` uint8 tensor: a serialized SentencePiece model), and in the fp8 file the scaled
  float8 format — a ``scaled_fp8`` marker tensor, float8 linear weights with a float32
  ``<layer>.scale_weight`` each (``W = weight * scale_weight``; ``scale_input`` only serves float8
  matmuls and is ignored). Embeddings, norms and relative-attention biases are never float8.
* ``models/clip_vision/clip_vision_h.safetensors``: transformers' ``CLIPVisionModelWithProjection``
  names (``vision_model.*``, ``visual_projection.weight``); Wan reads the penultimate layer.
* ``models/vae/wan_2.1_vae.safetensors``: the original Wan VAE names, read by
  :func:`.vae_loading.load_wan_vae` (converted to diffusers names there).

Head counts and the relative-attention distance are not stored in the weights; they come from the
published configurations (umT5-XXL: 64 heads of 64, distance 128; CLIP ViT-H/14: 16 heads, GELU).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from ..errors import FormatError
from ..models.fp8 import FLOAT8, FP8Linear, in_umt5_blocks, quantize_linears
from .apply import load_into
from .io import safe_open

SPIECE_KEY = "spiece_model"
MARKER_KEY = "scaled_fp8"
UMT5_MAX_DISTANCE = 128  # umT5-XXL's relative_attention_max_distance (published config)
# CLIP vision towers by (width, depth): heads and activation (ViT-H/14 of open_clip, ViT-L/14 of OpenAI)
CLIP_TOWERS = {(1280, 32): (16, "gelu"), (1024, 24): (16, "quick_gelu")}


def _keys(path: Path) -> list[str]:
    with safe_open(str(path), framework="pt") as fh:
        return list(fh.keys())


def scaled_weights(path: Path, keep_float8: set[str], dtype: torch.dtype) -> Iterator[tuple[str, torch.Tensor]]:
    """The tensors of a (possibly fp8-scaled) file, one at a time: float8 weights of layers named in
    ``keep_float8`` come with their ``scale_weight``; other float8 weights are dequantized to ``dtype``
    (``weight * scale_weight``); markers, tokenizers and input scales are left out."""
    with safe_open(str(path), framework="pt") as fh:
        keys = set(fh.keys())
        for key in sorted(keys):
            if key in (SPIECE_KEY, MARKER_KEY) or key.endswith((".scale_input", ".input_scale")):
                continue
            if key.endswith(".scale_weight"):
                if key[: -len(".scale_weight")] in keep_float8:
                    yield key, fh.get_tensor(key)
                continue
            tensor = fh.get_tensor(key)
            layer = key[: -len(".weight")] if key.endswith(".weight") else None
            scale_key = f"{layer}.scale_weight"
            if tensor.dtype in FLOAT8 and layer not in keep_float8:
                scale = fh.get_tensor(scale_key).float() if scale_key in keys else torch.ones(())
                tensor = (tensor.float() * scale).to(dtype)
            elif layer in keep_float8 and tensor.dtype in FLOAT8 and scale_key not in keys:
                yield scale_key, torch.ones((), dtype=torch.float32)  # plain float8: a scale of 1
            yield key, tensor


# -- umT5 ----------------------------------------------------------------------------------------
class SentencePieceTokens:
    """umT5 tokenization as Wan and ComfyUI do it: SentencePiece ids, the end-of-sequence id (1)
    appended, no start token, padded with 0 to ``max_len`` (longer prompts are cut there)."""

    def __init__(self, model_proto: bytes, max_len: int = 512, eos: int = 1, pad: int = 0):
        import sentencepiece

        self.sp = sentencepiece.SentencePieceProcessor(model_proto=model_proto)
        self.max_len, self.eos, self.pad = max_len, eos, pad

    def __call__(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.full((len(prompts), self.max_len), self.pad, dtype=torch.long)
        mask = torch.zeros(len(prompts), self.max_len, dtype=torch.long)
        for i, p in enumerate(prompts):
            seq = (self.sp.encode(str(p)) + [self.eos])[: self.max_len]
            ids[i, : len(seq)] = torch.tensor(seq)
            mask[i, : len(seq)] = 1
        return ids, mask


def is_comfy_umt5(path: str | os.PathLike) -> bool:
    path = Path(path)
    return path.is_file() and path.suffix == ".safetensors" and "encoder.final_layer_norm.weight" in _keys(path)


def load_umt5_file(path: str | os.PathLike, *, dtype: torch.dtype = torch.bfloat16, fp8: bool = False,
                   max_len: int = 512) -> tuple[nn.Module, SentencePieceTokens]:
    """``(UMT5EncoderModel, tokenizer)`` from one of ComfyUI's umT5 files; ``fp8`` keeps (or makes)
    float8 block layers (:func:`..models.fp8.in_umt5_blocks`)."""
    from transformers import UMT5Config, UMT5EncoderModel

    path = Path(path)
    with safe_open(str(path), framework="pt") as fh:
        keys = set(fh.keys())
        if SPIECE_KEY not in keys:
            raise FormatError(f"{path} has no tokenizer ('{SPIECE_KEY}' tensor): use ComfyUI's umt5_xxl_*.safetensors "
                              "(Comfy-Org/Wan_2.1_ComfyUI_repackaged) or a diffusers folder with tokenizer/")
        spiece = bytes(fh.get_tensor(SPIECE_KEY).numpy().tobytes())
        shape = {k: tuple(fh.get_slice(k).get_shape()) for k in keys if k != SPIECE_KEY}
    vocab, d_model = shape["shared.weight"]
    layers = 1 + max(int(m.group(1)) for k in keys if (m := re.match(r"encoder\.block\.(\d+)\.", k)))
    buckets, heads = shape["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
    config = UMT5Config(vocab_size=vocab, d_model=d_model, d_kv=shape["encoder.block.0.layer.0.SelfAttention.q.weight"][0] // heads,
                        d_ff=shape["encoder.block.0.layer.1.DenseReluDense.wi_0.weight"][0], num_layers=layers,
                        num_heads=heads, relative_attention_num_buckets=buckets,
                        relative_attention_max_distance=UMT5_MAX_DISTANCE, feed_forward_proj="gated-gelu",
                        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    with torch.device("meta"):
        model = UMT5EncoderModel(config)
    if fp8:
        quantize_linears(model, dtype, where=in_umt5_blocks)
    keep = {n for n, m in model.named_modules() if isinstance(m, FP8Linear)}

    def tensors():
        for key, tensor in scaled_weights(path, keep, dtype):
            yield key, tensor
            if key == "shared.weight":  # tied: the encoder reads the same embedding
                yield "encoder.embed_tokens.weight", tensor

    load_into(model, tensors(), source=str(path), dtype=dtype, keep_fp32=model._keep_in_fp32_modules or ())
    model.tie_weights()
    model.requires_grad_(False)
    return model.eval(), SentencePieceTokens(spiece, max_len)


# -- CLIP vision ---------------------------------------------------------------------------------
def is_comfy_clip_vision(path: str | os.PathLike) -> bool:
    path = Path(path)
    return path.is_file() and path.suffix == ".safetensors" and \
        "vision_model.embeddings.patch_embedding.weight" in _keys(path)


def load_clip_vision_file(path: str | os.PathLike, *, dtype: torch.dtype = torch.float32) -> nn.Module:
    """transformers' ``CLIPVisionModel`` from ComfyUI's ``clip_vision_*.safetensors`` (the projection
    is not needed: Wan reads the penultimate hidden states)."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    path = Path(path)
    with safe_open(str(path), framework="pt") as fh:
        keys = set(fh.keys())
        shape = {k: tuple(fh.get_slice(k).get_shape()) for k in keys}
    width, _, patch, _ = shape["vision_model.embeddings.patch_embedding.weight"]
    depth = 1 + max(int(m.group(1)) for k in keys if (m := re.match(r"vision_model\.encoder\.layers\.(\d+)\.", k)))
    if (width, depth) not in CLIP_TOWERS:
        raise FormatError(f"{path}: a CLIP vision tower {width} wide with {depth} layers is not one we know "
                          f"(known: {', '.join(f'{w} x {d}' for w, d in CLIP_TOWERS)}); use a transformers folder with config.json")
    heads, act = CLIP_TOWERS[(width, depth)]
    positions = shape["vision_model.embeddings.position_embedding.weight"][0]
    config = CLIPVisionConfig(hidden_size=width, intermediate_size=shape["vision_model.encoder.layers.0.mlp.fc1.weight"][0],
                              num_hidden_layers=depth, num_attention_heads=heads, patch_size=patch,
                              image_size=int(round((positions - 1) ** 0.5)) * patch, hidden_act=act)
    with torch.device("meta"):
        model = CLIPVisionModel(config)

    prefixed = any(k.startswith("vision_model.") for k in model.state_dict())  # transformers < 5 nests the tower

    def tensors():
        for key, tensor in scaled_weights(path, set(), dtype):
            if not key.startswith("visual_projection."):
                yield (key if prefixed else key.removeprefix("vision_model.")), tensor

    load_into(model, tensors(), source=str(path), dtype=dtype, rebuild=_rebuild_position_ids)
    return model.eval()


def _rebuild_position_ids(model: nn.Module, device) -> None:
    """CLIP's non-persistent ``position_ids`` (0 .. positions - 1) after a meta-device build."""
    for module in model.modules():
        ids = module._buffers.get("position_ids")
        if ids is not None and ids.is_meta:
            module._buffers["position_ids"] = torch.arange(ids.shape[-1], device=device).expand(ids.shape).contiguous()
