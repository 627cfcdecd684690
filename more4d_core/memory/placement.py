"""Where a pipeline's models sit while it runs, under a memory mode.

``Placement(mode, device)`` keeps every model on the run device (``encoders_leave`` off), or brings
each one there only for its stage (``with placement.stage(model): ...``) and sends it back to CPU
memory after; a transformer with ``resident_blocks`` set keeps its non-block layers and first blocks
on the device and streams the rest (:class:`.streaming.BlockStreamer`). ``choose_mode`` resolves
``"auto"`` from the device's free memory and the estimated peaks, and says why.
"""

from __future__ import annotations

import contextlib
import logging

import torch
from torch import nn

from ..errors import InputError
from .modes import MODE_NAMES, MODES, MemoryMode, get_mode
from .streaming import BlockStreamer, move, stream_blocks

log = logging.getLogger("more4d")
HEADROOM = 0.9  # share of the free memory a mode's estimated peak may use (allocator, CUDA context)


def choose_mode(name: str, device: torch.device, pipeline: str = "strag") -> tuple[MemoryMode, str]:
    """The mode ``name`` stands for on ``device`` and why (``"auto"``: the fastest whose estimated peak
    fits ``HEADROOM`` of the free device memory)."""
    if name not in MODE_NAMES:
        raise InputError(f"memory mode must be one of {', '.join(MODE_NAMES)}, got {name!r}")
    if name != "auto":
        return get_mode(name), "chosen"
    if device.type != "cuda" or not torch.cuda.is_available():
        return MODES["bf16"], f"auto on {device.type}: host memory, nothing to fit"
    from .estimate import estimate

    free, _ = torch.cuda.mem_get_info(device)
    needs = []
    for n, m in MODES.items():  # fastest first; each estimate traces the pipeline, so stop at the first that fits
        peak = estimate(pipeline, m).peak
        needs.append(f"{n} needs {peak / 2**30:.1f} GiB")
        if peak <= HEADROOM * free:
            return m, f"auto: {free / 2**30:.1f} GiB free on {device}; {', '.join(needs)}"
    listing = ", ".join(needs)
    raise InputError(f"no memory mode fits {free / 2**30:.1f} GiB free on {device} ({listing}); free memory "
                     "(close other models) or run on the CPU")


class Placement:
    """Models on the run device per the mode (see the module docstring)."""

    def __init__(self, mode: MemoryMode, device: torch.device | str):
        self.mode = mode
        self.device = torch.device(device)
        self.streamers: dict[int, BlockStreamer] = {}

    def install(self, *models: nn.Module, transformer: nn.Module | None = None) -> None:
        """Initial placement: with ``encoders_leave`` everything waits in CPU memory; the transformer's
        streamed blocks are set up once."""
        for m in models:
            if m is not None:
                move(m, "cpu" if self.mode.encoders_leave else self.device)
        if transformer is not None and self.mode.resident_blocks is not None:
            self.streamers[id(transformer)] = stream_blocks(transformer, self.device, self.mode.resident_blocks)
        elif transformer is not None:
            move(transformer, "cpu" if self.mode.encoders_leave else self.device)

    def _visits(self, model: nn.Module | None) -> bool:
        return model is not None and self.mode.encoders_leave and id(model) not in self.streamers

    def enter(self, model: nn.Module | None) -> nn.Module | None:
        """Bring ``model`` to the device for its stage (a no-op when the mode keeps it there)."""
        if self._visits(model):
            move(model, self.device)
        return model

    def leave(self, model: nn.Module | None) -> None:
        """Send ``model`` back to CPU memory after its stage (a no-op when the mode keeps it)."""
        if self._visits(model):
            move(model, "cpu")
            if self.device.type == "cuda" and torch.cuda.is_available():
                torch.cuda.empty_cache()

    @contextlib.contextmanager
    def stage(self, model: nn.Module | None):
        """``model`` on the device for the duration of the block (a streamed transformer stays as set up)."""
        self.enter(model)
        try:
            yield model
        finally:
            self.leave(model)
