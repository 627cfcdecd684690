"""Small movers weighed up in the motion gate's fit (``gate_fit --small-mover-weight C``).

The gate's loss is a cross-entropy averaged over the positions of each pool example, so an example whose
moving region is two or three positions of the 12 x 16 token grid teaches next to nothing about finding it:
on validation the bundled gate misses exactly such objects (a card of 162-168 pixels, a ball of 282 in a
96 x 128 image), and they are the largest part of the named-object share it loses (docs/bundled-model-history.md,
"Where the named share is lost"). Here each example's *positive* term (the positions that move) is multiplied by
``clamp(reference / area, 1, C)``: ``area`` is the example's moving area in positions (the sum of its
positions' moving shares) and ``reference`` the median of that area over the pool's examples where objects,
not the camera, move (area above zero and below half the grid). An object at or above the median keeps the
weight 1, a smaller one is priced up in proportion to how small it is, up to ``C``; ``C = 1`` is the fit as
before. The still positions' term is not changed.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from .mover_head import mover_shares


def check_small_mover_weight(cap: float) -> float:
    """``cap``, if it is a valid small-mover weight (a number >= 1; 1 = off)."""
    if not cap >= 1.0:
        raise InputError(f"the small-mover weight is a cap of at least 1 (1 = off), got {cap}")
    return cap


def moving_areas(masks: torch.Tensor, grid_hw: tuple[int, int], chunk: int = 512) -> torch.Tensor:
    """``[N]``: each example's moving area on the ``grid_hw`` grid, in positions (``masks``: ``[N, H, W]``)."""
    return torch.cat([mover_shares(masks[i:i + chunk], grid_hw).sum(dim=(1, 2)) for i in range(0, len(masks), chunk)])


def reference_area(areas: torch.Tensor, positions: int) -> float | None:
    """The median moving area of the examples whose objects move (area in ``(0, positions / 2)``); None if none."""
    objects = areas[(areas > 0) & (areas < positions / 2)]
    return float(objects.median()) if len(objects) else None


def small_mover_weights(masks: torch.Tensor, grid_hw: tuple[int, int], cap: float) -> torch.Tensor:
    """``[N]`` weights of each example's moving positions in the gate's loss (see the module doc); all 1 when
    ``cap`` is 1 or no example has an object moving."""
    check_small_mover_weight(cap)
    areas = moving_areas(masks, grid_hw)
    ref = reference_area(areas, grid_hw[0] * grid_hw[1])
    if cap == 1.0 or ref is None:
        return torch.ones(len(masks))
    weights = torch.where(areas > 0, ref / areas.clamp_min(1e-6), torch.ones_like(areas))
    return weights.clamp(1.0, float(cap))
