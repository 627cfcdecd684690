"""Numbered output names (``prefix_00001``) that never overwrite earlier results, safe when several
threads or processes save with one prefix at once."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from ..errors import InputError, OutputExistsError
from .atomic import remove_path, resolve_inside

MAX_ATTEMPTS = 1000


def next_free_stem(folder: str | os.PathLike, prefix: str, suffixes: tuple[str, ...] = ("",)) -> str:
    """The relative stem ``prefix_NNNNN`` with the next number such that no ``stem + suffix`` exists.

    ``prefix`` may contain sub-folders (``"more4d/shot"``); it must stay inside ``folder``.
    """
    prefix = str(prefix).strip().replace("\\", "/")
    if not prefix or prefix.endswith("/"):
        raise InputError(f"filename prefix {prefix!r} must end with a file name, e.g. 'more4d/scene'")
    if "\x00" in prefix or any(ord(c) < 32 for c in prefix):
        raise InputError(f"filename prefix {prefix!r} contains control characters; use letters, digits, '-', '_' and '/'")
    name = prefix.rsplit("/", 1)[-1]
    if name.startswith("."):
        raise InputError(f"filename prefix {prefix!r} makes a hidden file (its name starts with '.'), which the "
                         "loaders do not list; start the name with a letter or digit, e.g. 'more4d/scene'")
    longest = len(name.encode()) + 6 + max((len(s) for s in suffixes), default=0)  # "_00001" + suffix
    if longest > 255:
        raise InputError(f"filename prefix {prefix!r} is too long: file names are at most 255 bytes "
                         f"(this one would be {longest}); shorten it")
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


def save_numbered(folder: str | os.PathLike, prefix: str, suffixes: tuple[str, ...],
                  write: Callable[[str, list[Path]], None]) -> list[Path]:
    """Write one numbered output — one file or several sharing a stem — all or nothing.

    ``write(stem, written)`` writes the files of ``stem`` (placed without replacing anything, as
    :mod:`.atomic` does) and appends each finished path to ``written``. When another writer takes one
    of the names first (:class:`OutputExistsError`), what this attempt wrote is removed and the next
    free number is tried; on any other error what it wrote is removed and the error raised.
    """
    for _ in range(MAX_ATTEMPTS):
        stem = next_free_stem(folder, prefix, suffixes)
        written: list[Path] = []
        try:
            write(stem, written)
            return written
        except BaseException as exc:
            for path in written:
                remove_path(path)
            if not isinstance(exc, OutputExistsError):
                raise
    raise OutputExistsError(f"could not claim a free name for {prefix!r} in {folder} after {MAX_ATTEMPTS} tries")
