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

from .kind_head import EncoderKindHead, kind_cross_entropy
from .scene_pool import fit_on_pool, frame0_pool, planes_of, recent_loss


@dataclass
class PretrainReport:
    steps: int
    scenes: int
    first_loss: float
    last_loss: float  # mean of the last 50 steps


def pretrain_object_encoder(transformer, head: EncoderKindHead, dataset, *, steps: int, scenes: int = 800,
                            batch_size: int = 32, lr: float = 2e-3, seed: int = 0, log=None) -> PretrainReport:
    """Train ``transformer.object_encoder.net`` and ``head`` on the kinds of ``scenes`` examples of
    ``dataset`` (indices ``POOL_OFFSET + i``) for ``steps`` steps; random batches, every other one mirrored."""
    if steps < 1 or scenes < 1:
        raise ValueError(f"encoder pretraining needs steps and scenes >= 1, got {steps} and {scenes}")
    pool = frame0_pool(dataset, scenes, ("image", "depth", "kind_map"))
    planes, kinds = planes_of(pool, transformer.cfg.depth_condition), pool["kind_map"]
    encoder = transformer.object_encoder

    def loss_of(idx, step):
        x, y = planes[idx], kinds[idx]
        if step % 2:
            x, y = x.flip(-1), y.flip(-1)
        return kind_cross_entropy(head.proj(encoder(x).float()), y).mean()

    losses = fit_on_pool(list(encoder.net.parameters()) + list(head.parameters()), loss_of, steps=steps,
                         scenes=scenes, batch_size=batch_size, lr=lr, seed=seed, log=log,
                         label="encoder pretraining", loss_name="kind loss")
    head.forget()
    return PretrainReport(steps, scenes, losses[0], recent_loss(losses))
