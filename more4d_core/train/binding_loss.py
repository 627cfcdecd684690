"""Teaching the object binding which positions the caption names (``--binding-weight``).

The object binding (``models/object_binding.py``) is part of the generator; this loss only reads it.
Its logits of the last forward pass (a forward hook) are trained with the mover head's loss
(:func:`~.mover_head.mover_cross_entropy`), binary cross-entropy against each token's share of pixels that belong to an object the caption makes move (the generator's object
ids: the ``mover_mask`` of a procedural batch). A still caption, a camera-only caption and the empty
prompt name nothing: every position's target is 0. A sample whose caption was dropped for
classifier-free guidance does not count (the caption that named the objects is gone).

Unlike the mover head, which asked the last block's noisy tokens and was answered from the motion
visible at low noise, the binding sees only the noise-free image, depth and caption, so every sample
teaches the same question: which of these objects does the noun name.
"""

from __future__ import annotations

import torch

from .mover_head import mover_cross_entropy
from .token_head import weighted_mean


class BindingLoss:
    """Remembers the binding logits of the transformer's last forward pass and scores them."""

    def __init__(self, transformer):
        binding = getattr(transformer, "object_binding", None)
        if binding is None:
            raise ValueError("--binding-weight trains the object binding: it needs a model with one "
                             "(--object-binding attention)")
        self._logits: torch.Tensor | None = None
        binding.register_forward_hook(self._remember)

    def _remember(self, module, args, output):
        self._logits = output[1]

    def forget(self) -> None:
        self._logits = None

    def loss(self, mover_mask: torch.Tensor, sample_weight: torch.Tensor | None = None) -> torch.Tensor:
        if self._logits is None:
            raise RuntimeError("the binding loss reads the object binding's last forward pass; none has run")
        return weighted_mean(mover_cross_entropy(self._logits, mover_mask), sample_weight)
