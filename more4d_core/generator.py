"""The trajectory generator: image + metric depth + prompt -> :class:`Scene4D`.

A :class:`TrajectoryGenerator` holds the loaded components (transformer, codec, text encoder,
CLIP grey tokens for configs that use them) and runs one generation:

1. frame-0 points ``P0`` from the depth map on the output grid (any size);
2. conditioning on the generation grid: control video (the image repeated), depth video, zero
   start latents, the reference latent (or zero, for checkpoints trained that way), motion
   features (Motion Perception Module) with strength lambda, text (prompt and negative prompt);
3. flow-matching Euler sampling with classifier-free guidance on text;
4. decoding to the normalized motion field, resized to the output grid, and the inverse
   depth-guided normalization with ``P0`` (frame 0 is exactly ``P0``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from .camera.intrinsics import scale_intrinsics, validate_intrinsics
from .errors import InputError
from .geometry.normalization import NormalizationFactors, factors_for
from .geometry.projection import backproject_depth
from .memory.budget import check_memory, generation_bytes
from .models.config import STraGConfig
from .models.dit import STraGTransformer
from .models.trajectory_codec import TrajectoryCodec
from .sampling import conditioning as cond
from .sampling.clause_composition import clause_progress, compose_latents, composition_kind, plan_clauses
from .sampling.flow_sampler import guided_velocity, sample_flow
from .sampling.mirroring import mirror_averaging, mirror_caption, mirror_image, mirror_latents
from .sampling.motion_gating import (
    apply_motion_gate,
    auto_left_off,
    gate_enabled,
    gate_probability,
    latent_probability,
)
from .sampling.motion_smoothing import smoothing_for
from .sampling.object_focus import FOCUS_RATIO, focus_keep
from .sampling.pixel_gate import hold_outside, upsampled_probability
from .sampling.prompt_binding import binding_probability, binding_summary
from .sampling.rigid_motion import axis_pixels, fit_segments, growth_pixels, spin_pixels
from .sampling.sample_average import check_sample_average, mean_of_samples, sample_noises
from .sampling.still import check_still_threshold
from .sampling.switches import switch_mode
from .scene import Scene4D

log = logging.getLogger("more4d")


class TrajectoryGenerator(nn.Module):
    def __init__(
        self,
        config: STraGConfig,
        transformer: STraGTransformer,
        codec: TrajectoryCodec,
        text_encoder: nn.Module,
        image_tokens: torch.Tensor | None = None,
        info: dict | None = None,
    ):
        super().__init__()
        self.config = config
        self.transformer = transformer
        self.codec = codec
        self.text_encoder = text_encoder
        self.register_buffer("image_tokens", image_tokens, persistent=False)
        self.info = dict(info or {})
        self.placement = None  # a memory.placement.Placement once a memory mode is applied

    @property
    def device(self) -> torch.device:
        if self.placement is not None:
            return self.placement.device
        return next(self.transformer.parameters()).device

    def apply_memory_mode(self, mode, device) -> None:
        """Run under memory ``mode`` (:mod:`.memory.modes`) on ``device``: float8 layers must already be
        in place (the loaders quantize while reading); this sets where each model sits while it runs."""
        from .memory.placement import Placement

        self.placement = Placement(mode, device)
        self.placement.install(self.text_encoder, self.codec, transformer=self.transformer)
        if self.image_tokens is not None:
            self.image_tokens = self.image_tokens.to(device)

    def _stage(self, module: nn.Module):
        return contextlib.nullcontext(module) if self.placement is None else self.placement.stage(module)

    @property
    def dtype(self) -> torch.dtype:
        return self.transformer.patch_embedding.weight.dtype

    def normalization_factors(self, intrinsics: torch.Tensor, grid_hw: tuple[int, int]) -> NormalizationFactors:
        return factors_for(self.config.normalization, intrinsics, *grid_hw)

    def read_prompt(self, prompt: str):
        """What the text encoder reads of ``prompt`` (:class:`~.models.vocabulary.PromptReading`, for
        the built-in word encoder; None for umT5); its warnings go to the log."""
        read = getattr(self.text_encoder, "read", None)  # None too when loaded without a text encoder
        if read is None:
            return None
        reading = read(prompt)
        for warning in reading.warnings:
            log.warning("prompt %r: %s", prompt, warning)
        return reading

    def mirror_choice(self, setting, samples: int, *, text_given: bool = False) -> tuple[bool, str]:
        """Whether :meth:`generate` mirrors its odd samples for ``setting`` and ``samples`` averaged, and the note its
        metadata records (:func:`.sampling.mirroring.mirror_averaging`); ``text_given``: encoder states replace the
        prompt, so there is no caption to mirror."""
        caption_known = not text_given and getattr(self.text_encoder, "read", None) is not None
        return mirror_averaging(setting, self.config.mirror_average, codec=self.config.codec, samples=samples,
                                caption_known=caption_known)

    def _check_text_states(self, states: torch.Tensor | None) -> torch.Tensor | None:
        cfg = self.config
        if states is None:
            if self.text_encoder is None:
                raise InputError(
                    f"{cfg.name} was loaded without its text encoder: connect the prompt as CONDITIONING (core's "
                    "CLIP Text Encode with the Wan umT5 from Load CLIP, type wan) to Generate's positive and negative "
                    "inputs, or give the loader the umT5 text_encoder file")
            return None
        states = torch.as_tensor(states)
        if tuple(states.shape) != (2, cfg.text_len, cfg.text_dim):
            raise InputError(f"text states must be [2, {cfg.text_len}, {cfg.text_dim}] (prompt and negative prompt), "
                             f"got {list(states.shape)}")
        return states

    def _check_image_tokens(self, tokens: torch.Tensor | None) -> torch.Tensor | None:
        cfg = self.config
        tokens = self.image_tokens if tokens is None else torch.as_tensor(tokens)
        if cfg.image_dim is None:
            return None
        if tokens is None:
            raise InputError(
                f"{cfg.name} needs CLIP image tokens: connect a CLIP_VISION (core's Load CLIP Vision with "
                "clip_vision_h) to Generate's clip_vision input, or give the loader the CLIP file or folder")
        if tokens.ndim != 3 or tokens.shape[0] != 1 or tokens.shape[2] != cfg.image_dim:
            raise InputError(f"CLIP image tokens must be [1, tokens, {cfg.image_dim}] (ViT-H/14's penultimate layer), "
                             f"got {list(tokens.shape)}")
        return tokens

    @torch.no_grad()
    def generate(
        self,
        image,
        depth: torch.Tensor,
        intrinsics: torch.Tensor,
        prompt: str,
        *,
        negative_prompt: str = "",
        seed: int = 0,
        steps: int | None = None,
        shift: float | None = None,
        guidance_scale: float | None = None,
        motion_strength: float = 1.0,
        still_threshold: float | None = None,
        motion_smoothing: float | None = None,
        sample_average: int | None = None,
        motion_gate: str | bool | None = None,
        clause_composition: str | bool | None = None,
        mirror_average: str | bool | None = None,
        motion_gate_pixels: str | bool | None = None,
        rigid_segments: str | bool | None = None,
        object_focus: str | bool | None = None,
        depth_source: str | None = None,
        num_frames: int | None = None,
        generation_hw: tuple[int, int] | None = None,
        grid_hw: tuple[int, int] | None = None,
        fps: float | None = None,
        progress: Callable[[int, int], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
        text_states: torch.Tensor | None = None,
        image_tokens: torch.Tensor | None = None,
    ) -> Scene4D:
        """Generate the 4D scene of ``image`` (``[H, W, 3]`` 0..1) with metric ``depth`` ``[H, W]``
        and pixel ``intrinsics`` of the image. ``grid_hw`` is the output point grid (default the
        depth map's size); ``generation_hw`` the model's working grid (default: the trained area
        at the image's aspect ratio). ``still_threshold`` (default: the model's) holds points whose
        motion stays below that (normalized units, about a fraction of the image size) exactly still (0 = off; see
        :mod:`.sampling.still`). ``motion_smoothing`` (default: the model's, left off when ``depth_source`` is the
        built-in prior) averages the motion within surfaces
        over that radius, a share of the image width (0 = off; :mod:`.sampling.motion_smoothing`). ``sample_average``
        (default: the model's) is how many samples, from successive noises of ``seed``, are generated and averaged
        (1 = the seed's one sample; :mod:`.sampling.sample_average`). ``motion_gate`` ("auto" = None, "on" = True, "off" = False): a model with a
        motion gate keeps the positions it judges still exactly still (:mod:`.sampling.motion_gating`); "off" gives
        the denoiser's motion alone; "auto" uses the gate unless ``depth_source`` (the DepthResult backend the depth
        came from) is the built-in prior; models without a gate ignore it. ``clause_composition`` ("auto" = None: the
        model's default, "on", "off"): with the gate on, a prompt of two or more object clauses ("the ball bounces and
        the card slides left") is sampled clause by clause and composed by the gate, and with a model default of
        "gate_camera" also object clauses with a camera clause (:mod:`.sampling.clause_composition`). ``mirror_average``
        ("auto" = None: the model's default, "on", "off"): every other averaged sample is drawn on the mirrored image,
        depth and prompt and mirrored back (:mod:`.sampling.mirroring`). ``motion_gate_pixels`` ("auto" = None: the model's default, "on", "off"):
        the gate decided per output pixel where every moving pixel is a gated object clause's (:mod:`.sampling.pixel_gate`).
        ``rigid_segments`` ("auto" = None: the model's default, "on", "off"): where the pixel gate decides, each moving
        segment's motion is replaced by one translation or similarity transform per frame where that explains it
        (:mod:`.sampling.rigid_motion`; segments also cut at the model's ``rigid_level`` of the gate's probability; with
        the model's ``rigid_scale`` "prompted", a fit changes a segment's size only where the prompt names a growth).
        ``object_focus`` ("auto" = None: the model's default, "on", "off"): where the pixel gate decides, each object
        clause's motion stays on the depth segment the gate is surest of and what touches it; segments it is much less
        sure of are held still (:mod:`.sampling.object_focus`; "on" for a model without a ratio of its own uses
        :data:`.sampling.object_focus.FOCUS_RATIO`).
        ``text_states`` ``[2, text_len, text_dim]`` (the prompt's and the negative
        prompt's encoder states, e.g. from ComfyUI's CONDITIONING, :mod:`.sampling.external_conditioning`) replace
        the text encoder; ``image_tokens`` ``[1, tokens, dim]`` replace the loaded CLIP grey tokens."""
        cfg = self.config
        steps = int(steps or cfg.steps)
        shift = float(cfg.shift if shift is None else shift)
        guidance = float(cfg.guidance_scale if guidance_scale is None else guidance_scale)
        frames = int(num_frames or cfg.num_frames)
        if not (math.isfinite(motion_strength) and 0.0 <= motion_strength <= 4.0):
            raise InputError(f"motion strength must be between 0 and 4, got {motion_strength}")
        still = check_still_threshold(cfg.still_threshold if still_threshold is None else still_threshold)
        smoothing, smoothing_off = smoothing_for(motion_smoothing, cfg.motion_smoothing, depth_source)
        averaged = check_sample_average(cfg.sample_average if sample_average is None else sample_average)
        mirrored, mirror_note = self.mirror_choice(mirror_average, averaged, text_given=text_states is not None)
        if smoothing > 0.0 and cfg.codec != "dct":  # refused before minutes of sampling, not after
            raise InputError(f"motion smoothing works on the small models' coarse motion grid; {cfg.name} (codec "
                             f"{cfg.codec!r}) has none: set motion smoothing to 0 (or -1 on the node)")
        gate_on = gate_enabled(motion_gate, depth_source) and cfg.motion_gate != "none"
        pixels_mode = switch_mode(motion_gate_pixels, "motion_gate_pixels")
        pixels = gate_on and (cfg.motion_gate_pixels if pixels_mode == "auto" else pixels_mode == "on")
        rigid_mode = switch_mode(rigid_segments, "rigid_segments")
        rigid = pixels and (cfg.rigid_segments if rigid_mode == "auto" else rigid_mode == "on")
        focus_mode = switch_mode(object_focus, "object_focus")
        focus = 0.0 if not pixels or focus_mode == "off" else cfg.object_focus if focus_mode == "auto" else (
            cfg.object_focus or FOCUS_RATIO)
        pixel_probability = None  # the gate's probability on the latent grid, where the pixel gate decides
        compose = composition_kind(clause_composition, cfg.clause_composition)
        img = cond.as_image_tensor(image)
        depth = torch.as_tensor(depth).float()
        if depth.ndim == 3 and depth.shape[0] == 1:
            depth = depth[0]
        if depth.ndim != 2:
            raise InputError(f"depth must be a [H, W] map, got {list(depth.shape)}")
        usable = torch.isfinite(depth) & (depth > 0)
        if not bool(usable.any()):
            raise InputError("the depth has no usable value (all missing, zero, negative or not finite); "
                             "check the depth map or estimate the depth again")
        image_hw = tuple(img.shape[:2])
        k_image = validate_intrinsics(intrinsics, "camera intrinsics")
        grid_hw = tuple(grid_hw or depth.shape)
        gen_hw = tuple(generation_hw or cond.generation_size(image_hw, cfg))
        cfg.check_size(gen_hw[0], gen_hw[1], frames)
        text_states = self._check_text_states(text_states)
        tokens = self._check_image_tokens(image_tokens)
        check_memory(f"generating {frames} frames on a {grid_hw[1]}x{grid_hw[0]} point grid",
                     generation_bytes(frames, grid_hw), "choose a smaller grid (e.g. 512 instead of image) or fewer "
                     "frames", device=self.device)
        start = time.perf_counter()

        # frame-0 geometry on the output grid
        k_grid = scale_intrinsics(k_image, image_hw, grid_hw)
        depth_grid = cond.resize_depth(depth, grid_hw)
        points0 = backproject_depth(depth_grid, k_grid).float().reshape(*grid_hw, 3)
        colors = cond.resize_image(img, grid_hw)[0].permute(1, 2, 0).reshape(-1, 3)

        # conditioning on the generation grid
        dev, dt = self.device, self.dtype
        stage = self._stage
        image_g = cond.resize_image(img, gen_hw).to(dev)
        depth_g = cond.resize_depth(depth, gen_hw).to(dev)
        if text_states is None:
            reading = self.read_prompt(prompt)
            with stage(self.text_encoder):
                texts = self.text_encoder([prompt, negative_prompt]).to(dev, dt)
        else:
            reading, texts = None, text_states.to(dev, dt)
        image_tokens = tokens.to(dev, dt) if tokens is not None else None

        with stage(self.transformer):
            with stage(self.codec):
                conditions = cond.encode_conditions(cfg, self.codec, self.transformer, image_g, depth_g.unsqueeze(0),
                                                    frames, with_motion=motion_strength != 0.0)
                conditions_m = cond.encode_conditions(
                    cfg, self.codec, self.transformer, mirror_image(image_g), mirror_image(depth_g).unsqueeze(0),
                    frames, with_motion=motion_strength != 0.0) if mirrored else None
            binding = binding_probability(self.transformer, conditions.objects, texts)
            plan = plan_clauses(reading.kept, compose) if gate_on and reading is not None else None
            moves = gate_probability(self.transformer, conditions, texts) if gate_on and plan is None else None

            def encoded(text: str, mirror: bool = False) -> torch.Tensor:
                pair = [text, negative_prompt]
                if mirror:  # the words the encoder reads, mirrored (its synonyms are mapped first)
                    pair = [mirror_caption(self.text_encoder.read(p).text) for p in pair]
                with stage(self.text_encoder):
                    return self.text_encoder(pair).to(dev, dt)

            def velocity_for(states: torch.Tensor, conditions: cond.Conditions):
                def batched(x: torch.Tensor, t: torch.Tensor, rows: slice) -> torch.Tensor:
                    n = x.shape[0]
                    reference, motion = conditions.expanded(n)
                    return self.transformer(
                        conditions.model_input(x.to(dt)),
                        t,
                        states[rows],
                        image_tokens=None if image_tokens is None else image_tokens.expand(n, -1, -1),
                        reference_latent=reference,
                        motion_features=motion,
                        motion_strength=motion_strength,
                        object_features=conditions.objects_for(n),
                    ).float()

                as_batch = self.placement is None or self.placement.mode.guidance_batch
                return guided_velocity(batched, guidance, as_batch=as_batch)

            def sampled(text: str, states: torch.Tensor, sample_progress) -> torch.Tensor:
                velocity = velocity_for(states, conditions)
                velocity_m = velocity_for(encoded(text, mirror=True), conditions_m) if mirrored else None

                def one_sample(k: int, noise: torch.Tensor, step_progress) -> torch.Tensor:
                    if velocity_m is not None and k % 2:  # the odd samples on the mirror image, mirrored back
                        return mirror_latents(sample_flow(velocity_m, noise, steps=steps, shift=shift,
                                                          progress=step_progress, should_cancel=should_cancel),
                                              cfg.dct_coefficients)
                    return sample_flow(velocity, noise, steps=steps, shift=shift, progress=step_progress,
                                       should_cancel=should_cancel)

                noises = sample_noises(tuple(conditions.control.shape), seed, averaged, dev)
                return mean_of_samples(one_sample, noises, averaged, sample_progress)

            gate = auto_left_off(motion_gate, depth_source) if cfg.motion_gate != "none" else None
            if plan is not None:
                parts, chances, rest = [], [], None
                for c, clause in enumerate(plan.objects):
                    states = encoded(plan.sampled(clause))
                    where = states if plan.camera is None else encoded(clause)  # the gate finds the object alone
                    chances.append(gate_probability(self.transformer, conditions, where))
                    parts.append(sampled(plan.sampled(clause), states, clause_progress(progress, c, plan.samplings)))
                if plan.camera is not None:
                    states = encoded(plan.camera)
                    rest = (sampled(plan.camera, states, clause_progress(progress, len(plan.objects), plan.samplings)),
                            gate_probability(self.transformer, conditions, states))
                dilate = pixels and plan.camera is None
                latents, gate = compose_latents(parts, chances, cfg.motion_gate_threshold, rest=rest, dilate=dilate)
                if dilate:
                    pixel_probability = torch.cat([latent_probability(c, latents.shape[-2:]) for c in chances])
                gate["clauses"] = list(plan.objects)
                if plan.camera is not None:
                    gate["camera_clause"] = plan.camera
            else:
                latents = sampled(prompt, texts, progress)
                if moves is not None:
                    latents, gate = apply_motion_gate(latents, moves, cfg.motion_gate_threshold, dilate=pixels)
                    if pixels:
                        pixel_probability = latent_probability(moves, latents.shape[-2:])
        factors = self.normalization_factors(k_grid, grid_hw)
        with stage(self.codec):
            tracks = self.codec.decode_tracks(latents.float(), points0.unsqueeze(0).to(dev), factors, num_frames=frames,
                                              still_threshold=still, smoothing=smoothing)[0]
            if pixel_probability is not None:
                grid0 = points0.unsqueeze(0).to(dev)
                clauses = (upsampled_probability(pixel_probability, grid0.expand(len(pixel_probability), -1, -1, -1))
                           if focus or (rigid and cfg.rigid_clauses) else None)  # each clause's probability on the pixels
                upsampled = None  # any clause's, where the keep or the level cut reads it (one clause: its own)
                if not focus or (rigid and cfg.rigid_level):
                    upsampled = clauses if clauses is not None and len(clauses) == 1 else upsampled_probability(
                        pixel_probability.amax(0, keepdim=True), grid0)
                focused = {}
                if focus:  # each clause's kept pixels on the object it is surest of
                    kept, held = focus_keep(clauses, points0.to(clauses.device), cfg.motion_gate_threshold, focus)
                    keep, focused = kept.unsqueeze(0), {"object_focus": held}
                else:
                    keep = upsampled >= cfg.motion_gate_threshold
                tracks = hold_outside(tracks.unsqueeze(0), points0.unsqueeze(0).to(tracks.device), keep)[0]
                gate = {**gate, "pixels": True, "pixel_moving_share": round(float(keep.float().mean()), 4), **focused}
                if rigid:  # a segment changes its size only where a clause names a growth, if the model says so
                    worded = text_states is None  # the prompt's words are read (not given text states)
                    scaled = cfg.rigid_scale == "any" or not worded
                    per_clause = cfg.rigid_clauses and clauses is not None and len(clauses) > 1
                    regions = clauses.argmax(0) if per_clause else None  # each pixel's surest clause
                    named = (prompt, plan.objects if per_clause else None, regions)  # what each pixel's clause says
                    growing = growth_pixels(*named) if worded else False
                    spinning = spin_pixels(*named) if worded else False
                    axes = axis_pixels(*named) if worded and cfg.rigid_axes else None
                    tracks, fitted = fit_segments(tracks, keep[0], probability=None if upsampled is None else upsampled[0],
                                                  level=cfg.rigid_level, with_scale=scaled, growing=growing,
                                                  growth_power=cfg.rigid_growth_power,
                                                  growth_limit=cfg.rigid_growth_limit, spinning=spinning,
                                                  spin_gain=cfg.rigid_spin_gain, spin_limit=cfg.rigid_spin_limit,
                                                  axes=axes, regions=regions)
                    grows = bool(torch.as_tensor(growing).any())
                    gate = {**gate, "rigid_segments": fitted,
                            **({} if scaled or grows else {"rigid_keeps_size": True}),
                            **({"rigid_growth_power": cfg.rigid_growth_power} if fitted.get("strengthened") else {}),
                            **({"rigid_spin_gain": cfg.rigid_spin_gain} if fitted.get("turned") else {})}
        bad = ~torch.isfinite(tracks).all(-1) & torch.isfinite(points0).all(-1).to(tracks.device)  # [T, H, W]
        if bool(bad.any()):
            raise InputError(
                f"the model produced {int(bad.sum()):,} non-finite positions (NaN or infinite) from a finite image and "
                f"depth: its weights are likely corrupt ({cfg.name}; check or replace the model file)"
            )
        meta = {
            "source": "more4d-generator",
            "model": cfg.name,
            "prompt": prompt if text_states is None else "(text conditioning given)",
            **({"prompt_reading": reading.to_dict()} if reading is not None else {}),
            **({"prompt_binding": binding_summary(binding)} if binding is not None else {}),
            **({"motion_gate": gate} if gate is not None else {}),
            "negative_prompt": negative_prompt,
            "seed": int(seed),
            "steps": steps,
            "shift": shift,
            "guidance_scale": guidance,
            "motion_strength": float(motion_strength),
            "still_threshold": still,
            "motion_smoothing": smoothing,
            "sample_average": averaged,
            "mirror_average": mirror_note,
            **({"temporal_decoder": cfg.temporal_decoder} if cfg.codec == "dct" else {}),
            **({"motion_smoothing_default_off": smoothing_off} if smoothing_off else {}),
            "generation_hw": list(gen_hw),
            "normalization": factors.to_dict(),
            "units": "metres",
            "seconds": round(time.perf_counter() - start, 3),
        }
        return Scene4D(
            tracks.cpu(), colors, grid_hw=grid_hw, intrinsics=k_grid, fps=float(fps or cfg.fps), metadata=meta
        )


def build_generator(config: STraGConfig, *, seed: int = 0, device="cpu", dtype=torch.float32) -> TrajectoryGenerator:
    """A randomly initialized generator of ``config`` (for training from scratch and tests).
    Configs using umT5 / CLIP cannot be built without their local weights (use :func:`load_generator`)."""
    from .models.text_encoders import build_text_encoder
    from .models.trajectory_codec import build_codec

    torch.manual_seed(seed)
    transformer = STraGTransformer.from_stgconfig(config)
    codec = build_codec(config)
    text = build_text_encoder(config)
    tokens = torch.zeros(1, config.image_tokens, config.image_dim) if config.image_dim is not None else None
    gen = TrajectoryGenerator(config, transformer, codec, text, tokens)
    return gen.to(device=device, dtype=dtype).eval()


def load_generator(
    model: str | os.PathLike,
    *,
    config: STraGConfig | str | None = None,
    vae: str | os.PathLike | None = None,
    encoder_adaptor: str | os.PathLike | None = None,
    decoder_adaptor: str | os.PathLike | None = None,
    text_encoder: str | os.PathLike | None = None,
    clip: str | os.PathLike | None = None,
    motion_encoder: str | os.PathLike | None = None,
    dtype: torch.dtype = torch.float32,
    device="cpu",
    memory: str | None = None,
    attention: str = "auto",
    compile: bool = False,
) -> TrajectoryGenerator:
    """Load a generator.

    ``model`` is our single-file model (everything inside) or a transformer folder / file in the
    authors' or diffusers layout; the Wan-VAE configs then also need ``vae`` (and optionally the
    authors' ``encoder_adaptor`` / ``decoder_adaptor``), ``text_encoder`` (umT5 folder) and
    ``clip`` (CLIP image-encoder folder or grey-token cache). ``motion_encoder`` replaces the
    Motion Perception Module's ViT weights (e.g. OmniMAE's ``vitb_pretrain.torch``).

    ``memory`` — a memory mode (:mod:`.memory.modes`: ``"bf16"``, ``"24gb"``, ``"16gb"`` or ``"auto"``,
    the fastest that fits the device's free memory): float8 transformer blocks and umT5 layers are
    quantized while reading, everything is loaded into CPU memory and each model visits ``device``
    as its mode says. None (default): every model on ``device`` in ``dtype``. ``attention``: the
    attention kernel (:mod:`.models.attention`: auto / native / sage / flash); ``compile``:
    ``torch.compile`` the transformer blocks.
    """
    from .checkpoints import bundle
    from .checkpoints.apply import load_into
    from .checkpoints.transformer_loading import load_motion_encoder, load_transformer
    from .checkpoints.vae_loading import load_adaptor, load_wan_vae
    from .models.image_context import grey_tokens
    from .models.text_encoders import build_text_encoder
    from .models.trajectory_codec import WanVAECodec, build_codec
    from .models.vae_adaptors import EncoderAdaptor

    model = Path(model)
    mode = None
    run_device = torch.device(device)
    if memory is not None and bundle.is_bundle(model) and bundle.read_header(model).config.codec != "wan_vae":
        log.info("MoRe4D: memory modes are for the 14B models; %s runs as loaded", model.name)
        memory = None
    if memory is not None:
        from .memory.placement import choose_mode

        mode, why = choose_mode(memory, run_device)
        log.info("MoRe4D memory mode %s (%s)", mode.describe(), why)
        device = "cpu"  # loaded into CPU memory; the placement brings each model to the run device
    fp8 = mode is not None and mode.weights == "fp8"
    transformer, _ = load_transformer(model, config=config, dtype=dtype, device=device, fp8=fp8)
    from .models.attention import compile_blocks, set_attention

    set_attention(transformer, attention, run_device)
    if compile:
        compile_blocks(transformer)
    cfg = transformer.cfg
    if motion_encoder is not None:
        load_motion_encoder(transformer, motion_encoder)
    is_bundle = bundle.is_bundle(model)
    header = bundle.read_header(model) if is_bundle else None

    def from_bundle(component: str, module: nn.Module) -> nn.Module:
        load_into(module, bundle.iter_component(model, component), source=f"{model} [{component}]", device=device)
        return module

    if cfg.codec != "wan_vae":  # network-free codecs: built from the config, buffers from the bundle
        codec = build_codec(cfg)
        if is_bundle and "codec" in header.components:
            from_bundle("codec", codec)
    else:
        if vae is None:
            raise FileNotFoundError(
                f"{cfg.name} decodes with the Wan2.1 VAE: give its folder or file (e.g. models/more4d/Wan2.1_VAE.pth)"
            )
        if decoder_adaptor is None:
            raise FileNotFoundError(
                f"{cfg.name} turns the VAE's output into trajectories with the authors' trained decoder adaptor: give "
                "its folder (decoder_prompt/, e.g. models/more4d/more4d-14b/decoder_prompt); without it the motion "
                "would come from untrained layers"
            )
        enc = load_adaptor(encoder_adaptor, "encoder", cfg.adaptor_channels, device=device) if encoder_adaptor else EncoderAdaptor(cfg.adaptor_channels)
        dec = load_adaptor(decoder_adaptor, "decoder", cfg.adaptor_channels, device=device)
        # the adaptors run in the VAE's dtype (float32 adaptors on a bf16 VAE failed at the first decode)
        codec = WanVAECodec(load_wan_vae(vae, dtype=dtype, device=device), enc.to(device, dtype), dec.to(device, dtype))
    if cfg.text_encoder == "word_hash":
        text = build_text_encoder(cfg)
        if is_bundle:
            from_bundle("text_encoder", text)
    elif text_encoder is None:  # the prompt then comes as CONDITIONING from ComfyUI's own text encoder
        log.info("MoRe4D: %s loaded without umT5: Generate needs the prompt as CONDITIONING", cfg.name)
        text = None
    else:
        text = build_text_encoder(cfg, text_encoder, fp8=fp8)
    tokens = None
    if cfg.image_dim is not None and clip is not None:
        tokens = grey_tokens(clip)
    elif cfg.image_dim is not None:  # then from a CLIP_VISION model at generation (ComfyUI's Load CLIP Vision)
        log.info("MoRe4D: %s loaded without CLIP: Generate needs a CLIP_VISION input", cfg.name)
    gen = TrajectoryGenerator(cfg, transformer, codec, text, tokens, info=header.info if header else {})
    gen = gen.to(device=device).eval()
    if mode is not None:
        gen.apply_memory_mode(mode, run_device)
    return gen
