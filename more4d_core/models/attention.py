"""Attention kernels and compilation of the transformer blocks.

The Wan attention modules our transformers are built from dispatch through diffusers' attention
backends. ``"native"`` is PyTorch's ``scaled_dot_product_attention`` (flash / memory-efficient
kernels on GPUs; the default); on CUDA ``"auto"`` takes SageAttention when the ``sageattention``
package is installed, else flash-attn when ``flash_attn`` is, else native. ``compile_blocks``
compiles each transformer block with ``torch.compile`` (same-shaped blocks share one compiled graph).
"""

from __future__ import annotations

import importlib.util
import logging

import torch
from torch import nn

from ..errors import InputError

log = logging.getLogger("more4d")
ATTENTION_CHOICES = ("auto", "native", "sage", "flash")
_PACKAGES = {"sage": "sageattention", "flash": "flash_attn"}


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def choose_attention(preference: str, device: torch.device | str) -> str:
    """The backend ``preference`` resolves to on ``device`` (an explicit choice must be available)."""
    if preference not in ATTENTION_CHOICES:
        raise InputError(f"attention must be one of {', '.join(ATTENTION_CHOICES)}, got {preference!r}")
    cuda = torch.device(device).type == "cuda"
    if preference == "auto":
        if cuda:
            for name in ("sage", "flash"):
                if _installed(_PACKAGES[name]):
                    return name
        return "native"
    if preference != "native":
        if not cuda:
            raise InputError(f"{preference} attention runs on CUDA GPUs only; use native (PyTorch SDPA) here")
        if not _installed(_PACKAGES[preference]):
            raise InputError(f"{preference} attention needs the '{_PACKAGES[preference]}' package installed in "
                             "ComfyUI's Python; or use native (PyTorch SDPA)")
    return preference


def set_attention(model: nn.Module, preference: str, device: torch.device | str) -> str:
    """Make ``model``'s attention use the backend ``preference`` resolves to; returns it (and logs it)."""
    backend = choose_attention(preference, device)
    if backend != "native":
        model.set_attention_backend(backend)
    log.info("MoRe4D attention: %s (%s)", backend, "chosen" if preference != "auto" else "auto")
    return backend


def compile_blocks(model: nn.Module, **options) -> int:
    """``torch.compile`` every transformer block in place (compiled at its first call); returns the count."""
    for block in model.blocks:
        block.compile(**options)
    return len(model.blocks)
