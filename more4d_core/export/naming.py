"""Numbered output names (``prefix_00001``) that never overwrite earlier results."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import InputError
from .atomic import resolve_inside


def next_free_stem(folder: str | os.PathLike, prefix: str, suffixes: tuple[str, ...] = ("",)) -> str:
    """The relative stem ``prefix_NNNNN`` with the next number such that no ``stem + suffix`` exists.

    ``prefix`` may contain sub-folders (``"more4d/shot"``); it must stay inside ``folder``.
    """
    prefix = str(prefix).strip().replace("\\", "/")
    if not prefix or prefix.endswith("/"):
        raise InputError(f"filename prefix {prefix!r} must end with a file name, e.g. 'more4d/scene'")
    probe = resolve_inside(folder, f"{prefix}_00000")
    parent = probe.parent
    base = Path(prefix).name
    pattern = re.compile(rf"^{re.escape(base)}_(\d{{5,}})")
    highest = 0
    if parent.is_dir():
        for entry in parent.iterdir():
            m = pattern.match(entry.name)
            if m:
                highest = max(highest, int(m.group(1)))
    number = highest + 1
    while True:
        stem = f"{prefix}_{number:05d}"
        if not any(resolve_inside(folder, stem + s).exists() for s in suffixes):
            return stem
        number += 1
