""".npy / .npz files read without trusting their headers.

An ``.npy`` header states a shape and dtype; numpy allocates what the header states before it reads
a byte. A 1 KB file can claim 112 GiB and take the process down. Each array's header is read first
(never unpickling: object dtypes are refused) and its stated size compared with the bytes the file
really holds; only then is the array loaded.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import FormatError


def _stated_bytes(fh: BinaryIO, what: str) -> int:
    """Read the ``.npy`` header at ``fh``'s position; the byte count of the array it states."""
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        else:  # 2.0 and 3.0 share the layout (3.0 allows utf-8 field names)
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise FormatError(f"{what} is not a readable .npy array ({exc})") from None
    if dtype.hasobject:
        raise FormatError(f"{what} holds Python objects (a pickle); refusing to unpickle it")
    return int(np.prod(shape, dtype=np.float64)) * dtype.itemsize


def check_npy(path: str | os.PathLike) -> None:
    """Refuse an ``.npy`` file whose header states more data than the file holds."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        stated = _stated_bytes(fh, str(path))
        held = size - fh.tell()
    _compare(stated, held, str(path))


def check_npz(path: str | os.PathLike, kind: str = ".npz archive") -> None:
    """Refuse an ``.npz`` archive any of whose members states more data than it holds (its
    uncompressed size in the archive's directory, which decompression cannot exceed)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                what = f"{path} (array {info.filename[:-4]!r})"
                with archive.open(info) as fh:
                    stated = _stated_bytes(fh, what)
                    header = fh.tell()
                _compare(stated, info.file_size - header, what)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise FormatError(f"{path} ({path.stat().st_size} bytes) is not a readable {kind} ({exc})") from None


def _compare(stated: int, held: int, what: str) -> None:
    if stated > held:
        raise FormatError(f"{what}: its header states {stated:,} bytes of data but the file holds {held:,}; "
                          "the file is truncated or corrupt — write it again")


def load_npy(path: str | os.PathLike) -> np.ndarray:
    """An ``.npy`` array, its header checked first; never unpickles."""
    check_npy(path)
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FormatError(f"{path} is not a readable .npy array ({exc})") from None
