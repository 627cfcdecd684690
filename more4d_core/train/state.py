"""Resumable training checkpoints, written as safetensors + JSON (no pickles).

A checkpoint folder ``step-XXXXXXX/`` holds ``model.safetensors`` (the current weights as a
single-file model, usable for generation), ``ema.safetensors`` (the EMA weights, also a
single-file model), ``optimizer.safetensors`` + ``optimizer.json`` (the optimizer state flattened
to tensors and plain values) and ``trainer.json`` (step, arguments, timings). Folders are written
atomically; ``latest.json`` points at the newest complete one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..checkpoints.bundle import save_bundle
from ..export.atomic import atomic_folder, write_file_atomic
from ..models.config import STraGConfig


def flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for idx, entry in state["state"].items():
        plain["state"][str(idx)] = {}
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain["state"][str(idx)][key] = value
    return tensors, plain


def unflatten_optimizer(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> dict:
    state: dict[int, dict] = {int(i): dict(v) for i, v in plain["state"].items()}
    for name, value in tensors.items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": plain["param_groups"]}


def save_training_state(
    folder: str | Path,
    step: int,
    config: STraGConfig,
    components: dict[str, torch.nn.Module],
    ema_components: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    info: dict[str, Any],
) -> Path:
    root = Path(folder)
    target = root / f"step-{step:07d}"
    with atomic_folder(target, overwrite=True) as tmp:
        save_bundle(tmp / "model.safetensors", config, components, info)
        save_bundle(tmp / "ema.safetensors", config, ema_components, info)
        tensors, plain = flatten_optimizer(optimizer.state_dict())
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        (tmp / "optimizer.json").write_text(json.dumps(plain))
        (tmp / "trainer.json").write_text(json.dumps({"step": step, **info}, indent=1, default=str))
    payload = json.dumps({"latest": target.name}).encode()
    write_file_atomic(root / "latest.json", lambda fh: fh.write(payload), overwrite=True)
    return target


def latest_checkpoint(folder: str | Path) -> Path | None:
    pointer = Path(folder) / "latest.json"
    if not pointer.is_file():
        return None
    target = Path(folder) / json.loads(pointer.read_text())["latest"]
    return target if target.is_dir() else None


def load_optimizer_state(folder: Path, optimizer: torch.optim.Optimizer) -> None:
    tensors = load_file(str(folder / "optimizer.safetensors"))
    plain = json.loads((folder / "optimizer.json").read_text())
    optimizer.load_state_dict(unflatten_optimizer(tensors, plain))
