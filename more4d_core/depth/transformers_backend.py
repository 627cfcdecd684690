"""Depth from a local transformers depth model (``AutoModelForDepthEstimation``): Depth Anything V2
(metric indoor/outdoor or relative), Depth Pro (metric, also predicts the field of view), ZoeDepth
(metric), DPT/MiDaS (relative inverse depth), ...

Relative models predict disparity-like values; they become metric with a user median depth. The
folder is a ``save_pretrained`` directory (``config.json``, weights, ``preprocessor_config.json``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import InputError
from .conversion import to_metric
from .result import DepthResult, intrinsics_for

_RELATIVE_TYPES = {"dpt": "disparity", "depth_anything": "disparity", "glpn": "depth"}


class TransformersDepth:
    def __init__(self, folder: str | Path, device="cpu", dtype=torch.float32):
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        self.folder = Path(folder)
        if not (self.folder / "config.json").is_file():
            raise FileNotFoundError(
                f"depth model not found: expected {self.folder / 'config.json'} (a transformers depth model saved "
                "with save_pretrained, e.g. Depth-Anything-V2-Metric-Indoor-Large-hf, under models/more4d/depth/)"
            )
        self.processor = AutoImageProcessor.from_pretrained(self.folder)
        self.model = AutoModelForDepthEstimation.from_pretrained(self.folder, torch_dtype=dtype).to(device).eval()
        self.config = self.model.config
        kind = getattr(self.config, "depth_estimation_type", None)
        self.model_type = getattr(self.config, "model_type", "")
        self.metric = kind == "metric" or self.model_type in ("zoedepth", "depth_pro")
        self.name = f"transformers:{self.folder.name}"

    @torch.no_grad()
    def to(self, device):
        """Move the network (the shared model cache offloads idle models this way)."""
        self.model.to(device)
        return self

    def parameters(self):
        return self.model.parameters()

    def __call__(self, image: torch.Tensor, *, fov_deg: float | None = None, median_depth: float = 3.0,
                 relative_mode: str | None = None) -> DepthResult:
        """Depth of ``image`` ``[H, W, 3]`` (0..1). ``relative_mode`` ("disparity" / "depth") overrides
        how a relative model's output is read; ``median_depth`` scales relative output."""
        img = torch.as_tensor(image).float()
        if img.ndim == 4 and img.shape[0] == 1:
            img = img[0]
        if img.ndim != 3 or img.shape[-1] < 3:
            raise InputError(f"the image must be [H, W, 3], got {list(img.shape)}")
        h, w = img.shape[:2]
        pixels = (img[..., :3].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        inputs = self.processor(images=pixels, return_tensors="pt")
        device = next(self.model.parameters()).device
        dtype = next(self.model.parameters()).dtype
        inputs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in inputs.items()}
        outputs = self.model(**inputs)
        post = self.processor.post_process_depth_estimation(outputs, target_sizes=[(h, w)])[0]
        values = post["predicted_depth"].float().cpu()
        k = intrinsics_for(h, w, fov_deg)
        fov_out = post.get("field_of_view")
        if fov_out is not None and fov_deg is None:
            k = intrinsics_for(h, w, float(fov_out))
        meta = {"model": self.folder.name, "model_type": self.model_type}
        if self.metric and relative_mode is None:
            return DepthResult(values, k, torch.isfinite(values) & (values > 0), self.name, True, meta)
        mode = relative_mode or _RELATIVE_TYPES.get(self.model_type, "disparity")
        depth, valid = to_metric(values, mode, median_depth)
        return DepthResult(depth, k, valid, self.name, False, {**meta, "relative_mode": mode,
                                                               "median_depth": median_depth})

