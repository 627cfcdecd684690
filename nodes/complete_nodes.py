"""Completion of rendered holes (classical or 4D-ViSM diffusion) and hand-off to native Wan nodes."""

from __future__ import annotations

import torch

from more4d_core.cache import MODEL_CACHE
from more4d_core.completion import complete_classical, to_vace_inputs
from more4d_core.errors import InputError

from .comfy_bridge import Progress, check_interrupted
from .model_nodes import require_handle
from .types import CATEGORY, RENDER, VISM, RenderBundle, require

CLASSICAL_FILLS = ("smooth", "textured")


class CompleteFrames:
    DESCRIPTION = (
        "Fill the holes (dis-occlusions) of a render. classical: no weights, temporally stable, never changes "
        "rendered pixels. diffusion: 4D-ViSM (Wan2.1-Fun-InP + MoRe4D LoRA) regenerates the video."
    )
    CATEGORY = CATEGORY
    FUNCTION = "complete"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("frames",)
    OUTPUT_TOOLTIPS = ("Completed frames [T, H, W, 3].",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "render": (RENDER, {"tooltip": "The 'render' output of Render 4D Scene."}),
                "method": (["classical", "diffusion"], {"default": "classical", "tooltip": "How to fill the holes."}),
            },
            "optional": {
                "completion_model": (VISM, {"tooltip": "Required for diffusion: from Load Completion Model."}),
                "prompt": ("STRING", {"default": "", "multiline": True, "tooltip": "diffusion: what the video shows."}),
                "steps": ("INT", {"default": 50, "min": 1, "max": 200, "tooltip": "diffusion: denoising steps."}),
                "guidance": ("FLOAT", {"default": 6.0, "min": 1.0, "max": 20.0, "step": 0.1, "tooltip": "diffusion: text guidance."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**32 - 1, "control_after_generate": True,
                                 "tooltip": "diffusion: noise seed."}),
                "preserve_known": ("BOOLEAN", {"default": False, "tooltip": "diffusion: paste the rendered pixels back over the result."}),
                "positive": ("CONDITIONING", {"tooltip": "diffusion: the prompt from core's CLIP Text Encode with the "
                                                         "Wan umT5 (Load CLIP, type wan); replaces the prompt text."}),
                "negative": ("CONDITIONING", {"tooltip": "diffusion: the negative prompt from core's CLIP Text Encode."}),
                "clip_vision": ("CLIP_VISION", {"tooltip": "diffusion: clip_vision_h from core's Load CLIP Vision; "
                                                           "replaces the loader's CLIP file."}),
                "vae": ("VAE", {"tooltip": "diffusion: the Wan 2.1 VAE from core's Load VAE (wan_2.1_vae); "
                                           "replaces the loader's VAE file, and ComfyUI manages its memory."}),
                "fill": (list(CLASSICAL_FILLS), {"default": "smooth", "tooltip": (
                    "classical: smooth inpaints each dis-occlusion from its background side (soft, blurred); textured "
                    "also copies the background's pattern into it where the background around the hole repeats (tiles, "
                    "stripes, brickwork): sharper, about as close to the true views, not chosen as the default.")}),
            },
        }

    def complete(self, render, method, completion_model=None, prompt="", steps=50, guidance=6.0, seed=0,
                 preserve_known=False, positive=None, negative=None, clip_vision=None, vae=None, fill="smooth"):
        bundle = require(render, RenderBundle, "render")
        result = bundle.result
        check_interrupted()
        methods = self.INPUT_TYPES()["required"]["method"][0]
        if method not in methods:
            raise InputError(f"completion method must be one of {', '.join(methods)}, got {method!r}")
        if method == "classical":
            if fill not in CLASSICAL_FILLS:
                raise InputError(f"fill must be one of {', '.join(CLASSICAL_FILLS)}, got {fill!r}")
            return (complete_classical(result, bundle.scene, bundle.path, texture=fill == "textured",
                                       progress=Progress(result.num_frames)),)
        if completion_model is None:
            raise ValueError("diffusion completion needs a completion_model: connect Load Completion Model (4D-ViSM)")
        require_handle(completion_model, "completion", "completion_model")
        with MODEL_CACHE.use(completion_model) as completer:
            states = None
            if positive is not None or negative is not None:
                from more4d_core.sampling.external_conditioning import TEXT_LEN, text_states

                states = text_states(positive, negative, TEXT_LEN, completer.text_dim)
            out = completer.complete(result.frames, result.holes.float(), prompt, steps=steps, guidance_scale=guidance,
                                     seed=int(seed), preserve_known=preserve_known, progress=Progress(steps),
                                     text_states=states, clip_vision=clip_vision, vae=vae)
        return (out,)


class WanVaceInputs:
    DESCRIPTION = (
        "Turn a render into the control video and masks of ComfyUI's native Wan VACE nodes (holes grey, mask 1 = "
        "generate), to complete it with a Wan model you already have."
    )
    CATEGORY = CATEGORY
    FUNCTION = "convert"
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("control_video", "control_masks")
    OUTPUT_TOOLTIPS = ("For WanVaceToVideo's control_video.", "For WanVaceToVideo's control_masks.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "frames": ("IMAGE", {"tooltip": "Rendered frames."}),
            "hole_mask": ("MASK", {"tooltip": "The render's hole mask (1 = hole)."}),
        }}

    def convert(self, frames, hole_mask):
        video, mask = to_vace_inputs(frames, torch.as_tensor(hole_mask) > 0.5)
        return (video, mask)
