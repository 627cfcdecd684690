"""The few ComfyUI services the nodes use, with plain fallbacks so the nodes also run (and are
tested) without ComfyUI: output/input folders, progress bars and the interrupt check."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

try:  # inside ComfyUI
    import comfy.model_management as _mm
    import comfy.utils as _cu
    import folder_paths as _fp

    IN_COMFY = True
except ImportError:  # plain Python (tests, headless runner)
    _mm = _cu = _fp = None
    IN_COMFY = False



OUTPUT_OVERRIDE: str | None = None  # the headless runner writes straight into its --out folder
PROGRESS_HOOK = None  # outside ComfyUI: called as hook(done, total) by Progress


def set_output_directory(path: str | None) -> None:
    global OUTPUT_OVERRIDE
    OUTPUT_OVERRIDE = path


def _fallback_folder(kind: str) -> str:
    """``$MORE4D_OUTPUT_DIR/<kind>`` (or ``<tmp>/more4d/<kind>``), created on demand."""
    root = os.environ.get("MORE4D_OUTPUT_DIR") or os.path.join(tempfile.gettempdir(), "more4d")
    path = os.path.join(root, kind)
    os.makedirs(path, exist_ok=True)
    return path


def output_directory() -> str:
    """ComfyUI's output folder (outside ComfyUI: ``$MORE4D_OUTPUT_DIR/output`` or a temp folder)."""
    if OUTPUT_OVERRIDE is not None:
        os.makedirs(OUTPUT_OVERRIDE, exist_ok=True)
        return OUTPUT_OVERRIDE
    return _fp.get_output_directory() if _fp is not None else _fallback_folder("output")


def remove_stale_temporaries() -> int:
    """At start-up: remove the temporaries a killed process of ours left in the output and temp
    folders (an hour old or more; see ``more4d_core.export.atomic``). Never fails the start."""
    from more4d_core.export.atomic import remove_stale_temporaries as remove

    removed = 0
    for folder in (output_directory, temp_directory):
        try:
            removed += remove(folder())
        except Exception:  # noqa: BLE001 - housekeeping must not stop ComfyUI from starting
            pass
    return removed


def output_name(path, root: str) -> str:
    """``path`` (written inside ``root``) as the forward-slash name the UI shows and the nodes list."""
    return Path(path).relative_to(Path(root).resolve()).as_posix()


def input_directory() -> str:
    """ComfyUI's input folder (outside ComfyUI: ``$MORE4D_OUTPUT_DIR/input`` or a temp folder)."""
    return _fp.get_input_directory() if _fp is not None else _fallback_folder("input")


def temp_directory() -> str:
    """ComfyUI's temp folder (cleared at start-up; preview files go there)."""
    if _fp is not None and hasattr(_fp, "get_temp_directory"):
        path = _fp.get_temp_directory()
        os.makedirs(path, exist_ok=True)
        return path
    return _fallback_folder("temp")


def core_type(name: str):
    """A value class of ComfyUI core's typed API (``comfy_api.latest.Types``), e.g. ``"SPLAT"`` or
    ``"File3D"``; a clear error when this ComfyUI is too old to have it."""
    try:
        from comfy_api.latest import Types
    except ImportError as exc:
        raise RuntimeError(
            f"this node needs ComfyUI's typed API (comfy_api.latest, type {name}); run it inside ComfyUI"
        ) from exc
    cls = getattr(Types, name, None)
    if cls is None:
        raise RuntimeError(
            f"this ComfyUI has no core {name} type; update ComfyUI (the 3D / Gaussian splat nodes arrived in 2026)"
        )
    return cls


def check_interrupted() -> None:
    """Raise ComfyUI's interrupt exception when the user pressed cancel (no-op outside ComfyUI)."""
    if _mm is not None:
        _mm.throw_exception_if_processing_interrupted()


def show_text(node_id, text: str) -> bool:
    """Show ``text`` on the node ``node_id`` in ComfyUI's graph (its progress-text line); outside
    ComfyUI, or on a server without that message, nothing happens. Returns whether it was sent."""
    if node_id is None or not IN_COMFY:
        return False
    try:
        from server import PromptServer

        send = getattr(PromptServer.instance, "send_progress_text", None)
        if send is None:
            return False
        send(text, str(node_id))
        return True
    except Exception:  # a display hint must never fail the node
        return False


class Progress:
    """Progress reporting to ComfyUI's bar; every update also checks for an interrupt."""

    def __init__(self, total: int):
        self.total = max(1, int(total))
        self._bar = _cu.ProgressBar(self.total) if _cu is not None else None

    def __call__(self, done: int, total: int | None = None) -> None:
        check_interrupted()
        if self._bar is not None:
            self._bar.update_absolute(int(done), int(total or self.total))
        elif PROGRESS_HOOK is not None:
            PROGRESS_HOOK(int(done), int(total or self.total))


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


def torch_device(choice: str = "auto"):
    """Device for model work: ComfyUI's device (honours --cpu) or CUDA when available outside it."""
    import torch

    if choice != "auto":
        return torch.device(choice)
    if _mm is not None:
        return _mm.get_torch_device()
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def low_vram() -> bool:
    """True when ComfyUI runs with --lowvram / --novram (models should be offloaded when idle)."""
    if _mm is None:
        return False
    state = getattr(_mm, "vram_state", None)
    names = {getattr(_mm.VRAMState, n, None) for n in ("LOW_VRAM", "NO_VRAM")} if hasattr(_mm, "VRAMState") else set()
    return state in names


def _load_whole(patcher) -> None:
    """Load a ModelPatcher's model onto the GPU whole. ComfyUI can leave part of a model in CPU memory
    only for its own layer types (comfy.ops), which cast their weights to the GPU per call; our models
    are plain torch layers, which a partial load would leave on the CPU to fail at the first call.
    Models too large to load whole use a memory mode (fp8 blocks, block streaming) instead."""
    try:
        _mm.load_models_gpu([patcher], force_full_load=True)
    except TypeError:  # a ComfyUI older than the force_full_load option (2024)
        _mm.load_models_gpu([patcher])


def install_memory_manager() -> None:
    """Inside ComfyUI: let its model management see and evict our cached models."""
    if _mm is None:
        return
    from more4d_core.cache import MODEL_CACHE, MemoryManager

    class ComfyMemoryManager(MemoryManager):
        def before_load(self, nbytes, device):
            if device.type == "cuda" and nbytes:
                _mm.free_memory(int(nbytes * 1.2), device)

        def activate(self, entry):
            model = entry.model
            if not hasattr(model, "to") or entry.device.type != "cuda":
                return
            if getattr(model, "placement", None) is not None:
                return  # a memory mode places each part itself (moving it whole would undo a 24gb / 16gb mode)
            patcher = entry.extra.get("patcher")
            if patcher is None:
                try:
                    import comfy.model_patcher as _mp

                    patcher = _mp.ModelPatcher(model, load_device=entry.device,
                                               offload_device=_mm.unet_offload_device(), size=entry.nbytes)
                    entry.extra["patcher"] = patcher
                except Exception:  # older/newer ComfyUI without this API: manage the move ourselves
                    patcher = False
                    entry.extra["patcher"] = False
            if patcher:
                _load_whole(patcher)
            else:
                model.to(entry.device)

        def release(self, entry):
            if getattr(entry.model, "placement", None) is not None:
                return
            if entry.device.type == "cuda" and low_vram() and not entry.extra.get("patcher"):
                entry.model.to(_mm.unet_offload_device())
                _mm.soft_empty_cache()

        def forget(self, entry):
            if hasattr(entry.model, "to"):
                entry.model.to("cpu")

    MODEL_CACHE.set_manager(ComfyMemoryManager())
