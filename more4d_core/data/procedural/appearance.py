"""Appearance variation of training textures (recipe v4): the same scenes in colours and patterns the training
photographs do not have.

The splits are defined by their photographs (``textures.py``): train has 13, validation 4, held-out 7 others.
A model trained on 13 photographs can learn which object is which, and where an object's edge is, partly from
how those photographs look. Recipe v4 shows the training scenes of recipe v3 with each surface's texture changed,
with probability ``VARY_PROB``, by one or two of: a channel permutation, inversion, a gamma curve, a contrast
change, a grey version tinted, a random colour mixing, a blur, or a procedural pattern in place of the photograph
(stripes, a checkerboard, smooth noise or dots in two random colours). Shapes, depth, motion and captions are
v3's, bit for bit: the variation draws from its own random stream, so only the colours change.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ...sampling.condition_detail import luminance

VARY_PROB = 0.5  # share of the textures of a v4 scene that are varied
PATTERN_PROB = 0.2  # share of the varied textures that are replaced by a procedural pattern
PHOTO_CHANGES = ("channels", "invert", "gamma", "contrast", "grey_tint", "colour_mix", "blur")
PATTERNS = ("stripes", "checker", "noise", "dots")


def vary_texture(texture: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """``texture [3, S, S]`` in 0..1, varied (or returned as is) by ``rng``: a new tensor in 0..1 of the same
    shape and dtype."""
    if rng.random() >= VARY_PROB:
        return texture
    if rng.random() < PATTERN_PROB:
        return pattern(str(rng.choice(PATTERNS)), texture.shape[-1], rng).to(texture.dtype)
    out = texture.float()
    for name in rng.choice(PHOTO_CHANGES, size=int(rng.integers(1, 3)), replace=False):
        out = change_photo(out, str(name), rng)
    return out.clamp(0, 1).to(texture.dtype).contiguous()


def change_photo(tex: torch.Tensor, name: str, rng: np.random.Generator) -> torch.Tensor:
    """One named change of a ``[3, S, S]`` texture (values may leave 0..1 before the caller's clamp)."""
    if name == "channels":
        order = [0, 1, 2]
        while order == [0, 1, 2]:
            order = [int(i) for i in rng.permutation(3)]
        return tex[order]
    if name == "invert":
        return 1.0 - tex
    if name == "gamma":
        return tex.clamp(0, 1) ** float(math.exp(rng.uniform(math.log(0.4), math.log(2.5))))
    if name == "contrast":
        mean = tex.mean(dim=(1, 2), keepdim=True)
        return (tex - mean) * float(rng.uniform(0.3, 1.8)) + mean
    if name == "grey_tint":
        grey = luminance(tex[None])[0]
        return grey * torch.from_numpy(rng.uniform(0.3, 1.0, size=3)).float().view(3, 1, 1)
    if name == "colour_mix":
        mix = torch.from_numpy(rng.dirichlet(np.full(3, 0.7), size=3)).float()  # rows sum to 1: stays in 0..1
        return torch.einsum("oc,chw->ohw", mix, tex)
    if name == "blur":
        return _blur(tex, float(rng.uniform(1.0, 4.0)))
    raise ValueError(f"unknown texture change {name!r}; known: {', '.join(PHOTO_CHANGES)}")


def pattern(name: str, size: int, rng: np.random.Generator) -> torch.Tensor:
    """A ``[3, size, size]`` procedural pattern ``name`` in two random colours (0..1)."""
    a, b = (torch.from_numpy(rng.uniform(0.0, 1.0, size=3)).float().view(3, 1, 1) for _ in range(2))
    ys, xs = torch.meshgrid(torch.arange(size).float() / size, torch.arange(size).float() / size, indexing="ij")
    if name == "stripes":
        angle, freq = float(rng.uniform(0, math.pi)), float(rng.uniform(2, 12))
        t = (torch.sin(2 * math.pi * freq * (xs * math.cos(angle) + ys * math.sin(angle))) > 0).float()
    elif name == "checker":
        n = int(rng.integers(2, 12))
        t = ((torch.floor(xs * n) + torch.floor(ys * n)) % 2).float()
    elif name == "noise":
        cells = int(rng.integers(3, 16))
        grid = torch.from_numpy(rng.random((1, 1, cells, cells))).float()
        t = F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False)[0, 0].clamp(0, 1)
    elif name == "dots":
        n, radius = int(rng.integers(3, 10)), float(rng.uniform(0.15, 0.4))
        fx, fy = (xs * n) % 1.0 - 0.5, (ys * n) % 1.0 - 0.5
        t = ((fx**2 + fy**2).sqrt() < radius).float()
    else:
        raise ValueError(f"unknown pattern {name!r}; known: {', '.join(PATTERNS)}")
    return (a * t + b * (1 - t)).clamp(0, 1).contiguous()


def _blur(tex: torch.Tensor, sigma: float) -> torch.Tensor:
    hwc = np.ascontiguousarray(tex.permute(1, 2, 0).numpy(), dtype=np.float32)
    return torch.from_numpy(cv2.GaussianBlur(hwc, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)).permute(2, 0, 1)
