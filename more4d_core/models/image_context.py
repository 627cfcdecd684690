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


def grey_tokens_from_clip(folder: str | os.PathLike) -> torch.Tensor:
    """Run a transformers ``CLIPVisionModel`` folder on a grey image: ``[1, tokens, hidden]``."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    folder = Path(folder)
    model_dir = folder / "image_encoder" if (folder / "image_encoder").is_dir() else folder
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"CLIP image encoder not found: expected {model_dir / 'config.json'} with safetensors weights "
            "(the image_encoder/ folder of a diffusers-format Wan2.1 I2V repository)"
        )
    config = CLIPVisionConfig.from_pretrained(model_dir)
    model = CLIPVisionModel.from_pretrained(model_dir, torch_dtype=torch.float32, use_safetensors=True).eval()
    size = config.image_size
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    pixels = (torch.full((1, 3, size, size), GREY) - mean) / std
    with torch.no_grad():
        out = model(pixel_values=pixels, output_hidden_states=True)
    return out.hidden_states[-2].float()


def load_grey_tokens(path: str | os.PathLike) -> torch.Tensor:
    data = load_file(str(path))
    if TOKENS_KEY not in data:
        raise FormatError(f"{path} has no '{TOKENS_KEY}' tensor; it is not a CLIP grey-token cache")
    return data[TOKENS_KEY]


def grey_tokens(source: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> torch.Tensor:
    """Tokens from a ``.safetensors`` cache file or a CLIP folder (computed once, then cached).

    The cache is written atomically into ``cache_dir`` (default: the CLIP folder) when writable.
    """
    source = Path(source)
    if source.is_file():
        return load_grey_tokens(source)
    digest = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:12]
    cache = Path(cache_dir or source) / f"more4d_grey_tokens_{digest}.safetensors"
    if cache.is_file():
        return load_grey_tokens(cache)
    tokens = grey_tokens_from_clip(source)
    try:
        payload = save({TOKENS_KEY: tokens.contiguous()})
        write_file_atomic(cache, lambda fh: fh.write(payload), overwrite=True)
    except OSError:
        pass  # read-only model folder: recompute next time
    return tokens

