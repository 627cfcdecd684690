"""Teach a new object encoder the objects' kinds before the diffusion training (``--pretrain-encoder``).

Recognition is a plain supervised task: the object encoder and its kind readout
(:class:`~.kind_head.EncoderKindHead`) learn, from the frame-0 image and depth of a fixed pool of
training scenes, which kind of object (background, ball, box, card, disc) each token shows. A CNN
of this size gets there in minutes on one core (``tools/kind_probe.py encoder``), while the
transformer's own tokens did not get there in a thousand diffusion steps. Started this way, the
diffusion training spends its steps on binding the caption's noun to the region, not on seeing it.

Only the encoder's convolutions and the readout change; the map into the transformer (zero at a
warm start) is not in this loss, so the generator still computes its init model's function after
pretraining. The pool uses procedural indices no training step reaches (``POOL_OFFSET + i``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..models.object_encoder import encoder_planes
from ..sampling.conditioning import depth_planes
from .kind_head import EncoderKindHead, kind_cross_entropy

POOL_OFFSET = 2 * 10**8  # training steps use indices below steps x batch, the latent-scale fit 10**8 + i


@dataclass
class PretrainReport:
    steps: int
    scenes: int
    first_loss: float
    last_loss: float  # mean of the last 50 steps


def frame0_pool(dataset, scenes: int, keys: tuple[str, ...]) -> dict:
    """The frame-0 inputs and targets ``keys`` of ``scenes`` examples (indices ``POOL_OFFSET + i``), example
    by example (the tracks of thousands of clips take gigabytes): tensors stacked, strings listed."""
    parts: dict[str, list] = {key: [] for key in keys}
    for i in range(scenes):
        example = dataset[POOL_OFFSET + i]
        for key in keys:
            parts[key].append(example[key])
    return {key: values if isinstance(values[0], str) else torch.stack(values) for key, values in parts.items()}


def planes_of(batch: dict, depth_mode: str) -> torch.Tensor:
    """The object encoder's input planes of a collated batch (the same ones ``encode_conditions`` builds)."""
    return encoder_planes(batch["image"] * 2 - 1, depth_planes(batch["depth"], depth_mode))


def pretrain_object_encoder(transformer, head: EncoderKindHead, dataset, *, steps: int, scenes: int = 800,
                            batch_size: int = 32, lr: float = 2e-3, seed: int = 0, log=None) -> PretrainReport:
    """Train ``transformer.object_encoder.net`` and ``head`` on the kinds of ``scenes`` examples of
    ``dataset`` (indices ``POOL_OFFSET + i``) for ``steps`` steps; random batches, every other one mirrored."""
    if steps < 1 or scenes < 1:
        raise ValueError(f"encoder pretraining needs steps and scenes >= 1, got {steps} and {scenes}")
    pool = frame0_pool(dataset, scenes, ("image", "depth", "kind_map"))
    planes, kinds = planes_of(pool, transformer.cfg.depth_condition), pool["kind_map"]
    encoder = transformer.object_encoder
    params = list(encoder.net.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(steps):
        idx = torch.randint(0, scenes, (min(batch_size, scenes),), generator=generator)
        x, y = planes[idx], kinds[idx]
        if step % 2:
            x, y = x.flip(-1), y.flip(-1)
        loss = kind_cross_entropy(head.proj(encoder(x).float()), y).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if log is not None and (step + 1) % 250 == 0:
            log(f"encoder pretraining step {step + 1}/{steps}: kind loss {sum(losses[-50:]) / len(losses[-50:]):.4f}")
    head.forget()
    return PretrainReport(steps, scenes, losses[0], sum(losses[-50:]) / len(losses[-50:]))
