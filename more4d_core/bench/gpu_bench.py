"""GPU check of the memory modes: the 14B-shaped 4D-STraG and 4D-ViSM transformers with random
weights (nothing downloaded), two denoising steps per mode at 49 x 368 x 512, measured peak memory
(``torch.cuda.max_memory_allocated``) and seconds per step next to the CPU estimate.

``python -m more4d_core.bench gpu`` (one H100 / H200-class GPU, a few minutes); ``--tiny`` runs the
same code with toy models and sizes (on the CPU too), which is what the test suite does.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

import torch

from ..memory.estimate import FRAMES, HEIGHT, VISM_14B, WIDTH, estimate, strag_forward, vism_forward
from ..memory.modes import MODES, MemoryMode
from ..memory.placement import Placement
from ..models.fp8 import in_blocks, quantize_linears
from ..sampling.flow_sampler import guided_velocity

GIB = 1024**3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--models", default="strag,vism")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="toy models and sizes (a smoke test of this command)")
    parser.add_argument("--json", type=Path, default=None)


def _build(model: str, tiny: bool, device: torch.device) -> tuple[torch.nn.Module, tuple[int, int, int]]:
    """A randomly initialized transformer in bf16, built on ``device``."""
    torch.manual_seed(0)
    with torch.device(device):
        if model == "strag":
            from ..models.config import MORE4D_14B, MORE4D_TINY
            from ..models.dit import STraGTransformer

            cfg = MORE4D_TINY.replace(num_layers=4, image_dim=24, image_tokens=5, text_len=512, text_dim=16) if tiny else MORE4D_14B
            net = STraGTransformer.from_stgconfig(cfg)
            size = (9, 32, 32) if tiny else (FRAMES, HEIGHT, WIDTH)
        else:
            from diffusers import WanTransformer3DModel

            cfg = dict(VISM_14B, num_attention_heads=2, attention_head_dim=8, ffn_dim=32, num_layers=4, text_dim=16,
                       freq_dim=16, image_dim=24, added_kv_proj_dim=16) if tiny else VISM_14B
            net = WanTransformer3DModel(**cfg)
            size = (9, 32, 32) if tiny else (FRAMES, HEIGHT, WIDTH)
    keep = set(getattr(net, "_keep_in_fp32_modules", None) or ())
    for name, module in net.named_modules():  # bf16, with the modules a load keeps in float32 (as load_into does)
        fp32 = bool(keep.intersection(name.split(".")))
        for p in module.parameters(recurse=False):
            p.data = p.data.to(torch.float32 if fp32 else torch.bfloat16)
    return net.eval(), size


def _forward(model: str):
    return strag_forward if model == "strag" else vism_forward


def run_mode(model: str, mode: MemoryMode, *, device: torch.device, steps: int, tiny: bool) -> dict:
    net, size = _build(model, tiny, device)
    if mode.weights == "fp8":
        quantize_linears(net, torch.bfloat16, where=in_blocks)
    if mode.resident_blocks is not None:
        resident = min(mode.resident_blocks, len(net.blocks) // 2) if tiny else mode.resident_blocks
        Placement(MemoryMode(mode.name, mode.weights, resident, mode.encoders_leave, mode.guidance_batch),
                  device).install(transformer=net)
    forward = _forward(model)
    cuda = device.type == "cuda"

    def batched(x, t, rows):
        n = rows.stop - rows.start
        return forward(net, n, size, torch.bfloat16, device)

    velocity = guided_velocity(batched, 6.0, as_batch=mode.guidance_batch)
    x, t = torch.zeros(1), torch.zeros(1)
    with torch.no_grad():
        velocity(x, t)  # warm-up (kernels, streams, the first prefetch)
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        for _ in range(steps):
            velocity(x, t)
        if cuda:
            torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated(device) if cuda else 0
    net = None  # free the weights before the next mode is built
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return {"seconds_per_step": seconds, "measured_peak_gib": peak / GIB}


def run(args: argparse.Namespace) -> int:
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: run on a GPU machine, or --tiny --device cpu for a smoke test")
        return 2
    results: dict = {}
    print(f"denoising steps at {'toy size' if args.tiny else '49 x 368 x 512'} on {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    print(f"{'model':6s} {'mode':5s} {'s/step':>7s} {'peak GiB':>9s} {'estimate':>9s}")
    for model in [m for m in args.models.split(",") if m]:
        results[model] = {}
        for name in [m for m in args.modes.split(",") if m]:
            mode = MODES[name]
            row = run_mode(model, mode, device=device, steps=args.steps, tiny=args.tiny)
            if not args.tiny:
                stage = next(s for s in estimate(model, mode).stages if s.name == "denoise")
                row["estimated_denoise_peak_gib"] = stage.peak / GIB
            results[model][name] = row
            est = row.get("estimated_denoise_peak_gib")
            print(f"{model:6s} {name:5s} {row['seconds_per_step']:7.2f} {row['measured_peak_gib']:9.2f} "
                  f"{'' if est is None else f'{est:9.2f}'}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0
