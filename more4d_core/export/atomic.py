"""Safe, atomic writes: never outside the target folder, never a half-written file.

Files are written to a hidden temporary name in the destination folder and moved into place
atomically. Without ``overwrite`` the move never replaces anything — a hard link to the new name
(which fails when the name exists, however late another writer took it), or where links are not
supported an exclusive create of the name followed by the rename — so two writers racing for one
name cannot lose a file: the second gets :class:`OutputExistsError` and picks another name.
Folders are assembled under a temporary name and renamed the same way (the name claimed first by an
exclusive ``mkdir``). On any error the temporary is removed and the destination is untouched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError, OutputExistsError, UnsafePathError

TMP_MARK = ".more4d-tmp-"  # in the name of every temporary file or folder we create next to a target
STALE_AFTER_S = 3600.0  # a temporary this old belongs to a writer that was killed


def remove_path(path: str | os.PathLike) -> None:
    """Remove a file, link or folder tree (nothing when it is already gone)."""
    path = Path(path)
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def remove_stale_temporaries(folder: str | os.PathLike, *, max_age_s: float = STALE_AFTER_S, depth: int = 3) -> int:
    """Remove our temporaries (names with :data:`TMP_MARK`) older than ``max_age_s`` under ``folder``
    (``depth`` levels of sub-folders): what a killed process left. Returns how many were removed;
    younger ones may belong to a writer still at work and are left alone."""
    import time

    root = Path(folder)
    if not root.is_dir():
        return 0
    now, removed = time.time(), 0
    stack = [(root, 0)]
    while stack:
        current, level = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            if TMP_MARK in entry.name:
                try:
                    if now - entry.stat(follow_symlinks=False).st_mtime < max_age_s:
                        continue
                    remove_path(entry.path)
                    removed += 1
                except OSError:
                    pass
            elif level < depth and entry.is_dir(follow_symlinks=False):
                stack.append((Path(entry.path), level + 1))
    return removed


def resolve_inside(root: str | os.PathLike, relative: str | os.PathLike, *, reading: bool = False) -> Path:
    """``root / relative`` resolved, refusing anything that would land outside ``root``.

    Rejects absolute paths elsewhere, ``..`` escapes and symlinks pointing out of ``root``.
    ``reading``: the messages speak of reading from the folder (for files a node loads).
    """
    root_path = Path(root).expanduser().resolve()
    rel = Path(relative)
    verb, kind = ("read", "file") if reading else ("write", "output")
    if str(relative) == "" or rel.name in ("", ".", ".."):
        raise InputError(f"{kind} name {str(relative)!r} is empty or not a file name")
    target = (root_path / rel).resolve()
    if target != root_path and root_path not in target.parents:
        raise UnsafePathError(
            f"refusing to {verb} {str(relative)!r}: it resolves to {target}, outside the folder {root_path}. "
            "Use a plain name or a sub-folder name without '..'."
        )
    if target == root_path:
        raise UnsafePathError(f"{kind} name {str(relative)!r} is the folder {root_path} itself, not a file")
    return target


def _default_mode(folder: bool = False) -> int:
    """The permissions a plain ``open()`` / ``mkdir()`` would give (temp files are created 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if folder else 0o666) & ~mask


def _check_destination(target: Path, overwrite: bool) -> None:
    """An early, friendly refusal (the placement itself is what guarantees no replacement)."""
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise _exists_error(target)


def _exists_error(target: Path) -> OutputExistsError:
    return OutputExistsError(f"{target} already exists; choose another name or pass overwrite=True to replace it")


def _place_file(tmp: Path, target: Path, overwrite: bool) -> None:
    """Move the finished ``tmp`` to ``target``; without ``overwrite`` never replace an existing file."""
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)  # fails if target exists, atomically
    except FileExistsError:
        raise _exists_error(target) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise
        try:  # no hard links here: claim the name exclusively, then rename over our own claim
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            raise _exists_error(target) from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)


def _place_folder(tmp: Path, target: Path) -> None:
    """Move the finished folder ``tmp`` to the free name ``target``, claimed by an exclusive mkdir."""
    try:
        os.mkdir(target)
    except FileExistsError:
        raise _exists_error(target) from None
    try:
        os.replace(tmp, target)  # POSIX: replaces the empty folder we just claimed
    except OSError:
        os.rmdir(target)  # Windows cannot rename onto a folder: release the claim and rename
        os.rename(tmp, target)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``target`` (same suffix, for tools that pick a format by
    extension); it is renamed to ``target`` when the block succeeds and removed when it fails."""
    target = Path(target)
    _check_destination(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}{TMP_MARK}", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if target.is_dir() and not target.is_symlink():
            raise OutputExistsError(f"{target} is a folder; refusing to replace it with a file")
        os.chmod(tmp, _default_mode())
        _place_file(tmp, target, overwrite)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike, *, overwrite: bool = False) -> Iterator[BinaryIO]:
    """Open a temporary file next to ``target`` for binary writing; rename it into place on success."""
    with atomic_path(target, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def write_file_atomic(target: str | os.PathLike, writer: Callable[[BinaryIO], None], *, overwrite: bool = False) -> Path:
    """Call ``writer(fileobj)`` on a temporary file and move it to ``target`` atomically."""
    with atomic_file(target, overwrite=overwrite) as fh:
        writer(fh)
    return Path(target)


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; rename it to ``target`` when the block succeeds.

    With ``overwrite`` an existing folder is replaced (it is moved aside first and deleted only
    after the new one is in place).
    """
    target = Path(target)
    _check_destination(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}{TMP_MARK}", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, _default_mode(folder=True))
        old = None
        if overwrite and (target.exists() or target.is_symlink()):
            if not target.is_dir() or target.is_symlink():
                raise OutputExistsError(f"{target} exists and is not a folder; refusing to replace it")
            old = target.with_name(f".{target.name}{TMP_MARK}{uuid.uuid4().hex[:8]}.old")
            os.replace(target, old)
        try:
            if overwrite:
                os.replace(tmp, target)
            else:
                _place_folder(tmp, target)
        except BaseException:
            if old is not None:
                os.replace(old, target)  # put the previous folder back
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
