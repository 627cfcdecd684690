"""The bundled default model (``more4d-small.safetensors``, shipped inside the package)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL = Path(__file__).resolve().parent / "more4d-small.safetensors"
TRAIN_COMMAND = (
    "python -m more4d_core.train --config more4d-small --steps 3000 --batch-size 16 --lr 5e-4 --warmup 100 "
    "--out runs/more4d-small --export more4d_core/weights/more4d-small.safetensors"
)


def default_model_path() -> Path:
    if not DEFAULT_MODEL.is_file():
        raise FileNotFoundError(
            f"the bundled default model is missing ({DEFAULT_MODEL}); reinstall the package or rebuild it with: "
            f"{TRAIN_COMMAND}"
        )
    return DEFAULT_MODEL


def load_default_generator(device="cpu"):
    from ..generator import load_generator

    return load_generator(default_model_path(), device=device)
