"""Command line: render 4D scene files along camera paths and export them.

    python -m more4d_core.cli render SCENE.npz --camera orbit dolly --out out/
    python -m more4d_core.cli render SCENE.npz --camera more4d_core/assets/keyframes_example.json --out out/
    python -m more4d_core.cli demo --out out/demo      # the built-in analytic scene

For every camera path it writes ``<camera>.mp4`` (frames), ``<camera>_holes.mp4`` (hole mask) and
a PNG of the middle frame; ``--glb`` / ``--ply`` add 3D exports of the scene.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .camera import PRESET_NAMES, camera_preset, parse_keyframes
from .camera.keyframes import KEYFRAMES_EXAMPLE_FILE
from .camera.presets import canonical_preset_name
from .command_errors import run_reporting_errors
from .data.analytic import make_analytic_scene
from .errors import InputError, More4DError
from .export import export_glb, export_ply_sequence, load_scene, save_scene
from .export.atomic import write_file_atomic
from .export.file_size import readable_size
from .export.video import frames_to_uint8, write_video
from .help_text import summary
from .render import render_scene
from .render.visualize import parse_color
from .scene import Scene4D


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 512x368 (width x height), got {text!r}") from None
    return h, w


def _add_render_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--camera", nargs="+", default=["orbit", "dolly"],
                   help=f"presets ({', '.join(PRESET_NAMES)}) or keyframe .json files")
    p.add_argument("--strength", type=float, default=1.0, help="camera motion amplitude (1 = the paper's)")
    p.add_argument("--size", type=_size, default=None, help="output WIDTHxHEIGHT (default: the scene grid)")
    p.add_argument("--splat", type=int, default=1, help="splat footprint in pixels (1..5)")
    p.add_argument("--background", default="#000000", help="hole colour")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--glb", action="store_true", help="also export an animated GLB point cloud")
    p.add_argument("--ply", action="store_true", help="also export per-frame PLY point clouds")
    p.add_argument("--point-stride", type=int, default=2, help="GLB/PLY keep every n-th row/column of points")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")


def _check_camera(spec: str) -> tuple[str, str]:
    """``(label, spec)`` of a preset name (aliases resolved) or a keyframe file, checked before any work."""
    if spec.lower().endswith(".json"):
        file = Path(spec)
        if not file.is_file():
            raise InputError(f"keyframe file {file} not found (the shipped example: {KEYFRAMES_EXAMPLE_FILE})")
        try:
            parse_keyframes(file.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise InputError(f"keyframe file {file} is not a text JSON file") from None
        except InputError as exc:
            raise InputError(f"keyframe file {file}: {exc}") from None
        return file.stem, str(file)
    name = canonical_preset_name(spec)
    return name, name


def _camera(spec: str, scene: Scene4D, strength: float):
    if spec.lower().endswith(".json"):
        return parse_keyframes(Path(spec).read_text(encoding="utf-8"), scene_depth=scene.median_depth(),
                               num_frames=scene.num_frames)
    return camera_preset(spec, scene.num_frames, scene_depth=scene.median_depth(), strength=strength)


def _targets(args: argparse.Namespace, labels: list[str]) -> list[Path]:
    names = [n for label in labels for n in (f"{label}.mp4", f"{label}_holes.mp4", f"{label}_mid.png")]
    names += ["scene.glb"] * args.glb + ["scene_ply"] * args.ply + ["scene.npz"] * (args.command == "demo")
    return [args.out / n for n in names]


def _check_outputs(args: argparse.Namespace, labels: list[str]) -> None:
    """Before any work: two cameras with one name, or files already there without --overwrite."""
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise InputError(f"--camera names {', '.join(twice)} more than once: each camera writes <name>.mp4")
    if args.overwrite:
        return
    there = [str(p) for p in _targets(args, labels) if p.exists()]
    if there:
        shown = ", ".join(there[:4]) + (f" and {len(there) - 4} more" if len(there) > 4 else "")
        raise InputError(f"{shown} already exist{'s' if len(there) == 1 else ''}: pass --overwrite to replace "
                         "them or choose another --out folder")


def render_outputs(scene: Scene4D, args: argparse.Namespace) -> list[Path]:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for label, spec in args.cameras:
        path = _camera(spec, scene, args.strength)
        start = time.perf_counter()
        result = render_scene(scene, path, output_hw=args.size, splat_radius=args.splat,
                              background=parse_color(args.background), device=args.device)
        took = time.perf_counter() - start
        written.append(write_video(result.frames, out, label, fps=scene.fps, overwrite=args.overwrite))
        written.append(write_video(result.holes, out, f"{label}_holes", fps=scene.fps, overwrite=args.overwrite))
        mid = frames_to_uint8(result.frames[result.num_frames // 2 : result.num_frames // 2 + 1])[0]
        written.append(_write_png(mid, out / f"{label}_mid.png", args.overwrite))
        print(f"  {label:14s} {result.num_frames} frames {result.frames.shape[2]}x{result.frames.shape[1]} "
              f"in {took:.2f} s, holes {result.hole_fraction() * 100:.1f}%")
    if args.glb:
        written.append(export_glb(scene, out, "scene", point_stride=args.point_stride, overwrite=args.overwrite))
    if args.ply:
        written.append(export_ply_sequence(scene, out, "scene_ply", point_stride=args.point_stride,
                                           overwrite=args.overwrite))
    return written


def _write_png(image: np.ndarray, target: Path, overwrite: bool) -> Path:
    import imageio.v3 as iio

    return write_file_atomic(target, lambda fh: fh.write(iio.imwrite("<bytes>", image, extension=".png")),
                             overwrite=overwrite)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m more4d_core.cli", description=summary(__doc__))
    sub = parser.add_subparsers(dest="command", required=True)
    p_render = sub.add_parser("render", help="render a .npz scene file")
    p_render.add_argument("scene", type=Path, help="scene file written by save_scene / the Save 4D Scene node")
    _add_render_options(p_render)
    p_demo = sub.add_parser("demo", help="build the analytic demo scene, save it and render it")
    p_demo.add_argument("--grid", type=_size, default=(368, 512), help="scene grid WIDTHxHEIGHT (default 512x368)")
    p_demo.add_argument("--frames", type=int, default=49)
    _add_render_options(p_demo)
    args = parser.parse_args(argv)
    return run_reporting_errors(lambda: _run(args), debug=args.debug, errors=(More4DError, ValueError, OSError))


def _run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    args.cameras = [_check_camera(spec) for spec in args.camera]  # every input checked before any work
    _check_outputs(args, [label for label, _ in args.cameras])
    if args.command == "render":
        if not args.scene.is_file():
            raise InputError(f"scene file {args.scene} not found (write one with: python -m more4d_core.cli demo "
                             "--out out/demo, or the Save 4D Scene node)")
        scene = load_scene(args.scene)
        print(f"loaded {scene} from {args.scene}")
        written = []
    else:
        scene = make_analytic_scene(args.grid[0], args.grid[1], args.frames)
        written = [save_scene(scene, args.out, "scene", overwrite=args.overwrite)]
        print(f"built {scene}")
    written += render_outputs(scene, args)
    print(f"done in {time.perf_counter() - start:.1f} s; wrote:")
    for path in written:
        print(f"  {Path(path).resolve()}  ({readable_size(path)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
