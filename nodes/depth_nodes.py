"""Depth nodes: estimate depth (built-in prior, transformers models, UniDepth) or take a depth /
disparity map from another node."""

from __future__ import annotations

import logging

from more4d_core.depth import BACKENDS, DepthResult, depth_to_image, estimate_depth, external_depth
from more4d_core.depth.prior import focus_suggested
from more4d_core.sampling.conditioning import as_image_tensor

from . import model_files
from .comfy_bridge import check_interrupted, torch_device
from .types import CATEGORY, DEPTH, require

log = logging.getLogger("more4d")

_FOV_TIP = "Horizontal field of view in degrees when the backend does not predict it; 0 = f equals the image width (53.1 degrees)."
_MEDIAN_TIP = "Metric scale for backends without one (the prior, relative models): the median distance in metres."
_CLEANUP_TIP = "Flying pixels at depth edges become streaks when rendered: snap them to a side, drop them, or keep them."
_OUTPUTS = dict(
    RETURN_TYPES=(DEPTH, "IMAGE"),
    RETURN_NAMES=("depth", "depth_preview"),
    OUTPUT_TOOLTIPS=("Metric depth + intrinsics for Generate.", "Depth as an image (near = bright)."),
)


def _preview(result: DepthResult):
    return depth_to_image(result.depth, "disparity")


_BACKEND_TIP = (
    "Depth estimator. 'prior' (built in, no weights) is an APPROXIMATION that assumes: what stands out in "
    "colour or focus near the middle is a subject, one smooth rounded surface; when the bottom of the frame "
    "shows ground, a floor plane (camera pitch read from converging vertical edges) with the background "
    "standing upright where it ends and subjects at the depth where they touch it; otherwise a backdrop "
    "leaning back a little with the subjects in front. 'prior_focus': the same, but when the photo's borders "
    "are out of focus (a portrait or close-up at a wide aperture) what is in focus is the subject, even where "
    "it fills the frame's edges (try it when a close-up's subject comes out cut in pieces). Connect Depth "
    "Anything / Depth Pro ('transformers') or UniDepth for real depth."
)


class EstimateDepth:
    DESCRIPTION = (
        "Metric depth and camera intrinsics of an image. 'prior' needs no weights but is a rough approximation; "
        "'transformers' loads a depth model folder (Depth Anything V2, Depth Pro, ZoeDepth, DPT) from "
        "models/more4d/ (e.g. models/more4d/depth/) or the shared models/depth/; 'unidepth' needs the unidepth package."
    )
    CATEGORY = CATEGORY
    FUNCTION = "estimate"
    DYNAMIC_INPUTS = ("model_folder",)
    RETURN_TYPES = _OUTPUTS["RETURN_TYPES"]
    RETURN_NAMES = _OUTPUTS["RETURN_NAMES"]
    OUTPUT_TOOLTIPS = _OUTPUTS["OUTPUT_TOOLTIPS"]

    @classmethod
    def INPUT_TYPES(cls):
        folders = [model_files.NONE] + model_files.depth_candidates()
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The image to estimate depth for (the first of a batch)."}),
                "backend": (list(BACKENDS), {"default": "prior", "tooltip": _BACKEND_TIP}),
                "model_folder": (folders, {"default": model_files.NONE, "tooltip": "The model folder for transformers / unidepth."}),
                "fov": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 170.0, "step": 0.05, "round": 0.01, "tooltip": _FOV_TIP}),
                "median_depth": ("FLOAT", {"default": 3.0, "min": 0.05, "max": 1000.0, "step": 0.05, "tooltip": _MEDIAN_TIP}),
                "relative_mode": (["auto", "disparity", "depth"], {"default": "auto",
                                  "tooltip": "How to read a relative model's output (auto = by model type)."}),
                "cleanup": (["snap", "drop", "none"], {"default": "snap", "tooltip": _CLEANUP_TIP}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, model_folder=model_files.NONE):
        return model_files.validate_files(model_folder=model_folder)

    def estimate(self, image, backend, model_folder, fov, median_depth, relative_mode, cleanup):
        check_interrupted()
        folder = None if model_folder == model_files.NONE else model_files.resolve(model_folder)
        result = estimate_depth(
            as_image_tensor(image), backend, model_folder=folder, fov_deg=fov or None, median_depth=median_depth,
            relative_mode=None if relative_mode == "auto" else relative_mode,
            cleanup=None if cleanup == "none" else cleanup, device=torch_device("auto"),
        )
        if focus_suggested(result.metadata):  # the prior by colour on a close-up out of focus at its borders
            log.info("MoRe4D Estimate Depth: the photo's borders are out of focus (a wide aperture); if its subject "
                     "comes out cut in pieces, the backend prior_focus takes what is in focus as the subject")
        return (result, _preview(result))


class DepthFromImage:
    DESCRIPTION = (
        "Use a depth or disparity map made by another node (e.g. a Depth Anything node's output image) as metric depth."
    )
    CATEGORY = CATEGORY
    FUNCTION = "convert"
    RETURN_TYPES = _OUTPUTS["RETURN_TYPES"]
    RETURN_NAMES = _OUTPUTS["RETURN_NAMES"]
    OUTPUT_TOOLTIPS = _OUTPUTS["OUTPUT_TOOLTIPS"]

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The colour image the depth belongs to (sets the size)."}),
                "depth_image": ("IMAGE", {"tooltip": "The depth or disparity map."}),
                "mode": (["disparity", "depth"], {"default": "disparity",
                         "tooltip": "disparity: brighter = nearer (most depth nodes); depth: brighter = farther."}),
                "median_depth": ("FLOAT", {"default": 3.0, "min": 0.05, "max": 1000.0, "step": 0.05, "tooltip": _MEDIAN_TIP}),
                "fov": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 170.0, "step": 0.05, "round": 0.01, "tooltip": _FOV_TIP}),
                "cleanup": (["snap", "drop", "none"], {"default": "snap", "tooltip": _CLEANUP_TIP}),
            }
        }

    def convert(self, image, depth_image, mode, median_depth, fov, cleanup):
        img = as_image_tensor(image)
        result = external_depth(depth_image, mode=mode, median_depth=median_depth, fov_deg=fov or None,
                                size_hw=tuple(img.shape[:2]), cleanup=None if cleanup == "none" else cleanup)
        return (require(result, DepthResult, "depth"), _preview(result))
