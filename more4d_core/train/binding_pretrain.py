"""Teach a new object binding which positions captions name, before the diffusion training (``--pretrain-binding``).

With a recognizing object encoder in place, binding a noun to its region is a small supervised task:
the binding's query (from the encoder's features), key (from the caption's word states) and
"nothing" key learn, on a fixed pool of training scenes, to score the tokens of the objects the
caption makes move above the rest (:func:`~.mover_head.mover_cross_entropy`). The encoder and the
text encoder are frozen here and their outputs computed once, so this takes seconds; the map into the
transformer (zero at a warm start) is not in the loss, so the generator still computes its init
model's function afterwards. Started this way, the diffusion training sees a binding that already
points at the named object from step 0 and only has to learn to move what it points at.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .mover_head import mover_cross_entropy, mover_shares
from .scene_pool import fit_on_pool, frame0_pool, planes_of, recent_loss


@dataclass
class BindingPretrainReport:
    steps: int
    scenes: int
    first_loss: float
    last_loss: float  # mean of the last 50 steps
    named_recall: float  # on the pool: share of mostly-named tokens scored named (logit > 0)
    other_false: float  # on the pool: share of tokens without named pixels scored named


@torch.no_grad()
def pool_inputs(transformer, text_encoder, pool: dict, chunk: int = 64,
                planes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(object-encoder features, text states) of a pool; ``planes``: its encoder input planes when the caller
    already has them (:func:`~.scene_pool.planes_of`)."""
    planes = planes_of(pool, transformer.cfg.depth_condition) if planes is None else planes
    feats = torch.cat([transformer.object_encoder(planes[i:i + chunk]) for i in range(0, len(planes), chunk)])
    captions = pool["caption"]
    text = torch.cat([text_encoder(captions[i:i + chunk]) for i in range(0, len(captions), chunk)])
    return feats.float(), text.float()


def binding_rates(logits: torch.Tensor, mover_mask: torch.Tensor) -> tuple[float, float]:
    """(share of tokens at least half named that score named, share of tokens with no named pixel that do)."""
    share = mover_shares(mover_mask, logits.shape[-2:])
    named, other = share >= 0.5, share == 0
    said = logits > 0
    return (float(said[named].float().mean()) if named.any() else float("nan"),
            float(said[other].float().mean()) if other.any() else float("nan"))


def fit_position_logits(module, logits_of, feats: torch.Tensor, text: torch.Tensor, masks: torch.Tensor, *, steps: int,
                        scenes: int, batch_size: int, lr: float, seed: int, log=None, label: str,
                        planes: torch.Tensor | None = None, positive_weight: torch.Tensor | None = None,
                        ) -> tuple[list[float], float, float]:
    """Fit ``module.fitted_parameters()`` so that ``logits_of(feats, text) [B, h, w]`` (``logits_of(feats, text,
    planes)`` when ``planes`` is given, batched alike) score each position's share of ``masks [B, H, W]``
    (:func:`~.mover_head.mover_cross_entropy`, with ``positive_weight [N]`` per pool example when given);
    returns (every step's loss, and on the pool :func:`binding_rates`)."""
    def logits(idx):
        return logits_of(feats[idx], text[idx]) if planes is None else logits_of(feats[idx], text[idx], planes[idx])

    def loss_of(idx, step):
        weight = None if positive_weight is None else positive_weight[idx]
        return mover_cross_entropy(logits(idx), masks[idx], weight).mean()

    losses = fit_on_pool(module.fitted_parameters(), loss_of, steps=steps, scenes=scenes, batch_size=batch_size,
                         lr=lr, seed=seed, log=log, label=label)
    with torch.no_grad():
        recall, false = binding_rates(torch.cat([logits(slice(i, i + 256)) for i in range(0, scenes, 256)]), masks)
    return losses, recall, false


def pretrain_object_binding(transformer, text_encoder, dataset, *, steps: int, scenes: int = 800,
                            batch_size: int = 64, lr: float = 3e-3, seed: int = 0, log=None) -> BindingPretrainReport:
    """Train the query, key and "nothing" key of ``transformer.object_binding`` on ``scenes`` examples of
    ``dataset`` (indices ``POOL_OFFSET + i``) for ``steps`` steps of random batches."""
    if steps < 1 or scenes < 1:
        raise ValueError(f"binding pretraining needs steps and scenes >= 1, got {steps} and {scenes}")
    binding = getattr(transformer, "object_binding", None)
    if binding is None:
        raise ValueError("binding pretraining needs a model with an object binding (--object-binding attention)")
    pool = frame0_pool(dataset, scenes, ("image", "depth", "caption", "mover_mask"))
    feats, text = pool_inputs(transformer, text_encoder, pool)
    losses, recall, false = fit_position_logits(
        binding, lambda f, t: binding(f, t)[1], feats, text, pool["mover_mask"], steps=steps, scenes=scenes,
        batch_size=batch_size, lr=lr, seed=seed, log=log, label="binding pretraining")
    return BindingPretrainReport(steps, scenes, losses[0], recent_loss(losses), recall, false)
