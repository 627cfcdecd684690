"""Every model file the shipped workflows name: what it is, which ComfyUI folder it goes in, where it
comes from and how large it is. One list drives the loader errors ("put X (size) in models/Y; it comes
from Z", every missing file at once, before any heavy work), the runner's pre-check and the README's
model table (a test keeps them equal).

Names are as the loaders list them: relative to ``models/more4d/``, or ``models/<folder>/<file>`` for
ComfyUI's own folders (``text_encoders``, ``clip_vision``, ``vae``, ``depth``). Sizes are on-disk sizes
of the published files (approximate where marked ~).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelEntry:
    name: str  # as the loaders list it (a trailing "/" is a folder)
    what: str
    source: str
    size: str

    @property
    def folder(self) -> str:
        """The ComfyUI models folder it belongs in."""
        head, _, rest = self.name.partition("/")
        return f"models/{rest.split('/')[0]}" if head == "models" else "models/more4d"

    @property
    def file(self) -> str:
        """The path inside that folder."""
        head, _, rest = self.name.partition("/")
        return rest.partition("/")[2] if head == "models" else self.name

    def instruction(self) -> str:
        kind = "folder" if self.name.endswith("/") else "file"
        return f"put the {kind} {self.file} ({self.size}; {self.what}) in {self.folder}/; it comes from {self.source}"


COMFY_WAN = "Comfy-Org/Wan_2.1_ComfyUI_repackaged on Hugging Face (split_files/)"
AUTHORS = ("the MoRe4D authors (github.com/Zhangyr2022/MoRe4D; their trained weights are not published yet: "
           "check that page)")

MANIFEST: tuple[ModelEntry, ...] = (
    ModelEntry("more4d-14b/transformer/", "the 4D-STraG 14B transformer, sharded safetensors + config.json",
               AUTHORS, "~34 GB"),
    ModelEntry("more4d-14b/vae/pytorch_model.bin", "the authors' fine-tuned Wan VAE", AUTHORS, "~0.5 GB"),
    ModelEntry("more4d-14b/decoder_prompt/", "the trajectory decoder adaptor", AUTHORS, "~0.01 GB"),
    ModelEntry("more4d_vism_lora.safetensors", "the 4D-ViSM LoRA for Wan2.1-Fun-InP", AUTHORS, "size not published"),
    ModelEntry("Wan2.1-Fun-V1.1-14B-InP/", "Wan2.1-Fun-InP 14B, the 4D-ViSM base model",
               "alibaba-pai/Wan2.1-Fun-V1.1-14B-InP on Hugging Face", "~47 GB"),
    ModelEntry("models/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors", "umT5-XXL text encoder, float8",
               COMFY_WAN, "6.7 GB"),
    ModelEntry("models/clip_vision/clip_vision_h.safetensors", "CLIP ViT-H image encoder", COMFY_WAN, "1.3 GB"),
    ModelEntry("models/vae/wan_2.1_vae.safetensors", "the Wan2.1 video VAE", COMFY_WAN, "0.25 GB"),
    ModelEntry("depth/Depth-Anything-V2-Metric-Indoor-Large-hf/", "metric depth (transformers)",
               "depth-anything/Depth-Anything-V2-Metric-Indoor-Large-hf on Hugging Face", "1.3 GB"),
)
BY_NAME = {e.name: e for e in MANIFEST}


def instruction_for(name: str, problem: str) -> str:
    """What to do about a missing ``name``: a manifest entry's instruction (where it goes, its size and
    source), else ``problem``, the lookup's own message (it names the path it expected and the folder)."""
    entry = BY_NAME.get(name)
    return entry.instruction() if entry else problem
