"""Model loader nodes: the 4D-STraG trajectory model, Motion Perception Module weights, and the
4D-ViSM completion model. They return handles into the shared model cache (loaded once)."""

from __future__ import annotations

import torch

from more4d_core.cache import MODEL_CACHE, ModelHandle, source_fingerprint
from more4d_core.memory.modes import MODE_NAMES
from more4d_core.models.attention import ATTENTION_CHOICES
from more4d_core.models.config import NAMED_CONFIGS

from . import model_files
from .comfy_bridge import torch_device
from .types import CATEGORY, MODEL, VISM, require

PRECISIONS = {"auto": None, "fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEVICE_CHOICES = ["auto", "cpu", "cuda"]


def _dtype(precision: str, device: torch.device) -> torch.dtype:
    if PRECISIONS[precision] is not None:
        return PRECISIONS[precision]
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def _optional(name: str):
    return None if name in ("", model_files.NONE) else model_files.resolve(name)


def load_trajectory_model(model: str, config: str = "auto", precision: str = "auto", device: str = "auto",
                          vae: str = model_files.NONE, text_encoder: str = model_files.NONE,
                          clip: str = model_files.NONE, decoder_adaptor: str = model_files.NONE,
                          motion_encoder: str = model_files.NONE, memory: str = "auto", attention: str = "auto",
                          compile: bool = False) -> ModelHandle:
    """A cache handle for a trajectory generator (the bundled default when ``model`` is BUNDLED)."""
    from more4d_core.generator import load_generator
    from more4d_core.weights import default_model_path

    dev = torch_device(device)
    dtype = _dtype(precision, dev)
    path = default_model_path() if model == model_files.BUNDLED else model_files.resolve(model)
    extras = {k: _optional(v) for k, v in (("vae", vae), ("text_encoder", text_encoder), ("clip", clip),
                                            ("decoder_adaptor", decoder_adaptor), ("motion_encoder", motion_encoder))}
    key = (source_fingerprint(path, *extras.values()), config, str(dtype), str(dev), memory, attention, compile)

    def loader():
        return load_generator(path, config=None if config == "auto" else config, dtype=dtype, device=dev,
                              memory=memory, attention=attention, compile=compile, **extras)

    return MODEL_CACHE.handle("trajectory", key, f"{path.name} ({precision}, {dev})", loader, device=dev,
                              estimated_bytes=path.stat().st_size if path.is_file() else 0)


class LoadTrajectoryModel:
    DESCRIPTION = (
        "Load a 4D-STraG trajectory model: the bundled small CPU model, our single-file models, or the authors' "
        "14B transformer folder (then also give the Wan VAE, umT5 text encoder and CLIP folders) from models/more4d/."
    )
    CATEGORY = CATEGORY
    FUNCTION = "load"
    DYNAMIC_INPUTS = ("model", "vae", "text_encoder", "clip", "decoder_adaptor", "motion_encoder")
    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("A handle to the loaded model (kept in memory between runs).",)

    @classmethod
    def INPUT_TYPES(cls):
        files = model_files.candidates()
        folders = [model_files.NONE] + files
        return {
            "required": {
                "model": ([model_files.BUNDLED] + files, {"default": model_files.BUNDLED,
                          "tooltip": "The trajectory model: the bundled default, a .safetensors model or a transformer folder."}),
                "config": (["auto"] + list(NAMED_CONFIGS), {"default": "auto",
                           "tooltip": "Architecture; auto = read from the file (or inferred for the authors' folders)."}),
                "precision": (list(PRECISIONS), {"default": "auto", "tooltip": "auto = bf16 on GPUs, fp32 on CPUs."}),
                "device": (DEVICE_CHOICES, {"default": "auto", "tooltip": "auto = ComfyUI's device (honours --cpu)."}),
            },
            "optional": {
                "vae": (folders + model_files.shared_candidates("vae"), {"default": model_files.NONE,
                        "tooltip": "14B only: the Wan2.1 VAE: ComfyUI's models/vae/wan_2.1_vae.safetensors, a folder or Wan2.1_VAE.pth."}),
                "text_encoder": (folders + model_files.shared_candidates("text_encoders"), {"default": model_files.NONE,
                                 "tooltip": "14B only: umT5-XXL: ComfyUI's models/text_encoders/umt5_xxl_*.safetensors "
                                            "(bf16 or fp8_scaled) or a folder with text_encoder/ + tokenizer/; (none) "
                                            "= the prompt comes as CONDITIONING into Generate (core's CLIP Text Encode)."}),
                "clip": (folders + model_files.shared_candidates("clip_vision"), {"default": model_files.NONE,
                         "tooltip": "14B only: CLIP ViT-H: ComfyUI's models/clip_vision/clip_vision_h.safetensors or an image_encoder/ folder."}),
                "decoder_adaptor": (folders, {"default": model_files.NONE, "tooltip": "14B only: the authors' decoder_prompt folder."}),
                "motion_encoder": (folders, {"default": model_files.NONE,
                                   "tooltip": "Optional: replace the Motion Perception Module ViT weights (e.g. vitb_pretrain.torch)."}),
                "memory": (list(MODE_NAMES), {"default": "auto", "tooltip": (
                    "14B only. bf16: everything resident (80 GB cards); 24gb: float8 blocks, each model on the GPU "
                    "only while it runs; 16gb: also streams half the blocks from CPU memory; auto: the fastest "
                    "that fits the free GPU memory (the log says which and why).")}),
                "attention": (list(ATTENTION_CHOICES), {"default": "auto", "tooltip": (
                    "auto: SageAttention or flash-attn when installed on a CUDA GPU, else PyTorch SDPA (native).")}),
                "compile": ("BOOLEAN", {"default": False, "tooltip": "torch.compile the transformer blocks (slow first run, faster after)."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, model=model_files.BUNDLED, vae=model_files.NONE, text_encoder=model_files.NONE,
                        clip=model_files.NONE, decoder_adaptor=model_files.NONE, motion_encoder=model_files.NONE):
        return model_files.validate_files(model=model, vae=vae, text_encoder=text_encoder, clip=clip,
                                          decoder_adaptor=decoder_adaptor, motion_encoder=motion_encoder)

    def load(self, model, config, precision, device, vae=model_files.NONE, text_encoder=model_files.NONE,
             clip=model_files.NONE, decoder_adaptor=model_files.NONE, motion_encoder=model_files.NONE, memory="auto",
             attention="auto", compile=False):
        return (load_trajectory_model(model, config, precision, device, vae, text_encoder, clip, decoder_adaptor,
                                      motion_encoder, memory, attention, compile),)


class LoadCompletionModel:
    DESCRIPTION = (
        "Load 4D-ViSM: Wan2.1-Fun-InP with the MoRe4D LoRA merged, for diffusion completion of rendered holes. "
        "Folders and files come from models/more4d/."
    )
    CATEGORY = CATEGORY
    FUNCTION = "load"
    DYNAMIC_INPUTS = ("transformer", "vae", "text_encoder", "clip", "lora")
    RETURN_TYPES = (VISM,)
    RETURN_NAMES = ("completion_model",)
    OUTPUT_TOOLTIPS = ("A handle to the loaded completion model.",)

    @classmethod
    def INPUT_TYPES(cls):
        items = [model_files.NONE] + model_files.candidates()
        return {
            "required": {
                "transformer": (items, {"tooltip": "Wan2.1-Fun-InP transformer folder (authors' or diffusers layout)."}),
                "vae": (items + model_files.shared_candidates("vae"),
                        {"tooltip": "The Wan2.1 VAE: ComfyUI's models/vae/wan_2.1_vae.safetensors, a folder or "
                                    "Wan2.1_VAE.pth; (none) = a VAE into Complete Frames (core's Load VAE)."}),
                "text_encoder": (items + model_files.shared_candidates("text_encoders"),
                                 {"tooltip": "umT5-XXL: ComfyUI's models/text_encoders/umt5_xxl_*.safetensors or a folder "
                                             "with text_encoder/ + tokenizer/; (none) = the prompt comes as CONDITIONING "
                                             "into Complete Frames (core's CLIP Text Encode)."}),
                "clip": (items + model_files.shared_candidates("clip_vision"),
                         {"tooltip": "CLIP ViT-H: ComfyUI's models/clip_vision/clip_vision_h.safetensors or an "
                                     "image_encoder/ folder; (none) = a CLIP_VISION into Complete Frames (core's Load "
                                     "CLIP Vision)."}),
                "lora": (items, {"tooltip": "The MoRe4D ViSM LoRA (.safetensors); (none) = plain Fun-InP."}),
                "lora_weight": ("FLOAT", {"default": 0.55, "min": 0.0, "max": 2.0, "step": 0.05,
                                          "tooltip": "LoRA strength (the authors use 0.55)."}),
                "precision": (list(PRECISIONS), {"default": "auto", "tooltip": "auto = bf16 on GPUs, fp32 on CPUs."}),
                "memory": (list(MODE_NAMES), {"default": "auto", "tooltip": (
                    "bf16: everything resident (80 GB cards); 24gb: float8 blocks, each model on the GPU only while "
                    "it runs; 16gb: also streams half the blocks from CPU memory; auto: the fastest that fits the "
                    "free GPU memory (the log says which and why).")}),
            },
            "optional": {
                "attention": (list(ATTENTION_CHOICES), {"default": "auto", "tooltip": (
                    "auto: SageAttention or flash-attn when installed on a CUDA GPU, else PyTorch SDPA (native).")}),
                "compile": ("BOOLEAN", {"default": False, "tooltip": "torch.compile the transformer blocks (slow first run, faster after)."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, transformer=model_files.NONE, vae=model_files.NONE, text_encoder=model_files.NONE,
                        clip=model_files.NONE, lora=model_files.NONE):
        return model_files.validate_files(transformer=transformer, vae=vae, text_encoder=text_encoder, clip=clip,
                                          lora=lora)

    def load(self, transformer, vae, text_encoder, clip, lora, lora_weight, precision, memory, attention="auto",
             compile=False):
        from more4d_core.completion.diffusion import load_completer

        dev = torch_device("auto")
        dtype = _dtype(precision, dev)
        # vae / text_encoder / clip may be (none): they then come from core's nodes (Complete Frames' inputs)
        paths = [model_files.resolve(transformer), _optional(vae), _optional(text_encoder),
                 _optional(clip), _optional(lora)]
        key = (source_fingerprint(*paths), lora_weight, str(dtype), str(dev), memory, attention, compile)

        def loader():
            return load_completer(paths[0], vae=paths[1], text_encoder=paths[2], clip=paths[3], lora=paths[4],
                                  lora_weight=lora_weight, dtype=dtype, device=dev, memory=memory,
                                  attention=attention, compile=compile)

        return (MODEL_CACHE.handle("completion", key, f"{paths[0].name} + LoRA {lora_weight}", loader, device=dev),)


def require_handle(handle, kind: str, socket: str) -> ModelHandle:
    require(handle, ModelHandle, socket)
    if handle.kind != kind:
        raise TypeError(f"the '{socket}' input needs a {kind} model, got a {handle.kind} model")
    return handle
