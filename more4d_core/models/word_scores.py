"""Scores of a caption's words at every token-grid position: the part the object binding and the motion gate share.

For every position of the object encoder's feature grid, a query (from the features) is scored against a
key per caption word and one learned key for "none of the words" (the "nothing" slot). Padding words
(all-zero states, as every text encoder here writes them) get a large negative score, so they are never
attended to and an empty prompt leaves only the "nothing" slot. ``logits`` are the log-odds that a
position belongs to what some word says rather than to "nothing":
``log(sum over words of exp(score)) - score(nothing)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import InputError

_MASKED = -1e4  # score of a padding word (finite, so an empty prompt stays finite)


class WordScores(nn.Module):
    """Query ``[features -> width]``, key ``[text_dim -> width]`` and the "nothing" key."""

    def __init__(self, feature_dim: int, text_dim: int, width: int):
        super().__init__()
        self.query = nn.Linear(feature_dim, width)
        self.key = nn.Linear(text_dim, width)
        self.nothing_key = nn.Parameter(torch.zeros(width))
        self.width = width

    def scores(self, features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Scores ``[B, h*w, 1 + L]`` of features ``[B, C, h, w]`` against text ``[B, L, D]`` ("nothing" first;
        padding words at a large negative)."""
        if features.ndim != 4 or text.ndim != 3:
            raise InputError(f"{type(self).__name__} takes features [B, C, h, w] and text [B, L, D], got "
                             f"{list(features.shape)} and {list(text.shape)}")
        if features.shape[0] != text.shape[0]:
            raise InputError(f"object features of batch {features.shape[0]} do not match text of batch {text.shape[0]}")
        dtype = self.query.weight.dtype
        q = self.query(features.flatten(2).transpose(1, 2).to(dtype))  # [B, S, width]
        text = text.to(dtype)
        b = text.shape[0]
        keys = torch.cat([self.nothing_key.expand(b, 1, -1), self.key(text)], dim=1)  # [B, 1 + L, width]
        scores = q @ keys.transpose(1, 2) / math.sqrt(self.width)
        padding = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=text.device), text.abs().sum(-1) == 0], dim=1)
        return scores.masked_fill(padding.unsqueeze(1), _MASKED)

    @staticmethod
    def logits(scores: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
        """``[B, h, w]`` log-odds of "some word" over "nothing" from ``scores [B, h*w, 1 + L]``."""
        found = torch.logsumexp(scores[..., 1:].float(), dim=-1) - scores[..., 0].float()
        return found.view(-1, *grid_hw)

    def fitted_parameters(self) -> list[nn.Parameter]:
        """What a pretraining on frozen features and text fits: the query, the key and the "nothing" key."""
        return [*self.query.parameters(), *self.key.parameters(), self.nothing_key]
