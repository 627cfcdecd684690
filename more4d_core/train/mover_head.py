"""A training-only probe that teaches the transformer which regions the caption makes move.

The flow-matching loss tells the model *that* its motion field is wrong, spread over every latent
cell and noise level; which of two or three similar objects the caption's noun names is a small
part of it and was learned slowly (named-object share of the predicted motion near chance). This
head asks the question directly: from the last block's tokens (mean over the video frames), a
linear layer predicts, per token, the share of its pixels that belong to an object the caption
makes move (binary cross-entropy against that share, from the generator's object ids). The head
only exists during training; gradients shape the transformer's tokens, the shipped model has no
extra weights and generates exactly as before.

Measured (December 2026, docs/bundled-model-history.md): with weight 0.5 for 1000 steps the head's loss fell from 0.69 to
0.08, mostly by reading the motion the noisy input shows at low noise; at pure noise it marks
objects, not the named one, and the generated motion did not change (named-object share 0.274 vs
0.271 without it). ``min_sigma`` restricts the loss to samples noised at least that much (at
low noise the answer is visible in the input; at high noise it has to come from the caption).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .token_head import TokenHead, weighted_mean


def mover_shares(mover_mask: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
    """``[B, h, w]``: each token's share of pixels of the objects the caption makes move
    (``mover_mask``: ``[B, H, W]``, 1 on those pixels)."""
    return F.adaptive_avg_pool2d(mover_mask.float().unsqueeze(1), tuple(grid_hw))[:, 0]


def mover_cross_entropy(logits: torch.Tensor, mover_mask: torch.Tensor,
                        positive_weight: torch.Tensor | None = None) -> torch.Tensor:
    """``[B]``: binary cross-entropy of per-token ``logits [B, h, w]`` against the tokens' mover shares,
    averaged over the positions of each sample (the mover head's and the object binding's loss);
    ``positive_weight [B]`` multiplies each sample's term of its moving share (the motion gate's small movers)."""
    share = mover_shares(mover_mask, logits.shape[-2:])
    pos = None if positive_weight is None else positive_weight.float().view(-1, 1, 1).to(logits.device)
    return F.binary_cross_entropy_with_logits(logits.float(), share, reduction="none", pos_weight=pos).mean(dim=(1, 2))


class MoverHead(TokenHead):
    """Per-token mover logits from the last transformer block (captured by a forward hook)."""

    def __init__(self, transformer):
        super().__init__(transformer, outputs=1, block=-1)

    def logits(self) -> torch.Tensor:
        """``[B, h, w]`` mover logits of the last forward pass, on its token grid."""
        return self.grid_logits()[:, 0]

    def loss(self, mover_mask: torch.Tensor, sample_weight: torch.Tensor | None = None) -> torch.Tensor:
        """Binary cross-entropy of the token logits against each token's share of mover pixels
        (``mover_mask``: ``[B, H, W]`` 1 on pixels of objects that move by the caption), averaged
        over the samples with ``sample_weight`` ``[B]`` (all equal when None; all zero: zero loss)."""
        return weighted_mean(mover_cross_entropy(self.logits(), mover_mask), sample_weight)
