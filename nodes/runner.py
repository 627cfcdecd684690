"""Executing a workflow graph with the node classes, outside ComfyUI (the headless runner's engine).

Nodes run in dependency order; each gets its widget values and the outputs of the nodes linked
into it. Only MoRe4D nodes and a stand-in for ComfyUI's ``LoadImage`` are known here; muted or
bypassed nodes are skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from more4d_core.errors import InputError

from . import NODE_CLASS_MAPPINGS
from .workflow_format import GraphNode, read_workflow, widget_value_problems

ASSETS = Path(__file__).resolve().parents[1] / "more4d_core" / "assets"
ASSET_PREFIX = "more4d_"  # "more4d_example.png" in a workflow = the pack's assets/example.png
EXAMPLE_IMAGE_NAME = "more4d_example.png"


def load_image_file(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """What ComfyUI's LoadImage returns: ``IMAGE [1, H, W, 3]`` float 0..1 and ``MASK [1, H, W]``."""
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} not found")
    try:
        arr = np.asarray(iio.imread(path))
    except Exception as exc:  # imageio raises many kinds (struct.error, OSError, its own) for a bad file
        raise InputError(f"image {path} ({path.stat().st_size:,} bytes) cannot be read as an image "
                         f"({type(exc).__name__}: {exc}); give a PNG, JPEG, WebP or BMP file") from None
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4)) or arr.size == 0:
        raise InputError(f"image {path} holds an array of shape {list(arr.shape)}, not a picture "
                         "(an animation or a multi-page file?); give a single PNG, JPEG, WebP or BMP image")
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    alpha = arr[..., 3].astype(np.float32) / 255.0 if arr.shape[-1] == 4 else None
    image = torch.from_numpy(arr[..., :3].astype(np.float32) / 255.0).unsqueeze(0)
    mask = torch.from_numpy(1.0 - alpha).unsqueeze(0) if alpha is not None else torch.zeros(1, *arr.shape[:2])
    return image, mask


class LoadImageStandIn:
    """ComfyUI's LoadImage outside ComfyUI: a file name is looked up in the runner's image folder,
    then among the pack's assets (the bundled example)."""

    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "load"
    search_paths: list[Path] = []

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ([], {"image_upload": True})}}

    def load(self, image):
        bundled = image[len(ASSET_PREFIX):] if image.startswith(ASSET_PREFIX) else None
        for folder in [*self.search_paths, ASSETS]:
            for name in (image, bundled):
                if name and (Path(folder) / name).is_file():
                    return load_image_file(Path(folder) / name)
        if Path(image).is_file():
            return load_image_file(image)
        raise FileNotFoundError(f"image {image!r} not found in {[str(p) for p in self.search_paths] + [str(ASSETS)]}")


RUNNABLE = {**NODE_CLASS_MAPPINGS, "LoadImage": LoadImageStandIn}
VIEWER_ONLY = ("More4DPreview",)  # shows the scene in ComfyUI's browser page: nothing to do headless


def missing_model_files(nodes: dict[int, GraphNode]) -> list[str]:
    """What is missing of the model files the active nodes name (the inputs their VALIDATE_INPUTS checks)."""
    import inspect

    from . import model_files

    found: list[str] = []
    for node in sorted(nodes.values(), key=lambda n: n.id):
        cls = RUNNABLE.get(node.type)
        check = getattr(cls, "VALIDATE_INPUTS", None)
        if node.mode != 0 or check is None:
            continue
        names = [n for n in inspect.signature(check).parameters if n in node.widgets]
        found += [m for m in model_files.missing(node.widgets[n] for n in names) if m not in found]
    return found


def widget_problems(nodes: dict[int, GraphNode]) -> list[str]:
    """Widget values of the active nodes outside their declared range or choices (model-file lists
    depend on the machine and are checked by :func:`missing_model_files`)."""
    problems: list[str] = []
    for node in sorted(nodes.values(), key=lambda n: n.id):
        cls = NODE_CLASS_MAPPINGS.get(node.type)
        if node.mode == 0 and cls is not None:
            problems += [f"node {node.id} ({node.type}).{p}" for p in widget_value_problems(cls, node.widgets)]
    return problems


def prepare(doc: dict | str | Path, overrides: dict[int, dict[str, Any]] | None = None) -> dict[int, GraphNode]:
    """The workflow's nodes with ``overrides`` applied, checked as far as possible without running
    anything: node types, widget values, model files. Raises :class:`InputError` / FileNotFoundError."""
    nodes = read_workflow(doc, RUNNABLE)
    for node_id, values in (overrides or {}).items():
        nodes[node_id].widgets.update(values)
    unknown = sorted({n.type for n in nodes.values() if n.type not in RUNNABLE and n.mode == 0})
    if unknown:
        raise InputError(f"this workflow uses nodes the headless runner cannot run: {', '.join(unknown)} "
                         "(ComfyUI core or other packs' nodes): queue it in ComfyUI")
    problems = widget_problems(nodes)
    if problems:  # what ComfyUI checks when a workflow is queued, before any node runs
        raise InputError("the workflow has values its nodes do not accept:\n" + "\n".join(f"- {p}" for p in problems))
    missing = missing_model_files(nodes)
    if missing:  # before any heavy work, every missing file at once
        raise FileNotFoundError("this workflow needs model files that are not here:\n" + "\n".join(f"- {m}" for m in missing))
    return nodes


def execute(doc: dict | str | Path, *, overrides: dict[int, dict[str, Any]] | None = None,
            on_node: Callable[[GraphNode, float], None] | None = None,
            on_start: Callable[[GraphNode], None] | None = None) -> dict[int, Any]:
    """Run a workflow; returns every node's outputs. ``overrides`` replace widget values per node id;
    ``on_start(node)`` / ``on_node(node, seconds)`` are called before and after each node runs."""
    nodes = prepare(doc, overrides)
    results: dict[int, Any] = {}

    def run(node_id: int, stack: tuple = ()):
        if node_id in results:
            return results[node_id]
        if node_id in stack:
            raise ValueError(f"the workflow has a cycle through node {node_id}")
        node = nodes[node_id]
        if node.mode != 0 or node.type in VIEWER_ONLY:
            if node.mode == 0 and on_node is not None:
                on_node(node, 0.0)
            results[node_id] = None
            return None
        kwargs = dict(node.widgets)
        for name, (src, slot) in node.links.items():
            upstream = run(src, stack + (node_id,))
            if upstream is None:
                raise ValueError(f"node {node_id} ({node.type}) needs '{name}' from node {src}, which is muted")
            kwargs[name] = upstream[slot]
        cls = RUNNABLE[node.type]
        if on_start is not None:
            on_start(node)
        start = time.perf_counter()
        out = getattr(cls(), cls.FUNCTION)(**kwargs)
        if isinstance(out, dict):  # output nodes: {"ui": ..., "result": ...}
            out = {"ui": out.get("ui", {}), "result": out.get("result", ())}
        if on_node is not None:
            on_node(node, time.perf_counter() - start)
        results[node_id] = out
        return out

    for node_id in sorted(nodes):
        run(node_id)
    return results
