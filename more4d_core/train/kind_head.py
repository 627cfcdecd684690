"""A training-only head that teaches the transformer's tokens what kind of object they show.

The mover head (``mover_head.py``) showed that the tokens know *where* objects are but not which
one a noun names: a linear probe at pure noise put 22% of its mass on the named object (uniform
7%). Binding a noun to a region needs tokens that say "ball", "box", "card" or "disc" before the
cross-attention layers that read the caption. This head asks that directly: from the tokens of a
middle block, a linear layer predicts per token the share of its pixels of each kind (background
and the four shapes of the procedural world; cross-entropy against those shares, from the
generator's object ids). The input is the noise-free image and depth, so every noise level counts.
Training-only, like the mover head: the shipped model has no extra weights.

A model with an object encoder (``models/object_encoder.py``) is taught at the encoder instead
(:class:`EncoderKindHead`, a linear readout of its features): that is where the recognition is
meant to happen, and there it is a plain supervised CNN, which learns the kinds in minutes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .token_head import TokenHead, weighted_mean

# the nouns of the procedural objects -> class index; 0 is everything else (the room's walls and floor).
# By name, not by shape: a disc is drawn as a round card, and the caption's noun is what must bind.
KIND_CLASSES = ("background", "ball", "box", "card", "disc")


def kind_map(object_id: torch.Tensor, objects: list[dict]) -> torch.Tensor:
    """Per-pixel kind class ``[H, W]`` (int64) from a frame's object ids and the scene's objects."""
    lookup = torch.tensor([KIND_CLASSES.index(o["name"]) if o["name"] in KIND_CLASSES else 0 for o in objects],
                          dtype=torch.int64)
    return lookup[object_id]


def kind_shares(kinds: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
    """``[B, classes, h, w]``: each cell's share of pixels of each kind (``kinds``: ``[B, H, W]`` classes)."""
    onehot = F.one_hot(kinds.long(), len(KIND_CLASSES)).permute(0, 3, 1, 2).float()
    return F.adaptive_avg_pool2d(onehot, tuple(grid_hw))


def kind_cross_entropy(logits: torch.Tensor, kinds: torch.Tensor) -> torch.Tensor:
    """``[B]``: cross-entropy of per-cell kind ``logits`` ``[B, classes, h, w]`` against the cells' kind
    shares, averaged over the cells of each sample."""
    share = kind_shares(kinds, logits.shape[-2:])
    return -(share * F.log_softmax(logits, dim=1)).sum(dim=1).mean(dim=(1, 2))


class _KindLoss:
    """The loss of a kind head, whatever it reads (``grid_logits``: ``[B, classes, h, w]``)."""

    def loss(self, kinds: torch.Tensor, sample_weight: torch.Tensor | None = None) -> torch.Tensor:
        """Cross-entropy of the token logits against each token's share of pixels of each kind
        (``kinds``: ``[B, H, W]`` class indices)."""
        return weighted_mean(kind_cross_entropy(self.grid_logits(), kinds), sample_weight)


class KindHead(_KindLoss, TokenHead):
    """Per-token kind logits ``[B, classes, h, w]`` from the output of block ``block``."""

    def __init__(self, transformer, block: int | None = None):
        if block is None:
            block = max(0, len(transformer.blocks) // 2 - 1)  # the middle: before the later cross-attention
        super().__init__(transformer, outputs=len(KIND_CLASSES), block=block)


class EncoderKindHead(_KindLoss, nn.Module):
    """Per-token kind logits ``[B, classes, h, w]``: a linear readout of the object encoder's features
    of the last forward pass (a hook, like :class:`TokenHead`; the encoder itself is the generator's)."""

    def __init__(self, transformer):
        super().__init__()
        encoder = getattr(transformer, "object_encoder", None)
        if encoder is None:
            raise ValueError("the encoder kind head needs a transformer with an object encoder")
        self.proj = nn.Conv2d(transformer.cfg.object_encoder_width, len(KIND_CLASSES), 1)
        nn.init.zeros_(self.proj.weight)  # 1/5 for every class at the start, as the token heads
        nn.init.zeros_(self.proj.bias)
        self._features: torch.Tensor | None = None
        encoder.register_forward_hook(self._remember)

    def _remember(self, module, args, output):
        self._features = output

    def forget(self) -> None:
        self._features = None

    def grid_logits(self) -> torch.Tensor:
        if self._features is None:
            raise RuntimeError("the EncoderKindHead reads the object encoder's last forward pass; none has run")
        return self.proj(self._features.float())


def kind_head_for(transformer) -> nn.Module:
    """The kind head a transformer is taught with: at its object encoder when it has one, else at a
    middle block."""
    return EncoderKindHead(transformer) if getattr(transformer, "object_encoder", None) is not None else KindHead(transformer)
