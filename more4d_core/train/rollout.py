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

That target (``--rollout-target truth``) failed (history: "Training on the model's own sampling path, judged"):
the state carries the model's own sample (a speed, a course among the plausible ones), independent of the
scene's truth, so landing it on the truth teaches every step to pull towards the conditional mean. With
``--rollout-target own_rigid`` the target keeps what the state committed to and asks only what the truth says
for sure: only samples of a still camera with a rigid mover roll out; each rigid mover (:data:`~..data.procedural.motions.RIGID_KINDS`)
gets the truth's own field shifted by the model's common error on it (so it moves as one, with the model's own
speed and course), the pixels of non-rigid movers keep the model's own estimate (no lesson there), and everything
else, which does not move, gets the truth (:func:`own_rigid_target`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InputError
from ..sampling.flow_sampler import check_steps, make_scheduler

ROLLOUT_TARGETS = ("truth", "own_rigid")


def schedule_sigmas(steps: int, shift: float) -> torch.Tensor:
    """The sampler's noise levels, ``[steps + 1]`` from 1 down to 0 (the scheduler's own)."""
    scheduler = make_scheduler(shift)
    scheduler.set_timesteps(check_steps(steps))
    return scheduler.sigmas.float().cpu()


def check_rollout(share: float, steps: int, target: str = "truth") -> None:
    if not 0.0 <= share <= 1.0:
        raise InputError(f"--rollout is the share of a batch trained on its own sampling path: 0..1, got {share}")
    if share and check_steps(steps) < 3:
        raise InputError(f"--rollout-steps must be 3 or more (the first and the last step are never the rollout's "
                         f"end), got {steps}")
    if target not in ROLLOUT_TARGETS:
        raise InputError(f"--rollout-target must be one of {', '.join(ROLLOUT_TARGETS)}, got {target!r}")


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


def own_rigid_rows(batch: dict) -> torch.Tensor:
    """``[B]`` bool: the samples ``--rollout-target own_rigid`` may roll out (a still camera and a rigid mover)."""
    if "rigid_ids" not in batch or "camera_moves" not in batch:
        raise InputError("--rollout-target own_rigid needs to know which objects move rigidly: procedural data only "
                         "(a TrajScene folder has no object ids)")
    return (batch["rigid_ids"].flatten(1).amax(dim=1) > 0) & ~batch["camera_moves"].bool()


def own_rigid_target(truth: torch.Tensor, own: torch.Tensor, rigid_ids: torch.Tensor,
                     loose_mask: torch.Tensor) -> torch.Tensor:
    """Clean latents ``[B, C, T, h, w]`` to land a rollout state on: ``truth`` where nothing moves; on each rigid mover
    (``rigid_ids [B, H, W]``: object index + 1 on its pixels) the truth plus ``f * (m_own - m_true)``, with ``f`` each
    cell's share of the mover's pixels and ``m`` the least-squares fit ``latents ~ f * m`` of the model's ``own``
    estimate and of the truth on the mover (its common motion, per channel); the model's own estimate on cells that
    hold a pixel of a non-rigid mover (``loose_mask [B, H, W]``). The latents must be linear in the field, as the
    codec's are, so that a cell's share of an object scales that object's part of the cell."""
    hw = tuple(truth.shape[-2:])
    out = truth.clone()
    for b in range(truth.shape[0]):
        for o in rigid_ids[b].unique().tolist():
            if o <= 0:
                continue
            f = F.adaptive_avg_pool2d((rigid_ids[b] == o).float()[None, None], hw)[0, 0].to(truth.dtype)  # [h, w]
            denom = (f * f).sum().clamp(min=1e-12)
            common = ((own[b] - truth[b]) * f).sum(dim=(-2, -1), keepdim=True) / denom  # [C, T, 1, 1]
            out[b] = out[b] + f * common
        loose = F.adaptive_max_pool2d(loose_mask[b].float()[None, None], hw)[0, 0] > 0
        out[b][..., loose] = own[b][..., loose]
    return out
