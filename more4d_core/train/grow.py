"""A deeper transformer from a trained one: the warm start of ``--grow-layers``.

The trained blocks keep their weights and order; each new block is placed after an evenly spaced
trained block and starts as a copy of it whose three output projections (self-attention,
cross-attention, feed-forward) are zero. Every branch of a block adds its output to the residual
stream, so a block with zero output projections is the identity and the grown model computes the
trained model's function at step 0. The copied input projections read features the trained model
already makes, so the new block's output projections get useful gradients from the first step
(zero-initialized blocks with random inputs would start from noise features).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import torch

from ..errors import InputError

ZEROED_OUTPUTS = ("attn1.to_out.0.", "attn2.to_out.0.", "ffn.net.2.")  # what a block adds to the residual stream
_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.*)$")


def grown_layout(layers: int, extra: int) -> list[tuple[int, bool]]:
    """For each block of the grown model, in order: ``(trained block it starts from, is new)``.
    New block ``j`` (of ``extra``) follows trained block ``round((j + 1) * layers / extra) - 1``."""
    if layers < 1:
        raise InputError(f"a model to grow needs at least one block, got {layers}")
    if extra < 0:
        raise InputError(f"--grow-layers must be 0 or more, got {extra}")
    after = [max(0, round((j + 1) * layers / extra) - 1) for j in range(extra)]
    layout = []
    for i in range(layers):
        layout.append((i, False))
        layout.extend((i, True) for _ in range(after.count(i)))
    return layout


def grown_weights(weights: Iterable[tuple[str, torch.Tensor]], layers: int, extra: int
                  ) -> Iterator[tuple[str, torch.Tensor]]:
    """A transformer's ``(key, tensor)`` pairs renumbered for the grown model, with the new blocks' weights
    (copies of their trained block, output projections zero); keys outside ``blocks.N.`` pass through."""
    per_block: dict[int, list[tuple[str, torch.Tensor]]] = {}
    for key, tensor in weights:
        match = _BLOCK_KEY.match(key)
        if match is None:
            yield key, tensor
            continue
        per_block.setdefault(int(match.group(1)), []).append((match.group(2), tensor))
    if sorted(per_block) != list(range(layers)):
        raise InputError(f"the model to grow should have blocks 0..{layers - 1}, its weights have "
                         f"{sorted(per_block)}")
    for index, (source, new) in enumerate(grown_layout(layers, extra)):
        for rest, tensor in per_block[source]:
            if new:
                tensor = torch.zeros_like(tensor) if rest.startswith(ZEROED_OUTPUTS) else tensor.clone()
            yield f"blocks.{index}.{rest}", tensor
