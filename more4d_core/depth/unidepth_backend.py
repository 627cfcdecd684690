"""UniDepth V2 (the authors' depth model), when the ``unidepth`` package and its weights are
installed. It predicts metric depth and the camera intrinsics.

The reference fed UniDepth pixels in [-1, 1]; UniDepth normalizes internally and expects RGB in
0..255 (uint8 ``[3, H, W]``), which is what we give it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import InputError
from .result import DepthResult


class UniDepth:
    def __init__(self, folder: str | Path, device="cpu"):
        try:
            from unidepth.models import UniDepthV2
        except ImportError:
            raise ImportError(
                "the UniDepth backend needs the 'unidepth' package (github.com/lpiccinelli-eth/UniDepth) installed "
                "in ComfyUI's Python, plus its weights in a local folder"
            ) from None
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"UniDepth weights not found: expected {folder / 'config.json'} and model.safetensors "
                "(a local copy of lpiccinelli/unidepth-v2-vitl14) under models/more4d/depth/"
            )
        self.model = UniDepthV2.from_pretrained(str(folder)).to(device).eval()
        self.name = f"unidepth:{folder.name}"

    @torch.no_grad()
    def to(self, device):
        """Move the network (the shared model cache offloads idle models this way)."""
        self.model.to(device)
        return self

    def parameters(self):
        return self.model.parameters()

    def __call__(self, image: torch.Tensor, intrinsics: torch.Tensor | None = None) -> DepthResult:
        img = torch.as_tensor(image).float()
        if img.ndim == 4 and img.shape[0] == 1:
            img = img[0]
        if img.ndim != 3 or img.shape[-1] < 3:
            raise InputError(f"the image must be [H, W, 3], got {list(img.shape)}")
        rgb = (img[..., :3].clamp(0, 1) * 255).round().to(torch.uint8).permute(2, 0, 1)
        device = next(self.model.parameters()).device
        k = None if intrinsics is None else torch.as_tensor(intrinsics, dtype=torch.float32).to(device)
        pred = self.model.infer(rgb.to(device), k)
        depth = pred["depth"].squeeze().float().cpu()
        k_out = pred["intrinsics"].squeeze().double().cpu()
        return DepthResult(depth, k_out, torch.isfinite(depth) & (depth > 0), self.name, True, {"model": "UniDepthV2"})
