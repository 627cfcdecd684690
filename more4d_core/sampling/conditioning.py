"""Building the conditioning of one generation: sizes, control and depth videos, normalization.

Conventions of the reference (DESIGN section 3): the control video is the input image repeated
over all frames in [-1, 1]; the depth video is the frame-0 depth clamped to [0, 1e4] with invalid
values set to 1, min-max normalized per image to [-1, 1], repeated to 3 channels and all frames;
the start-image latents are zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import InputError
from ..models.config import DEPTH_CONDITIONS, STraGConfig
from ..models.object_encoder import encoder_planes
from .condition_detail import add_detail, luminance


def generation_size(image_hw: tuple[int, int], cfg: STraGConfig) -> tuple[int, int]:
    """A generation grid near the model's trained area with the image's aspect ratio, in
    multiples of the model's pixel stride."""
    h, w = image_hw
    stride = cfg.pixel_stride
    area = cfg.height * cfg.width
    scale = math.sqrt(area / float(h * w))
    gh = max(stride, int(round(h * scale / stride)) * stride)
    gw = max(stride, int(round(w * scale / stride)) * stride)
    return gh, gw


def as_image_tensor(image) -> torch.Tensor:
    """``[H, W, 3]`` (or ComfyUI ``[1, H, W, 3]``) float 0..1 or uint8 -> float32 ``[H, W, 3]``."""
    img = torch.as_tensor(image)
    if img.ndim == 4 and img.shape[0] == 1:
        img = img[0]
    if img.ndim != 3 or img.shape[-1] not in (3, 4):
        raise InputError(f"the input image must be [H, W, 3], got {list(img.shape)}")
    img = img[..., :3]
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise InputError(f"the input image is empty ({img.shape[1]}x{img.shape[0]} pixels)")
    if img.dtype == torch.uint8:
        return img.float() / 255.0
    img = img.float()
    if not torch.isfinite(img).all() or img.min() < -1e-3 or img.max() > 1 + 1e-3:
        raise InputError("the input image must hold finite values in 0..1 (or uint8)")
    return img.clamp(0, 1)


def resize_image(image: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """``[H, W, 3]`` -> ``[1, 3, h, w]`` (antialiased bilinear)."""
    x = image.permute(2, 0, 1).unsqueeze(0)
    if tuple(x.shape[-2:]) == tuple(hw):
        return x
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def resize_depth(depth: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """``[H, W]`` -> ``[H', W']`` (nearest: never blends foreground and background depths)."""
    if tuple(depth.shape) == tuple(hw):
        return depth
    return F.interpolate(depth[None, None].float(), size=hw, mode="nearest")[0, 0]


def depth_condition(depth: torch.Tensor, mode: str = "minmax") -> torch.Tensor:
    """Depth map ``[H, W]`` -> ``[H, W]`` in [-1, 1].

    ``"minmax"`` (the reference): per-image min-max normalized. ``"max_ratio"``: ``2 z / max z - 1``,
    which keeps the ratios of depths (a camera move's parallax goes with far depth / depth, lost by
    min-max) and, like min-max, does not change with a global scale of the depth.
    """
    if mode not in DEPTH_CONDITIONS:
        raise InputError(f"depth condition must be one of {', '.join(DEPTH_CONDITIONS)}, got {mode!r}")
    d = depth.float().clamp(0.0, 1e4)
    d = torch.where(torch.isfinite(depth) & (depth >= 1e-5), d, torch.ones_like(d))
    lo, hi = d.min(), d.max()
    if mode == "max_ratio":
        return 2.0 * d / (hi + 1e-8) - 1.0
    return 2.0 * (d - lo) / (hi - lo + 1e-8) - 1.0


def depth_planes(depth: torch.Tensor, mode: str) -> torch.Tensor:
    """Depth maps ``[B, H, W]`` -> ``[B, 1, H, W]``, each normalized on its own (:func:`depth_condition`)."""
    return torch.stack([depth_condition(d, mode) for d in depth]).unsqueeze(1)


def repeat_video(frame: torch.Tensor, frames: int) -> torch.Tensor:
    """``[B, 3, H, W]`` -> ``[B, 3, T, H, W]``."""
    return frame.unsqueeze(2).expand(-1, -1, frames, -1, -1).contiguous()


@dataclass
class Conditions:
    """Everything the DiT is conditioned on besides the noisy latents, the timestep and the text."""

    control: torch.Tensor  # [B, C, T', h, w] latents of the image repeated over time
    start: torch.Tensor  # [B, C, T', h, w] zeros (start-image latents)
    depth: torch.Tensor  # [B, C, T', h, w] latents of the normalized depth repeated over time
    reference: torch.Tensor | None  # [B, C, h, w] reference-image latent (zeros for "zero" configs)
    motion: torch.Tensor | None  # [B, F, g, g] Motion Perception Module features
    objects: torch.Tensor | None = None  # [B, width, h, w] object-encoder features (models with one)
    planes: torch.Tensor | None = None  # [B, 4, H, W] the object encoder's input planes (read by a fine motion gate)

    def model_input(self, noisy: torch.Tensor) -> torch.Tensor:
        """``[noisy | control | start | depth]`` on channels, conditions broadcast to the batch."""
        n = noisy.shape[0]
        parts = [self.control, self.start, self.depth]
        if parts[0].shape[0] not in (1, n):
            raise InputError(f"conditions of batch {parts[0].shape[0]} cannot serve a batch of {n}")
        return torch.cat([noisy] + [p.expand(n, *p.shape[1:]).to(noisy.dtype) for p in parts], dim=1)

    def expanded(self, n: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Reference latent and motion features broadcast to a batch of ``n``."""
        ref = None if self.reference is None else self.reference.expand(n, *self.reference.shape[1:])
        mot = None if self.motion is None else self.motion.expand(n, *self.motion.shape[1:])
        return ref, mot

    def rows(self, index: torch.Tensor) -> Conditions:
        """The conditions of the batch rows ``index`` (a 1-D index tensor), every per-sample part selected."""
        return Conditions(*(None if part is None else part[index] for part in (
            self.control, self.start, self.depth, self.reference, self.motion, self.objects, self.planes)))

    def objects_for(self, n: int) -> torch.Tensor | None:
        """Object-encoder features broadcast to a batch of ``n`` (None without an object encoder)."""
        return None if self.objects is None else self.objects.expand(n, *self.objects.shape[1:])


def encode_conditions(
    cfg: STraGConfig,
    codec,
    transformer,
    image: torch.Tensor,
    depth: torch.Tensor,
    num_frames: int,
    *,
    with_motion: bool = True,
) -> Conditions:
    """Conditions from images ``[B, 3, H, W]`` (0..1) and depths ``[B, H, W]`` on the generation
    grid: the one place that defines them, for training and inference alike."""
    dtype = transformer.patch_embedding.weight.dtype
    signed = image * 2 - 1  # images in [-1, 1], as the codec encodes them
    control = codec.encode_still(signed, num_frames).to(dtype)
    depth_norm = depth_planes(depth, cfg.depth_condition).expand(-1, 3, -1, -1)
    depth_lat = codec.encode_still(depth_norm.contiguous(), num_frames).to(dtype)
    if cfg.condition_detail == "subcell":
        k, s = cfg.dct_coefficients, cfg.spatial_compression
        control = add_detail(control, luminance(signed), k, s)
        depth_lat = add_detail(depth_lat, depth_norm[:, :1], k, s)
    reference = None
    if cfg.use_reference_tokens:
        reference = codec.encode_image(signed).to(dtype)
        if cfg.reference_image == "zero":
            reference = torch.zeros_like(reference)
    motion = transformer.encode_motion(image.to(dtype)) if (cfg.use_mpm and with_motion) else None
    objects = planes = None
    if cfg.object_encoder != "none":
        planes = encoder_planes(signed, depth_norm[:, :1])
        objects = transformer.encode_objects(planes)
    return Conditions(control, torch.zeros_like(control), depth_lat, reference, motion, objects, planes)
