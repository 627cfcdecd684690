"""Motion conditioning (MAdaNorm strength) and trajectory generation nodes."""

from __future__ import annotations

import math

from more4d_core.cache import MODEL_CACHE
from more4d_core.depth import DepthResult
from more4d_core.errors import InputError
from more4d_core.models.config import MAX_GENERATED_FRAMES
from more4d_core.sampling.clause_composition import COMPOSE_MODES
from more4d_core.sampling.conditioning import as_image_tensor
from more4d_core.sampling.flow_sampler import GenerationCancelled
from more4d_core.sampling.generation_notes import generation_notes
from more4d_core.sampling.motion_gating import GATE_MODES
from more4d_core.sampling.motion_smoothing import MAX_MOTION_SMOOTHING
from more4d_core.sampling.sample_average import MAX_SAMPLE_AVERAGE
from more4d_core.sampling.still import MAX_STILL_THRESHOLD
from more4d_core.sampling.switches import SWITCH_MODES

from .comfy_bridge import Progress, check_interrupted, show_text
from .model_nodes import require_handle
from .types import CATEGORY, DEPTH, MODEL, MOTION, SCENE, MotionConditioning, require

GRID_CHOICES = ["image", "512", "384", "256", "128"]


class MotionConditioningNode:
    DESCRIPTION = (
        "Motion Perception Module (MAdaNorm): how strongly the image's motion features modulate every DiT block. "
        "0 = the plain model, 1 = as trained, above 1 = exaggerated."
    )
    CATEGORY = CATEGORY
    FUNCTION = "build"
    RETURN_TYPES = (MOTION,)
    RETURN_NAMES = ("motion_conditioning",)
    OUTPUT_TOOLTIPS = ("Motion conditioning for the Generate node.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0, "step": 0.05,
                                                    "tooltip": "lambda: scales the MAdaNorm gate (0 disables the module)."})}}

    def build(self, strength):
        return (MotionConditioning(float(strength)),)


def core_components(cfg, positive, negative, clip_vision) -> dict:
    """ComfyUI's own Wan text states and CLIP tokens for the generator, when connected."""
    from more4d_core.sampling.external_conditioning import grey_tokens_from_clip_vision, text_states

    out = {}
    if positive is not None or negative is not None:
        if cfg.text_encoder != "umt5":
            raise InputError(f"{cfg.name} reads its own words: type the prompt instead of connecting CONDITIONING "
                             "(that is for the 14B model's umT5)")
        out["text_states"] = text_states(positive, negative, cfg.text_len, cfg.text_dim)
    if clip_vision is not None:
        if cfg.image_dim is None:
            raise InputError(f"{cfg.name} uses no CLIP image tokens: disconnect clip_vision")
        out["image_tokens"] = grey_tokens_from_clip_vision(clip_vision)
    return out


def output_grid(image_hw: tuple[int, int], choice: str) -> tuple[int, int]:
    """The trajectory grid: the image's size, or scaled so its longer side is ``choice`` pixels."""
    h, w = image_hw
    if choice == "image":
        return h, w
    side = int(choice)
    scale = side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


class GenerateTrajectories:
    DESCRIPTION = (
        "4D-STraG: generate dense 3D trajectories for every pixel of the image (a 4D scene) from its depth and a "
        "prompt describing the motion."
    )
    CATEGORY = CATEGORY
    FUNCTION = "generate"
    RETURN_TYPES = (SCENE,)
    RETURN_NAMES = ("scene",)
    OUTPUT_TOOLTIPS = ("The 4D scene: 3D positions of every pixel's point in every frame.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "From Load Trajectory Model."}),
                "image": ("IMAGE", {"tooltip": "The input image (the first frame)."}),
                "depth": (DEPTH, {"tooltip": "Metric depth and intrinsics of the image (Estimate Depth)."}),
                "prompt": ("STRING", {"default": "the ball slides left quickly", "multiline": True,
                                      "tooltip": "What moves and how. The bundled model reads English words of its "
                                                 "training world (the ball / box / card / disc / it moves left, right, "
                                                 "up, down, toward the camera, away, bounces, spins, grows, shrinks, "
                                                 "waves, bends; the camera pans, rises, moves forward or back; nothing "
                                                 "moves) and common synonyms (cube, sphere, rotates, jumps, drifts, "
                                                 "fast, ...); 'the subject', 'the person', 'it' mean the most prominent "
                                                 "object. Words it does not know are named in the log and in the "
                                                 "scene's metadata."}),
                "negative_prompt": ("STRING", {"default": "", "multiline": True,
                                               "tooltip": "Guidance pushes away from this (empty = unconditional)."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**32 - 1, "control_after_generate": True,
                                 "tooltip": "Noise seed; the same seed gives the same motion."}),
                "steps": ("INT", {"default": 0, "min": 0, "max": 200, "tooltip": "Denoising steps; 0 = the model's default (50 for 14B, 10 for the bundled small model, which averages 8 samples)."}),
                "guidance": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 20.0, "step": 0.1,
                                       "tooltip": "Text guidance; 0 = the model's default (6 for 14B, 1 for small)."}),
                "shift": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 20.0, "step": 0.1,
                                    "tooltip": "Flow-matching timestep shift; 0 = the model's default (5 for 14B, 3 for the "
                                               "bundled small model)."}),
                "frames": ("INT", {"default": 49, "min": 2, "max": MAX_GENERATED_FRAMES, "tooltip": "Frames to generate (the 14B model needs 1 + a multiple of 4)."}),
                "fps": ("FLOAT", {"default": 8.0, "min": 1.0, "max": 60.0, "step": 1.0, "tooltip": "Frame rate of the motion."}),
                "motion_scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 3.0, "step": 0.05,
                                           "tooltip": "Scales every displacement from frame 0 (0 = still)."}),
                "grid": (GRID_CHOICES, {"default": "512", "tooltip": "Trajectory grid: the image size, or its longer side in pixels."}),
            },
            "optional": {
                "motion_conditioning": (MOTION, {"tooltip": "MAdaNorm strength (default 1)."}),
                "still_threshold": ("FLOAT", {"default": -1.0, "min": -1.0, "max": MAX_STILL_THRESHOLD, "step": 0.001,
                                              "tooltip": "Points whose motion stays below this (about a fraction of "
                                                         "the image size) are held exactly still (no background shimmer); "
                                                         "0 = off, -1 = the model's default (0.032 for the bundled "
                                                         "model, off for the authors' 14B)."}),
                "motion_gate": (list(GATE_MODES), {"default": "auto",
                                                   "tooltip": "Models with a motion gate (the bundled one) judge from the "
                                                              "image, depth and prompt which points move at all and keep "
                                                              "the others exactly still. auto = on, except with the "
                                                              "built-in prior's depth (on which the gate holds the named "
                                                              "object still); off = the denoiser's motion alone. Models "
                                                              "without a gate ignore it."}),
                "motion_smoothing": ("FLOAT", {"default": -1.0, "min": -1.0, "max": MAX_MOTION_SMOOTHING, "step": 0.005,
                                               "tooltip": "Averages the generated motion within each surface (blocks at "
                                                          "about the same depth) over this radius, a share of the image "
                                                          "width, so an object moves as one instead of wobbling; motion "
                                                          "is not averaged across depth edges. 0 = off, -1 = the model's "
                                                          "default (off for the bundled model since it averages 8 samples: "
                                                          "chosen on validation, where 0.03 cost moving points; a model "
                                                          "file's default is always left off on the built-in prior's "
                                                          "depth; off for the authors' 14B, which has none)."}),
                "sample_average": ("INT", {"default": 0, "min": 0, "max": MAX_SAMPLE_AVERAGE,
                                           "tooltip": "Generates this many samples from the seed and returns their "
                                                      "mean motion: steadier, closer to what the prompt asks, less "
                                                      "different from seed to seed, this many times the sampling "
                                                      "time. 1 = one sample, 0 = the model's default (8 for the bundled "
                                                      "model, chosen on validation; 1 for the authors' 14B)."}),
                "clause_composition": (list(COMPOSE_MODES), {
                    "default": "auto",
                    "tooltip": "A prompt of two or more object clauses ('the ball bounces and the card slides left') "
                               "is sampled clause by clause and each clause moves only where the motion gate puts "
                               "it, instead of mixing the motions; one sampling per clause. auto = the model's "
                               "default (the bundled model: on, prompts with a camera clause too); needs the motion "
                               "gate on. A prompt of one subject is sampled whole. With a camera clause ('..., while "
                               "the camera pans left') each object clause is sampled with it and the rest of the image "
                               "moves as the camera clause alone, for models whose default is gate_camera."}),
                "gate_pixels": (list(SWITCH_MODES), {
                    "default": "auto",
                    "tooltip": "Where the motion gate keeps motion: on = per output pixel (the motion stops at the "
                               "object's outline, found along the depth's edges; where the gate wrongly keeps part of "
                               "an object, that part ends at a sharp line), off = per 4 x 4 cell (a soft edge that "
                               "smears a little motion onto the background). auto = the model's default (on for the "
                               "bundled model). Prompts with a camera clause always use the cells."}),
                "rigid_segments": (list(SWITCH_MODES), {
                    "default": "auto",
                    "tooltip": "With the pixel gate: the moving pixels are split into segments where the depth jumps, "
                               "and each segment moves as one piece (one translation, or one rotation, move and scale, "
                               "per frame) where that explains its generated motion; a segment whose motion is not "
                               "rigid (a bend, a wave) keeps its motion as generated. Where the gate wrongly keeps part "
                               "of a neighbour at the same depth, that part now moves fully with the object (off gives "
                               "the generated motion back). auto = the model's default (on for the bundled model). "
                               "Needs gate_pixels on."}),
                "object_focus": (list(SWITCH_MODES), {
                    "default": "auto",
                    "tooltip": "With the pixel gate: each clause's motion stays on the one object the gate is surest "
                               "of (a region bounded by depth edges) and what touches it; other regions it kept with "
                               "clearly less confidence are held still, so 'the ball slides' does not drag the card "
                               "along. Turn off when the prompt's subject is several separate things ('the birds "
                               "fly') or its parts lie at very different depths. auto = the model's default. Needs "
                               "gate_pixels on."}),
                "positive": ("CONDITIONING", {"tooltip": "14B: the prompt encoded by core's CLIP Text Encode with the "
                                                         "Wan umT5 (Load CLIP, type wan); replaces the prompt text and "
                                                         "the loader's text encoder."}),
                "negative": ("CONDITIONING", {"tooltip": "14B: the negative prompt from core's CLIP Text Encode (for "
                                                         "guidance); replaces the negative_prompt text."}),
                "clip_vision": ("CLIP_VISION", {"tooltip": "14B: clip_vision_h from core's Load CLIP Vision; replaces "
                                                           "the loader's CLIP file."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def generate(self, model, image, depth, prompt, negative_prompt, seed, steps, guidance, shift, frames, fps,
                 motion_scale, grid, motion_conditioning=None, still_threshold=-1.0, motion_gate="auto", positive=None, negative=None,
                 clip_vision=None, motion_smoothing=-1.0, sample_average=0, clause_composition="auto", gate_pixels="auto",
                 rigid_segments="auto", object_focus="auto", unique_id=None):
        require_handle(model, "trajectory", "model")
        require(depth, DepthResult, "depth")
        strength = 1.0
        if motion_conditioning is not None:
            strength = require(motion_conditioning, MotionConditioning, "motion_conditioning").strength
        img = as_image_tensor(image)
        # everything the generation does not need is checked before it (not after minutes of work)
        for name, value in (("fps", fps), ("motion_scale", motion_scale)):
            spec = self.INPUT_TYPES()["required"][name][1]
            if not (isinstance(value, (int, float)) and math.isfinite(value) and spec["min"] <= value <= spec["max"]):
                raise InputError(f"{name} must be a number from {spec['min']:g} to {spec['max']:g}, got {value!r}")
        if not bool(depth.valid.any()):
            raise InputError("the depth has no valid pixel (every value was missing, zero or not finite); "
                             "check the depth map or estimate the depth again")
        if tuple(img.shape[:2]) != (depth.height, depth.width):
            raise ValueError(f"the image is {img.shape[1]}x{img.shape[0]} but the depth is {depth.width}x{depth.height}; "
                             "estimate the depth from this image")
        check_interrupted()
        with MODEL_CACHE.use(model) as gen:
            total = int(steps or gen.config.steps)
            external = core_components(gen.config, positive, negative, clip_vision)
            try:
                scene = gen.generate(img, depth.depth, depth.intrinsics, prompt, negative_prompt=negative_prompt,
                                     **external,
                                     seed=int(seed), steps=total, shift=shift or None, guidance_scale=guidance or None,
                                     motion_strength=strength, num_frames=int(frames),
                                     still_threshold=None if still_threshold < 0 else still_threshold,
                                     motion_smoothing=None if motion_smoothing < 0 else motion_smoothing,
                                     sample_average=int(sample_average) or None,
                                     motion_gate=motion_gate, clause_composition=clause_composition,
                                     motion_gate_pixels=gate_pixels, rigid_segments=rigid_segments,
                                     object_focus=object_focus,
                                     depth_source=depth.backend,
                                     grid_hw=output_grid(tuple(img.shape[:2]), grid), fps=fps, progress=Progress(total))
            except GenerationCancelled:
                check_interrupted()
                raise
        notes = list(scene.metadata.get("prompt_reading", {}).get("warnings", [])) + generation_notes(scene.metadata)
        if notes:  # words the model ignored, a prompt it cannot read, what it names: on the node, not only in the log
            show_text(unique_id, "Prompt: " + "; ".join(notes))
        if motion_scale != 1.0:
            pts = scene.points
            scene = scene.with_points(pts[:1] + motion_scale * (pts - pts[:1]),
                                      metadata={**scene.metadata, "motion_scale": motion_scale})
        return (scene,)

