"""GPU check of the memory modes: the 14B-shaped 4D-STraG and 4D-ViSM transformers with random
weights (nothing downloaded), two denoising steps per mode at 49 x 368 x 512, measured peak memory
(``torch.cuda.max_memory_allocated``) and seconds per step next to the CPU estimate.

``python -m more4d_core.bench gpu`` (one H100 / H200-class GPU, about a minute on an H200); ``--tiny``
runs the same code with toy models and sizes (on the CPU too), which is what the test suite does.
The estimate is of the transformer alone (:func:`..memory.estimate.transformer_estimate`), traced in a
second process while the GPU measures. ``--cap-gib G`` lets the denoising steps allocate at most G GiB
(a smaller card's budget); a mode that fails (out of memory, say) is reported and the others still run.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from ..checkpoints.apply import kept_in_fp32
from ..memory.estimate import FRAMES, HEIGHT, VISM_14B, WIDTH, strag_forward, transformer_estimate, vism_forward
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
    parser.add_argument("--cap-gib", type=float, default=None,
                        help="let this process allocate at most this many GiB of the GPU (a smaller card's budget; "
                             "the caching allocator then frees its cache instead of growing it)")


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
    keep = getattr(net, "_keep_in_fp32_modules", None) or ()
    for name, module in net.named_modules():  # bf16, with the modules a load keeps in float32 (as load_into does)
        fp32 = kept_in_fp32(name, keep)
        for p in module.parameters(recurse=False):
            p.data = p.data.to(torch.float32 if fp32 else torch.bfloat16)
    return net.eval(), size


def _forward(model: str):
    return strag_forward if model == "strag" else vism_forward


def _cap(device: torch.device, gib: float | None) -> None:
    """Let this process allocate at most ``gib`` GiB of ``device`` (None: all of it)."""
    total = torch.cuda.get_device_properties(device).total_memory
    torch.cuda.set_per_process_memory_fraction(1.0 if gib is None else min(1.0, gib * GIB / total), device)


def _release(device: torch.device) -> None:
    """Free what a finished (or failed) mode left: its tensors, the allocator's cache and the memory cap."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        _cap(device, None)


def run_mode(model: str, mode: MemoryMode, *, device: torch.device, steps: int, tiny: bool,
             cap_gib: float | None = None) -> dict:
    cuda = device.type == "cuda"
    base = torch.cuda.memory_allocated(device) if cuda else 0  # what earlier modes left (should be 0)
    start = time.perf_counter()
    net, size = _build(model, tiny, device)
    if mode.weights == "fp8":
        quantize_linears(net, torch.bfloat16, where=in_blocks)
    if mode.resident_blocks is not None:
        resident = min(mode.resident_blocks, len(net.blocks) // 2) if tiny else mode.resident_blocks
        Placement(MemoryMode(mode.name, mode.weights, resident, mode.encoders_leave, mode.guidance_batch),
                  device).install(transformer=net)
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()  # the float32 build's cached blocks would count in the reserved peak
        if cap_gib is not None:  # the build (in float32) is not capped, the denoising steps are
            _cap(device, cap_gib)
    build = time.perf_counter() - start
    forward = _forward(model)

    def batched(x, t, rows):
        n = rows.stop - rows.start
        return forward(net, n, size, torch.bfloat16, device)

    velocity = guided_velocity(batched, 6.0, as_batch=mode.guidance_batch)
    x, t = torch.zeros(1), torch.zeros(1)
    with torch.no_grad():
        start = time.perf_counter()
        velocity(x, t)  # warm-up (kernels, streams, the first prefetch)
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        warmup = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(steps):
            velocity(x, t)
        if cuda:
            torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated(device) - base if cuda else 0
    reserved = torch.cuda.max_memory_reserved(device) if cuda else 0
    net = None  # free the weights before the next mode is built
    _release(device)
    return {"seconds_per_step": seconds, "measured_peak_gib": peak / GIB, "reserved_peak_gib": reserved / GIB,
            "build_seconds": build, "warmup_seconds": warmup}


def _estimates(models: list[str], modes: list[str]) -> dict[tuple[str, str], float]:
    """The transformer-only estimates (GiB), traced on the CPU."""
    return {(m, n): transformer_estimate(m, n).peak / GIB for m in models for n in modes}


def _row_text(model: str, name: str, row: dict) -> str:
    if "error" in row:
        return f"{model:6s} {name:5s} failed: {row['error']}"
    est = row.get("estimated_peak_gib")
    ratio = "" if not est else f"{row['measured_peak_gib'] / est:.2f}"
    return (f"{model:6s} {name:5s} {row['seconds_per_step']:7.2f} {row['measured_peak_gib']:9.2f} "
            f"{row['reserved_peak_gib']:9.2f} {'' if est is None else f'{est:9.2f}':>9s} {ratio:>6s} "
            f"{row['build_seconds']:6.1f} {row['warmup_seconds']:6.1f}")


def run(args: argparse.Namespace) -> int:
    device = torch.device(args.device)
    models = [m for m in args.models.split(",") if m]
    modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in models if m not in ("strag", "vism")] + [m for m in modes if m not in MODES]
    if unknown:
        print(f"unknown model or mode: {', '.join(unknown)} (models: strag, vism; modes: {', '.join(MODES)})")
        return 2
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: run on a GPU machine, or --tiny --device cpu for a smoke test")
        return 2
    if args.cap_gib is not None and device.type != "cuda":
        print("--cap-gib caps a CUDA device's memory; it needs --device cuda")
        return 2
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    # the CPU estimates run in another process while the GPU measures (spawned: CUDA is not forked)
    pool = None if args.tiny else ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    pending = None if pool is None else pool.submit(_estimates, models, modes)
    results: dict = {}
    failed = 0
    print(f"denoising steps at {'toy size' if args.tiny else '49 x 368 x 512'} on {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
          + f", torch {torch.__version__}" + ("" if args.cap_gib is None else f", capped at {args.cap_gib:g} GiB"),
          flush=True)
    print(f"{'model':6s} {'mode':5s} {'s/step':>7s} {'peak GiB':>9s} {'reserved':>9s} {'estimate':>9s} {'ratio':>6s}"
          f" {'build':>6s} {'warmup':>6s}  (GiB allocated by the transformer's step; estimate: the same, traced on the CPU)",
          flush=True)
    for model in models:
        results[model] = {}
        for name in modes:
            try:
                row = run_mode(model, MODES[name], device=device, steps=args.steps, tiny=args.tiny,
                               cap_gib=args.cap_gib)
            except Exception as err:  # noqa: BLE001 - one mode's failure (out of memory, say) must not hide the others
                row = {"error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}
                failed += 1
            if "error" in row:  # the failed mode's tensors go once its traceback is gone
                _release(device)
            results[model][name] = row
            print(_row_text(model, name, row), flush=True)
            _write(args.json, results)
    if pending is not None:
        est = pending.result()
        pool.shutdown()
        print("with the estimates:")
        for model, by_mode in results.items():
            for name, row in by_mode.items():
                row["estimated_peak_gib"] = est[(model, name)]
                print(_row_text(model, name, row), flush=True)
        _write(args.json, results)
    return 1 if failed else 0


def _write(path: Path | None, results: dict) -> None:
    """The results so far (a run cut short still leaves every finished row)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(path)
