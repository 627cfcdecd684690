"""Convert legacy PyTorch weight files to safetensors.

    python -m more4d_core.checkpoints.convert SRC DST [--max-shard-gb 5] [--overwrite]

``SRC`` is a ``.bin`` / ``.pth`` / ``.pt`` file or a folder of them (e.g. the authors'
``pytorch_model-0000x-of-0000y.bin`` shards); every file is read with
``torch.load(weights_only=True)``, which refuses anything but tensors, so converting never runs
code from the file. ``DST`` is a ``.safetensors`` file or a folder (sharded, with an index, when
the weights exceed ``--max-shard-gb``). Keys are kept as they are; the loaders understand both
the authors' names and ours. Writes are atomic.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..export.atomic import atomic_folder, atomic_path
from ..help_text import summary
from .io import PICKLE_SUFFIXES, load_pickle_weights


def _sources(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    files = sorted(p for p in src.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no .bin/.pth/.pt files in {src}")
    return files


def convert(src: str | Path, dst: str | Path, *, max_shard_bytes: int = 5 * 2**30, overwrite: bool = False) -> list[Path]:
    """Convert ``src`` into safetensors at ``dst``; returns the written files."""
    src, dst = Path(src), Path(dst)
    weights: dict[str, torch.Tensor] = {}
    for path in _sources(src):
        part = load_pickle_weights(path)
        clash = set(part) & set(weights)
        if clash:
            raise ValueError(f"{path} repeats keys already read from another file: {sorted(clash)[:5]}")
        weights.update(part)
    weights = {k: v.contiguous() for k, v in weights.items()}
    total = sum(t.numel() * t.element_size() for t in weights.values())
    if dst.suffix == ".safetensors":
        if total > max_shard_bytes:
            raise ValueError(f"{total / 2**30:.1f} GiB do not fit one file under the shard limit; give a folder as DST")
        with atomic_path(dst, overwrite=overwrite) as tmp:
            save_file(weights, str(tmp), metadata={"converted_from": src.name})
        return [dst]
    shards: list[list[str]] = [[]]
    size = 0
    for key in sorted(weights):
        nbytes = weights[key].numel() * weights[key].element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(key)
        size += nbytes
    written = []
    with atomic_folder(dst, overwrite=overwrite) as tmp:
        weight_map = {}
        for i, keys in enumerate(shards, 1):
            name = f"model-{i:05d}-of-{len(shards):05d}.safetensors" if len(shards) > 1 else "model.safetensors"
            save_file({k: weights[k] for k in keys}, str(tmp / name), metadata={"converted_from": src.name})
            weight_map.update({k: name for k in keys})
            written.append(dst / name)
        if len(shards) > 1:
            index = {"metadata": {"total_size": total}, "weight_map": weight_map}
            (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=1))
        for extra in ("config.json",):
            if src.is_dir() and (src / extra).is_file():
                (tmp / extra).write_text((src / extra).read_text())
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m more4d_core.checkpoints.convert", description=summary(__doc__))
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--max-shard-gb", type=float, default=5.0)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    written = convert(args.src, args.dst, max_shard_bytes=int(args.max_shard_gb * 2**30), overwrite=args.overwrite)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
