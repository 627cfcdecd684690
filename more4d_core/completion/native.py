"""Handing rendered frames to ComfyUI's native Wan video nodes.

ComfyUI's ``WanVaceToVideo`` takes a ``control_video`` IMAGE ``[T, H, W, 3]`` and
``control_masks`` MASK ``[T, H, W]`` (1 = generate there). A render's hole mask already has that
meaning; the holes of the control video are set to neutral grey (what VACE was trained to see in
masked areas) instead of the render's background colour.
"""

from __future__ import annotations

import torch

from ..errors import InputError

NEUTRAL_GREY = 0.5


def to_vace_inputs(frames: torch.Tensor, holes: torch.Tensor, fill: float = NEUTRAL_GREY) -> tuple[torch.Tensor, torch.Tensor]:
    """``(control_video, control_masks)`` for ComfyUI's Wan VACE nodes from a render."""
    frames = torch.as_tensor(frames).float()
    holes = torch.as_tensor(holes)
    if frames.ndim != 4 or frames.shape[-1] != 3 or tuple(holes.shape) != tuple(frames.shape[:3]):
        raise InputError(f"need frames [T, H, W, 3] and a hole mask [T, H, W]; got {list(frames.shape)}, {list(holes.shape)}")
    mask = holes.float().clamp(0, 1)
    video = torch.where(mask.unsqueeze(-1) > 0.5, torch.full_like(frames, fill), frames)
    return video, mask
