"""Our single-file model format: one ``.safetensors`` holding every component of a generator,
with the config and provenance embedded in the header metadata.

Tensor keys are prefixed by component (``transformer.``, ``codec.``, ``text_encoder.``); the
metadata has ``format = "more4d.model"``, ``format_version``, ``config`` (the STraGConfig JSON),
``components`` and ``info`` (JSON: training seed, data recipe, git revision, ...).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from ..errors import FormatError
from ..export.atomic import atomic_path
from ..models.config import STraGConfig
from .io import safe_open

BUNDLE_FORMAT = "more4d.model"
BUNDLE_VERSION = 1


@dataclass
class BundleHeader:
    config: STraGConfig
    components: list[str]
    info: dict[str, Any]
    path: Path


def is_bundle(path: str | os.PathLike) -> bool:
    path = Path(path)
    if not (path.is_file() and path.suffix == ".safetensors"):
        return False
    try:
        with safe_open(str(path), framework="pt") as fh:
            return (fh.metadata() or {}).get("format") == BUNDLE_FORMAT
    except Exception:  # not a safetensors file at all
        return False


def read_header(path: str | os.PathLike) -> BundleHeader:
    path = Path(path)
    with safe_open(path) as fh:  # names the file when it is not a readable safetensors file
        meta = dict(fh.metadata() or {})
    if meta.get("format") != BUNDLE_FORMAT:
        raise FormatError(f"{path} is not a MoRe4D model file (metadata 'format' is {meta.get('format')!r})")
    version = int(meta.get("format_version", "0"))
    if version > BUNDLE_VERSION:
        raise FormatError(f"{path} is model format version {version}; this build reads up to {BUNDLE_VERSION}")
    try:
        config = STraGConfig.from_json(meta["config"])
        info = json.loads(meta.get("info", "{}"))
    except (KeyError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path}: incomplete model metadata ({exc})") from None
    components = [c for c in meta.get("components", "").split(",") if c]
    return BundleHeader(config=config, components=components, info=info, path=path)


def iter_component(path: str | os.PathLike, component: str) -> Iterator[tuple[str, torch.Tensor]]:
    prefix = component + "."
    with safe_open(str(path), framework="pt", device="cpu") as fh:
        for key in fh.keys():
            if key.startswith(prefix):
                yield key[len(prefix) :], fh.get_tensor(key)


def save_bundle(
    path: str | os.PathLike,
    config: STraGConfig,
    components: dict[str, nn.Module],
    info: dict[str, Any] | None = None,
    *,
    dtype: torch.dtype | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the components' state dicts and the config into one safetensors file, atomically.

    ``dtype`` casts floating-point tensors (e.g. ``torch.float16`` for a compact shipped model).
    """
    tensors: dict[str, torch.Tensor] = {}
    for name, module in components.items():
        for key, tensor in module.state_dict().items():
            t = tensor.detach().to("cpu")
            if dtype is not None and t.is_floating_point():
                t = t.to(dtype)
            tensors[f"{name}.{key}"] = t.contiguous()
    return write_bundle(path, config, tensors, list(components), info, overwrite=overwrite)


def save_generator(path: str | os.PathLike, config: STraGConfig, generator, info: dict[str, Any] | None = None, *,
                   dtype: torch.dtype | None = torch.float16, overwrite: bool = False) -> Path:
    """A generator's transformer, codec and text encoder under ``config`` (:func:`save_bundle`; float16 by default,
    as the shipped model)."""
    return save_bundle(path, config, {"transformer": generator.transformer, "codec": generator.codec,
                                      "text_encoder": generator.text_encoder},
                       info, dtype=dtype, overwrite=overwrite)


def write_bundle(path: str | os.PathLike, config: STraGConfig, tensors: dict[str, torch.Tensor], components: list[str],
                 info: dict[str, Any] | None = None, *, overwrite: bool = False) -> Path:
    """Write prefixed ``tensors`` (``component.key``) with the bundle metadata into one safetensors file, atomically."""
    metadata = {
        "format": BUNDLE_FORMAT,
        "format_version": str(BUNDLE_VERSION),
        "config": config.to_json(),
        "components": ",".join(components),
        "info": json.dumps(info or {}, sort_keys=True),
    }
    with atomic_path(Path(path), overwrite=overwrite) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks (which model file a result belongs to)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
