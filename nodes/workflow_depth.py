"""Swapping a workflow's depth estimator for a depth map the user already has (the runner's ``--depth``).

Every active "Estimate Depth" node becomes a "Depth from Image" node fed by the same colour image
and by a new LoadImage of the depth file; its field of view, median depth and cleanup carry over
unless given. Nothing else in the graph changes.
"""

from __future__ import annotations

import copy
from pathlib import Path

ESTIMATE, FROM_IMAGE = "More4DEstimateDepth", "More4DDepthFromImage"
MODES = ("disparity", "depth")
CLEANUPS = ("snap", "drop", "none")


def use_depth_image(doc: dict, depth_file: str | Path, *, mode: str = "disparity", median_depth: float | None = None,
                    fov: float | None = None, cleanup: str | None = None) -> dict:
    """A copy of the UI workflow ``doc`` that reads its depth from ``depth_file`` (see the module)."""
    if mode not in MODES:
        raise ValueError(f"depth mode must be one of {', '.join(MODES)}, got {mode!r}")
    if cleanup is not None and cleanup not in CLEANUPS:
        raise ValueError(f"depth cleanup must be one of {', '.join(CLEANUPS)}, got {cleanup!r}")
    if median_depth is not None and not 0.05 <= median_depth <= 1000.0:
        raise ValueError(f"median depth must be 0.05..1000 metres, got {median_depth}")
    if fov is not None and not 0.0 <= fov <= 170.0:
        raise ValueError(f"field of view must be 0..170 degrees (0 = the default), got {fov}")
    out = copy.deepcopy(doc)
    targets = [n for n in out["nodes"] if n["type"] == ESTIMATE and n.get("mode", 0) == 0]
    if not targets:
        raise ValueError("this workflow has no active Estimate Depth node for --depth to replace")
    next_node = max(n["id"] for n in out["nodes"]) + 1
    next_link = max((link[0] for link in out.get("links", [])), default=0) + 1
    for node in targets:
        # Estimate Depth widgets: backend, model_folder, fov, median_depth, relative_mode, cleanup
        _, _, old_fov, old_median, _, old_cleanup = node["widgets_values"]
        image_link = next((i.get("link") for i in node.get("inputs", []) if i["name"] == "image"), None)
        loader = {"id": next_node, "type": "LoadImage", "pos": [node.get("pos", [0, 0])[0] - 320, node.get("pos", [0, 0])[1] + 160],
                  "size": [300, 100], "mode": 0, "inputs": [],
                  "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [next_link]}, {"name": "MASK", "type": "MASK", "links": []}],
                  "widgets_values": [str(depth_file), "image"]}
        out["nodes"].append(loader)
        out.setdefault("links", []).append([next_link, next_node, 0, node["id"], 1, "IMAGE"])
        node["type"] = FROM_IMAGE
        node["inputs"] = [{"name": "image", "type": "IMAGE", "link": image_link},
                          {"name": "depth_image", "type": "IMAGE", "link": next_link}]
        node["widgets_values"] = [mode, old_median if median_depth is None else median_depth,
                                  old_fov if fov is None else fov, old_cleanup if cleanup is None else cleanup]
        next_node += 1
        next_link += 1
    return out
