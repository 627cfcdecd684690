"""Peak device memory of the 14B pipelines per memory mode, estimated without a GPU or weights.

Prints, for 4D-STraG and 4D-ViSM at 49 x 368 x 512 and each mode, the peak of every stage split into
resident weights, activations and streaming buffers (:mod:`more4d_core.memory.estimate`) and the
weights of the stage's own model (in ``bf16`` mode: each model's bf16 size), the targets
(``24gb`` <= 22 GiB, ``16gb`` <= 14 GiB) and, with ``--check``, the estimator against the measured
peak of real forward passes small enough for this CPU (process RSS above the loaded model).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ..memory.estimate import PIPELINES, estimate, strag_forward, trace_strag
from ..memory.modes import MODES
from ..memory.tracker import GIB
from .memory import PeakMemory

TARGETS_GIB = {"24gb": 22.0, "16gb": 14.0}
MIB = 1024**2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", default=",".join(PIPELINES), help="strag, vism or both")
    parser.add_argument("--modes", default=",".join(MODES), help=f"some of {', '.join(MODES)}")
    parser.add_argument("--json", type=Path, default=None, help='write {"strag": {MODE: {"peak_gib": ...}}, ...}')
    parser.add_argument("--check", action="store_true",
                        help="also compare the estimator with measured peaks of CPU-sized forward passes")


def _check_configs():
    from ..models.config import MORE4D_SMALL

    wide = MORE4D_SMALL.replace(name="check-wide", dim=768, num_heads=6, ffn_dim=3072, num_layers=2)
    return [(wide, 1, (49, 192, 256)), (wide, 2, (49, 192, 256)), (wide, 2, (49, 256, 384))]


def check_against_measured() -> list[dict]:
    """Estimated vs measured activation peak of real float32 CPU forward passes."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from ..models.dit import STraGTransformer

    rows = []
    for cfg, batch, size in _check_configs():
        with FakeTensorMode(allow_non_fake_inputs=True):
            trace = trace_strag(cfg, MODES["bf16"], batch=batch, size=size, dtype=torch.float32).trace
        estimated = trace.peak - trace.at_peak.get("weights", 0)
        torch.manual_seed(0)
        model = STraGTransformer.from_stgconfig(cfg).eval()
        measured = []
        for _ in range(3):
            with torch.no_grad(), PeakMemory("cpu") as peak:
                out = strag_forward(model, batch, size, torch.float32, "cpu")
                del out
            measured.append(peak.peak_bytes)
        rows.append({"config": f"{cfg.dim} wide x {cfg.num_layers}", "batch": batch, "size": list(size),
                     "estimated_mib": estimated / MIB, "measured_mib": min(measured) / MIB,
                     "ratio": estimated / max(1, min(measured))})
    return rows


def run(args: argparse.Namespace) -> int:
    models = [m for m in args.models.split(",") if m]
    modes = [m for m in args.modes.split(",") if m]
    results: dict = {}
    print("peak device memory at 49 x 368 x 512 (GiB; fake tensors on the CPU, no weights read)")
    for model in models:
        results[model] = {}
        for mode in modes:
            start = time.perf_counter()
            r = estimate(model, mode)
            results[model][mode] = r.to_dict()
            target = TARGETS_GIB.get(mode)
            verdict = "" if target is None else f"  target <= {target:.0f}: {'met' if r.peak / GIB <= target else 'MISSED'}"
            print(f"\n{model} {r.mode.describe()}\n  peak {r.peak / GIB:6.2f}{verdict}  ({time.perf_counter() - start:.1f} s)")
            print(f"  {'stage':8s} {'peak':>7s} {'weights':>8s} {'activ.':>7s} {'stream':>7s} {'its model':>10s}")
            for s in r.stages:
                print(f"  {s.name:8s} {s.peak / GIB:7.2f} {s.weights / GIB:8.2f} {s.activations / GIB:7.2f} "
                      f"{s.streaming / GIB:7.2f} {s.model_weights / GIB:10.2f}")
    if args.check:
        print("\nestimator vs measured (activation peak of float32 CPU forward passes above the model, MiB)")
        rows = check_against_measured()
        for row in rows:
            print(f"  {row['config']:>14s} batch {row['batch']} {row['size']}: estimated {row['estimated_mib']:7.1f}  "
                  f"measured {row['measured_mib']:7.1f}  ratio {row['ratio']:.2f}")
        results["check"] = rows
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
        print(f"\nwrote {args.json}")
    return 0
