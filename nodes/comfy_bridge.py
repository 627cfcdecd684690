"""The few ComfyUI services the nodes use, with plain fallbacks so the nodes also run (and are
tested) without ComfyUI: output/input folders, progress bars and the interrupt check."""

from __future__ import annotations

import os
import tempfile

try:  # inside ComfyUI
    import comfy.model_management as _mm
    import comfy.utils as _cu
    import folder_paths as _fp

    IN_COMFY = True
except ImportError:  # plain Python (tests, headless runner)
    _mm = _cu = _fp = None
    IN_COMFY = False



def _fallback_folder(kind: str) -> str:
    """``$MORE4D_OUTPUT_DIR/<kind>`` (or ``<tmp>/more4d/<kind>``), created on demand."""
    root = os.environ.get("MORE4D_OUTPUT_DIR") or os.path.join(tempfile.gettempdir(), "more4d")
    path = os.path.join(root, kind)
    os.makedirs(path, exist_ok=True)
    return path


def output_directory() -> str:
    """ComfyUI's output folder (outside ComfyUI: ``$MORE4D_OUTPUT_DIR/output`` or a temp folder)."""
    return _fp.get_output_directory() if _fp is not None else _fallback_folder("output")


def input_directory() -> str:
    """ComfyUI's input folder (outside ComfyUI: ``$MORE4D_OUTPUT_DIR/input`` or a temp folder)."""
    return _fp.get_input_directory() if _fp is not None else _fallback_folder("input")


def check_interrupted() -> None:
    """Raise ComfyUI's interrupt exception when the user pressed cancel (no-op outside ComfyUI)."""
    if _mm is not None:
        _mm.throw_exception_if_processing_interrupted()


class Progress:
    """Progress reporting to ComfyUI's bar; every update also checks for an interrupt."""

    def __init__(self, total: int):
        self.total = max(1, int(total))
        self._bar = _cu.ProgressBar(self.total) if _cu is not None else None

    def __call__(self, done: int, total: int | None = None) -> None:
        check_interrupted()
        if self._bar is not None:
            self._bar.update_absolute(int(done), int(total or self.total))


def render_device(choice: str):
    """Device for rendering: ``"cpu"``, ``"cuda"`` or ``"auto"`` (ComfyUI's device when it is a GPU,
    else the CPU, where the fused numba kernel is fast)."""
    import torch

    if choice == "auto":
        if _mm is not None:
            dev = _mm.get_torch_device()
            return dev if dev.type == "cuda" else torch.device("cpu")
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    return torch.device(choice)
