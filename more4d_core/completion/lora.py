"""Merging a LoRA in the kohya / VideoX-Fun key format into a diffusers Wan transformer.

Keys look like ``lora_unet__blocks_0_self_attn_q.lora_down.weight`` / ``.lora_up.weight`` /
``.alpha``: the original Wan module path with dots replaced by underscores after a
``lora_unet_`` prefix (hence the double underscore). Each update ``W += weight * (alpha / rank)
* up @ down`` is applied in float32 and cast back.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import torch
from torch import nn

from ..checkpoints import keymap
from ..checkpoints.io import read_weights
from ..errors import FormatError, InputError

_PREFIX = re.compile(r"^lora_unet_+")


def _lora_name(module_path: str) -> str:
    """``blocks.0.attn1.to_q`` (ours) -> ``blocks_0_self_attn_q`` (the LoRA's module id)."""
    theirs = keymap.ours_to_authors(f"{module_path}.weight")[: -len(".weight")]
    return theirs.replace(".", "_")


def merge_lora(model: nn.Module, source: str | os.PathLike, weight: float = 0.55) -> dict[str, int]:
    """Merge the LoRA at ``source`` into ``model`` in place; returns counts of merged / skipped modules.

    Every LoRA module must match a Linear layer of the model; unknown ones are an error (a LoRA for
    another architecture), listed by name.
    """
    if not math.isfinite(weight):
        raise InputError(f"LoRA weight must be finite, got {weight}")
    state = read_weights(Path(source))
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        base, _, kind = key.rpartition(".")
        if kind == "weight":
            base, _, kind = base.rpartition(".")
        name = _PREFIX.sub("", base)
        groups.setdefault(name, {})[kind] = tensor
    linears: dict[str, nn.Linear] = {}
    for path, module in model.named_modules():
        if isinstance(module, nn.Linear):
            try:
                linears[_lora_name(path)] = module
            except KeyError:
                continue  # modules the original layout does not have
    unknown = sorted(n for n in groups if n not in linears)
    if unknown:
        raise FormatError(
            f"{source}: {len(unknown)} LoRA modules have no matching layer in the model "
            f"(first: {', '.join(unknown[:5])}); is this LoRA made for this transformer?"
        )
    merged = 0
    with torch.no_grad():
        for name, parts in groups.items():
            if "lora_down" not in parts or "lora_up" not in parts:
                raise FormatError(f"{source}: LoRA module {name} lacks lora_down or lora_up")
            down, up = parts["lora_down"].float(), parts["lora_up"].float()
            rank = down.shape[0]
            alpha = float(parts["alpha"]) if "alpha" in parts else float(rank)
            layer = linears[name]
            delta = (up @ down) * (weight * alpha / rank)
            if delta.shape != layer.weight.shape:
                raise FormatError(f"{source}: LoRA {name} makes {list(delta.shape)} but the layer is {list(layer.weight.shape)}")
            layer.weight.copy_((layer.weight.float() + delta.to(layer.weight.device)).to(layer.weight.dtype))
            merged += 1
    return {"merged": merged}
