"""Checkpoints: safe weight reading, the authors' key layout, loading into meta-device models,
our single-file model format, and the safetensors converter."""

from .apply import CheckpointMismatchError, LoadReport, load_into
from .bundle import is_bundle, read_header, save_bundle
from .transformer_loading import load_transformer, save_authors_layout

__all__ = [
    "CheckpointMismatchError",
    "LoadReport",
    "is_bundle",
    "load_into",
    "load_transformer",
    "read_header",
    "save_authors_layout",
    "save_bundle",
]
