"""MP4 video files of rendered frames (H.264, yuv420p: plays everywhere), written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from .atomic import atomic_path, resolve_inside


def frames_to_uint8(frames: torch.Tensor | np.ndarray) -> np.ndarray:
    """``[T, H, W, 3]`` (float 0..1 or uint8; ``[T, H, W]`` masks become grey) -> uint8 array."""
    arr = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if arr.ndim == 3:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
        raise InputError(f"video frames must be [T, H, W, 3] or [T, H, W], got {list(arr.shape)}")
    if arr.shape[0] == 0:
        raise InputError("no frames to write")
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise InputError(f"video frames are empty ({arr.shape[2]}x{arr.shape[1]} pixels)")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.dtype != np.uint8 and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr.reshape(arr.shape[0], -1))).any(axis=1).sum())
        raise InputError(f"{bad} of {arr.shape[0]} video frames hold NaN or infinite values (they would be written "
                         "black); check the node that made them")
    if arr.dtype != np.uint8:
        arr = (np.clip(arr.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return arr


def write_video(
    frames: torch.Tensor | np.ndarray,
    folder: str | os.PathLike,
    name: str,
    *,
    fps: float = 8.0,
    quality: int = 8,
    overwrite: bool = False,
) -> Path:
    """Encode frames to ``folder/name`` (``.mp4`` added when missing). Odd sizes are padded by
    one edge pixel (yuv420p needs even dimensions) rather than resized."""
    import imageio.v2 as imageio  # lazily: pulls in the ffmpeg plugin

    if not (fps > 0):
        raise InputError(f"fps must be positive, got {fps}")
    if not str(name).endswith(".mp4"):
        name = f"{name}.mp4"
    target = resolve_inside(folder, name)
    arr = frames_to_uint8(frames)
    pad_h, pad_w = arr.shape[1] % 2, arr.shape[2] % 2
    if pad_h or pad_w:
        arr = np.pad(arr, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    with atomic_path(target, overwrite=overwrite) as tmp:
        writer = imageio.get_writer(
            tmp, format="FFMPEG", mode="I", fps=float(fps), codec="libx264", quality=quality,
            pixelformat="yuv420p", macro_block_size=1, ffmpeg_log_level="error",
        )
        try:
            for frame in arr:
                writer.append_data(frame)
        finally:
            writer.close()
    return target
