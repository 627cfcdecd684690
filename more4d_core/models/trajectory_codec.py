"""Trajectory codecs: metric 3D tracks <-> normalized motion field <-> diffusion latents.

Both codecs share the metric wrapper (:class:`TrajectoryCodec`): tracks are turned into the
depth-guided normalized displacement field (``geometry.normalization``), treated as a 3-channel
video ``[B, 3, T, H, W]`` and encoded; decoding inverts every step, so
``decode_tracks(encode_tracks(tracks), P0)`` returns metric trajectories with frame 0 exactly P0.
The same codec encodes the conditioning videos (control image, depth) in [-1, 1].

* :class:`WanVAECodec` — the authors' design: encoder adaptor -> Wan2.1 video VAE
  (diffusers ``AutoencoderKLWan``, 16 channels, 4x time / 8x space) -> decoder adaptor; latents
  are standardized with the VAE's per-channel mean/std.
* :class:`PatchifyCodec` — for small CPU models: no network. Space is area-averaged by the
  spatial factor, time is packed (latent frame 0 = frame 0, then groups of ``temporal`` frames
  stacked on channels: ``3 * temporal`` channels); decoding unpacks and upsamples bilinearly to
  any output size. Motion latents are divided by ``motion_scale`` (fit on training data) so the
  diffusion model sees unit-scale values.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..geometry.normalization import NormalizationFactors, denormalize_motion, normalize_motion
from ..sampling.motion_smoothing import blocks_sigma, check_motion_smoothing, smooth_motion_blocks
from ..sampling.still import hold_still
from .config import DECODE_GUIDES, STraGConfig
from .guided_upsampling import block_means, depth_guide, guided_upsample
from .temporal_decoder import TemporalResidual
from .vae_adaptors import DecoderAdaptor, EncoderAdaptor


def tracks_to_field(points: torch.Tensor, factors: NormalizationFactors) -> torch.Tensor:
    """Metric tracks ``[B, T, H, W, 3]`` -> normalized field ``[B, 3, T, H, W]``."""
    field = torch.stack([normalize_motion(p, factors) for p in points])
    return field.permute(0, 4, 1, 2, 3)


def field_to_tracks(field: torch.Tensor, points0: torch.Tensor, factors: NormalizationFactors) -> torch.Tensor:
    """Normalized field ``[B, 3, T, H, W]`` + frame-0 points ``[B, H, W, 3]`` -> tracks ``[B, T, H, W, 3]``."""
    grid = field.permute(0, 2, 3, 4, 1)
    return torch.stack([denormalize_motion(n, p0, factors) for n, p0 in zip(grid, points0)])


def resize_field(field: torch.Tensor, out_hw: tuple[int, int] | None) -> torch.Tensor:
    """Bilinear resize of every frame of ``[B, C, T, H, W]`` to ``out_hw`` (None: unchanged)."""
    if out_hw is None or tuple(out_hw) == tuple(field.shape[-2:]):
        return field
    b, c, t, h, w = field.shape
    flat = field.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    flat = F.interpolate(flat, size=tuple(out_hw), mode="bilinear", align_corners=False)
    return flat.reshape(b, t, c, *out_hw).permute(0, 2, 1, 3, 4)


class TrajectoryCodec(nn.Module):
    """Common interface; subclasses implement the field <-> latent maps."""

    latent_channels: int
    temporal: int
    spatial: int

    def latent_size(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        if (num_frames - 1) % self.temporal or height % self.spatial or width % self.spatial:
            raise InputError(
                f"a {num_frames}x{height}x{width} video does not fit the codec: frames must be 1 + a multiple "
                f"of {self.temporal}, height and width multiples of {self.spatial}"
            )
        return 1 + (num_frames - 1) // self.temporal, height // self.spatial, width // self.spatial

    # field-level maps (subclasses)
    def encode_field(self, field: torch.Tensor, sample: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def decode_field(
        self, latents: torch.Tensor, out_hw: tuple[int, int] | None = None, num_frames: int | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def encode_video(self, video: torch.Tensor, sample: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """One image ``[B, 3, H, W]`` in [-1, 1] -> latent ``[B, C, h, w]`` (the reference latent)."""
        return self.encode_video(image.unsqueeze(2))[:, :, 0]

    def encode_still(self, image: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Latents of ``image [B, 3, H, W]`` repeated over ``num_frames`` (control / depth videos).
        Codecs with a closed form for a constant video override this to skip building the video."""
        return self.encode_video(image.unsqueeze(2).expand(-1, -1, num_frames, -1, -1).contiguous())

    # metric wrappers
    def encode_tracks(self, points: torch.Tensor, factors: NormalizationFactors, sample: bool = False) -> torch.Tensor:
        return self.encode_field(tracks_to_field(points, factors), sample=sample)

    def decode_tracks(
        self, latents: torch.Tensor, points0: torch.Tensor, factors: NormalizationFactors, num_frames: int | None = None,
        still_threshold: float = 0.0, smoothing: float = 0.0,
    ) -> torch.Tensor:
        """Metric tracks from latents; ``still_threshold`` > 0 holds near-still points still
        (:func:`..sampling.still.hold_still`); ``smoothing`` > 0 averages the motion within surfaces first
        (:mod:`..sampling.motion_smoothing`, codecs with a coarse motion grid only)."""
        field = self.decode_field_on(latents, points0, num_frames, smoothing=smoothing)
        return field_to_tracks(hold_still(field.float(), still_threshold), points0.float(), factors)

    def decode_field_on(self, latents: torch.Tensor, points0: torch.Tensor, num_frames: int | None = None, *,
                        smoothing: float = 0.0) -> torch.Tensor:
        """The normalized field on the grid of the frame-0 points ``[B, H, W, 3]`` (codecs whose decoder
        uses the frame-0 geometry override this)."""
        if check_motion_smoothing(smoothing) > 0.0:
            raise InputError(f"motion smoothing works on the small models' coarse motion grid; this model's codec "
                             f"({type(self).__name__}) has none: set motion smoothing to 0")
        return self.decode_field(latents, out_hw=tuple(points0.shape[1:3]), num_frames=num_frames)


class PatchifyCodec(TrajectoryCodec):
    def __init__(self, temporal: int = 4, spatial: int = 4):
        super().__init__()
        self.temporal = int(temporal)
        self.spatial = int(spatial)
        self.latent_channels = 3 * self.temporal
        self.register_buffer("motion_scale", torch.ones(()), persistent=True)

    def _pack(self, video: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = video.shape
        if (t - 1) % self.temporal:
            raise InputError(f"frame count {t} must be 1 + a multiple of {self.temporal}")
        if h % self.spatial or w % self.spatial:
            raise InputError(f"size {w}x{h} must be a multiple of {self.spatial}")
        if self.spatial > 1:
            video = F.avg_pool3d(video, kernel_size=(1, self.spatial, self.spatial))
        first = video[:, :, :1].expand(-1, -1, self.temporal, -1, -1)
        frames = torch.cat([first, video[:, :, 1:]], dim=2)  # [B, 3, temporal * T', h, w]
        tl = frames.shape[2] // self.temporal
        frames = frames.reshape(b, c, tl, self.temporal, *frames.shape[-2:])
        return frames.permute(0, 3, 1, 2, 4, 5).reshape(b, self.temporal * c, tl, *frames.shape[-2:])

    def _unpack(self, latents: torch.Tensor) -> torch.Tensor:
        b, ch, tl, h, w = latents.shape
        if ch != self.latent_channels:
            raise InputError(f"codec expects {self.latent_channels} latent channels, got {ch}")
        groups = latents.reshape(b, self.temporal, 3, tl, h, w).permute(0, 2, 3, 1, 4, 5)
        first = groups[:, :, 0].mean(dim=2, keepdim=True)  # the repeated frame 0
        rest = groups[:, :, 1:].reshape(b, 3, (tl - 1) * self.temporal, h, w)
        return torch.cat([first, rest], dim=2)

    def encode_field(self, field: torch.Tensor, sample: bool = False) -> torch.Tensor:
        return self._pack(field) / self.motion_scale.to(field.dtype)

    def decode_field(self, latents, out_hw=None, num_frames=None) -> torch.Tensor:
        return resize_field(self._unpack(latents * self.motion_scale.to(latents.dtype)), out_hw)

    def encode_video(self, video: torch.Tensor, sample: bool = False) -> torch.Tensor:
        return self._pack(video)

    def encode_still(self, image: torch.Tensor, num_frames: int) -> torch.Tensor:
        pooled = F.avg_pool2d(image, self.spatial) if self.spatial > 1 else image
        groups = 1 + (num_frames - 1) // self.temporal
        return pooled.repeat(1, self.temporal, 1, 1).unsqueeze(2).expand(-1, -1, groups, -1, -1).contiguous()


class TemporalBasisCodec(TrajectoryCodec):
    """Small-model codec: each pixel's normalized trajectory is projected onto ``K`` cosine basis
    functions of time (``cos(pi k (t + 1/2) / T)``, k = 0..K-1, a low-pass DCT), after area pooling
    by ``spatial``. The latent is one frame of ``3 K`` channels at 1/``spatial`` resolution, so the
    DiT attends over space only; decoding evaluates the basis at any frame count (the same motion,
    re-timed) and upsamples bilinearly. Physical trajectories are smooth in time, which is why a few
    coefficients suffice; a constant video (the control image, the depth map) encodes exactly into
    the first coefficient. ``latent_scale`` (per channel, fit on training data) makes latents unit-scale.
    ``residual`` (a :class:`.temporal_decoder.TemporalResidual`, or None) adds to each decoded pixel what
    the cosines cannot draw (a bounce's kinks), read from its coefficients.
    """

    temporal = 1

    def __init__(self, coefficients: int = 8, spatial: int = 4, decode_guide: str = "none",
                 residual: TemporalResidual | None = None):
        super().__init__()
        if decode_guide not in DECODE_GUIDES:
            raise InputError(f"decode guide must be one of {', '.join(DECODE_GUIDES)}, got {decode_guide!r}")
        self.coefficients = int(coefficients)
        self.spatial = int(spatial)
        self.decode_guide = decode_guide
        self.latent_channels = 3 * self.coefficients
        self.register_buffer("latent_scale", torch.ones(self.latent_channels), persistent=True)
        if residual is not None and residual.coefficients != self.coefficients:
            raise InputError(f"the temporal decoder reads {residual.coefficients} coefficients per axis, the codec "
                             f"keeps {self.coefficients}")
        self.residual = residual

    def basis(self, frames: int, device=None, dtype=torch.float32) -> torch.Tensor:
        t = torch.arange(frames, dtype=torch.float64)
        k = torch.arange(self.coefficients, dtype=torch.float64)
        return torch.cos(math.pi * k.view(1, -1) * (t.view(-1, 1) + 0.5) / frames).to(device=device, dtype=dtype)

    def latent_size(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        if num_frames < 1 or height % self.spatial or width % self.spatial:
            raise InputError(f"size {width}x{height} must be a multiple of {self.spatial}")
        return 1, height // self.spatial, width // self.spatial

    def _project(self, video: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = video.shape
        if h % self.spatial or w % self.spatial:
            raise InputError(f"size {w}x{h} must be a multiple of {self.spatial}")
        if self.spatial > 1:
            video = F.avg_pool3d(video, kernel_size=(1, self.spatial, self.spatial))
        basis = self.basis(t, video.device, torch.float64)
        solve = torch.linalg.pinv(basis).to(video.dtype)  # [K, T]
        coeffs = torch.einsum("kt,bcthw->bckhw", solve, video)
        return coeffs.reshape(b, c * self.coefficients, 1, *coeffs.shape[-2:])

    def encode_field(self, field: torch.Tensor, sample: bool = False) -> torch.Tensor:
        return self._project(field) / self.latent_scale.to(field.dtype).view(1, -1, 1, 1, 1)

    def decode_field(self, latents, out_hw=None, num_frames=None) -> torch.Tensor:
        return resize_field(self._expand(self._coefficients(latents), num_frames), out_hw)

    def decode_field_on(self, latents: torch.Tensor, points0: torch.Tensor, num_frames: int | None = None, *,
                        smoothing: float = 0.0) -> torch.Tensor:
        """With ``decode_guide="depth"`` the coefficients are upsampled to the output grid guided by the
        frame-0 depth (:mod:`.guided_upsampling`: motion edges stay on depth edges); otherwise bilinearly.
        ``smoothing`` > 0 first averages the coefficients within surfaces (:mod:`..sampling.motion_smoothing`)."""
        coeffs = self._coefficients(latents.float())
        sigma = blocks_sigma(smoothing, coeffs.shape[-1])
        if sigma == 0.0 and self.decode_guide == "none" and self.residual is None:
            return super().decode_field_on(latents, points0, num_frames)
        guide = depth_guide(points0)
        if sigma > 0.0:
            coeffs = smooth_motion_blocks(coeffs, block_means(guide, coeffs.shape[-2:]), sigma)
        if self.decode_guide == "none" and self.residual is None:
            return resize_field(self._expand(coeffs, num_frames), tuple(points0.shape[1:3]))
        return self._expand(self.output_coefficients(coeffs, guide), num_frames)

    def output_coefficients(self, coeffs: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        """Cell coefficients ``[B, 3K, h, w]`` -> each output pixel's ``[B, 3K, H, W]`` on the grid of ``guide``
        (``[B, H, W]``, the frame-0 log depth): upsampled guided by it (``decode_guide="depth"``) or bilinearly."""
        if self.decode_guide == "depth":
            return guided_upsample(coeffs, guide)
        return F.interpolate(coeffs, size=tuple(guide.shape[-2:]), mode="bilinear", align_corners=False)

    def _coefficients(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents ``[B, 3K, 1, h, w]`` -> basis coefficients ``[B, 3K, h, w]`` (latent scale undone)."""
        return (latents * self.latent_scale.to(latents.dtype).view(1, -1, 1, 1, 1))[:, :, 0]

    def _expand(self, coeffs: torch.Tensor, num_frames: int | None) -> torch.Tensor:
        """Coefficients ``[B, 3K, h, w]`` -> field ``[B, 3, T, h, w]``."""
        field = self.basis_field(coeffs, num_frames)
        if self.residual is None:
            return field
        units = coeffs / self.latent_scale.to(coeffs).view(1, -1, 1, 1)
        return field + self.residual(units, num_frames).to(field.dtype)

    def basis_field(self, coeffs: torch.Tensor, num_frames: int | None) -> torch.Tensor:
        """Coefficients ``[B, 3K, h, w]`` -> the cosines' curves ``[B, 3, T, h, w]`` (no learned residual)."""
        if num_frames is None:
            raise InputError("the temporal-basis codec needs the number of frames to decode")
        b, _, h, w = coeffs.shape
        return torch.einsum("tk,bckhw->bcthw", self.basis(num_frames, coeffs.device, coeffs.dtype),
                            coeffs.reshape(b, 3, self.coefficients, h, w))

    def encode_video(self, video: torch.Tensor, sample: bool = False) -> torch.Tensor:
        return self._project(video)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        pooled = F.avg_pool2d(image, self.spatial) if self.spatial > 1 else image
        out = pooled.new_zeros(pooled.shape[0], 3, self.coefficients, *pooled.shape[-2:])
        out[:, :, 0] = pooled
        return out.reshape(pooled.shape[0], self.latent_channels, *pooled.shape[-2:])

    def encode_still(self, image: torch.Tensor, num_frames: int) -> torch.Tensor:
        return self.encode_image(image).unsqueeze(2)  # a constant video is its first coefficient


class WanVideoLatents(nn.Module):
    """The Wan2.1 video VAE with its per-channel latent standardization (``(z - mean) / std``), as
    the diffusion models see latents. Videos are ``[B, 3, T, H, W]`` in [-1, 1]."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae
        cfg = vae.config
        self.latent_channels = int(cfg.z_dim)
        self.temporal = int(getattr(cfg, "scale_factor_temporal", None) or 4)
        self.spatial = int(getattr(cfg, "scale_factor_spatial", None) or 8)
        mean = torch.tensor(cfg.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
        std = torch.tensor(cfg.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1)
        self.register_buffer("latents_mean", mean, persistent=False)
        self.register_buffer("latents_std", std, persistent=False)

    def encode(self, video: torch.Tensor, sample: bool = False) -> torch.Tensor:
        dist = self.vae.encode(video.to(self.vae.dtype)).latent_dist
        z = dist.sample() if sample else dist.mode()
        return (z - self.latents_mean.to(z)) / self.latents_std.to(z)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = latents * self.latents_std.to(latents) + self.latents_mean.to(latents)
        return self.vae.decode(z.to(self.vae.dtype)).sample.clamp(-1, 1)


class WanVAECodec(TrajectoryCodec):
    """Encoder adaptor + diffusers ``AutoencoderKLWan`` + decoder adaptor."""

    def __init__(self, vae: nn.Module, encoder_adaptor: nn.Module, decoder_adaptor: nn.Module):
        super().__init__()
        self.video = WanVideoLatents(vae)
        self.encoder_adaptor = encoder_adaptor
        self.decoder_adaptor = decoder_adaptor
        self.latent_channels = self.video.latent_channels
        self.temporal = self.video.temporal
        self.spatial = self.video.spatial

    @property
    def vae(self) -> nn.Module:
        return self.video.vae

    def encode_video(self, video: torch.Tensor, sample: bool = False) -> torch.Tensor:
        return self.video.encode(video, sample)

    def encode_field(self, field: torch.Tensor, sample: bool = False) -> torch.Tensor:
        return self.video.encode(self.encoder_adaptor(field.to(self.vae.dtype)), sample)

    def decode_field(self, latents, out_hw=None, num_frames=None) -> torch.Tensor:
        return resize_field(self.decoder_adaptor(self.video.decode(latents)).float(), out_hw)


def build_codec(cfg: STraGConfig, vae: nn.Module | None = None) -> TrajectoryCodec:
    """The codec a config asks for (the Wan VAE itself is loaded by the checkpoint loader)."""
    if cfg.codec == "dct":
        if cfg.latent_channels != 3 * cfg.dct_coefficients:
            raise InputError(
                f"the temporal-basis codec makes 3 x {cfg.dct_coefficients} latent channels but the config says "
                f"{cfg.latent_channels}"
            )
        residual = (TemporalResidual(cfg.dct_coefficients, cfg.num_frames, cfg.temporal_decoder_width)
                    if cfg.temporal_decoder == "learned" else None)
        return TemporalBasisCodec(cfg.dct_coefficients, cfg.spatial_compression, cfg.decode_guide, residual)
    if cfg.codec == "patchify":
        if cfg.latent_channels != 3 * cfg.temporal_compression:
            raise InputError(
                f"the patchify codec makes 3 x {cfg.temporal_compression} = {3 * cfg.temporal_compression} latent "
                f"channels but the config says {cfg.latent_channels}"
            )
        return PatchifyCodec(cfg.temporal_compression, cfg.spatial_compression)
    if vae is None:
        from diffusers import AutoencoderKLWan

        vae = AutoencoderKLWan(base_dim=cfg.vae_base_dim, z_dim=cfg.vae_z_dim)
    return WanVAECodec(vae, EncoderAdaptor(cfg.adaptor_channels), DecoderAdaptor(cfg.adaptor_channels))
