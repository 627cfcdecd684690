"""Completion of rendered frames: classical (temporal propagation + inpainting, no weights),
diffusion (4D-ViSM: Wan2.1-Fun-InP + LoRA), and hand-off to ComfyUI's native Wan nodes."""

from .classical import complete_classical, flicker, inpaint_spatial, motion_maps
from .native import to_vace_inputs

__all__ = ["complete_classical", "flicker", "inpaint_spatial", "motion_maps", "to_vace_inputs"]
