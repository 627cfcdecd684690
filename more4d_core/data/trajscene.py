"""TrajScene: the on-disk format of trajectory training data, its reader, and a converter from the
authors' TrajScene-60K layout.

Layout (every file in a safe format)::

    <root>/trajscene.json          {"format": "more4d.trajscene", "version": 1,
                                    "samples": [{"id", "caption", "split"}, ...]}
    <root>/samples/<id>/scene.npz  the tracks as a Scene4D file: points [T, H*W, 3] in the camera
                                   of each frame, colours, visibility, grid size, intrinsics, fps
    <root>/samples/<id>/frame0.png the input frame
    <root>/samples/<id>/extras.npz optional: depth [T, H, W] float16, camera_poses [T, 4, 4]
    <root>/samples/<id>/video.mp4  optional: the source video
    <root>/samples/<id>/meta.json  caption and any generator / source description

The authors' layout (captions in a ``.txt`` per line, video paths in a parallel ``.txt``, tracks
in ``dt3d_render/..._dt3d_pred.pkl`` pickles of ``{coords, colors[, vis]}``) is converted by
:func:`convert_authors_dataset`, which unpickles only with ``trust_pickles=True``: a pickle can run
arbitrary code, so only do that for files you trust.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..camera.intrinsics import intrinsics_from_normalized
from ..errors import FormatError, InputError
from ..export.atomic import atomic_folder, resolve_inside, write_file_atomic
from ..export.scene_file import load_scene, save_scene
from ..geometry.normalization import REFERENCE_FX, REFERENCE_FY
from ..help_text import summary
from ..scene import Scene4D

TRAJSCENE_FORMAT = "more4d.trajscene"
TRAJSCENE_VERSION = 1


@dataclass
class TrajSample:
    """One training sample."""

    id: str
    scene: Scene4D  # tracks, colours, visibility, intrinsics, fps
    image: torch.Tensor  # [H, W, 3] float 0..1, the input frame
    caption: str
    depth: torch.Tensor | None = None  # [T, H, W]
    camera_poses: torch.Tensor | None = None  # [T, 4, 4]
    meta: dict[str, Any] = field(default_factory=dict)


def write_sample(root: str | os.PathLike, sample: TrajSample, *, video: torch.Tensor | None = None, overwrite=False) -> Path:
    """Write one sample folder atomically (``video``: optional ``[T, H, W, 3]`` frames)."""
    import imageio.v3 as iio

    from ..export.video import frames_to_uint8, write_video

    target = resolve_inside(Path(root) / "samples", sample.id)
    with atomic_folder(target, overwrite=overwrite) as tmp:
        save_scene(sample.scene, tmp, "scene")
        iio.imwrite(tmp / "frame0.png", frames_to_uint8(sample.image.unsqueeze(0))[0])
        extras = {}
        if sample.depth is not None:
            extras["depth"] = sample.depth.to(torch.float16).numpy()
        if sample.camera_poses is not None:
            extras["camera_poses"] = sample.camera_poses.to(torch.float64).numpy()
        if extras:
            np.savez(tmp / "extras.npz", **extras)
        if video is not None:
            write_video(video, tmp, "video", fps=sample.scene.fps)
        (tmp / "meta.json").write_text(json.dumps({"caption": sample.caption, **sample.meta}, indent=1))
    return target


def write_index(root: str | os.PathLike, entries: list[dict[str, Any]], overwrite: bool = True) -> Path:
    doc = {"format": TRAJSCENE_FORMAT, "version": TRAJSCENE_VERSION, "samples": entries}
    payload = json.dumps(doc, indent=1).encode()
    return write_file_atomic(Path(root) / "trajscene.json", lambda fh: fh.write(payload), overwrite=overwrite)


class TrajSceneDataset:
    """Reader with validation. ``split`` filters by the index's split field."""

    def __init__(self, root: str | os.PathLike, split: str | None = None):
        self.root = Path(root)
        index = self.root / "trajscene.json"
        if not index.is_file():
            raise FileNotFoundError(f"{index} not found: {self.root} is not a TrajScene dataset")
        try:
            doc = json.loads(index.read_text())
        except json.JSONDecodeError as exc:
            raise FormatError(f"{index} is not valid JSON ({exc})") from None
        if doc.get("format") != TRAJSCENE_FORMAT:
            raise FormatError(f"{index} is not a TrajScene index (format {doc.get('format')!r})")
        if int(doc.get("version", 0)) > TRAJSCENE_VERSION:
            raise FormatError(f"{index} has version {doc['version']}; this build reads up to {TRAJSCENE_VERSION}")
        entries = doc.get("samples", [])
        self.entries = [e for e in entries if split is None or e.get("split") == split]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> TrajSample:
        import imageio.v3 as iio

        entry = self.entries[i]
        folder = resolve_inside(self.root / "samples", entry["id"])
        scene = load_scene(folder / "scene.npz")
        image = torch.from_numpy(np.asarray(iio.imread(folder / "frame0.png"))).float()[..., :3] / 255.0
        if tuple(image.shape[:2]) != scene.grid_hw:
            raise FormatError(f"{folder}: frame0.png is {tuple(image.shape[:2])} but the tracks grid is {scene.grid_hw}")
        meta = json.loads((folder / "meta.json").read_text())
        depth = poses = None
        if (folder / "extras.npz").is_file():
            with np.load(folder / "extras.npz", allow_pickle=False) as extras:
                if "depth" in extras.files:
                    depth = torch.from_numpy(extras["depth"].astype(np.float32))
                    if tuple(depth.shape) != (scene.num_frames, *scene.grid_hw):
                        raise FormatError(f"{folder}: depth has shape {tuple(depth.shape)}, expected {(scene.num_frames, *scene.grid_hw)}")
                if "camera_poses" in extras.files:
                    poses = torch.from_numpy(extras["camera_poses"])
        caption = meta.pop("caption", entry.get("caption", ""))
        return TrajSample(entry["id"], scene, image, caption, depth, poses, meta)


def _reference_intrinsics(height: int, width: int) -> torch.Tensor:
    """The normalized intrinsics the authors' training assumed (fx = 24/23, fy = 1 of the image size)."""
    return intrinsics_from_normalized(
        torch.tensor([[REFERENCE_FX, 0, 0.5], [0, REFERENCE_FY, 0.5], [0, 0, 1]], dtype=torch.float64), height, width
    )


def convert_authors_dataset(
    prompts_txt: str | os.PathLike,
    videos_txt: str | os.PathLike,
    out_root: str | os.PathLike,
    *,
    trust_pickles: bool = False,
    grid_hw: tuple[int, int] = (384, 512),
    fps: float = 8.0,
    split: str = "train",
    limit: int | None = None,
) -> int:
    """Convert the authors' caption/video lists + track pickles into a TrajScene folder.

    Returns the number of converted samples. Unless ``trust_pickles`` is exactly ``True`` (not merely
    truthy: ``"no"`` or ``1`` do not count) nothing is unpickled.
    """
    if trust_pickles is not True:
        raise InputError(
            "the authors' tracks are Python pickles, which can run arbitrary code when loaded. If you trust these "
            "files, pass trust_pickles=True (command line: python -m more4d_core.data.trajscene PROMPTS VIDEOS OUT "
            f"--trust-pickles); otherwise convert them elsewhere (got trust_pickles={trust_pickles!r})."
        )
    captions = [line.strip() for line in Path(prompts_txt).read_text().splitlines()]
    videos = [line.strip() for line in Path(videos_txt).read_text().splitlines()]
    if len(captions) != len(videos):
        raise InputError(f"{prompts_txt} has {len(captions)} captions but {videos_txt} lists {len(videos)} videos")
    entries = []
    for i, (caption, video) in enumerate(zip(captions, videos)):
        if limit is not None and len(entries) >= limit:
            break
        track_file = Path(video.replace("videos", "dt3d_render").replace(".mp4", "_dt3d_pred.pkl"))
        if not track_file.is_file():
            raise FileNotFoundError(f"tracks of {video} not found at {track_file}")
        with open(track_file, "rb") as fh:
            data = pickle.load(fh)  # noqa: S301 - guarded by the explicit trust flag above
        if not isinstance(data, dict) or "coords" not in data or "colors" not in data:
            raise FormatError(f"{track_file} does not hold a dict with 'coords' and 'colors'")
        coords = torch.as_tensor(np.asarray(data["coords"]), dtype=torch.float32)
        colors = torch.as_tensor(np.asarray(data["colors"]))
        if coords.ndim == 4:
            coords = coords[0]
        if colors.ndim == 3:
            colors = colors[0]
        colors = colors.to(torch.uint8) if colors.max() > 1 else (colors.float() * 255).round().to(torch.uint8)
        vis = torch.as_tensor(np.asarray(data["vis"])).bool() if "vis" in data else None
        if vis is not None and vis.ndim == 3:
            vis = vis[0]
        k = _reference_intrinsics(*grid_hw)
        scene = Scene4D(coords, colors, grid_hw=grid_hw, intrinsics=k, fps=fps, visibility=vis,
                        metadata={"source": "trajscene-60k", "intrinsics": "assumed (reference convention)"})
        image = scene.colors_float().view(*grid_hw, 3)
        sample_id = f"{i:06d}"
        write_sample(out_root, TrajSample(sample_id, scene, image, caption, meta={"source_video": video}))
        entries.append({"id": sample_id, "caption": caption, "split": split})
    write_index(out_root, entries)
    return len(entries)


def main(argv: list[str] | None = None) -> int:
    """``python -m more4d_core.data.trajscene PROMPTS VIDEOS OUT --trust-pickles``: convert the
    authors' TrajScene-60K lists and track pickles into a TrajScene folder."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m more4d_core.data.trajscene", description=summary(main.__doc__))
    parser.add_argument("prompts", help="the authors' captions .txt (one per line)")
    parser.add_argument("videos", help="the authors' video list .txt (parallel to the captions)")
    parser.add_argument("out", help="the TrajScene folder to write")
    parser.add_argument("--trust-pickles", action="store_true",
                        help="load the track pickles (they can run code: only for files you trust)")
    parser.add_argument("--grid", type=int, nargs=2, default=(384, 512), metavar=("H", "W"))
    parser.add_argument("--fps", type=float, default=8.0)
    parser.add_argument("--split", default="train")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    count = convert_authors_dataset(args.prompts, args.videos, args.out, trust_pickles=args.trust_pickles,
                                    grid_hw=tuple(args.grid), fps=args.fps, split=args.split, limit=args.limit)
    print(f"converted {count} samples into {args.out}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
