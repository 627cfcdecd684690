"""Peak device memory of the 14B pipelines per memory mode, estimated on the CPU without weights.

Every stage runs the real module code (our 4D-STraG transformer, diffusers' Wan transformer and VAE,
transformers' umT5 and CLIP) on fake tensors placed on a fake CUDA device, with the mode applied the
way it is at run time (float8 layers from :mod:`..models.fp8`, :class:`.streaming.BlockStreamer`);
:mod:`.tracker` counts what lives on the device. A stage's peak is its own trace plus the weights of
the models that stay on the device while it runs (all of them, unless the mode sends each model away
after its stage).

Stages: ``text`` (umT5-XXL, prompt + negative prompt, 512 tokens), ``image`` (CLIP ViT-H, 224 px),
``denoise`` (one transformer forward of a denoising step: guidance as a batch of 2 or one pass of 1),
``decode`` (the VAE: trajectory latents -> 49 x 368 x 512 field for 4D-STraG; ViSM also ``encode``s
the rendered video before denoising).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..checkpoints.apply import kept_in_fp32
from ..models.fp8 import in_blocks, in_umt5_blocks, quantize_linears
from .modes import MODES, MemoryMode
from .streaming import move, stream_blocks
from .tracker import GIB, DeviceMemoryTracker, FlashAttentionMemory, MemoryTrace

DEVICE = "meta"  # the GPU stand-in: fake tensors on the meta device (CPU builds cannot name "cuda" in a copy)
FRAMES, HEIGHT, WIDTH = 49, 368, 512
TEXT_LEN = 512
# umT5-XXL (Wan's text encoder) and CLIP ViT-H/14 (its image encoder): published configurations
UMT5_XXL = dict(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                feed_forward_proj="gated-gelu", relative_attention_num_buckets=32, relative_attention_max_distance=128)
CLIP_VIT_H = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16,
                  image_size=224, patch_size=14, projection_dim=1024, hidden_act="gelu")


@dataclass
class StageMemory:
    name: str
    peak: int  # bytes: this stage's trace + the weights of models that stay resident meanwhile
    weights: int  # resident weights at the peak (this stage's model and those staying)
    activations: int
    streaming: int
    model_weights: int = 0  # this stage's own model on the device after placement (streamed blocks not counted)

    def to_dict(self) -> dict:
        return {"peak_gib": self.peak / GIB, "weights_gib": self.weights / GIB,
                "activations_gib": self.activations / GIB, "streaming_gib": self.streaming / GIB,
                "model_weights_gib": self.model_weights / GIB}


@dataclass
class PipelineMemory:
    model: str
    mode: MemoryMode
    stages: list[StageMemory] = field(default_factory=list)

    @property
    def peak(self) -> int:
        return max(s.peak for s in self.stages)

    def to_dict(self) -> dict:
        return {"peak_gib": self.peak / GIB, "mode": self.mode.describe(),
                "stages": {s.name: s.to_dict() for s in self.stages}}


# -- fake models ---------------------------------------------------------------------------------
def _fake_weights(model: nn.Module, dtype: torch.dtype, keep_fp32: tuple[str, ...] = ()) -> nn.Module:
    """Replace every (meta) parameter and buffer by a fake CPU tensor of the dtype it is loaded in."""
    made: dict[int, nn.Parameter] = {}  # tied weights (umT5's shared / embed_tokens) stay one tensor
    for mod_name, mod in model.named_modules():
        fp32 = kept_in_fp32(mod_name, keep_fp32)
        for name, p in list(mod._parameters.items()):
            if p is not None:
                if id(p) not in made:
                    dt = (torch.float32 if fp32 else dtype) if p.is_floating_point() else p.dtype
                    made[id(p)] = nn.Parameter(torch.empty(p.shape, dtype=dt), requires_grad=False)
                mod._parameters[name] = made[id(p)]
        for name, b in list(mod._buffers.items()):
            if b is not None:
                mod._buffers[name] = torch.empty(b.shape, dtype=b.dtype)
    return model.eval()


@dataclass
class _Trace:
    trace: MemoryTrace
    weights: int  # this stage's model's bytes on the device after placement


def _run_stage(model: nn.Module, place: Callable[[nn.Module], None], run: Callable[[], None]) -> _Trace:
    tracker = DeviceMemoryTracker(DEVICE)
    with tracker:
        tracker.current = "weights"
        place(model)
        weights = tracker.trace.total()
        tracker.current = "activations"
        with FlashAttentionMemory(), torch.no_grad():
            run()
    return _Trace(tracker.trace, weights)


def _place_all(model: nn.Module) -> None:
    move(model, DEVICE)


def _place_streamed(resident: int) -> Callable[[nn.Module], None]:
    def place(model: nn.Module) -> None:
        stream_blocks(model, DEVICE, resident)
    return place


def _transformer_placement(mode: MemoryMode, model: nn.Module):
    if mode.weights == "fp8":
        quantize_linears(model, torch.bfloat16, where=in_blocks)
    return _place_all if mode.resident_blocks is None else _place_streamed(mode.resident_blocks)


def _text_stage(mode: MemoryMode) -> _Trace:
    from transformers import UMT5Config, UMT5EncoderModel

    with torch.device("meta"):
        model = UMT5EncoderModel(UMT5Config(**UMT5_XXL))
    _fake_weights(model, torch.bfloat16)
    if mode.weights == "fp8":
        quantize_linears(model, torch.bfloat16, where=in_umt5_blocks)
    ids = torch.zeros(2, TEXT_LEN, dtype=torch.long, device=DEVICE)
    mask = torch.ones(2, TEXT_LEN, dtype=torch.long, device=DEVICE)
    return _run_stage(model, _place_all, lambda: model(input_ids=ids, attention_mask=mask))


def _image_stage(mode: MemoryMode) -> _Trace:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    with torch.device("meta"):
        model = CLIPVisionModel(CLIPVisionConfig(**CLIP_VIT_H))
    _fake_weights(model, torch.bfloat16)
    pixels = torch.empty(1, 3, 224, 224, dtype=torch.bfloat16, device=DEVICE)
    return _run_stage(model, _place_all, lambda: model(pixel_values=pixels, output_hidden_states=True))


def _vae():
    from diffusers import AutoencoderKLWan

    with torch.device("meta"):
        vae = AutoencoderKLWan()  # its defaults are the Wan2.1 VAE (base 96, z 16)
    return _fake_weights(vae, torch.bfloat16)


def _latent_shape(channels: int) -> tuple[int, int, int, int, int]:
    return (1, channels, (FRAMES - 1) // 4 + 1, HEIGHT // 8, WIDTH // 8)


def strag_forward(model: nn.Module, batch: int, size: tuple[int, int, int], dtype: torch.dtype,
                  device: torch.device | str) -> torch.Tensor:
    """One 4D-STraG forward of a denoising step (motion and object features included) at ``size`` = (frames,
    height, width) of the output: the inputs a generation gives it, with arbitrary values."""
    cfg = model.cfg
    frames, height, width = size
    c, t = cfg.latent_channels, cfg.latent_frames(frames)
    h, w = height // cfg.spatial_compression, width // cfg.spatial_compression
    x = torch.zeros(batch, 4 * c, t, h, w, dtype=dtype, device=device)
    text = torch.zeros(batch, cfg.text_len, cfg.text_dim, dtype=dtype, device=device)
    image = None if cfg.image_dim is None else torch.zeros(batch, cfg.image_tokens, cfg.image_dim, dtype=dtype,
                                                            device=device)
    ref = torch.zeros(batch, c, h, w, dtype=dtype, device=device)
    motion = None
    if cfg.use_mpm:
        motion = model.encode_motion(torch.zeros(1, 3, height, width, dtype=dtype, device=device))
        motion = motion.expand(batch, -1, -1, -1)
    objects = None
    if cfg.object_encoder != "none":
        objects = model.encode_objects(torch.zeros(1, 4, height, width, dtype=dtype, device=device))
        objects = objects.expand(batch, -1, -1, -1)
    return model(x, torch.full((batch,), 500.0, device=device), text, image_tokens=image, reference_latent=ref,
                 motion_features=motion, object_features=objects)


def trace_strag(cfg, mode: MemoryMode, *, batch: int, size: tuple[int, int, int] = (FRAMES, HEIGHT, WIDTH),
                dtype: torch.dtype = torch.bfloat16) -> _Trace:
    """The device memory of one 4D-STraG forward of ``cfg`` in ``mode`` (call inside a FakeTensorMode)."""
    from ..models.dit import STraGTransformer

    with torch.device("meta"):
        model = STraGTransformer.from_stgconfig(cfg)
    _fake_weights(model, dtype, tuple(STraGTransformer._keep_in_fp32_modules))
    place = _transformer_placement(mode, model)
    return _run_stage(model, place, lambda: strag_forward(model, batch, size, dtype, DEVICE))


def _strag_denoise(mode: MemoryMode) -> _Trace:
    from ..models.config import MORE4D_14B

    return trace_strag(MORE4D_14B, mode, batch=2 if mode.guidance_batch else 1)


VISM_14B = dict(patch_size=(1, 2, 2), num_attention_heads=40, attention_head_dim=128, in_channels=36, out_channels=16,
                text_dim=4096, freq_dim=256, ffn_dim=13824, num_layers=40, eps=1e-6, image_dim=1280, added_kv_proj_dim=5120)
"""Wan2.1-Fun-V1.1-14B-InP as diffusers' ``WanTransformer3DModel``: 40 blocks of width 5120 (40 heads of 128),
FFN 13824, input 16 noisy + 4 mask + 16 masked-video latent channels, CLIP ViT-H image cross-attention."""


def vism_forward(model: nn.Module, batch: int, size: tuple[int, int, int], dtype: torch.dtype,
                 device: torch.device | str) -> torch.Tensor:
    """One 4D-ViSM transformer forward of a denoising step at ``size`` = (frames, height, width)."""
    cfg = model.config
    frames, height, width = size
    t, h, w = (frames - 1) // 4 + 1, height // 8, width // 8
    x = torch.zeros(batch, cfg.in_channels, t, h, w, dtype=dtype, device=device)
    text = torch.zeros(batch, TEXT_LEN, cfg.text_dim, dtype=dtype, device=device)
    image = torch.zeros(batch, 257, cfg.image_dim, dtype=dtype, device=device)
    return model(x, torch.full((batch,), 500.0, device=device), text, encoder_hidden_states_image=image,
                 return_dict=False)[0]


def _visml_denoise(mode: MemoryMode) -> _Trace:
    from diffusers import WanTransformer3DModel

    with torch.device("meta"):
        model = WanTransformer3DModel(**VISM_14B)
    _fake_weights(model, torch.bfloat16, tuple(model._keep_in_fp32_modules or ()))
    place = _transformer_placement(mode, model)
    batch = 2 if mode.guidance_batch else 1
    return _run_stage(model, place, lambda: vism_forward(model, batch, (FRAMES, HEIGHT, WIDTH), torch.bfloat16, DEVICE))


def _vae_decode(mode: MemoryMode) -> _Trace:
    vae = _vae()
    z = _latent_shape(16)
    return _run_stage(vae, _place_all,
                      lambda: vae.decode(torch.empty(z, dtype=torch.bfloat16, device=DEVICE)))


def _vae_encode(mode: MemoryMode) -> _Trace:
    vae = _vae()
    return _run_stage(vae, _place_all,
                      lambda: vae.encode(torch.empty(1, 3, FRAMES, HEIGHT, WIDTH, dtype=torch.bfloat16, device=DEVICE)))


PIPELINES: dict[str, list[tuple[str, Callable[[MemoryMode], _Trace]]]] = {
    "strag": [("text", _text_stage), ("image", _image_stage), ("denoise", _strag_denoise), ("decode", _vae_decode)],
    "vism": [("text", _text_stage), ("image", _image_stage), ("encode", _vae_encode), ("denoise", _visml_denoise),
             ("decode", _vae_decode)],
}


def _stage_memory(name: str, tr: _Trace, staying: int = 0) -> StageMemory:
    """A stage's memory from its trace, with ``staying`` bytes of other models' weights resident beside it."""
    at = tr.trace.at_peak
    return StageMemory(name, tr.trace.peak + staying, at.get("weights", 0) + staying, at.get("activations", 0),
                       at.get("streaming", 0), tr.weights)


def transformer_estimate(model: str, mode: MemoryMode | str) -> StageMemory:
    """Peak device memory of one denoising forward of pipeline ``model``'s transformer alone in ``mode``
    (no encoder or VAE weights counted, whatever the mode keeps resident): what the GPU check measures."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = MODES[mode] if isinstance(mode, str) else mode
    denoise = dict(PIPELINES[model])["denoise"]
    with FakeTensorMode(allow_non_fake_inputs=True), _quiet():
        return _stage_memory("denoise", denoise(mode))


def estimate(model: str, mode: MemoryMode | str) -> PipelineMemory:
    """Peak device memory of pipeline ``model`` ("strag" or "vism") in ``mode``, per stage."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = MODES[mode] if isinstance(mode, str) else mode
    traces: dict[str, _Trace] = {}
    for name, stage in PIPELINES[model]:
        with FakeTensorMode(allow_non_fake_inputs=True), _quiet():
            traces[name] = stage(mode)
    result = PipelineMemory(model, mode)
    for name, tr in traces.items():
        staying = 0 if mode.encoders_leave else sum(t.weights for n, t in traces.items() if n != name)
        result.stages.append(_stage_memory(name, tr, staying))
    return result


@contextlib.contextmanager
def _quiet():
    import logging
    import warnings

    level = logging.getLogger("diffusers").level
    logging.getLogger("diffusers").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            logging.getLogger("diffusers").setLevel(level)
