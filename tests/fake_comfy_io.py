"""A stand-in for ComfyUI's ``comfy_api.latest.io`` holding the few names ``nodes/v3.py`` uses, with
the real constructors' keyword names (ComfyUI 0.33.0, ``comfy_api/latest/_io.py``): a misspelled or
unknown option fails here as it would in ComfyUI. Objects only record what they are given. The real
API is exercised by ``tools/comfyui_check.py`` in a ComfyUI install."""

from __future__ import annotations

from enum import Enum
from types import SimpleNamespace

_INPUT = ("display_name", "optional", "tooltip", "lazy", "extra_dict", "raw_link", "advanced")
_WIDGET = _INPUT + ("default", "socketless", "force_input")
_KEYWORDS = {
    "Int": _WIDGET + ("min", "max", "step", "control_after_generate", "display_mode"),
    "Float": _WIDGET + ("min", "max", "step", "round", "display_mode", "gradient_stops"),
    "String": _WIDGET + ("multiline", "placeholder", "dynamic_prompts"),
    "Boolean": _WIDGET + ("label_on", "label_off"),
    "Combo": _INPUT + ("options", "default", "control_after_generate", "upload", "image_folder", "remote",
                       "socketless"),
}
_OUTPUT = ("id", "display_name", "tooltip", "is_output_list")


class _Recorded:
    allowed: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        unknown = set(kwargs) - set(self.allowed)
        if unknown:
            raise TypeError(f"{type(self).__qualname__}() got unexpected keyword arguments {sorted(unknown)}")
        self.args, self.kwargs = args, kwargs

    @property
    def id(self):
        return self.args[0] if self.args else self.kwargs.get("id")


def _comfy_type(name: str, io_type: str, input_keywords: tuple[str, ...]) -> type:
    class In(_Recorded):
        allowed = input_keywords

    class Out(_Recorded):
        allowed = _OUTPUT

    In.__qualname__, Out.__qualname__ = f"{name}.Input", f"{name}.Output"
    In.io_type = Out.io_type = io_type
    return type(name, (), {"io_type": io_type, "Input": In, "Output": Out})


Int = _comfy_type("Int", "INT", _KEYWORDS["Int"])
Float = _comfy_type("Float", "FLOAT", _KEYWORDS["Float"])
String = _comfy_type("String", "STRING", _KEYWORDS["String"])
Boolean = _comfy_type("Boolean", "BOOLEAN", _KEYWORDS["Boolean"])
Combo = _comfy_type("Combo", "COMBO", _KEYWORDS["Combo"])
Image = _comfy_type("Image", "IMAGE", _INPUT)
Mask = _comfy_type("Mask", "MASK", _INPUT)
Conditioning = _comfy_type("Conditioning", "CONDITIONING", _INPUT)
ClipVision = _comfy_type("ClipVision", "CLIP_VISION", _INPUT)
Vae = _comfy_type("Vae", "VAE", _INPUT)


def Custom(io_type: str) -> type:  # noqa: N802 (ComfyUI's name)
    return _comfy_type(f"Custom[{io_type}]", io_type, _INPUT)


class Hidden(str, Enum):
    unique_id = "UNIQUE_ID"
    prompt = "PROMPT"
    extra_pnginfo = "EXTRA_PNGINFO"


class Schema(_Recorded):
    allowed = ("node_id", "display_name", "category", "inputs", "outputs", "hidden", "description",
               "search_aliases", "is_input_list", "is_output_node", "is_deprecated", "is_experimental",
               "is_dev_only", "is_api_node", "not_idempotent", "enable_expand", "essentials_category")


class NodeOutput:
    def __init__(self, *args, ui=None, expand=None, block_execution=None):
        self.args, self.ui = args, ui


class ComfyNode:
    hidden = SimpleNamespace(unique_id=None, prompt=None, extra_pnginfo=None)  # ComfyUI sets it per execution
