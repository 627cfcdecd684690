"""The Wan2.1 VAE that ComfyUI's own Load VAE node loaded, used where 4D-ViSM needs video latents.

A Wan user already has ``models/vae/wan_2.1_vae.safetensors`` loaded by core's Load VAE in their
graph. Through this adapter the completion model encodes and decodes with that object, so ComfyUI
loads, offloads and tiles it like any of its VAEs and no second copy of the weights is made.

Only ComfyUI's documented VAE surface is used (nothing here imports ComfyUI):

* ``encode(frames)``: frames ``[T, H, W, 3]`` in 0..1 -> raw latents ``[1, 16, T', H/8, W/8]``;
* ``decode(latents)``: raw latents -> frames ``[1, T, H, W, 3]`` in 0..1;
* ``latent_channels`` and ``latent_dim`` (16 and 3 for the Wan 2.1 VAE; the Wan 2.2 VAE has 48).

The diffusion models read latents standardized per channel with the Wan 2.1 constants
(``(z - mean) / std``, ComfyUI's ``Wan21`` latent format with scale 1), the same constants our own
loaded VAE uses (diffusers' ``AutoencoderKLWan`` configuration).

The trajectory model (4D-STraG) does not take this object: it decodes with the authors' fine-tuned
Wan VAE decoder, and the stock VAE would decode its latents into the wrong motion.
"""

from __future__ import annotations

import functools

import torch

from ..errors import InputError

WAN21_LATENT_CHANNELS = 16


@functools.lru_cache(maxsize=1)
def wan21_latent_statistics() -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std ``[1, 16, 1, 1, 1]`` of the Wan 2.1 VAE's latents (diffusers' defaults)."""
    from diffusers import AutoencoderKLWan

    with torch.device("meta"):  # the configuration only; no weights
        cfg = AutoencoderKLWan().config
    mean = torch.tensor(cfg.latents_mean, dtype=torch.float32)
    std = torch.tensor(cfg.latents_std, dtype=torch.float32)
    return mean.view(1, -1, 1, 1, 1), std.view(1, -1, 1, 1, 1)


def check_wan21_vae(vae) -> None:
    """A clear error unless ``vae`` looks like ComfyUI's VAE object holding the Wan 2.1 VAE."""
    if not (callable(getattr(vae, "encode", None)) and callable(getattr(vae, "decode", None))):
        raise InputError(f"vae: expected core's VAE (from Load VAE), got {type(vae).__name__}")
    channels, dims = getattr(vae, "latent_channels", None), getattr(vae, "latent_dim", None)
    if channels != WAN21_LATENT_CHANNELS or dims != 3:
        raise InputError(f"vae: 4D-ViSM needs the Wan 2.1 video VAE (wan_2.1_vae.safetensors: 16 latent channels, "
                         f"video latents); this VAE has {channels} latent channels and {dims}-D latents "
                         "(the Wan 2.2 VAE and image VAEs do not fit Wan2.1-Fun-InP)")


class ComfyVideoLatents:
    """The interface of :class:`~.trajectory_codec.WanVideoLatents` over ComfyUI's VAE object: videos
    ``[1, 3, T, H, W]`` in [-1, 1] <-> standardized latents ``[1, 16, T', H/8, W/8]``."""

    latent_channels = WAN21_LATENT_CHANNELS
    temporal = 4
    spatial = 8

    def __init__(self, vae):
        check_wan21_vae(vae)
        self.vae = vae

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        if video.ndim != 5 or video.shape[0] != 1 or video.shape[1] != 3:
            raise InputError(f"expected one video [1, 3, T, H, W], got {list(video.shape)}")
        frames = ((video[0].permute(1, 2, 3, 0).float().cpu() + 1) / 2).clamp(0, 1)  # [T, H, W, 3] in 0..1
        z = torch.as_tensor(self.vae.encode(frames)).float()
        if z.ndim != 5 or z.shape[1] != WAN21_LATENT_CHANNELS:
            raise InputError(f"vae: the VAE returned latents {list(z.shape)}, not Wan 2.1 video latents [1, 16, T, h, w]")
        mean, std = wan21_latent_statistics()
        return ((z - mean) / std).to(video.device)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        mean, std = wan21_latent_statistics()
        frames = torch.as_tensor(self.vae.decode(latents.float().cpu() * std + mean)).float()
        if frames.ndim == 4:  # [T, H, W, 3]
            frames = frames.unsqueeze(0)
        video = frames.permute(0, 4, 1, 2, 3) * 2 - 1  # [1, 3, T, H, W] in [-1, 1]
        return video.clamp(-1, 1).to(latents.device)
