"""Training-only linear readouts of one transformer block's tokens (the mover and kind heads).

A head hooks the transformer (not a sub-module: the shipped weights stay exactly the generator's),
remembers the chosen block's output tokens of the last forward pass, drops the reference frame,
averages the video frames and maps every token-grid position to ``outputs`` logits.
"""

from __future__ import annotations

import torch
from torch import nn


class TokenHead(nn.Module):
    """Per-position logits ``[B, outputs, h, w]`` from the tokens of ``transformer.blocks[block]``."""

    def __init__(self, transformer: nn.Module, outputs: int, block: int = -1):
        super().__init__()
        cfg = transformer.cfg
        self.proj = nn.Linear(cfg.dim, outputs)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self._with_ref = cfg.use_reference_tokens
        self._patch = cfg.patch_size
        self._tokens: torch.Tensor | None = None
        self._latent_thw: tuple[int, int, int] | None = None
        transformer.register_forward_pre_hook(self._remember_shape, with_kwargs=True)
        transformer.blocks[block].register_forward_hook(self._remember_tokens)

    def _remember_shape(self, module, args, kwargs):
        latents = args[0] if args else kwargs["latents"]
        reference = kwargs.get("reference_latent", args[4] if len(args) > 4 else None)
        self._latent_thw = tuple(latents.shape[2:])
        self._has_ref = self._with_ref and reference is not None

    def _remember_tokens(self, module, args, output):
        self._tokens = output

    def forget(self) -> None:
        """Drop the captured tokens (they hold the step's graph; a copy of the head cannot take them)."""
        self._tokens = None

    def grid_logits(self) -> torch.Tensor:
        """``[B, outputs, h, w]`` logits of the last forward pass, on its token grid."""
        if self._tokens is None or self._latent_thw is None:
            raise RuntimeError(f"the {type(self).__name__} reads the transformer's last forward pass; none has run")
        t, h, w = (n // p for n, p in zip(self._latent_thw, self._patch))
        tokens = self._tokens
        if self._has_ref:
            tokens = tokens[:, h * w:]
        b, _, dim = tokens.shape
        video = tokens.reshape(b, t, h * w, dim).float().mean(dim=1)
        return self.proj(video).transpose(1, 2).reshape(b, -1, h, w)


def weighted_mean(per_sample: torch.Tensor, sample_weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``per_sample [B]`` with weights ``[B]`` (all equal when None; all zero: zero)."""
    if sample_weight is None:
        return per_sample.mean()
    w = sample_weight.to(per_sample)
    return (per_sample * w).sum() / w.sum().clamp_min(1e-12)
