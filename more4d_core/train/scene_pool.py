"""Teaching a small part of the model on a fixed pool of training scenes before the diffusion training.

Both pretrainings (the object encoder's kinds, ``encoder_pretrain.py``; the object binding's named
positions, ``binding_pretrain.py``) read only frame 0 of a pool of procedural training scenes and fit
a few parameters on random batches of it. This module holds what they share: the pool (indices no
training step reaches) and the fitting loop.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..models.object_encoder import encoder_planes
from ..sampling.conditioning import depth_planes

POOL_OFFSET = 2 * 10**8  # training steps use indices below steps x batch, the latent-scale fit 10**8 + i
RECENT = 50  # steps in the reported "last loss"


def frame0_pool(dataset, scenes: int, keys: tuple[str, ...],
                derived: dict[str, Callable[[dict], torch.Tensor]] | None = None) -> dict:
    """The frame-0 inputs and targets ``keys`` of ``scenes`` examples (indices ``POOL_OFFSET + i``), example
    by example (the tracks of thousands of clips take gigabytes): tensors stacked, strings listed.
    ``derived`` adds targets computed from each whole example (e.g. from its tracks, which are not kept)."""
    derived = derived or {}
    parts: dict[str, list] = {key: [] for key in (*keys, *derived)}
    for i in range(scenes):
        example = dataset[POOL_OFFSET + i]
        for key in keys:
            parts[key].append(example[key])
        for key, derive in derived.items():
            parts[key].append(derive(example))
    return {key: values if isinstance(values[0], str) else torch.stack(values) for key, values in parts.items()}


def planes_of(batch: dict, depth_mode: str) -> torch.Tensor:
    """The object encoder's input planes of a collated batch (the same ones ``encode_conditions`` builds)."""
    return encoder_planes(batch["image"] * 2 - 1, depth_planes(batch["depth"], depth_mode))


def recent_loss(losses: list[float]) -> float:
    """The mean of the last ``RECENT`` losses."""
    tail = losses[-RECENT:]
    return sum(tail) / len(tail)


def fit_on_pool(params: list, loss_of: Callable[[torch.Tensor, int], torch.Tensor], *, steps: int, scenes: int,
                batch_size: int, lr: float, seed: int, log=None, label: str = "pretraining",
                loss_name: str = "loss") -> list[float]:
    """``steps`` AdamW steps on ``params``; each minimizes ``loss_of(indices, step)`` for a random batch of pool
    indices (``min(batch_size, scenes)`` of ``0 .. scenes - 1``, seeded). Logs ``"{label} step s/n: {loss_name} x"``
    (the mean of the recent steps) every 250 steps; returns every step's loss."""
    optimizer = torch.optim.AdamW(params, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(steps):
        idx = torch.randint(0, scenes, (min(batch_size, scenes),), generator=generator)
        loss = loss_of(idx, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if log is not None and (step + 1) % 250 == 0:
            log(f"{label} step {step + 1}/{steps}: {loss_name} {recent_loss(losses):.4f}")
    return losses
