"""Headless runner: execute a shipped workflow with the same node classes, outside ComfyUI.

    python -m more4d_core.run                                  # the default workflow on the bundled example
    python -m more4d_core.run --image photo.jpg --prompt "the dog walks left" --camera orbit dolly --out out/
    python -m more4d_core.run --image photos/ --out out/       # a folder: every image (prompt from photo.txt if present)
    python -m more4d_core.run --image photo.jpg --depth photo_depth.png --out out/   # a depth / disparity map you have
    accelerate launch --num_processes 4 -m more4d_core.run --image photos/ --out out/   # split over GPUs

Prints per-stage times, peak memory and where the outputs went. This module is the one place the
library drives the node layer (``nodes/``); nothing here needs ComfyUI.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

from .bench.memory import PeakMemory
from .camera.presets import canonical_preset_name
from .command_errors import run_reporting_errors
from .errors import InputError, More4DError
from .export.atomic import remove_stale_temporaries
from .export.file_size import readable_size
from .help_text import summary

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORKFLOW = ROOT / "workflows" / "more4d_default.json"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
EXAMPLE_IMAGE = ROOT / "more4d_core" / "assets" / "example.png"  # the default workflow's image (more4d_example.png)


@contextlib.contextmanager
def _sigterm_unwinds():
    """While running, SIGTERM unwinds like Ctrl-C (a SystemExit), so every write in progress removes
    its temporary file; the previous handler comes back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _images(arg: str | None) -> list[Path | None]:
    if arg is None:
        return [None]
    path = Path(arg)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"no images in {path}")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"image {path} not found")
    return [path]


def _depth_file(arg: str | None, image: Path | None, many: bool) -> Path | None:
    """The depth map for ``image``: the ``--depth`` file, or in a ``--depth`` folder the file with the
    image's name (any image suffix)."""
    if arg is None:
        return None
    path = Path(arg)
    if path.is_dir():
        stem = image.stem if image is not None else "more4d_example"
        found = [path / (stem + s) for s in IMAGE_SUFFIXES if (path / (stem + s)).is_file()]
        if not found:
            raise FileNotFoundError(f"no depth map named {stem}.png/.jpg/... in {path} (one per image, same name)")
        return found[0]
    if not path.is_file():
        raise FileNotFoundError(f"depth map {path} not found")
    if many:
        raise ValueError("--image is a folder: give --depth a folder too (one depth map per image, same name)")
    return path


def _depth_summary(doc: dict, results: dict) -> str | None:
    """One line naming where the scene's depth came from; for the built-in prior, what it is and how
    to give a better one."""
    from .depth import DepthResult
    from .depth.prior import focus_suggested

    for node in doc["nodes"]:
        out = results.get(node["id"])
        if node["type"] in ("More4DEstimateDepth", "More4DDepthFromImage") and out and isinstance(out[0], DepthResult):
            depth = out[0]
            if depth.backend == "prior":
                layout = depth.metadata.get("layout", "?")
                by_focus = depth.metadata.get("subjects_by") == "focus"
                line = (f"depth: the built-in prior (layout '{layout}'{', subjects by focus' if by_focus else ''}) - "
                        "an approximation from weight-free cues; for better depth pass --depth FILE (a depth or "
                        "disparity map, e.g. from Depth Anything) or --depth-model FOLDER (a local depth model)")
                if focus_suggested(depth.metadata):
                    line += ("; the photo's borders are out of focus (a wide aperture): if its subject comes out cut "
                             "in pieces, --prior-subjects focus takes what is in focus as the subject")
                return line
            if depth.backend == "external":
                return f"depth: the depth map given ({depth.metadata.get('mode', 'disparity')}, median {depth.median_depth():.2f} m)"
            return f"depth: {depth.backend}" + (" (metric)" if depth.metric else f" (relative, median {depth.median_depth():.2f} m)")
    return None


def _binding_summary(doc: dict, results: dict) -> list[str]:
    """Per Generate node: where its model reads the prompt's objects (an object binding), how much of the
    image its motion gate lets move and whether its default smoothing was left off (:mod:`.sampling.generation_notes`)."""
    from .sampling.generation_notes import generation_notes

    lines = []
    for node in sorted(doc["nodes"], key=lambda n: n["id"]):
        out = results.get(node["id"])
        if node["type"] != "More4DGenerate" or not out:
            continue
        lines += generation_notes(getattr(out[0], "metadata", {}))
    return lines


def _camera_summary(doc: dict, results: dict) -> list[str]:
    """One line per camera path: its preset, strength (auto: the largest fillable move) and worst hole share."""
    from .camera import CameraPath

    lines = []
    for node in sorted(doc["nodes"], key=lambda n: n["id"]):
        out = results.get(node["id"])
        if node["type"] in ("More4DCameraPathPreset", "More4DCameraPathKeyframes") and out and isinstance(out[0], CameraPath):
            meta = out[0].metadata
            name = meta.get("preset", "keyframes")
            text = f"camera {name}"
            if "strength" in meta:
                text += f": strength {meta['strength']:.2f}" + (" (auto: the largest move within the hole budget)"
                                                               if meta.get("strength_mode") == "auto" else "")
            if "worst_holes" in meta:
                text += f", worst frame {100 * meta['worst_holes']:.1f}% holes"
            lines.append(text)
    return lines


PRIOR_BACKENDS = {"colour": "prior", "focus": "prior_focus"}  # --prior-subjects: the Estimate Depth backend


def _overrides(doc: dict, image: Path | None, args) -> dict[int, dict]:
    nodes = sorted(doc["nodes"], key=lambda n: n["id"])
    out: dict[int, dict] = {}
    has_estimate = any(n["type"] == "More4DEstimateDepth" for n in nodes)
    if args.prior_subjects is not None and (args.depth or not has_estimate):
        raise InputError("--prior-subjects sets the built-in depth prior of the workflow's Estimate Depth node; "
                         + ("--depth replaces it with the map given" if args.depth else "this workflow has none"))
    if args.depth_model is not None and (args.depth or args.prior_subjects or not has_estimate):
        raise InputError("--depth-model puts a depth model in the workflow's Estimate Depth node; "
                         + ("give it or --depth, not both" if args.depth else
                            "give it or --prior-subjects, not both" if args.prior_subjects else "this workflow has none"))
    loaders = [n for n in nodes if n["type"] == "LoadImage"]
    if image is not None and loaders:
        out.setdefault(loaders[0]["id"], {})["image"] = str(image)
    prompt = args.prompt
    if image is not None and prompt is None and image.with_suffix(".txt").is_file():
        prompt = image.with_suffix(".txt").read_text().strip()
    for n in nodes:
        if n["type"] == "More4DEstimateDepth" and (args.fov is not None or image is not None):
            # the workflow's field of view is its own image's (the example's): another photo gets --fov or 0 (auto)
            out.setdefault(n["id"], {})["fov"] = float(args.fov or 0.0)
        if n["type"] == "More4DEstimateDepth" and args.depth_model is not None:
            out.setdefault(n["id"], {}).update(backend="transformers", model_folder=str(Path(args.depth_model).resolve()))
        if n["type"] == "More4DEstimateDepth" and args.prior_subjects is not None:
            if (n.get("widgets_values") or [None])[0] not in PRIOR_BACKENDS.values():
                raise InputError(f"--prior-subjects sets the built-in prior, but the workflow's Estimate Depth node {n['id']} "
                                 f"uses the {n['widgets_values'][0]!r} backend")
            out.setdefault(n["id"], {})["backend"] = PRIOR_BACKENDS[args.prior_subjects]
        if n["type"] == "More4DGenerate":
            if prompt is not None:
                out.setdefault(n["id"], {})["prompt"] = prompt
            if args.seed is not None:
                out.setdefault(n["id"], {})["seed"] = args.seed
            if args.steps is not None:
                out.setdefault(n["id"], {})["steps"] = args.steps
            if args.frames is not None:
                out.setdefault(n["id"], {})["frames"] = args.frames
            if args.grid is not None:
                out.setdefault(n["id"], {})["grid"] = args.grid
    if args.camera:
        presets = [n for n in nodes if n["type"] == "More4DCameraPathPreset"]
        if len(args.camera) > len(presets):
            raise InputError(f"the workflow has {len(presets)} camera preset nodes; got {len(args.camera)} presets "
                             f"({' '.join(args.camera)}): give at most {len(presets)}")
        for n, name in zip(presets, args.camera):
            out.setdefault(n["id"], {})["preset"] = canonical_preset_name(name)
    _name_outputs(doc, out, image.stem if image is not None else "example")
    return out


def _name_outputs(doc: dict, out: dict[int, dict], stem: str) -> None:
    """Save nodes write ``<folder>/<image>_<camera>`` (a video: the camera path it shows, traced up its
    links; a scene: ``scene``), so a batch's files say which image and which camera they hold."""
    from nodes.runner import RUNNABLE
    from nodes.workflow_format import read_workflow

    graph = read_workflow(doc, RUNNABLE)

    def camera_of(node_id: int, seen: set[int]) -> str | None:
        node = graph[node_id]
        if node.type == "More4DCameraPathPreset":
            return out.get(node_id, {}).get("preset", node.widgets.get("preset"))
        if node.type == "More4DCameraPathKeyframes":
            return "keyframes"
        for src, _ in node.links.values():
            if src not in seen:
                seen.add(src)
                found = camera_of(src, seen)
                if found:
                    return found
        return None

    for node in graph.values():
        if node.type not in ("More4DSaveVideo", "More4DSaveScene") or "filename_prefix" not in node.widgets:
            continue
        folder = str(node.widgets["filename_prefix"]).rpartition("/")[0]
        what = camera_of(node.id, {node.id}) if node.type == "More4DSaveVideo" else "scene"
        name = f"{stem}_{what or 'video'}"
        out.setdefault(node.id, {})["filename_prefix"] = f"{folder}/{name}" if folder else name


def _report_example(doc: dict, results: dict) -> None:
    """For the bundled example image (a procedural scene with known tracks): how the generated motion
    compares with the truth, next to "nothing moves"."""
    from nodes.runner import EXAMPLE_IMAGE_NAME

    from .eval.example_check import EXAMPLE_PROMPT, check_example, format_example_check

    nodes = {n["id"]: n for n in doc["nodes"]}
    if not any(n["type"] == "LoadImage" and (n.get("widgets_values") or [None])[0] == EXAMPLE_IMAGE_NAME for n in nodes.values()):
        return
    for node_id, out in results.items():
        if nodes[node_id]["type"] == "More4DGenerate" and out:
            scene = out[0]
            prompt = scene.metadata.get("prompt", "")
            print(format_example_check(check_example(scene.points, scene.grid_hw)))
            if prompt != EXAMPLE_PROMPT:
                print(f"  (generated with the prompt {prompt!r}; the truth is {EXAMPLE_PROMPT!r})")
            reading = scene.metadata.get("prompt_reading") or {}
            if reading.get("warnings"):
                print("  prompt: " + "; ".join(reading["warnings"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m more4d_core.run", description=summary(__doc__),
                                     epilog=_help_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflow", type=Path, default=DEFAULT_WORKFLOW,
                        help="a ComfyUI workflow (.json) built from this pack's nodes (default: workflows/more4d_default.json)")
    parser.add_argument("--image", default=None, help="input image or folder (default: the workflow's image)")
    parser.add_argument("--prompt", default=None, help="motion prompt (default: the workflow's)")
    parser.add_argument("--camera", nargs="*", default=None, help="presets for the workflow's camera path nodes, in order")
    parser.add_argument("--seed", type=int, default=None, help="noise seed, 0 .. 2^32-1 (default: the workflow's); "
                        "the same seed gives the same motion")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    parser.add_argument("--frames", type=int, default=None, help="frames to generate (default 49)")
    parser.add_argument("--grid", default=None, choices=["image", "512", "384", "256", "128"],
                        help="trajectory grid: the image size or its longer side (default: the workflow's)")
    parser.add_argument("--depth", default=None, metavar="FILE",
                        help="a depth or disparity image to use instead of the workflow's depth estimate "
                             "(a folder with --image FOLDER: one per image, same name)")
    parser.add_argument("--depth-mode", default="disparity", choices=["disparity", "depth"],
                        help="how to read --depth: disparity = brighter is nearer (most depth tools), depth = brighter is farther")
    parser.add_argument("--median-depth", type=float, default=None, help="metric scale of --depth: its median distance in metres")
    parser.add_argument("--fov", type=float, default=None, help="horizontal field of view of the image in degrees (0 = the depth model's or 53.1; default: "
                             "the workflow's for its own image, 0 for --image)")
    parser.add_argument("--depth-model", default=None, metavar="FOLDER",
                        help="a local transformers depth model folder (Depth Anything V2, Depth Pro, ZoeDepth, DPT: "
                             "config.json and weights) for the workflow's Estimate Depth node instead of its backend")
    parser.add_argument("--prior-subjects", default=None, choices=sorted(PRIOR_BACKENDS),
                        help="how the built-in depth prior finds subjects: colour (what stands out from the borders' "
                             "colours) or focus (before an out-of-focus backdrop, what is in focus; for close-ups at a "
                             "wide aperture); default: the workflow's")
    parser.add_argument("--depth-cleanup", default=None, choices=["snap", "drop", "none"],
                        help="what to do with --depth's flying pixels (default: the workflow's)")
    parser.add_argument("--out", type=Path, default=Path("out"),
                        help="output folder (default: out/); files are named <image>_<camera>_NNNNN and never overwritten")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    return run_reporting_errors(lambda: _run(args), debug=args.debug,
                                errors=(More4DError, ValueError, TypeError, OSError, KeyError))


def _help_epilog() -> str:
    from .camera.presets import ALIASES, PRESET_DESCRIPTIONS
    from .models.vocabulary import CANONICAL, KNOWN_WORDS

    presets = "\n".join(f"  {name:14s} {text}" for name, text in PRESET_DESCRIPTIONS.items())
    flows = "\n".join(f"  {p.relative_to(ROOT)}" + ("  (needs ComfyUI's core Wan nodes: run it in ComfyUI)"
                                                    if p.stem in NEEDS_COMFYUI else "")
                      for p in sorted((ROOT / "workflows").glob("*.json")))
    words = " ".join(sorted(KNOWN_WORDS))
    synonyms = ", ".join(sorted(CANONICAL)[:40])
    return (f"camera presets (--camera, one per camera node of the workflow, in order):\n{presets}\n"
            f"  also accepted: {', '.join(ALIASES)}\n\n"
            f"shipped workflows (--workflow):\n{flows}\n\n"
            f"words the bundled model knows (--prompt):\n  {words}\n"
            f"  and synonyms such as {synonyms}, ... (unknown words are named in the log)")


QUIET_STAGES = {"More4DLoadTrajectoryModel": "loading the model", "More4DLoadCompletionModel": "loading the model",
                "More4DEstimateDepth": "estimating depth", "More4DSaveVideo": "writing the video",
                "More4DSaveScene": "writing the scene files"}
NEEDS_COMFYUI = ("more4d_native_wan_completion",)  # shipped workflows built on ComfyUI core nodes


def _run(args) -> int:
    from nodes import comfy_bridge

    try:
        return _run_workflows(args)
    finally:  # the pack's globals as they were (the runner may be called again in one process, e.g. by tests)
        comfy_bridge.set_output_directory(None)
        comfy_bridge.PROGRESS_HOOK = None


def _run_workflows(args) -> int:
    import torch
    from tqdm.auto import tqdm

    from nodes import comfy_bridge
    from nodes.runner import VIEWER_ONLY, execute, load_image_file, prepare
    from nodes.workflow_depth import use_depth_image
    from nodes.workflow_format import load_workflow_file

    from .cache import MODEL_CACHE
    from .depth.estimate import check_depth_shape

    base_doc = load_workflow_file(args.workflow)
    images = _images(args.image)
    prepare(base_doc, _overrides(base_doc, images[0], args))  # presets, values, nodes, model files: before any work
    depth_files = {image: _depth_file(args.depth, image, len(images) > 1 or (args.image and Path(args.image).is_dir()))
                   for image in images}
    for image, depth_path in depth_files.items():  # every depth map readable and of its image's shape before any work
        if depth_path is not None:
            try:
                depth_hw = load_image_file(depth_path)[0].shape[1:3]
            except (InputError, OSError) as exc:
                raise InputError(f"depth map: {exc}") from None
            image_hw = load_image_file(image if image is not None else EXAMPLE_IMAGE)[0].shape[1:3]
            check_depth_shape(tuple(depth_hw), tuple(image_hw), f"depth map {depth_path}")
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if world > 1:
        images = images[rank::world]
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
    comfy_bridge.set_output_directory(str(args.out))
    remove_stale_temporaries(args.out)  # what a killed earlier run left
    bars: dict[str, tqdm] = {}

    def hook(done: int, total: int) -> None:
        bar = bars.get("current")
        if bar is None or bar.total != total or done < bar.n:
            if bar is not None:
                bar.close()
            bar = bars["current"] = tqdm(total=total, leave=False, unit="step")
        bar.update(done - bar.n)

    comfy_bridge.PROGRESS_HOOK = hook

    def close_bar() -> None:  # the progress bar of the node that just ended, before its line is printed
        if "current" in bars:
            bars.pop("current").close()
    written: list[str] = []
    failed: list[tuple[str, str]] = []
    start = time.perf_counter()
    with _sigterm_unwinds(), PeakMemory("cpu") as mem:
        for image in images:
            label = image.name if image else "the bundled example image (example)"
            print(f"== {args.workflow.name} on {label}")
            stage_start = time.perf_counter()

            def announce(node):  # the stages without a progress bar say what they are doing
                if node.type in QUIET_STAGES:
                    print(f"  {node.type:28s} {QUIET_STAGES[node.type]} ...", flush=True)

            def report(node, seconds):
                if node.type in VIEWER_ONLY:
                    print(f"  {node.type:28s} skipped (the browser viewer: open the workflow in ComfyUI)")
                    return
                close_bar()
                print(f"  {node.type:28s} {seconds:7.2f} s")

            doc = base_doc
            if depth_files[image] is not None:
                doc = use_depth_image(base_doc, depth_files[image].resolve(), mode=args.depth_mode,
                                      median_depth=args.median_depth, fov=args.fov, cleanup=args.depth_cleanup)
            try:
                results = execute(doc, overrides=_overrides(doc, image, args), on_node=report, on_start=announce)
            except Exception as exc:  # a batch skips a bad item and goes on; one image fails as before
                if len(images) == 1:
                    raise
                close_bar()
                failed.append((label, f"{type(exc).__name__}: {exc}"))
                print(f"  FAILED ({type(exc).__name__}): {exc}; skipping {label}")
                continue
            for out in results.values():
                if isinstance(out, dict):
                    written += [str(args.out / p) for p in out["ui"].get("text", [])]
            print(f"  total {time.perf_counter() - stage_start:.2f} s")
            depth_line = _depth_summary(doc, results)
            for line in ([depth_line] if depth_line else []) + _binding_summary(doc, results) + _camera_summary(doc, results):
                print("  " + line)
            if image is None:
                _report_example(doc, results)
    print(f"done in {time.perf_counter() - start:.1f} s, peak memory +{mem.peak_bytes / 2**20:.0f} MiB, "
          f"models loaded {MODEL_CACHE.loads} (cache hits {MODEL_CACHE.hits}); wrote:")
    for path in written:
        print(f"  {path}  ({readable_size(path)})")
    if failed:
        print(f"{len(failed)} of {len(images)} images failed:")
        for label, message in failed:
            print(f"  {label}: {message}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
