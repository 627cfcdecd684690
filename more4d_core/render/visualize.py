"""Turning render buffers into viewable images, and parsing colours given as text."""

from __future__ import annotations

import re

import torch

from ..errors import InputError


def depth_to_image(depth: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
    """``[T, H, W]`` depth -> ``[T, H, W, 3]`` float image: inverse depth normalized over the whole
    clip (near = white, far = dark), holes black. One normalization for all frames, so brightness
    is comparable across time."""
    valid = ~holes & (depth > 0)
    out = torch.zeros(*depth.shape, dtype=torch.float32)
    if valid.any():
        inv = torch.zeros_like(depth, dtype=torch.float32)
        inv[valid] = 1.0 / depth[valid].float()
        lo, hi = inv[valid].min(), inv[valid].max()
        span = (hi - lo).clamp(min=1e-12)
        out[valid] = (0.1 + 0.9 * (inv[valid] - lo) / span) if hi > lo else 1.0
    return out.unsqueeze(-1).expand(*depth.shape, 3).contiguous()


_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")


def parse_color(text: str) -> tuple[float, float, float]:
    """``"#rrggbb"``, ``"r,g,b"`` in 0..255, or ``"r,g,b"`` in 0..1 (all values <= 1) -> RGB 0..1."""
    s = str(text).strip()
    m = _HEX.match(s)
    if m:
        v = m.group(1)
        return tuple(int(v[i : i + 2], 16) / 255.0 for i in (0, 2, 4))
    parts = [p for p in re.split(r"[,\s]+", s) if p]
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        vals = []
    if len(vals) != 3 or any(v < 0 for v in vals):
        raise InputError(f"colour {text!r} not understood; write '#000000', '0,0,0' (0..255) or '0.5,0.5,0.5'")
    if all(v <= 1.0 for v in vals):
        return tuple(vals)
    if any(v > 255 for v in vals):
        raise InputError(f"colour {text!r}: components must be 0..255")
    return tuple(v / 255.0 for v in vals)
