"""Where model files live: ComfyUI's ``models/more4d/`` folder (registered at start-up) or, outside
ComfyUI, ``$MORE4D_MODELS_DIR`` (default ``./models/more4d``). Depth models may also sit in the
shared ``models/depth/`` folder next to it, where other depth packs keep theirs."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("more4d")
FOLDER_NAME = "more4d"
BUNDLED = "more4d-small (bundled)"
NONE = "(none)"
DEPTH_FOLDER = "depth"
DEPTH_PREFIX = "models/depth/"  # how entries of the shared depth folder are listed

try:
    import folder_paths as _fp
except ImportError:
    _fp = None


def register() -> Path:
    """Register ``models/more4d`` with ComfyUI (creating it) and return it."""
    if _fp is not None:
        root = Path(_fp.models_dir) / FOLDER_NAME
        root.mkdir(parents=True, exist_ok=True)
        if FOLDER_NAME not in getattr(_fp, "folder_names_and_paths", {}):
            _fp.add_model_folder_path(FOLDER_NAME, str(root))
        log.info("MoRe4D: model folder %s (trajectory models, Wan VAE / umT5 / CLIP folders, depth models, "
                 "ViSM Fun-InP + LoRA)", root)
        depth = Path(_fp.models_dir) / DEPTH_FOLDER
        if depth.is_dir() and DEPTH_FOLDER not in getattr(_fp, "folder_names_and_paths", {}):
            _fp.add_model_folder_path(DEPTH_FOLDER, str(depth))
        return root
    return models_root()


def models_root() -> Path:
    if _fp is not None:
        paths = _fp.get_folder_paths(FOLDER_NAME) if FOLDER_NAME in getattr(_fp, "folder_names_and_paths", {}) else []
        if paths:
            return Path(paths[0])
        return Path(_fp.models_dir) / FOLDER_NAME
    return Path(os.environ.get("MORE4D_MODELS_DIR", "models/more4d"))


def depth_root() -> Path:
    """The shared depth-model folder: ComfyUI's ``models/depth`` (outside ComfyUI: next to ours)."""
    return shared_root(DEPTH_FOLDER)


# ComfyUI's standard folders of the Wan components every Wan user already has (umT5, CLIP vision, VAE)
SHARED_FOLDERS = ("text_encoders", "clip_vision", "vae")


def shared_root(folder: str) -> Path:
    """ComfyUI's ``models/<folder>`` (outside ComfyUI: next to our models folder)."""
    if _fp is not None:
        if folder in getattr(_fp, "folder_names_and_paths", {}):
            paths = _fp.get_folder_paths(folder)
            if paths:
                return Path(paths[0])
        return Path(_fp.models_dir) / folder
    return models_root().parent / folder


def shared_candidates(folder: str) -> list[str]:
    """Weight files of ComfyUI's ``models/<folder>``, listed as ``models/<folder>/<file>``."""
    root = shared_root(folder)
    if not root.is_dir():
        return []
    return [f"models/{folder}/{p.relative_to(root).as_posix()}" for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix in (".safetensors", ".pth", ".bin") and not p.name.startswith(".")]


def depth_candidates() -> list[str]:
    """Model folders for the depth backends: ours, then those of the shared ``models/depth``."""
    root = depth_root()
    shared = [DEPTH_PREFIX + p.name + "/" for p in sorted(root.iterdir())
              if p.is_dir() and not p.name.startswith(".") and _is_model_dir(p)] if root.is_dir() else []
    return candidates(files=False) + shared


def _is_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file() or any(path.glob("*.safetensors")) or (path / "vae").is_dir()


def candidates(*, files: bool = True, folders: bool = True, sub: str | None = None, depth: int = 3) -> list[str]:
    """Names (relative to the models folder) of weight files and model folders, ``depth`` levels deep
    (three: the authors' ``more4d-14b/vae/pytorch_model.bin`` is listed), sorted."""
    root = models_root() / sub if sub else models_root()
    found: list[str] = []
    if not root.is_dir():
        return found

    def walk(folder: Path, level: int):
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith("."):
                continue
            rel = entry.relative_to(models_root()).as_posix()
            if entry.is_file() and files and entry.suffix in (".safetensors", ".pth", ".bin", ".pt"):
                found.append(rel)
            elif entry.is_dir():
                if folders and _is_model_dir(entry):
                    found.append(rel + "/")
                if level < depth:
                    walk(entry, level + 1)

    walk(root, 1)
    return found


def resolve(name: str) -> Path:
    """The path of a listed name (or an absolute path), with an error naming the expected place."""
    if not name or name == NONE:
        raise FileNotFoundError("no model file selected")
    head, _, rest = name.partition("/")
    folder, _, inner = rest.partition("/")
    if head == "models" and folder in (*SHARED_FOLDERS, DEPTH_FOLDER):  # ComfyUI's own folders, "models/<folder>/..."
        path = shared_root(folder) / inner
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: put the {'folder' if name.endswith('/') else 'file'} "
                                    f"under {shared_root(folder)} and refresh")
        return path
    path = Path(name)
    if path.is_absolute():
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        return path
    path = models_root() / name
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: put the file or folder under {models_root()} and refresh")
    return path


EXAMPLE_IMAGES = (("example.png", "more4d_example.png"), ("example_depth.png", "more4d_example_depth.png"))


def install_example_images(input_dir: str | Path | None = None) -> list[Path]:
    """Copy the bundled example image (and its depth map) into ComfyUI's input folder, where the
    shipped workflows' LoadImage nodes look for them. Existing files are left alone; a read-only
    input folder only logs a warning (the workflows then need the image picked by hand)."""
    if input_dir is None:
        if _fp is None:
            return []
        input_dir = _fp.get_input_directory()
    from more4d_core.export.atomic import atomic_path

    assets = Path(__file__).resolve().parents[1] / "more4d_core" / "assets"
    copied = []
    for src, name in EXAMPLE_IMAGES:
        target = Path(input_dir) / name
        if target.exists() or not (assets / src).is_file():
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                Path(tmp).write_bytes((assets / src).read_bytes())
            copied.append(target)
        except OSError as exc:
            log.warning("MoRe4D: could not copy the example image to %s (%s); pick an image in LoadImage instead",
                        target, exc)
    return copied


def missing(names) -> list[str]:
    """What to do about each of ``names`` that is not on this machine (nothing for present files, the
    bundled model and "(none)"): the manifest's "put X (size) in models/Y; it comes from Z"."""
    from more4d_core.model_manifest import instruction_for

    out = []
    for name in names:
        if not isinstance(name, str) or name in (NONE, BUNDLED, ""):
            continue
        try:
            resolve(name)
        except FileNotFoundError as exc:
            out.append(instruction_for(name, str(exc)))
    return out


def validate_files(**inputs) -> bool | str:
    """A node's ``VALIDATE_INPUTS`` for its model-file inputs: True, or every missing file at once (ComfyUI
    shows this instead of its generic "value not in list" when a workflow is queued)."""
    problems = missing(v for v in inputs.values())
    return True if not problems else "missing model files:\n" + "\n".join(f"- {p}" for p in problems)
