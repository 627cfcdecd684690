"""CLIP image tokens for configurations with image cross-attention (the 14B model).

The authors' trajectory model always saw the CLIP tokens of a constant mid-grey image (their
training fed the normalized frame-0 motion, which is zero, mapped to grey; inference passes a
grey image). So the tokens are a constant of the CLIP model: we compute them once from a local
CLIP vision folder (the penultimate layer, 257 tokens of ViT-H/14, as Wan does) and cache them
as a small safetensors file next to the CLIP weights, or read such a file directly.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from ..errors import FormatError
from ..export.atomic import write_file_atomic

GREY = 127.0 / 255.0
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
TOKENS_KEY = "grey_image_tokens"


def clip_vision_encoder(folder: str | os.PathLike, device="cpu"):
    """A function mapping an image ``[H, W, 3]`` (0..1) to CLIP tokens ``[1, tokens, hidden]`` (the
    penultimate layer, as Wan uses), from a local transformers ``CLIPVisionModel`` folder."""
    from transformers import CLIPVisionModel

    from ..checkpoints.comfy_files import is_comfy_clip_vision, load_clip_vision_file

    folder = Path(folder)
    if is_comfy_clip_vision(folder):  # ComfyUI's models/clip_vision/clip_vision_h.safetensors
        model = load_clip_vision_file(folder).to(device)
    else:
        model_dir = folder / "image_encoder" if (folder / "image_encoder").is_dir() else folder
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"CLIP image encoder not found: expected {model_dir / 'config.json'} with safetensors weights "
                "(the image_encoder/ folder of a diffusers-format Wan2.1 I2V repository) or ComfyUI's "
                "models/clip_vision/clip_vision_h.safetensors"
            )
        model = CLIPVisionModel.from_pretrained(model_dir, torch_dtype=torch.float32, use_safetensors=True).to(device).eval()
    size = model.config.image_size
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)

    @torch.no_grad()
    def encode(image: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(image).float().permute(2, 0, 1).unsqueeze(0)
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
        x = ((x - mean) / std).to(next(model.parameters()).device)
        return model(pixel_values=x, output_hidden_states=True).hidden_states[-2].float()

    return encode


def grey_tokens_from_clip(folder: str | os.PathLike) -> torch.Tensor:
    """The CLIP tokens of a uniform mid-grey image: ``[1, tokens, hidden]``."""
    return clip_vision_encoder(folder)(torch.full((8, 8, 3), GREY))


def load_grey_tokens(path: str | os.PathLike) -> torch.Tensor:
    data = load_file(str(path))
    if TOKENS_KEY not in data:
        raise FormatError(f"{path} has no '{TOKENS_KEY}' tensor; it is not a CLIP grey-token cache")
    return data[TOKENS_KEY]


def grey_tokens(source: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> torch.Tensor:
    """Tokens from a ``.safetensors`` cache file, a CLIP folder or ComfyUI's ``clip_vision_*.safetensors``
    (computed once, then cached).

    The cache is written atomically into ``cache_dir`` (default: the CLIP folder, or the folder of the
    CLIP file) when writable.
    """
    from ..checkpoints.comfy_files import is_comfy_clip_vision

    source = Path(source)
    model_file = is_comfy_clip_vision(source)
    if source.is_file() and not model_file:
        return load_grey_tokens(source)
    digest = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:12]
    cache = Path(cache_dir or (source.parent if model_file else source)) / f"more4d_grey_tokens_{digest}.safetensors"
    if cache.is_file():
        return load_grey_tokens(cache)
    tokens = grey_tokens_from_clip(source)
    try:
        payload = save({TOKENS_KEY: tokens.contiguous()})
        write_file_atomic(cache, lambda fh: fh.write(payload), overwrite=True)
    except OSError:
        pass  # read-only model folder: recompute next time
    return tokens

