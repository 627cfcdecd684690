"""The object binding (``object_binding="attention"``): which words of the caption each token's object is.

The object encoder (``object_encoder.py``) made the tokens see the shapes (its kind readout names
87% of the object tokens right), yet the transformer's cross-attention did not learn in 1000 steps to
move only the object the caption names: the named object's share of the predicted motion stayed near
chance (0.275; README). The caption reaches every token the same way, through attention whose queries
are the noisy motion tokens, and nothing asks it to pick a region.

This module asks. For every token-grid position, the object encoder's features (the query) attend
over the caption's word states (keys and values) and one learned "nothing" slot:

* ``logits [B, h, w]``: ``log(sum_words a / a_nothing)``, the log-odds that the position belongs to
  something the caption names; trained directly against the positions of the objects the caption
  makes move (``train/binding_loss.py``), so a ball token attends to "ball" and the wall to nothing;
* additions ``[B, h*w, dim]``: the attended word states (the noun's state carries its verb through
  the text encoder's self-attention) mapped into the transformer's width and added to every token of
  that position, like the object encoder's. The map starts at zero, so a model warm-started from one
  without the binding computes the same function until training teaches it to use it.

Padding positions of the text (all-zero states, as every text encoder here writes them) are never
attended to; an empty prompt binds every position to "nothing".
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import InputError
from .config import STraGConfig

_MASKED = -1e4  # score of a padding word (finite, so an empty prompt stays finite)


class ObjectBinding(nn.Module):
    """Object-encoder features ``[B, width, h, w]`` and text states ``[B, L, text_dim]`` ->
    (additions ``[B, h*w, dim]``, binding logits ``[B, h, w]``)."""

    def __init__(self, cfg: STraGConfig):
        super().__init__()
        width = cfg.object_binding_width
        self.query = nn.Linear(cfg.object_encoder_width, width)
        self.key = nn.Linear(cfg.text_dim, width)
        self.value = nn.Linear(cfg.text_dim, width)
        self.nothing_key = nn.Parameter(torch.zeros(width))
        self.nothing_value = nn.Parameter(torch.zeros(width))
        self.proj = nn.Linear(width, cfg.dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self.width = width

    def scores(self, features: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention scores ``[B, h*w, 1 + L]`` ("nothing" first; padding words at a large negative)
        and the per-word values ``[B, 1 + L, width]``."""
        if features.ndim != 4 or text.ndim != 3:
            raise InputError(f"object binding takes features [B, C, h, w] and text [B, L, D], got "
                             f"{list(features.shape)} and {list(text.shape)}")
        if features.shape[0] != text.shape[0]:
            raise InputError(f"object features of batch {features.shape[0]} do not match text of batch {text.shape[0]}")
        dtype = self.query.weight.dtype
        q = self.query(features.flatten(2).transpose(1, 2).to(dtype))  # [B, S, width]
        text = text.to(dtype)
        b = text.shape[0]
        keys = torch.cat([self.nothing_key.expand(b, 1, -1), self.key(text)], dim=1)  # [B, 1 + L, width]
        values = torch.cat([self.nothing_value.expand(b, 1, -1), self.value(text)], dim=1)
        scores = q @ keys.transpose(1, 2) / math.sqrt(self.width)
        padding = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=text.device), text.abs().sum(-1) == 0], dim=1)
        return scores.masked_fill(padding.unsqueeze(1), _MASKED), values

    def forward(self, features: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores, values = self.scores(features, text)
        attn = scores.float().softmax(dim=-1)
        additions = self.proj(attn.to(values.dtype) @ values)
        logits = torch.logsumexp(scores[..., 1:].float(), dim=-1) - scores[..., 0].float()
        h, w = features.shape[-2:]
        return additions, logits.view(-1, h, w)
