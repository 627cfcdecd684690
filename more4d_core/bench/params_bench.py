"""Parameter counts and memory per named config, instantiated on the meta device (no memory).

Prints, for every config, the build time and the parameters of the DiT backbone, the CLIP image
cross-attention, the Motion Perception Module (MAdaNorm layers, adapter, frozen ViT) and the
total, with their size in bf16 and fp32.
"""

from __future__ import annotations

import argparse
import time

import torch

from ..models.config import NAMED_CONFIGS
from ..models.dit import STraGTransformer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", nargs="*", default=list(NAMED_CONFIGS), help="configs to report (default all)")


def _group(name: str) -> str:
    if "spatial_guidance" in name or name.startswith(("feature_adapter", "omnimae_extractor")):
        return "mpm"
    if ".add_k_proj" in name or ".add_v_proj" in name or "norm_added" in name or "image_embedder" in name:
        return "image"
    return "dit"


def run(args: argparse.Namespace) -> int:
    for name in args.config:
        cfg = NAMED_CONFIGS[name]
        start = time.perf_counter()
        with torch.device("meta"):
            model = STraGTransformer.from_stgconfig(cfg)
        took = time.perf_counter() - start
        counts = {"dit": 0, "image": 0, "mpm": 0}
        for pname, p in model.named_parameters():
            counts[_group(pname)] += p.numel()
        total = sum(counts.values())
        on_meta = all(p.is_meta for p in model.parameters())
        print(
            f"{name:13s} built in {took:.2f} s on meta ({'no memory allocated' if on_meta else 'ALLOCATED'}): "
            f"total {total / 1e9:.3f} B = DiT {counts['dit'] / 1e9:.3f} B + CLIP image cross-attention "
            f"{counts['image'] / 1e9:.3f} B + MPM {counts['mpm'] / 1e9:.3f} B; "
            f"{total * 2 / 2**30:.2f} GiB bf16, {total * 4 / 2**30:.2f} GiB fp32"
        )
    return 0
