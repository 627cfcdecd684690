"""Flow-matching Euler sampling (diffusers ``FlowMatchEulerDiscreteScheduler``) with
classifier-free guidance, seeded noise, per-step progress and cancellation between steps.

Convention: training noises ``x_sigma = (1 - sigma) x0 + sigma * noise`` and the model predicts
the velocity ``noise - x0``; timesteps are ``1000 * sigma`` after the shift
``sigma' = shift * sigma / (1 + (shift - 1) * sigma)``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch

from ..errors import InputError, More4DError

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StepCallback = Callable[[int, int], None]


class GenerationCancelled(More4DError):
    """Raised between denoising steps when the caller asked to stop."""


def seeded_noise(shape: tuple[int, ...], seed: int, device, dtype=torch.float32) -> torch.Tensor:
    """Gaussian noise that depends only on ``seed`` and ``shape`` (drawn on the CPU, then moved),
    so CPU and GPU runs with the same seed start from the same noise."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(shape, generator=gen, dtype=torch.float32).to(device=device, dtype=dtype)


def make_scheduler(shift: float):
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=check_shift(shift))


def check_steps(steps) -> int:
    """``steps`` as an int if it is a positive whole number, else an :class:`InputError`."""
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise InputError(f"steps must be a positive integer, got {steps}")
    return int(steps)


def check_shift(shift) -> float:
    """``shift`` as a float if it is a finite number above 0 (the schedule's timestep shift), else an
    :class:`InputError`."""
    if isinstance(shift, bool) or not isinstance(shift, numbers.Real) or not math.isfinite(shift) or shift <= 0:
        raise InputError(f"shift must be a finite number above 0, got {shift!r}")
    return float(shift)


def sample_flow(
    velocity: VelocityFn,
    noise: torch.Tensor,
    *,
    steps: int,
    shift: float,
    progress: StepCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> torch.Tensor:
    """Integrate from ``noise`` (sigma = 1) to a clean sample.

    ``velocity(x, t)`` returns the (guided) velocity, see :func:`guided_velocity`.
    ``progress(i, steps)`` runs after each step and may raise to stop; ``should_cancel()`` is
    polled before each step.
    """
    check_steps(steps)
    scheduler = make_scheduler(shift)
    scheduler.set_timesteps(int(steps), device=noise.device)
    latents = noise
    for i, t in enumerate(scheduler.timesteps):
        if should_cancel is not None and should_cancel():
            raise GenerationCancelled(f"generation cancelled before step {i + 1} of {steps}")
        timestep = t.expand(latents.shape[0]).to(latents.dtype)
        v = velocity(latents, timestep)
        latents = scheduler.step(v, t, latents, return_dict=False)[0]
        if progress is not None:
            progress(i + 1, int(steps))
    return latents


def guided_velocity(batched, guidance_scale: float, *, as_batch: bool = True) -> VelocityFn:
    """Classifier-free guidance ``v_u + g * (v_c - v_u)``. ``batched(x, t, rows)`` evaluates the model
    on ``x`` with the rows ``rows`` (a slice) of the conditioning pair (conditional, unconditional):
    with ``as_batch`` both in one call on ``[x; x]`` (``rows = 0:2``), otherwise as two passes of one
    (``0:1`` then ``1:2``: half the activations, for small cards). With ``g == 1`` only the conditional
    pass runs."""
    if not math.isfinite(guidance_scale):
        raise InputError(f"guidance scale must be finite, got {guidance_scale}")
    cond, uncond = slice(0, 1), slice(1, 2)

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if guidance_scale == 1.0:
            return batched(x, t, cond)
        if as_batch:
            v_c, v_u = batched(torch.cat([x, x]), torch.cat([t, t]), slice(0, 2)).chunk(2)
        else:
            v_c, v_u = batched(x, t, cond), batched(x, t, uncond)
        return v_u + guidance_scale * (v_c - v_u)

    return velocity
