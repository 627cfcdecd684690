"""Key names of the authors' checkpoints (original Wan2.1 naming + MoRe4D modules) <-> ours.

Ours follow diffusers' Wan modules. The map is a list of regular-expression rules applied to the
whole key; the first matching rule wins. Keys of parts we never run (the OmniMAE MAE decoder, its
mask token and head) are recognised and dropped, not reported as unexpected.
"""

from __future__ import annotations

import re

# (authors' pattern, our replacement)
_AUTHORS_TO_OURS: list[tuple[str, str]] = [
    (r"^text_embedding\.0\.", "condition_embedder.text_embedder.linear_1."),
    (r"^text_embedding\.2\.", "condition_embedder.text_embedder.linear_2."),
    (r"^time_embedding\.0\.", "condition_embedder.time_embedder.linear_1."),
    (r"^time_embedding\.2\.", "condition_embedder.time_embedder.linear_2."),
    (r"^time_projection\.1\.", "condition_embedder.time_proj."),
    (r"^img_emb\.proj\.0\.", "condition_embedder.image_embedder.norm1."),
    (r"^img_emb\.proj\.1\.", "condition_embedder.image_embedder.ff.net.0.proj."),
    (r"^img_emb\.proj\.3\.", "condition_embedder.image_embedder.ff.net.2."),
    (r"^img_emb\.proj\.4\.", "condition_embedder.image_embedder.norm2."),
    (r"^head\.head\.", "proj_out."),
    (r"^head\.modulation$", "scale_shift_table"),
    (r"^blocks\.(\d+)\.self_attn\.q\.", r"blocks.\1.attn1.to_q."),
    (r"^blocks\.(\d+)\.self_attn\.k\.", r"blocks.\1.attn1.to_k."),
    (r"^blocks\.(\d+)\.self_attn\.v\.", r"blocks.\1.attn1.to_v."),
    (r"^blocks\.(\d+)\.self_attn\.o\.", r"blocks.\1.attn1.to_out.0."),
    (r"^blocks\.(\d+)\.self_attn\.(norm_q|norm_k)\.", r"blocks.\1.attn1.\2."),
    (r"^blocks\.(\d+)\.cross_attn\.q\.", r"blocks.\1.attn2.to_q."),
    (r"^blocks\.(\d+)\.cross_attn\.k\.", r"blocks.\1.attn2.to_k."),
    (r"^blocks\.(\d+)\.cross_attn\.v\.", r"blocks.\1.attn2.to_v."),
    (r"^blocks\.(\d+)\.cross_attn\.o\.", r"blocks.\1.attn2.to_out.0."),
    (r"^blocks\.(\d+)\.cross_attn\.(norm_q|norm_k)\.", r"blocks.\1.attn2.\2."),
    (r"^blocks\.(\d+)\.cross_attn\.k_img\.", r"blocks.\1.attn2.add_k_proj."),
    (r"^blocks\.(\d+)\.cross_attn\.v_img\.", r"blocks.\1.attn2.add_v_proj."),
    (r"^blocks\.(\d+)\.cross_attn\.norm_k_img\.", r"blocks.\1.attn2.norm_added_k."),
    (r"^blocks\.(\d+)\.norm3\.", r"blocks.\1.norm2."),  # the cross-attention norm
    (r"^blocks\.(\d+)\.ffn\.0\.", r"blocks.\1.ffn.net.0.proj."),
    (r"^blocks\.(\d+)\.ffn\.2\.", r"blocks.\1.ffn.net.2."),
    (r"^blocks\.(\d+)\.modulation$", r"blocks.\1.scale_shift_table"),
    # same names on both sides
    (r"^(patch_embedding|ref_conv|feature_adapter)\.", r"\1."),
    (r"^blocks\.(\d+)\.(spatial_guidance_self|spatial_guidance_ffn)\.", r"blocks.\1.\2."),
    (r"^omnimae_extractor\.trunk\.(patch_embed|pos_embed|blocks|norm)\b", r"omnimae_extractor.trunk.\1"),
]

# parts of the authors' state dict that exist but are never used at inference
_DROPPED = [
    (r"^omnimae_extractor\.trunk\.mask_token$", "OmniMAE mask token (MAE pre-training only)"),
    (r"^omnimae_extractor\.trunk\.decoder\.", "OmniMAE MAE decoder (pre-training only)"),
    (r"^omnimae_extractor\.head\.", "OmniMAE MAE head (pre-training only)"),
]

_COMPILED = [(re.compile(p), r) for p, r in _AUTHORS_TO_OURS]
_COMPILED_DROPPED = [(re.compile(p), why) for p, why in _DROPPED]

# the reverse direction, for writing checkpoints in the authors' layout
_OURS_TO_AUTHORS: list[tuple[str, str]] = [
    (r"^condition_embedder\.text_embedder\.linear_1\.", "text_embedding.0."),
    (r"^condition_embedder\.text_embedder\.linear_2\.", "text_embedding.2."),
    (r"^condition_embedder\.time_embedder\.linear_1\.", "time_embedding.0."),
    (r"^condition_embedder\.time_embedder\.linear_2\.", "time_embedding.2."),
    (r"^condition_embedder\.time_proj\.", "time_projection.1."),
    (r"^condition_embedder\.image_embedder\.norm1\.", "img_emb.proj.0."),
    (r"^condition_embedder\.image_embedder\.ff\.net\.0\.proj\.", "img_emb.proj.1."),
    (r"^condition_embedder\.image_embedder\.ff\.net\.2\.", "img_emb.proj.3."),
    (r"^condition_embedder\.image_embedder\.norm2\.", "img_emb.proj.4."),
    (r"^proj_out\.", "head.head."),
    (r"^scale_shift_table$", "head.modulation"),
    (r"^blocks\.(\d+)\.attn1\.to_q\.", r"blocks.\1.self_attn.q."),
    (r"^blocks\.(\d+)\.attn1\.to_k\.", r"blocks.\1.self_attn.k."),
    (r"^blocks\.(\d+)\.attn1\.to_v\.", r"blocks.\1.self_attn.v."),
    (r"^blocks\.(\d+)\.attn1\.to_out\.0\.", r"blocks.\1.self_attn.o."),
    (r"^blocks\.(\d+)\.attn1\.(norm_q|norm_k)\.", r"blocks.\1.self_attn.\2."),
    (r"^blocks\.(\d+)\.attn2\.to_q\.", r"blocks.\1.cross_attn.q."),
    (r"^blocks\.(\d+)\.attn2\.to_k\.", r"blocks.\1.cross_attn.k."),
    (r"^blocks\.(\d+)\.attn2\.to_v\.", r"blocks.\1.cross_attn.v."),
    (r"^blocks\.(\d+)\.attn2\.to_out\.0\.", r"blocks.\1.cross_attn.o."),
    (r"^blocks\.(\d+)\.attn2\.(norm_q|norm_k)\.", r"blocks.\1.cross_attn.\2."),
    (r"^blocks\.(\d+)\.attn2\.add_k_proj\.", r"blocks.\1.cross_attn.k_img."),
    (r"^blocks\.(\d+)\.attn2\.add_v_proj\.", r"blocks.\1.cross_attn.v_img."),
    (r"^blocks\.(\d+)\.attn2\.norm_added_k\.", r"blocks.\1.cross_attn.norm_k_img."),
    (r"^blocks\.(\d+)\.norm2\.", r"blocks.\1.norm3."),
    (r"^blocks\.(\d+)\.ffn\.net\.0\.proj\.", r"blocks.\1.ffn.0."),
    (r"^blocks\.(\d+)\.ffn\.net\.2\.", r"blocks.\1.ffn.2."),
    (r"^blocks\.(\d+)\.scale_shift_table$", r"blocks.\1.modulation"),
    (r"^(patch_embedding|ref_conv|feature_adapter|omnimae_extractor)\.", r"\1."),
    (r"^blocks\.(\d+)\.(spatial_guidance_self|spatial_guidance_ffn)\.", r"blocks.\1.\2."),
]
_COMPILED_REVERSE = [(re.compile(p), r) for p, r in _OURS_TO_AUTHORS]


def dropped_reason(key: str) -> str | None:
    """Why an authors' key is intentionally not loaded (None when it should be loaded)."""
    for pattern, why in _COMPILED_DROPPED:
        if pattern.search(key):
            return why
    return None


def authors_to_ours(key: str) -> str | None:
    """Our name for an authors' key; None when no rule knows it (reported as unexpected)."""
    for pattern, repl in _COMPILED:
        if pattern.search(key):
            return pattern.sub(repl, key, count=1)
    return None


def ours_to_authors(key: str) -> str:
    """The authors' name for one of our keys (raises KeyError for keys they do not have)."""
    for pattern, repl in _COMPILED_REVERSE:
        if pattern.search(key):
            return pattern.sub(repl, key, count=1)
    raise KeyError(f"{key} has no counterpart in the authors' checkpoint layout")


def looks_like_authors_layout(keys) -> bool:
    """True when a state dict uses the original Wan names (``blocks.0.self_attn.q.weight`` ...)."""
    return any(k.startswith(("blocks.0.self_attn.", "head.head.", "text_embedding.")) for k in keys)
