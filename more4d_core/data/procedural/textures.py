"""Photographic textures for procedural scenes, with disjoint train, validation and held-out sets.

Textures come from the sample photographs that scikit-image ships inside its wheel (no download).
Grey photographs are tinted with a random colour. scikit-image is a requirement: the photographs
define the splits and the bundled example's truth, so without them generating refuses (it used to
substitute other patterns, i.e. other scenes, silently).
"""

from __future__ import annotations

import functools
import logging
import os

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger("more4d")

# Split by photograph: no photograph appears in both (the two motorcycle views stay together).
TRAIN_PHOTOS = (
    "astronaut.png", "chelsea.png", "coffee.png", "ihc.png", "motorcycle_left.png", "motorcycle_right.png",
    "hubble_deep_field.jpg", "brick.png", "camera.png", "grass.png", "gravel.png", "moon.png", "coins.png",
)
HELDOUT_PHOTOS = ("rocket.jpg", "retina.jpg", "color.png", "cell.png", "clock_motion.png", "text.png", "page.png")
# the photographs neither of the others uses (added with the validation split; train and held-out unchanged)
VALIDATION_PHOTOS = ("logo.png", "phantom.png", "chessboard_RGB.png", "horse.png")
SPLITS = {"train": TRAIN_PHOTOS, "validation": VALIDATION_PHOTOS, "heldout": HELDOUT_PHOTOS}


def _photo_dir() -> str | None:
    try:
        import skimage.data
    except ImportError:
        return None
    return os.path.dirname(skimage.data.__file__)


PHOTOS_AVAILABLE = _photo_dir() is not None


@functools.cache
def _load_photo(name: str) -> torch.Tensor:
    import imageio.v3 as iio

    arr = iio.imread(os.path.join(_photo_dir(), name))
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    arr = arr[..., :3]
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().div(255.0)


def _split_names(split: str) -> tuple[str, ...]:
    if split not in SPLITS:
        raise ValueError(f"texture split must be one of {tuple(SPLITS)}, got {split!r}")
    if not PHOTOS_AVAILABLE:  # other textures would be other scenes than the documented splits: say so
        raise ImportError("procedural scenes are textured with scikit-image's sample photographs (the train / "
                          "validation / held-out splits and the bundled example are defined by them): "
                          "pip install scikit-image")
    return SPLITS[split]


def sample_texture(rng: np.random.Generator, split: str, size: int = 128) -> torch.Tensor:
    """A ``[3, size, size]`` texture in 0..1: a random crop of a photograph of ``split``
    (random scale, flip and tint for grey photos)."""
    names = _split_names(split)
    photo = _load_photo(names[int(rng.integers(len(names)))])
    _, h, w = photo.shape
    crop = int(min(h, w) * rng.uniform(0.35, 0.9))
    y0 = int(rng.integers(0, h - crop + 1))
    x0 = int(rng.integers(0, w - crop + 1))
    tex = photo[:, y0 : y0 + crop, x0 : x0 + crop]
    if rng.random() < 0.5:
        tex = tex.flip(-1)
    tex = F.interpolate(tex[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
    return _tinted_if_grey(rng, tex)


def _tinted_if_grey(rng: np.random.Generator, tex: torch.Tensor) -> torch.Tensor:
    """``tex`` ``[3, h, w]`` times a random colour when it is grey (one draw of ``rng`` then only)."""
    if float((tex[0] - tex[1]).abs().mean() + (tex[1] - tex[2]).abs().mean()) < 1e-3:  # grey photo: tint it
        tint = torch.from_numpy(rng.uniform(0.35, 1.0, size=3)).float().view(3, 1, 1)
        tex = tex * tint
    return tex.clamp(0, 1).contiguous()


def photo_window(rng: np.random.Generator, split: str, height: int, width: int) -> torch.Tensor:
    """A ``[3, height, width]`` window of a photograph of ``split`` at its own sharpness: shrunk by
    a random factor in 0.6..1 (area averaging, never enlarged), mirrored at its edges where it is
    smaller than the window, flipped at random, grey photos tinted."""
    names = _split_names(split)
    photo = _load_photo(names[int(rng.integers(len(names)))])
    scale = float(rng.uniform(0.6, 1.0))
    _, h, w = photo.shape
    size = (max(1, int(round(h * scale))), max(1, int(round(w * scale))))
    tex = F.interpolate(photo[None], size=size, mode="area")[0]
    pad_h, pad_w = max(0, height - size[0]), max(0, width - size[1])
    if pad_h or pad_w:  # mirrored as often as the window needs (numpy repeats the reflection)
        tex = torch.from_numpy(np.pad(tex.numpy(), ((0, 0), (0, pad_h), (0, pad_w)), mode="reflect"))
    y0 = int(rng.integers(0, tex.shape[1] - height + 1))
    x0 = int(rng.integers(0, tex.shape[2] - width + 1))
    tex = tex[:, y0 : y0 + height, x0 : x0 + width]
    if rng.random() < 0.5:
        tex = tex.flip(-1)
    return _tinted_if_grey(rng, tex)


def sample_texture_uv(texture: torch.Tensor, u: torch.Tensor, v: torch.Tensor, tiles: float = 1.0) -> torch.Tensor:
    """Colours ``[..., 3]`` of ``texture`` at coordinates ``u, v`` (repeating every ``1 / tiles``)."""
    shape = u.shape
    gu = torch.remainder(u.reshape(-1) * tiles, 1.0) * 2 - 1
    gv = torch.remainder(v.reshape(-1) * tiles, 1.0) * 2 - 1
    grid = torch.stack([gu, gv], dim=-1).view(1, 1, -1, 2).to(texture.dtype)
    out = F.grid_sample(texture[None], grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, :, 0].T.reshape(*shape, 3)
