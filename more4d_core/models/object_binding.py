"""The object binding (``object_binding="attention"``): which words of the caption each token's object is.

The object encoder (``object_encoder.py``) made the tokens see the shapes (its kind readout names
87% of the object tokens right), yet the transformer's cross-attention did not learn in 1000 steps to
move only the object the caption names: the named object's share of the predicted motion stayed near
chance (0.275; docs/bundled-model-history.md). The caption reaches every token the same way, through attention whose queries
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

import torch
from torch import nn

from .config import STraGConfig
from .word_scores import WordScores


class ObjectBinding(WordScores):
    """Object-encoder features ``[B, width, h, w]`` and text states ``[B, L, text_dim]`` ->
    (additions ``[B, h*w, dim]``, binding logits ``[B, h, w]``)."""

    def __init__(self, cfg: STraGConfig):
        width = cfg.object_binding_width
        super().__init__(cfg.object_encoder_width, cfg.text_dim, width)
        self.value = nn.Linear(cfg.text_dim, width)
        self.nothing_value = nn.Parameter(torch.zeros(width))
        self.proj = nn.Linear(width, cfg.dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, features: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.scores(features, text)
        text = text.to(self.value.weight.dtype)
        values = torch.cat([self.nothing_value.expand(text.shape[0], 1, -1), self.value(text)], dim=1)
        attn = scores.float().softmax(dim=-1)
        additions = self.proj(attn.to(values.dtype) @ values)
        return additions, self.logits(scores, features.shape[-2:])
