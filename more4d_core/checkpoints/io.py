"""Reading weights safely: safetensors files and sharded folders, and legacy ``.bin`` / ``.pth`` /
``.pt`` pickles only through ``torch.load(weights_only=True)`` (which refuses arbitrary objects).

Tensors are read lazily (one at a time from memory-mapped safetensors), so a 14B model loads into
a meta-device skeleton without a second full copy in memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import safe_open as _safe_open

from ..errors import FormatError

SAFETENSORS = ".safetensors"
PICKLE_SUFFIXES = (".bin", ".pth", ".pt", ".ckpt", ".torch")


def shard_files(folder: str | os.PathLike) -> list[Path]:
    """The safetensors files of a checkpoint folder: from its ``*.safetensors.index.json`` when
    there is one, else every ``*.safetensors`` file (sorted)."""
    folder = Path(folder)
    indexes = sorted(folder.glob("*.safetensors.index.json"))
    if indexes:
        try:
            weight_map = json.loads(indexes[0].read_text())["weight_map"]
        except (KeyError, json.JSONDecodeError) as exc:
            raise FormatError(f"{indexes[0]} is not a valid safetensors index ({exc})") from None
        files = [folder / name for name in sorted(set(weight_map.values()))]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"the index {indexes[0].name} lists shards that are missing: {', '.join(missing)}")
        return files
    files = sorted(folder.glob(f"*{SAFETENSORS}"))
    if not files:
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        hint = f" (found {', '.join(pickles)}: convert them with python -m more4d_core.checkpoints.convert)" if pickles else ""
        raise FileNotFoundError(f"no .safetensors weights in {folder}{hint}")
    return files


@contextlib.contextmanager
def safe_open(path: str | os.PathLike, framework: str = "pt", device: str = "cpu"):
    """``safetensors.safe_open`` whose failures to read the file (empty, truncated, not a
    safetensors file) name the file and what to do, instead of "header too small"."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} not found")
    try:
        handle = _safe_open(str(path), framework=framework, device=device)
    except Exception as exc:  # SafetensorError, OSError, ...
        size = path.stat().st_size
        raise FormatError(
            f"{path} ({size} bytes) is not a readable .safetensors file ({exc}); it is empty, truncated or "
            "of another format: download or export it again"
        ) from None
    with handle as fh:
        yield fh


def safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata() or {})


def iter_safetensors(path: str | os.PathLike) -> Iterator[tuple[str, torch.Tensor]]:
    with safe_open(str(path), framework="pt", device="cpu") as fh:
        for key in fh.keys():
            yield key, fh.get_tensor(key)


def load_pickle_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A legacy PyTorch checkpoint, unpickled with ``weights_only=True`` (tensors and plain
    containers only). Nested ``state_dict`` / ``model`` / ``module`` wrappers are unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} not found")
    legacy = not zipfile.is_zipfile(path)  # torch.save's pre-1.6 format cannot be memory-mapped
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True, mmap=not legacy)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, ... for unsafe content
        raise FormatError(
            f"{path} could not be read as plain weights with torch.load(weights_only=True): {exc}. "
            "Only pickles of tensors are accepted (anything else could run code); convert trusted files "
            "to safetensors first, or export them again."
        ) from None
    for wrapper in ("state_dict", "model", "module", "ema"):
        if isinstance(data, dict) and wrapper in data and isinstance(data[wrapper], dict):
            data = data[wrapper]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise FormatError(f"{path} does not hold a flat dict of tensors")
    return data


def iter_weights(source: str | os.PathLike) -> Iterator[tuple[str, torch.Tensor]]:
    """``(key, tensor)`` pairs of a file or a folder of shards."""
    source = Path(source)
    if source.is_dir():
        for shard in shard_files(source):
            yield from iter_safetensors(shard)
        return
    if not source.is_file():
        raise FileNotFoundError(f"weights not found: {source}")
    if source.suffix == SAFETENSORS:
        yield from iter_safetensors(source)
    elif source.suffix in PICKLE_SUFFIXES:
        yield from load_pickle_weights(source).items()
    else:
        raise FormatError(f"{source}: unknown weight format {source.suffix!r}; expected .safetensors (or .bin/.pth)")


def read_weights(source: str | os.PathLike) -> dict[str, torch.Tensor]:
    return dict(iter_weights(source))
