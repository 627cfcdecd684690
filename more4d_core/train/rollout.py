"""Training inputs from the model's own sampling path (``--rollout P``): what the denoiser meets at run time.

Plain flow matching shows the denoiser only inputs made from the *true* motion: ``(1 - sigma) x0 + sigma
noise``. At run time its input at every step after the first is made from its *own* earlier estimate, with
the estimate's errors in it (exposure bias). The bundled model's rigid movers come out with a smooth spread of
speed over the object that every sample shares (docs/bundled-model-history.md, "Where a mover's remaining
error lives"): nothing in plain training asks a later step to undo what an earlier step got wrong.

Here a share ``P`` of a batch's samples start from their noise and take the first ``k`` Euler steps of the
run-time schedule (``steps`` steps with the sampler's ``shift``; ``k`` drawn per sample from 1 to
``steps - 2``), without gradients, with the same conditions and caption. The state reached, at the
schedule's noise level ``sigma_k``, is exactly the input the sampler would give the model at step ``k + 1``.
The target is the velocity that carries that state to the *true* motion in the sampler's update,
``(x_k - x0) / sigma_k``: the model is taught to correct its own path towards the truth. The last step
(``sigma`` about 0.02 with 10 steps) is left out: a correction there would be a velocity about fifty times
the error, which would swamp the batch's loss.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from ..sampling.flow_sampler import check_steps, make_scheduler


def schedule_sigmas(steps: int, shift: float) -> torch.Tensor:
    """The sampler's noise levels, ``[steps + 1]`` from 1 down to 0 (the scheduler's own)."""
    scheduler = make_scheduler(shift)
    scheduler.set_timesteps(check_steps(steps))
    return scheduler.sigmas.float().cpu()


def check_rollout(share: float, steps: int) -> None:
    if not 0.0 <= share <= 1.0:
        raise InputError(f"--rollout is the share of a batch trained on its own sampling path: 0..1, got {share}")
    if share and check_steps(steps) < 3:
        raise InputError(f"--rollout-steps must be 3 or more (the first and the last step are never the rollout's "
                         f"end), got {steps}")


def draw_rollouts(batch: int, share: float, steps: int, generator: torch.Generator) -> torch.Tensor:
    """``[batch]`` int: the number of sampler steps each sample takes before training, 0 for plain samples."""
    picked = torch.rand(batch, generator=generator) < share
    ks = torch.randint(1, steps - 1, (batch,), generator=generator)
    return torch.where(picked, ks, torch.zeros_like(ks))


@torch.no_grad()
def rollout_states(velocity, noise: torch.Tensor, ks: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """The sampler's states after ``ks[i]`` Euler steps from ``noise[i]`` (sigma = 1) on the schedule ``sigmas``.

    ``velocity(x, t, rows)`` is the model's velocity for the states ``x`` of batch rows ``rows`` at timesteps ``t``
    (``1000 sigma``); the rows still stepping are batched together at each step."""
    x = noise.clone()
    for j in range(int(ks.max()) if ks.numel() else 0):
        rows = (ks > j).nonzero()[:, 0]
        t = sigmas[j].expand(len(rows)).to(x.device) * 1000.0
        v = velocity(x[rows], t, rows)
        x[rows] = x[rows] + (sigmas[j + 1] - sigmas[j]).to(x.device) * v.to(x.dtype)
    return x
