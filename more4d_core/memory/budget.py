"""Memory and disk needed by a job, estimated from its sizes and checked before the work starts.

A 4D scene holds ``frames x points x 3`` floats, and every stage multiplies that: generation on the
image's full grid of a 4000x3000 photo needs about 30 GiB, a 10,000-frame render tens more. Such a
job would not fail cleanly at the end; it would take ComfyUI (or the machine) down with it. Each
stage calls :func:`check_memory` with its estimate first and refuses, naming the input to change.

The estimates are the stage's large buffers times a factor measured on the CPU (peak resident
memory added over the buffers' size: ``python -m more4d_core.bench budget`` prints both; 4.2 for
generation, 5.7 for rendering with the point index, 4.6 for classical completion at 49 frames of an
800x600 grid rendered at 1024x1024), rounded up, plus a fixed 256 MiB for what does not grow with
the job (allocator pools, a first JIT compile). The check is there for the sizes that grow without
bound.

The limit is what the machine can give right now: the free memory of a CUDA device the work runs
on, else the RAM the system reports available. ``MORE4D_MEMORY_LIMIT_GB`` replaces it (a number
of GiB; ``0`` or ``off`` turns the checks off) for machines where the report is wrong, or to keep a
shared machine safe.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import InputError

GIB = 1024**3
ENV = "MORE4D_MEMORY_LIMIT_GB"
FLOAT = 4  # bytes of a float32

# measured peak / buffer size (see the module docstring), rounded up
GENERATION_FACTOR = 4.5  # over the tracks: frames x points x 3 floats
RENDER_FACTOR = 6.5  # over one float per output pixel and frame (colour, depth, holes, point index)
COMPLETION_FACTOR = 5.0  # the same unit, on top of the render it completes
FIXED = 256 * 1024**2  # what does not grow with the job


class ResourceError(InputError):
    """A job would need more memory or disk than the machine has; the message says what to lower."""


@dataclass(frozen=True)
class Limit:
    bytes: int | None  # None: no limit known (or the checks are turned off)
    source: str

    def describe(self) -> str:
        return f"{self.bytes / GIB:.1f} GiB ({self.source})" if self.bytes is not None else self.source


def _available_ram() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def memory_limit(device=None) -> Limit:
    """How much memory a job may use on ``device`` (default: CPU memory)."""
    raw = os.environ.get(ENV, "").strip()
    if raw:
        if raw.lower() in ("0", "off", "none"):
            return Limit(None, f"checks turned off by {ENV}")
        try:
            gib = float(raw)
        except ValueError:
            raise InputError(f"{ENV} must be a number of GiB (or 0 / off), got {raw!r}") from None
        if not gib > 0 or gib == float("inf"):
            raise InputError(f"{ENV} must be a positive number of GiB (or 0 / off), got {raw!r}")
        return Limit(int(gib * GIB), f"set by {ENV}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda" and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info(dev)
        return Limit(int(free), f"free memory of {dev}")
    ram = _available_ram()
    if ram is None:
        return Limit(None, "available memory unknown on this system")
    return Limit(ram, "the RAM this machine reports available")


def check_memory(task: str, need: float, fix: str, device=None) -> None:
    """Refuse ``task`` (what is being done, with its sizes) when its estimated ``need`` in bytes is
    above the limit; ``fix`` says which inputs to lower."""
    limit = memory_limit(device)
    if limit.bytes is not None and need > limit.bytes:
        raise ResourceError(
            f"{task} needs about {need / GIB:.1f} GiB of memory, more than the {limit.describe()}; {fix}. "
            f"(If the machine really has room, set {ENV} to the GiB it may use, or to 0 to turn this check off.)"
        )


def check_disk(folder: str | os.PathLike, need: float, task: str, fix: str) -> None:
    """Refuse to write ``need`` bytes into ``folder`` when its file system has less free space."""
    place = Path(folder)
    while not place.exists() and place != place.parent:
        place = place.parent
    try:
        free = shutil.disk_usage(place).free
    except OSError:
        return
    if need > free:
        raise ResourceError(f"{task} needs about {need / GIB:.2f} GiB of disk, but {place} has "
                            f"{free / GIB:.2f} GiB free; {fix}")


def generation_bytes(frames: int, grid_hw: tuple[int, int]) -> float:
    """Peak memory of generating ``frames`` frames of trajectories on a ``grid_hw`` point grid."""
    return GENERATION_FACTOR * frames * grid_hw[0] * grid_hw[1] * 3 * FLOAT + FIXED


def render_bytes(frames: int, out_hw: tuple[int, int]) -> float:
    """Peak memory of rendering ``frames`` frames of ``out_hw`` pixels (the scene itself not counted)."""
    return RENDER_FACTOR * frames * out_hw[0] * out_hw[1] * FLOAT + FIXED


def completion_bytes(frames: int, out_hw: tuple[int, int]) -> float:
    """Memory classical completion adds to the render of ``frames`` frames of ``out_hw`` pixels."""
    return COMPLETION_FACTOR * frames * out_hw[0] * out_hw[1] * FLOAT + FIXED
