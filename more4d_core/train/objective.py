"""Training objectives.

* :class:`FlowMatchingObjective` — the reference's loss: ``x_sigma = (1 - sigma) x0 + sigma eps``,
  the DiT predicts the velocity ``eps - x0``, mean squared error; captions are dropped (replaced
  by the empty prompt that classifier-free guidance uses) with probability ``text_dropout``. The
  conditioning is built by the same function as at inference (``encode_conditions``), so the
  reference-image input is identical in training and generation (the reference code trained with
  a zero reference latent and generated with the real one).
* :class:`CodecObjective` — reconstruction of the normalized motion field through the trajectory
  codec, for codecs with trainable parts (the Wan VAE adaptors). The encoder adaptor is inside the
  graph and receives gradients (in the reference it never did).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError
from ..geometry.normalization import factors_for
from ..models.trajectory_codec import tracks_to_field
from ..sampling.conditioning import encode_conditions
from .binding_loss import BindingLoss
from .channel_weights import channel_weights, check_channel_weighting
from .kind_head import kind_head_for
from .mover_head import MoverHead
from .rollout import check_rollout, draw_rollouts, own_rigid_rows, own_rigid_target, rollout_states, schedule_sigmas


def shifted_sigmas(u: torch.Tensor, shift: float) -> torch.Tensor:
    """The flow-matching noise level for uniform ``u`` under the scheduler's timestep shift."""
    return shift * u / (1 + (shift - 1) * u)


# a latent cell "moves" when some point of it moves more than this (normalized units: about 2 pixels
# of a 512-wide image in focal units), the TAPVid-3D-style split the evaluation uses
MOVING_THRESHOLD = 0.004


def peak_motion(field: torch.Tensor) -> torch.Tensor:
    """``[B, H, W]``: each pixel's largest displacement over the clip, of normalized fields ``[B, 3, T, H, W]``."""
    return field.norm(dim=1).amax(dim=1)


def moving_mask(tracks: torch.Tensor, intrinsics: torch.Tensor, normalization: str,
                threshold: float = MOVING_THRESHOLD) -> torch.Tensor:
    """``[H, W]`` bool: the pixels whose true track ``[T, H, W, 3]`` moves more than ``threshold`` (normalized
    units) at some frame (the motion gate's target)."""
    h, w = tracks.shape[1:3]
    field = tracks_to_field(tracks.unsqueeze(0), factors_for(normalization, intrinsics, h, w))
    return peak_motion(field)[0] > threshold


# the size of a typical procedural translation (the median peak motion of a sliding, approaching or receding
# object's pixels, normalized units, 200 still-camera training scenes): a scene moving this much or more is priced
# as before
MOTION_SIZE_REFERENCE = 0.14
MOTION_SIZE_CAP = 8.0  # the default most a small motion's extra weight is multiplied by


def motion_size_factors(cell_peak: torch.Tensor, power: float, cap: float, threshold: float = MOVING_THRESHOLD,
                        reference: float = MOTION_SIZE_REFERENCE) -> torch.Tensor:
    """``[B]``: how much more each scene's moving cells are priced for the small size of their motion,
    ``clamp((reference / size) ** power, 1, cap)`` with ``size`` the median peak motion of the scene's
    moving cells (``cell_peak [B, h, w]``). The squared error of a motion grows with its size squared,
    so a bend (about a fifteenth of a slide's size) weighs about two hundred times less than a slide
    in the plain loss; ``power`` 2 prices every scene's motion relative to its own size (up to
    ``cap``), ``power`` 0 leaves the price alone. A scene without moving cells gets 1."""
    factors = torch.ones(cell_peak.shape[0], device=cell_peak.device)
    if power == 0:
        return factors
    for b, peaks in enumerate(cell_peak.flatten(1)):
        moving = peaks[peaks > threshold]
        if moving.numel():
            factors[b] = (reference / moving.median()).pow(power).clamp(1.0, cap)
    return factors


def motion_weights(field: torch.Tensor, latent_hw, weight: float, threshold: float = MOVING_THRESHOLD,
                   size_power: float = 0.0, size_cap: float = MOTION_SIZE_CAP) -> torch.Tensor:
    """Loss weights ``[B, 1, 1, h, w]`` on the latent grid: ``1 + weight`` where the true motion of a
    cell's pixels exceeds ``threshold`` at some frame, 1 elsewhere. Still points dominate the
    plain loss (in a still-camera scene about nine points in ten do not move); this gives the
    moving ones their say. With ``size_power`` > 0 the extra weight of a scene's moving cells is
    multiplied by :func:`motion_size_factors` (small motions priced up)."""
    peak = peak_motion(field)
    cell = torch.nn.functional.adaptive_max_pool2d(peak.unsqueeze(1), tuple(latent_hw))  # [B, 1, h, w]
    extra = weight * motion_size_factors(cell[:, 0], size_power, size_cap, threshold).view(-1, 1, 1, 1)
    return (1.0 + extra * (cell > threshold).float()).unsqueeze(2)


def batch_fields(batch: dict, normalization: str) -> torch.Tensor:
    """Normalized motion fields ``[B, 3, T, H, W]`` of a batch (per-sample normalization factors)."""
    fields = []
    for tracks, k in zip(batch["tracks"], batch["intrinsics"]):
        h, w = tracks.shape[1:3]
        fields.append(tracks_to_field(tracks.unsqueeze(0), factors_for(normalization, k, h, w))[0])
    return torch.stack(fields)


class FlowMatchingObjective(nn.Module):
    """Holds the trainable modules (DiT, text encoder) so that DDP wraps them together.

    With ``mover_weight > 0`` a training-only :class:`~.mover_head.MoverHead` reads the last block's
    tokens and is taught, with that weight, which tokens belong to the objects the caption makes
    move (batches carry ``mover_mask``); with ``kind_weight > 0`` a :class:`~.kind_head.KindHead`
    (or an :class:`~.kind_head.EncoderKindHead`, for a model with an object encoder) teaches a middle
    block's tokens (or the encoder's features) the kind of object they show (``kind_map``). The heads
    are not part of the generator. With ``binding_weight > 0`` the generator's object binding is taught
    which positions the caption names (:class:`~.binding_loss.BindingLoss`, from ``mover_mask``).
    """

    def __init__(self, transformer: nn.Module, text_encoder: nn.Module, codec: nn.Module, *,
                 text_dropout: float = 0.1, train_shift: float = 3.0, motion_weight: float = 0.0,
                 moving_threshold: float = MOVING_THRESHOLD, mover_weight: float = 0.0,
                 mover_min_sigma: float = 0.0, kind_weight: float = 0.0, binding_weight: float = 0.0,
                 channel_weighting: str = "uniform", motion_size_power: float = 0.0,
                 motion_size_cap: float = MOTION_SIZE_CAP, rollout: float = 0.0, rollout_steps: int = 10,
                 rollout_shift: float | None = None, rollout_target: str = "truth"):
        super().__init__()
        self.transformer = transformer
        self.text_encoder = text_encoder
        self.codec = codec
        self.codec.requires_grad_(False)
        self.text_dropout = float(text_dropout)
        self.train_shift = float(train_shift)
        self.motion_weight = float(motion_weight)
        if motion_size_power < 0 or motion_size_cap < 1:
            raise InputError(f"the motion size price needs a power >= 0 and a cap >= 1, got {motion_size_power} and "
                             f"{motion_size_cap}")
        if motion_size_power and not motion_weight:
            raise InputError("the motion size price scales the moving cells' extra weight: it needs a motion weight > 0")
        self.motion_size_power = float(motion_size_power)
        self.motion_size_cap = float(motion_size_cap)
        check_channel_weighting(channel_weighting)  # fails here, not at the first step
        if channel_weighting != "uniform" and getattr(codec, "latent_scale", None) is None:
            raise InputError(f"channel weighting {channel_weighting!r} needs a codec with a per-channel latent scale "
                             "(the dct codec)")
        self.channel_weighting = channel_weighting
        self.moving_threshold = float(moving_threshold)
        self.mover_weight = float(mover_weight)
        self.mover_min_sigma = float(mover_min_sigma)  # the mover loss counts samples noised at least this much
        self.mover_head = MoverHead(transformer) if self.mover_weight > 0 else None
        self.kind_weight = float(kind_weight)
        self.kind_head = kind_head_for(transformer) if self.kind_weight > 0 else None
        self.binding_weight = float(binding_weight)
        self.binding_loss = BindingLoss(transformer) if self.binding_weight > 0 else None
        check_rollout(rollout, rollout_steps, rollout_target)
        self.rollout = float(rollout)  # the share of samples trained on the model's own sampling path (rollout.py)
        self.rollout_target = rollout_target
        self.rollout_steps = int(rollout_steps)
        self.rollout_sigmas = schedule_sigmas(rollout_steps, transformer.cfg.shift if rollout_shift is None
                                              else rollout_shift) if self.rollout else None
        self.terms: dict[str, float] = {}  # the loss terms of the last call, for the log

    def forward(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        cfg = self.transformer.cfg
        device = next(self.transformer.parameters()).device
        images = batch["image"].to(device)
        frames = batch["tracks"].shape[1]
        with torch.no_grad():
            field = batch_fields(batch, cfg.normalization).to(device)
            x0 = self.codec.encode_field(field).float()
            weights = None
            if self.motion_weight:
                weights = motion_weights(field, x0.shape[-2:], self.motion_weight, self.moving_threshold,
                                         self.motion_size_power, self.motion_size_cap)
            if self.channel_weighting != "uniform":  # read at each step: the scale is fitted or loaded after construction
                per_channel = channel_weights(self.codec.latent_scale, self.channel_weighting).to(device).view(1, -1, 1, 1, 1)
                weights = per_channel if weights is None else weights * per_channel
        conditions = encode_conditions(cfg, self.codec, self.transformer, images, batch["depth"].to(device), frames)
        b = x0.shape[0]
        drop = torch.rand(b, generator=generator) < self.text_dropout
        captions = ["" if d else c for d, c in zip(drop.tolist(), batch["caption"])]
        text = self.text_encoder(captions).to(device)
        u = torch.rand(b, generator=generator)
        sigma = shifted_sigmas(u, self.train_shift).to(device).view(b, 1, 1, 1, 1)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        noisy = (1 - sigma) * x0 + sigma * noise
        target = noise - x0
        if self.rollout:
            ks = draw_rollouts(b, self.rollout, self.rollout_steps, generator)
            if self.rollout_target == "own_rigid":  # only a still camera's scenes with a rigid mover roll out
                ks = ks * own_rigid_rows(batch).to(ks.dtype)
            if bool((ks > 0).any()):
                noisy, sigma, target = self._rollout(batch, conditions, text, x0, noise, ks, noisy, sigma, target)
        pred = self.transformer(
            conditions.model_input(noisy), sigma.view(b) * 1000.0, text,
            reference_latent=conditions.reference, motion_features=conditions.motion,
            object_features=conditions.objects,
        )
        err = (pred.float() - target.float()) ** 2
        loss = err.mean() if weights is None else (err * weights).sum() / (weights.expand_as(err).sum())
        self.terms = {"flow": float(loss.detach())}
        if self.mover_head is not None:
            if "mover_mask" in batch:  # procedural data (a TrajScene folder has no object ids)
                keep = (sigma.view(b) >= self.mover_min_sigma).float()
                mover = self.mover_head.loss(batch["mover_mask"].to(device), keep)
                self.terms["mover"] = float(mover.detach())
                loss = loss + self.mover_weight * mover
            self.mover_head.forget()
        if self.kind_head is not None:
            if "kind_map" in batch:
                kind = self.kind_head.loss(batch["kind_map"].to(device))
                self.terms["kind"] = float(kind.detach())
                loss = loss + self.kind_weight * kind
            self.kind_head.forget()
        if self.binding_loss is not None:
            if "mover_mask" in batch:
                named = (~drop).float().to(device)  # a dropped caption names nothing the target could know
                binding = self.binding_loss.loss(batch["mover_mask"].to(device), named)
                self.terms["binding"] = float(binding.detach())
                loss = loss + self.binding_weight * binding
            self.binding_loss.forget()
        return loss

    def _rollout(self, batch, conditions, text, x0, noise, ks, noisy, sigma, target):
        """Rows with ``ks > 0`` start from the sampler's state after ``ks`` steps of the model's own path, at the
        schedule's noise level, with the velocity that lands that state on the true ``x0`` as the target (with
        ``rollout_target="own_rigid"``: on :func:`~.rollout.own_rigid_target` of the model's own estimate there)."""
        rows = (ks > 0).nonzero()[:, 0]
        sub, states = conditions.rows(rows.to(x0.device)), text.detach()[rows.to(text.device)]

        def velocity(x, t, r):
            part = sub.rows(r)
            return self.transformer(part.model_input(x), t, states[r], reference_latent=part.reference,
                                    motion_features=part.motion, object_features=part.objects)

        states_k = rollout_states(velocity, noise[rows.to(noise.device)], ks[rows], self.rollout_sigmas)
        sigma_k = self.rollout_sigmas[ks[rows]].to(x0.device).view(-1, 1, 1, 1, 1)
        land = x0[rows]
        if self.rollout_target == "own_rigid":  # the model's own clean estimate at the state, made rigid where the truth is
            with torch.no_grad():
                own = states_k - sigma_k * velocity(states_k, sigma_k.view(-1) * 1000.0, torch.arange(len(rows))).float()
            land = own_rigid_target(land, own, batch["rigid_ids"][rows].to(x0.device),
                                    batch["loose_mask"][rows].to(x0.device))
        noisy, sigma, target = noisy.clone(), sigma.clone(), target.clone()
        noisy[rows], sigma[rows] = states_k.to(noisy.dtype), sigma_k.to(sigma.dtype)
        target[rows] = ((states_k - land) / sigma_k).to(target.dtype)
        return noisy, sigma, target


class CodecObjective(nn.Module):
    """Field reconstruction through a codec with trainable parts."""

    def __init__(self, codec: nn.Module, normalization: str):
        super().__init__()
        self.codec = codec
        self.normalization = normalization

    def forward(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        field = batch_fields(batch, self.normalization)
        latents = self.codec.encode_field(field)
        recon = self.codec.decode_field(latents, out_hw=tuple(field.shape[-2:]), num_frames=field.shape[2])
        return torch.nn.functional.mse_loss(recon.float(), field.float())
