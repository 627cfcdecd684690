"""Motion Perception Module: a frozen video-MAE ViT encodes the input image into patch features,
a small conv adapter refines them, and they are resized to the DiT token grid.

The ViT is architecture- and key-compatible with OmniMAE ViT-B (``trunk.*``): a tubelet Conv3d
(2x16x16) over the image repeated to two frames, a fixed 1-D sinusoidal position table for an
8x14x14 layout (the first 14x14 rows are used for one image), 12 pre-norm blocks with fused qkv,
a final LayerNorm, no class token. Input pixels are ImageNet-normalized *before* the bilinear
resize to 224x224, as the reference does.

Note on weights: the authors' model builder re-initializes every Linear layer after loading the
OmniMAE checkpoint, so the trunk weights that their DiT actually used live in their transformer
checkpoint (``omnimae_extractor.trunk.*``), which is where we load them from.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.normalization import FP32LayerNorm
from torch import nn

from .config import MotionEncoderConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def sinusoid_table(positions: int, dim: int) -> torch.Tensor:
    """``[1, positions, dim]``: sin on even columns, cos on odd, angle ``p / 10000^(2*(j//2)/dim)``."""
    pos = torch.arange(positions, dtype=torch.float64).unsqueeze(1)
    j = torch.arange(dim, dtype=torch.float64)
    angle = pos / torch.pow(10000.0, 2.0 * torch.div(j, 2, rounding_mode="floor") / dim)
    table = torch.where(j.long() % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.to(torch.float32).unsqueeze(0)


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # scale = head_dim ** -0.5
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, eps: float):
        super().__init__()
        # computed in float32 and returned in the input's dtype: a bf16 load keeps modules named norm1 / norm2
        # in float32 (the transformer's _keep_in_fp32_modules), and CUDA's layer_norm rejects mixed dtypes
        self.norm1 = FP32LayerNorm(dim, eps=eps)
        self.attn = _Attention(dim, heads)
        self.norm2 = FP32LayerNorm(dim, eps=eps)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _PatchEmbed(nn.Module):
    def __init__(self, cfg: MotionEncoderConfig):
        super().__init__()
        kernel = (cfg.tubelet, cfg.patch_size, cfg.patch_size)
        # index 0 is the (parameter-free) image-to-video repeat, as in OmniMAE's key layout
        self.proj = nn.Sequential(nn.Identity(), nn.Conv3d(3, cfg.embed_dim, kernel_size=kernel, stride=kernel))


class ViTTrunk(nn.Module):
    """The encoder part of a video-MAE ViT (OmniMAE layout)."""

    def __init__(self, cfg: MotionEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.patch_embed = _PatchEmbed(cfg)
        positions = cfg.pos_frames * cfg.grid * cfg.grid
        self.register_buffer("pos_embed", sinusoid_table(positions, cfg.embed_dim), persistent=True)
        self.blocks = nn.ModuleList(_Block(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, cfg.eps) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.eps)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``image [B, 3, H, W]`` in 0..1 -> patch features ``[B, D, g, g]`` (g = 224 / 16 for ViT-B)."""
        cfg = self.cfg
        mean = torch.tensor(IMAGENET_MEAN, device=image.device, dtype=image.dtype).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=image.device, dtype=image.dtype).view(1, 3, 1, 1)
        x = (image - mean) / std
        x = F.interpolate(x, size=(cfg.image_size, cfg.image_size), mode="bilinear", align_corners=False)
        x = x.unsqueeze(2).expand(-1, -1, cfg.tubelet, -1, -1)  # one image as a short clip
        conv = self.patch_embed.proj[1]
        x = conv(x.to(conv.weight.dtype))  # [B, D, 1, g, g]
        b, d = x.shape[:2]
        tokens = x.flatten(2).transpose(1, 2)
        tokens = tokens + self.pos_embed[:, : tokens.shape[1]].to(tokens.dtype)
        for block in self.blocks:
            tokens = block(tokens)
        tokens = self.norm(tokens)
        return tokens.transpose(1, 2).reshape(b, d, cfg.grid, cfg.grid)


class MotionEncoder(nn.Module):
    """Holder with the OmniMAE key prefix (``trunk.*``); frozen unless ``trainable`` (small
    models without pretrained weights learn it jointly)."""

    def __init__(self, cfg: MotionEncoderConfig, trainable: bool = False):
        super().__init__()
        self.trunk = ViTTrunk(cfg)
        self.trainable = trainable
        self.requires_grad_(trainable)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.trainable:
            return self.trunk(image)
        with torch.no_grad():
            return self.trunk(image)


def feature_adapter(dim: int) -> nn.Sequential:
    """The trainable refinement of the ViT features: conv3x3 -> SiLU -> conv3x3 (``feature_adapter.{0,2}``)."""
    return nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.SiLU(), nn.Conv2d(dim, dim, 3, padding=1))


def features_to_grid(features: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
    """``[B, F, g, g]`` feature maps -> ``[B, h*w, F]`` per token-grid position (bilinear resize)."""
    resized = F.interpolate(features, size=grid_hw, mode="bilinear", align_corners=False)
    return resized.flatten(2).transpose(1, 2)

