"""Memory modes of the 14B models: how weights are stored and where they sit while a model runs.

* ``bf16`` — every model (transformer, umT5, CLIP, VAE) resident in bf16, guidance as a batch of
  two: the fastest, for 80 GB cards.
* ``24gb`` — transformer blocks in float8 with per-tensor scales (computed in bf16), the encoders
  in float8 too and each model on the device only while it runs; guidance as a batch of two.
* ``16gb`` — as ``24gb`` with only the first ``resident_blocks`` transformer blocks on the device,
  the others streamed from pinned CPU memory (:mod:`.streaming`), guidance as two passes.
* ``auto`` — the fastest of these whose estimated peak (:mod:`.estimate`) fits the free memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError


@dataclass(frozen=True)
class MemoryMode:
    name: str
    weights: str  # "bf16" or "fp8" (transformer blocks and text-encoder linear layers)
    resident_blocks: int | None  # None: every block on the device; N: N resident, the others streamed
    encoders_leave: bool  # each model (umT5, CLIP, transformer, VAE) is on the device only while it runs
    guidance_batch: bool  # classifier-free guidance as one batch of 2 (True) or two passes of 1

    def describe(self) -> str:
        blocks = "all blocks resident" if self.resident_blocks is None else (
            f"{self.resident_blocks} blocks resident, the rest streamed from CPU memory")
        return (f"{self.name}: {self.weights} weights, {blocks}, "
                f"{'each model on the device only while it runs' if self.encoders_leave else 'every model resident'}, "
                f"guidance {'as a batch of 2' if self.guidance_batch else 'as two passes'}")


MODES: dict[str, MemoryMode] = {
    "bf16": MemoryMode("bf16", "bf16", None, False, True),
    "24gb": MemoryMode("24gb", "fp8", None, True, True),
    "16gb": MemoryMode("16gb", "fp8", 20, True, False),
}
MODE_NAMES = ("auto", *MODES)


def get_mode(name: str) -> MemoryMode:
    if name not in MODES:
        raise InputError(f"memory mode must be one of {', '.join(MODE_NAMES)}, got {name!r}")
    return MODES[name]
