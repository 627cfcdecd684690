"""Per-channel weights of the flow loss: what a latent channel's error costs in displacement.

The temporal-basis codec divides each latent channel (one axis x one temporal coefficient) by its
spread over the training data (``latent_scale``), so every channel enters the diffusion at unit
scale. A plain latent MSE then prices an error of one unit the same in every channel, although one
unit of a high-frequency coefficient (scale ~0.001) moves a point about forty times less than one
unit of the mean or the first ramp coefficient (scale ~0.03-0.05). The evaluation, and a user,
see displacements. ``"displacement"`` weights each channel's squared error by its scale squared
(the error in displacement units), mixed with a uniform share so that no channel goes untaught;
the weights average to one. ``"uniform"`` is the plain latent MSE.
"""

from __future__ import annotations

import torch

from ..errors import InputError

CHANNEL_WEIGHTINGS = ("uniform", "displacement")
UNIFORM_SHARE = 0.1  # the share of the weight every channel keeps under "displacement"


def check_channel_weighting(mode: str) -> str:
    """``mode`` if it names a weighting, else an :class:`InputError` listing them."""
    if mode not in CHANNEL_WEIGHTINGS:
        raise InputError(f"channel weighting must be one of {', '.join(CHANNEL_WEIGHTINGS)}, got {mode!r}")
    return mode


def channel_weights(latent_scale: torch.Tensor, mode: str, uniform_share: float = UNIFORM_SHARE) -> torch.Tensor | None:
    """``[C]`` weights averaging 1 for a codec's per-channel ``latent_scale`` (None for ``"uniform"``)."""
    if check_channel_weighting(mode) == "uniform":
        return None
    if not 0.0 <= uniform_share <= 1.0:
        raise InputError(f"the uniform share must be in [0, 1], got {uniform_share}")
    power = latent_scale.detach().double().flatten() ** 2
    if not (torch.isfinite(power).all() and power.sum() > 0):
        raise InputError("the codec's latent scale must be finite and not all zero to weight channels by displacement")
    return ((1.0 - uniform_share) * power / power.mean() + uniform_share).float()
