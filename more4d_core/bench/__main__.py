"""Benchmarks: ``python -m more4d_core.bench <name> [options]``.

Each benchmark prints measured numbers and, where one exists, the ratio against a reference
implementation run in the same process:

* ``render`` — point renderer vs the reference's per-frame unique/amin/mean approach;
* ``dit`` — one denoising step of the trajectory DiT vs stock diffusers Wan;
* ``params`` — parameter counts and memory of every named config (meta device);
* ``completion`` — hole filling against the true views of procedural scenes: PSNR, SSIM, flicker, time;
* ``depth`` — the built-in depth prior on a real photograph with true depth and on procedural scenes;
* ``fillable`` — camera presets on photographs: holes at strength 1 and the ``auto`` strength;
* ``memory`` — peak device memory of the 14B pipelines per memory mode, estimated without a GPU;
* ``gpu`` — the memory modes on a GPU: measured peak and seconds per step next to the estimate;
* ``budget`` — the memory estimates that guard generation, rendering and completion vs measured peaks;
* ``procedural`` — seconds per procedural training sample, with and without visibility.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..help_text import summary

BENCHMARKS = {
    "render": "render_bench",
    "dit": "dit_bench",
    "params": "params_bench",
    "completion": "completion_bench",
    "depth": "depth_bench",
    "fillable": "fillable_bench",
    "memory": "memory_bench",
    "gpu": "gpu_bench",
    "budget": "budget_bench",
    "procedural": "procedural_bench",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m more4d_core.bench", description=summary(__doc__))
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    if not argv or argv[0] not in BENCHMARKS:
        parser.parse_args(argv[:1])  # prints usage / the error
        return 2
    module = importlib.import_module(f".{BENCHMARKS[argv[0]]}", __package__)
    sub = argparse.ArgumentParser(prog=f"python -m more4d_core.bench {argv[0]}", description=summary(module.__doc__))
    module.add_arguments(sub)
    return module.run(sub.parse_args(argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
