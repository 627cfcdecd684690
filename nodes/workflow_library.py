"""The shipped workflows, described once here and written to ``workflows/*.json``.

    python -m nodes.workflow_library        # regenerate workflows/*.json

Tests check that the shipped files equal what this module builds, so the two never drift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from . import NODE_CLASS_MAPPINGS
from .runner import ASSETS, EXAMPLE_IMAGE_NAME
from .workflow_format import build_workflow

WORKFLOWS_DIR = Path(__file__).resolve().parents[1] / "workflows"
EXAMPLE_PROMPT = json.loads((Path(__file__).resolve().parents[1] / "more4d_core" / "assets" / "example.json").read_text())["prompt"]

# Non-MoRe4D nodes the workflows use: socket inputs, outputs and widget count (ComfyUI core).
# (From ComfyUI's nodes.py and comfy_extras/nodes_wan.py / nodes_model_advanced.py.)
CORE_NODES: dict[str, dict] = {
    "LoadImage": {"inputs": {}, "outputs": ["IMAGE", "MASK"], "output_names": ["IMAGE", "MASK"], "widgets": 2},
    "UNETLoader": {"inputs": {}, "outputs": ["MODEL"], "widgets": 2},
    "CLIPLoader": {"inputs": {}, "outputs": ["CLIP"], "widgets": 3},
    "VAELoader": {"inputs": {}, "outputs": ["VAE"], "widgets": 1},
    "CLIPTextEncode": {"inputs": {"clip": "CLIP"}, "outputs": ["CONDITIONING"], "widgets": 1},
    "ModelSamplingSD3": {"inputs": {"model": "MODEL"}, "outputs": ["MODEL"], "widgets": 1},
    "WanVaceToVideo": {
        "inputs": {"positive": "CONDITIONING", "negative": "CONDITIONING", "vae": "VAE", "control_video": "IMAGE",
                   "control_masks": "MASK", "reference_image": "IMAGE"},
        "outputs": ["CONDITIONING", "CONDITIONING", "LATENT", "INT"],
        "output_names": ["positive", "negative", "latent", "trim_latent"], "widgets": 5,
    },
    "KSampler": {"inputs": {"model": "MODEL", "positive": "CONDITIONING", "negative": "CONDITIONING",
                            "latent_image": "LATENT"}, "outputs": ["LATENT"], "widgets": 7},
    "VAEDecode": {"inputs": {"samples": "LATENT", "vae": "VAE"}, "outputs": ["IMAGE"], "widgets": 0},
}


def _input_image(**extra) -> dict:
    """Node 1 of every workflow: the example image (copied into ComfyUI's input folder at start-up)."""
    return {"id": 1, "type": "LoadImage", "pos": [0, 40], "size": [340, 360],
            "widgets_values": [EXAMPLE_IMAGE_NAME, "image"], **extra}


def _example_fov() -> float:
    """The bundled example's true horizontal field of view (its procedural camera), to 0.01 degree."""
    return round(float(json.loads((ASSETS / "example.json").read_text())["fov_deg"]), 2)


def _estimate_depth(widgets: dict) -> dict:
    """Node 2: depth of the image from the Estimate Depth node."""
    return {"id": 2, "type": "More4DEstimateDepth", "pos": [380, 40], "widgets": widgets, "inputs": {"image": (1, 0)}}


def _generation_chain(image_src, depth_src, start_id: int, model_widgets: dict, generate_widgets: dict, x0=760):
    """Model loader -> motion conditioning -> generate, returning the node list and the scene node id."""
    m, c, g = start_id, start_id + 1, start_id + 2
    nodes = [
        {"id": m, "type": "More4DLoadTrajectoryModel", "pos": [x0 - 380, 420], "widgets": model_widgets},
        {"id": c, "type": "More4DMotionConditioning", "pos": [x0 - 380, 720], "widgets": {"strength": 1.0}},
        {"id": g, "type": "More4DGenerate", "pos": [x0, 40], "size": [360, 560],
         "widgets": {"prompt": EXAMPLE_PROMPT, **generate_widgets},
         "inputs": {"model": (m, 0), "image": image_src, "depth": depth_src, "motion_conditioning": (c, 0)}},
    ]
    return nodes, g


def _render_branch(scene_id: int, start_id: int, preset: str, y: float, complete: dict, x0=1160):
    """Camera preset -> render -> complete -> save video, for one camera path."""
    p, r, c, v = start_id, start_id + 1, start_id + 2, start_id + 3
    nodes = [
        {"id": p, "type": "More4DCameraPathPreset", "pos": [x0, y], "widgets": {"preset": preset},
         "inputs": {"scene": (scene_id, 0)}},
        {"id": r, "type": "More4DRender", "pos": [x0 + 340, y], "inputs": {"scene": (scene_id, 0), "camera_path": (p, 0)}},
        {"id": c, "type": "More4DComplete", "pos": [x0 + 700, y], "widgets": complete.get("widgets", {}),
         "inputs": {"render": (r, 3), **complete.get("inputs", {})}},
        {"id": v, "type": "More4DSaveVideo", "pos": [x0 + 1060, y],
         "widgets": {"filename_prefix": f"more4d/{preset}"}, "inputs": {"frames": (c, 0)}},
    ]
    return nodes


def default_workflow() -> dict:
    """CPU, no downloads: built-in depth prior, bundled model, orbit + dolly, classical completion."""
    nodes = [
        _input_image(),
        _estimate_depth({"backend": "prior", "fov": _example_fov()}),
    ]
    chain, scene = _generation_chain((1, 0), (2, 0), 3, {}, {})
    nodes += chain
    nodes += _render_branch(scene, 10, "orbit", 40, {"widgets": {"method": "classical"}})
    nodes += _render_branch(scene, 20, "dolly", 420, {"widgets": {"method": "classical"}})
    nodes.append({"id": 30, "type": "More4DSaveScene", "pos": [1160, 800], "inputs": {"scene": (scene, 0)}})
    nodes.append({"id": 31, "type": "More4DPreview", "pos": [1500, 800], "size": [480, 420],
                  "inputs": {"scene": (scene, 0), "camera_path": (10, 0)}})
    return build_workflow(nodes, NODE_CLASS_MAPPINGS, CORE_NODES)


def external_depth_workflow() -> dict:
    """Depth from another node's depth image (e.g. a Depth Anything node) instead of estimating it."""
    nodes = [
        _input_image(title="Image"),
        {"id": 2, "type": "LoadImage", "pos": [0, 440], "size": [340, 360], "title": "Depth map (replace with your depth node)",
         "widgets_values": ["more4d_example_depth.png", "image"]},
        {"id": 3, "type": "More4DDepthFromImage", "pos": [380, 40], "widgets": {"fov": _example_fov()},
         "inputs": {"image": (1, 0), "depth_image": (2, 0)}},
    ]
    chain, scene = _generation_chain((1, 0), (3, 0), 4, {}, {})
    nodes += chain
    nodes += _render_branch(scene, 10, "orbit", 40, {"widgets": {"method": "classical"}})
    return build_workflow(nodes, NODE_CLASS_MAPPINGS, CORE_NODES)


def full_wan_workflow() -> dict:
    """The paper's pipeline with the full models from models/more4d/ (names as the README lists them)."""
    nodes = [
        _input_image(),
        _estimate_depth({"backend": "transformers", "model_folder": "depth/Depth-Anything-V2-Metric-Indoor-Large-hf/",
                         "fov": _example_fov()}),
        {"id": 40, "type": "More4DLoadCompletionModel", "pos": [1500, 800],
         "widgets": {"transformer": "Wan2.1-Fun-V1.1-14B-InP/", "vae": "models/vae/wan_2.1_vae.safetensors",
                     "text_encoder": "models/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                     "clip": "models/clip_vision/clip_vision_h.safetensors",
                     "lora": "more4d_vism_lora.safetensors"}},
    ]
    chain, scene = _generation_chain(
        (1, 0), (2, 0), 3,
        {"model": "more4d-14b/transformer/", "config": "more4d-14b", "vae": "more4d-14b/vae/pytorch_model.bin",
         "text_encoder": "models/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors",
         "clip": "models/clip_vision/clip_vision_h.safetensors", "decoder_adaptor": "more4d-14b/decoder_prompt/"},
        {"steps": 50, "guidance": 6.0, "grid": "512"},
    )
    nodes += chain
    diffusion = {"widgets": {"method": "diffusion", "steps": 50, "guidance": 6.0, "prompt": EXAMPLE_PROMPT},
                 "inputs": {"completion_model": (40, 0)}}
    nodes += _render_branch(scene, 10, "orbit", 40, diffusion)
    nodes += _render_branch(scene, 20, "dolly", 420, diffusion)
    nodes.append({"id": 30, "type": "More4DSaveScene", "pos": [1160, 1100], "inputs": {"scene": (scene, 0)}})
    return build_workflow(nodes, NODE_CLASS_MAPPINGS, CORE_NODES)


def native_wan_completion_workflow() -> dict:
    """Our render handed to ComfyUI's native Wan VACE nodes (a Wan 2.1 VACE model you already have)."""
    nodes = [
        _input_image(),
        _estimate_depth({"backend": "prior"}),
    ]
    chain, scene = _generation_chain((1, 0), (2, 0), 3, {}, {})
    nodes += chain
    nodes += [
        {"id": 10, "type": "More4DCameraPathPreset", "pos": [1160, 40], "widgets": {"preset": "orbit"},
         "inputs": {"scene": (scene, 0)}},
        {"id": 11, "type": "More4DRender", "pos": [1500, 40], "inputs": {"scene": (scene, 0), "camera_path": (10, 0)}},
        {"id": 12, "type": "More4DWanVaceInputs", "pos": [1860, 40], "inputs": {"frames": (11, 0), "hole_mask": (11, 1)}},
        {"id": 20, "type": "UNETLoader", "pos": [1160, 500], "widgets_values": ["wan2.1_vace_14B_fp16.safetensors", "default"]},
        {"id": 21, "type": "ModelSamplingSD3", "pos": [1500, 500], "widgets_values": [5.0], "inputs": {"model": (20, 0)}},
        {"id": 22, "type": "CLIPLoader", "pos": [1160, 640], "widgets_values": ["umt5_xxl_fp8_e4m3fn_scaled.safetensors", "wan", "default"]},
        {"id": 23, "type": "CLIPTextEncode", "pos": [1500, 640], "widgets_values": [EXAMPLE_PROMPT], "inputs": {"clip": (22, 0)}},
        {"id": 24, "type": "CLIPTextEncode", "pos": [1500, 860], "widgets_values": [""], "inputs": {"clip": (22, 0)}},
        {"id": 25, "type": "VAELoader", "pos": [1160, 1000], "widgets_values": ["wan_2.1_vae.safetensors"]},
        {"id": 26, "type": "WanVaceToVideo", "pos": [2220, 40], "widgets_values": [512, 368, 49, 1, 1.0],
         "inputs": {"positive": (23, 0), "negative": (24, 0), "vae": (25, 0), "control_video": (12, 0),
                    "control_masks": (12, 1)}},
        {"id": 27, "type": "KSampler", "pos": [2580, 40], "widgets_values": [0, "fixed", 30, 6.0, "uni_pc", "simple", 1.0],
         "inputs": {"model": (21, 0), "positive": (26, 0), "negative": (26, 1), "latent_image": (26, 2)}},
        {"id": 28, "type": "VAEDecode", "pos": [2940, 40], "inputs": {"samples": (27, 0), "vae": (25, 0)}},
        {"id": 29, "type": "More4DSaveVideo", "pos": [3200, 40], "widgets": {"filename_prefix": "more4d/vace_orbit"},
         "inputs": {"frames": (28, 0)}},
    ]
    return build_workflow(nodes, NODE_CLASS_MAPPINGS, CORE_NODES)


WORKFLOWS = {
    "more4d_default": default_workflow,
    "more4d_external_depth": external_depth_workflow,
    "more4d_full_wan": full_wan_workflow,
    "more4d_native_wan_completion": native_wan_completion_workflow,
}


def write_all(folder: Path = WORKFLOWS_DIR) -> list[Path]:
    written = []
    for name, build in WORKFLOWS.items():
        path = folder / f"{name}.json"
        path.write_text(json.dumps(build(), indent=1) + "\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m nodes.workflow_library",
                                     description="Write the shipped workflows (workflows/*.json) from their definitions.")
    parser.add_argument("--check", action="store_true", help="only say which files are out of date (exit 1 if any)")
    args = parser.parse_args(argv)
    if args.check:
        stale = [f"{name}.json" for name, build in WORKFLOWS.items()
                 if not (WORKFLOWS_DIR / f"{name}.json").is_file()
                 or json.loads((WORKFLOWS_DIR / f"{name}.json").read_text()) != json.loads(json.dumps(build()))]
        print("out of date: " + ", ".join(stale) if stale else "all shipped workflows are up to date")
        return 1 if stale else 0
    for p in write_all():
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
