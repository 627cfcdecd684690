"""How big a written output is, for the lines the command lines print."""

from __future__ import annotations

from pathlib import Path


def readable_size(path: str | Path) -> str:
    """The size of a file, or of a folder's files (a PLY sequence), as ``"914.8 KB"``; ``"?"`` when gone."""
    path = Path(path)
    try:
        total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    except OSError:
        return "?"
    if total < 1024:
        return f"{total} bytes"
    for unit in ("KB", "MB", "GB", "TB"):
        total /= 1024
        if total < 1024 or unit == "TB":
            return f"{total:.1f} {unit}"
    return "?"
