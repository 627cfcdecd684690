"""Model components of 4D-STraG: configs, the DiT with MAdaNorm, the Motion Perception Module,
trajectory codecs, text encoders and CLIP image context. Imports diffusers; load lazily."""

from .config import MORE4D_14B, MORE4D_SMALL, MORE4D_TINY, NAMED_CONFIGS, STraGConfig, get_config

__all__ = ["MORE4D_14B", "MORE4D_SMALL", "MORE4D_TINY", "NAMED_CONFIGS", "STraGConfig", "get_config"]
