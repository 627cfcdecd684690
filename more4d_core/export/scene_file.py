"""The ``.npz`` scene file: a complete, self-describing :class:`Scene4D`, readable with plain numpy.

Arrays (no pickled objects; load with ``np.load(path, allow_pickle=False)``):

``format``          ``"more4d.scene4d"``
``version``         file format version (1)
``storage``         ``"float32"`` or ``"float16"``
``points``          ``[T, N, 3]`` float32 (float32 storage), or
``points0``         ``[N, 3]`` float32 and ``offsets`` ``[T, N, 3]`` float16 (float16 storage)
``colors``          ``[N, 3]`` uint8
``visibility_bits`` ``np.packbits`` of the ``[T, N]`` visibility (row-major, big bit order)
``grid_hw``         ``[2]`` int64 (height, width)
``intrinsics``      ``[3, 3]`` float64 pixel intrinsics for the grid
``fps``             float64
``metadata_json``   JSON text of the metadata dict

Points are in the input camera's OpenCV frame (x right, y down, z forward), point ``i`` is pixel
``(i // width, i % width)``. Loading reproduces every tensor bit for bit.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import FormatError, expect_type
from ..memory.budget import check_disk
from ..scene import SCENE_VERSION, Scene4D
from .array_files import check_npz
from .atomic import resolve_inside, write_file_atomic

SCENE_FORMAT = "more4d.scene4d"
SCENE_SUFFIX = ".npz"


def scene_arrays(scene: Scene4D) -> dict[str, np.ndarray]:
    """The arrays of the scene file (also used to build archives in memory)."""
    arrays: dict[str, np.ndarray] = {
        "format": np.array(SCENE_FORMAT),
        "version": np.array(SCENE_VERSION, dtype=np.int64),
        "storage": np.array(scene.storage),
        "colors": scene.colors.numpy(),
        "visibility_bits": np.packbits(scene.visibility.numpy().reshape(-1)),
        "grid_hw": np.array(scene.grid_hw, dtype=np.int64),
        "intrinsics": scene.intrinsics.numpy(),
        "fps": np.array(scene.fps, dtype=np.float64),
        "metadata_json": np.array(json.dumps(scene.metadata, sort_keys=True)),
    }
    if scene.storage == "float32":
        arrays["points"] = scene.points.numpy()
    else:
        arrays["points0"] = scene.points0.numpy()
        arrays["offsets"] = scene.raw_offsets().numpy()
    return arrays


def save_scene(
    scene: Scene4D,
    folder: str | os.PathLike,
    name: str,
    *,
    overwrite: bool = False,
    compress: bool = False,
) -> Path:
    """Write ``scene`` to ``folder/name`` (``.npz`` added when missing) atomically; returns the path.

    ``compress`` uses zip deflate (smaller for smooth motion, several times slower to write).
    """
    expect_type(scene, Scene4D, "scene")
    if not str(name).endswith(SCENE_SUFFIX):
        name = f"{name}{SCENE_SUFFIX}"
    target = resolve_inside(folder, name)
    arrays = scene_arrays(scene)
    check_disk(target.parent, sum(a.nbytes for a in arrays.values()),
               f"saving a scene of {scene.num_frames} frames x {scene.num_points:,} points",
               "free some disk space or save a smaller scene (fewer frames, a smaller grid)")
    saver = np.savez_compressed if compress else np.savez
    return write_file_atomic(target, lambda fh: saver(fh, **arrays), overwrite=overwrite)


def _field(data, key: str, path) -> np.ndarray:
    if key not in data.files:
        raise FormatError(f"{path} is not a complete MoRe4D scene file: the array {key!r} is missing")
    try:
        return data[key]
    except ValueError as exc:  # object arrays: numpy refuses to unpickle with allow_pickle=False
        raise FormatError(f"{path}: the array {key!r} cannot be read safely ({exc}); refusing to unpickle it") from None


def _grid_error(points0: torch.Tensor, k: torch.Tensor, width: int) -> float:
    """Median pixel distance between where frame-0 points project and their grid pixel's centre,
    reading the row-major point order with rows of ``width``."""
    n = points0.shape[0]
    idx = torch.linspace(0, n - 1, min(n, 4096)).long()
    p = points0[idx].double()
    ok = torch.isfinite(p).all(-1) & (p[:, 2] > 0)
    if not bool(ok.any()):
        return float("inf")
    p, idx = p[ok], idx[ok]
    u = k[0, 0] * p[:, 0] / p[:, 2] + k[0, 2]
    v = k[1, 1] * p[:, 1] / p[:, 2] + k[1, 2]
    return float(((u - (idx % width + 0.5)).abs() + (v - (idx // width + 0.5)).abs()).median())


def _check_orientation(points0: torch.Tensor, intrinsics: torch.Tensor, grid_hw: tuple[int, int], path) -> None:
    """Refuse a file whose ``grid_hw`` is (width, height): its points would load transposed. Only a
    scene whose frame-0 points are its pixels (every generated scene) can tell; others pass."""
    h, w = grid_hw
    if h == w or points0.ndim != 2 or tuple(intrinsics.shape) != (3, 3):
        return
    k = intrinsics.double()
    stated, swapped = _grid_error(points0, k, w), _grid_error(points0, k, h)
    if stated > 1.0 and swapped < 0.1:
        raise FormatError(f"{path}: its grid_hw says {h} rows x {w} columns, but its frame-0 points lie on a grid of "
                          f"{w} rows x {h} columns (height and width swapped by the program that wrote it); "
                          "write the file again with grid_hw = (height, width)")


def load_scene(path: str | os.PathLike) -> Scene4D:
    """Read a scene file written by :func:`save_scene` (never unpickles anything)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"scene file {path} does not exist")
    check_npz(path, ".npz scene file")  # before numpy allocates what the arrays' headers state
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:  # EOFError: an empty file
        raise FormatError(f"{path} ({path.stat().st_size} bytes) is not a readable .npz scene file ({exc}); "
                          "save the scene again") from None
    with data:
        if "format" not in data.files or str(_field(data, "format", path)) != SCENE_FORMAT:
            raise FormatError(f"{path} is not a MoRe4D scene file (no 'format' = {SCENE_FORMAT!r} entry)")
        version = int(_field(data, "version", path))
        if version > SCENE_VERSION:
            raise FormatError(
                f"{path} uses scene format version {version}; this build reads up to {SCENE_VERSION}. Update the package."
            )
        storage = str(_field(data, "storage", path))
        grid_hw = tuple(int(v) for v in _field(data, "grid_hw", path))
        colors = torch.from_numpy(_field(data, "colors", path))
        intrinsics = torch.from_numpy(_field(data, "intrinsics", path))
        fps = float(_field(data, "fps", path))
        try:
            metadata = json.loads(str(_field(data, "metadata_json", path)))
        except json.JSONDecodeError as exc:
            raise FormatError(f"{path}: metadata is not valid JSON ({exc})") from None
        if storage == "float32":
            points = torch.from_numpy(_field(data, "points", path))
            frames = points.shape[0]
        elif storage == "float16":
            points0 = torch.from_numpy(_field(data, "points0", path))
            offsets = torch.from_numpy(_field(data, "offsets", path))
            frames = offsets.shape[0]
        else:
            raise FormatError(f"{path}: unknown storage kind {storage!r}")
        bits = _field(data, "visibility_bits", path)
        count = frames * grid_hw[0] * grid_hw[1]
        if bits.size * 8 < count:
            raise FormatError(f"{path}: visibility has {bits.size * 8} bits, expected {count}")
        vis = torch.from_numpy(np.unpackbits(bits, count=count).astype(bool).reshape(frames, -1))
    _check_orientation(points[0] if storage == "float32" else points0, intrinsics, grid_hw, path)
    common = dict(grid_hw=grid_hw, intrinsics=intrinsics, fps=fps, visibility=vis, metadata=metadata)
    if storage == "float32":
        return Scene4D(points, colors, **common)
    return Scene4D.from_offsets(points0, offsets, colors, **common)
