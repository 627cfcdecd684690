"""Key names of the authors' checkpoints (original Wan2.1 naming + MoRe4D modules) <-> ours.

Ours follow diffusers' Wan modules. The map is one table of prefix pairs used in both directions;
the first matching prefix wins. Keys of parts we never run (the OmniMAE MAE decoder, its
mask token and head) are recognised and dropped, not reported as unexpected.
"""

from __future__ import annotations

import re

# One table, both directions: (authors' prefix, our prefix). "{i}" stands for a block index; a
# prefix ending without "." is a whole key.
_PAIRS: list[tuple[str, str]] = [
    ("text_embedding.0.", "condition_embedder.text_embedder.linear_1."),
    ("text_embedding.2.", "condition_embedder.text_embedder.linear_2."),
    ("time_embedding.0.", "condition_embedder.time_embedder.linear_1."),
    ("time_embedding.2.", "condition_embedder.time_embedder.linear_2."),
    ("time_projection.1.", "condition_embedder.time_proj."),
    ("img_emb.proj.0.", "condition_embedder.image_embedder.norm1."),
    ("img_emb.proj.1.", "condition_embedder.image_embedder.ff.net.0.proj."),
    ("img_emb.proj.3.", "condition_embedder.image_embedder.ff.net.2."),
    ("img_emb.proj.4.", "condition_embedder.image_embedder.norm2."),
    ("head.head.", "proj_out."),
    ("head.modulation", "scale_shift_table"),
    ("blocks.{i}.self_attn.q.", "blocks.{i}.attn1.to_q."),
    ("blocks.{i}.self_attn.k.", "blocks.{i}.attn1.to_k."),
    ("blocks.{i}.self_attn.v.", "blocks.{i}.attn1.to_v."),
    ("blocks.{i}.self_attn.o.", "blocks.{i}.attn1.to_out.0."),
    ("blocks.{i}.self_attn.norm_q.", "blocks.{i}.attn1.norm_q."),
    ("blocks.{i}.self_attn.norm_k.", "blocks.{i}.attn1.norm_k."),
    ("blocks.{i}.cross_attn.q.", "blocks.{i}.attn2.to_q."),
    ("blocks.{i}.cross_attn.k.", "blocks.{i}.attn2.to_k."),
    ("blocks.{i}.cross_attn.v.", "blocks.{i}.attn2.to_v."),
    ("blocks.{i}.cross_attn.o.", "blocks.{i}.attn2.to_out.0."),
    ("blocks.{i}.cross_attn.norm_q.", "blocks.{i}.attn2.norm_q."),
    ("blocks.{i}.cross_attn.norm_k.", "blocks.{i}.attn2.norm_k."),
    ("blocks.{i}.cross_attn.k_img.", "blocks.{i}.attn2.add_k_proj."),
    ("blocks.{i}.cross_attn.v_img.", "blocks.{i}.attn2.add_v_proj."),
    ("blocks.{i}.cross_attn.norm_k_img.", "blocks.{i}.attn2.norm_added_k."),
    ("blocks.{i}.norm3.", "blocks.{i}.norm2."),  # the cross-attention norm
    ("blocks.{i}.ffn.0.", "blocks.{i}.ffn.net.0.proj."),
    ("blocks.{i}.ffn.2.", "blocks.{i}.ffn.net.2."),
    ("blocks.{i}.modulation", "blocks.{i}.scale_shift_table"),
    # the same names on both sides
    ("patch_embedding.", "patch_embedding."),
    ("ref_conv.", "ref_conv."),
    ("feature_adapter.", "feature_adapter."),
    ("blocks.{i}.spatial_guidance_self.", "blocks.{i}.spatial_guidance_self."),
    ("blocks.{i}.spatial_guidance_ffn.", "blocks.{i}.spatial_guidance_ffn."),
    ("omnimae_extractor.trunk.patch_embed.", "omnimae_extractor.trunk.patch_embed."),
    ("omnimae_extractor.trunk.pos_embed", "omnimae_extractor.trunk.pos_embed"),
    ("omnimae_extractor.trunk.blocks.", "omnimae_extractor.trunk.blocks."),
    ("omnimae_extractor.trunk.norm.", "omnimae_extractor.trunk.norm."),
]

# parts of the authors' state dict that exist but are never used at inference
_DROPPED = [
    (r"^omnimae_extractor\.trunk\.mask_token$", "OmniMAE mask token (MAE pre-training only)"),
    (r"^omnimae_extractor\.trunk\.decoder\.", "OmniMAE MAE decoder (pre-training only)"),
    (r"^omnimae_extractor\.head\.", "OmniMAE MAE head (pre-training only)"),
]


def _rule(source: str, target: str) -> tuple[re.Pattern, str]:
    """A regex for the ``source`` prefix (or whole key) and its replacement template."""
    pattern = "^" + re.escape(source).replace(re.escape("{i}"), r"(\d+)")
    if not source.endswith("."):
        pattern += "$"
    return re.compile(pattern), target.replace("{i}", r"\1")


_FORWARD = [_rule(theirs, ours) for theirs, ours in _PAIRS]
_REVERSE = [_rule(ours, theirs) for theirs, ours in _PAIRS]
_COMPILED_DROPPED = [(re.compile(p), why) for p, why in _DROPPED]


def _apply(rules: list[tuple[re.Pattern, str]], key: str) -> str | None:
    for pattern, repl in rules:
        if pattern.search(key):
            return pattern.sub(repl, key, count=1)
    return None


def dropped_reason(key: str) -> str | None:
    """Why an authors' key is intentionally not loaded (None when it should be loaded)."""
    for pattern, why in _COMPILED_DROPPED:
        if pattern.search(key):
            return why
    return None


def authors_to_ours(key: str) -> str | None:
    """Our name for an authors' key; None when no rule knows it (reported as unexpected)."""
    return _apply(_FORWARD, key)


def ours_to_authors(key: str) -> str:
    """The authors' name for one of our keys (raises KeyError for keys they do not have)."""
    name = _apply(_REVERSE, key)
    if name is None:
        raise KeyError(f"{key} has no counterpart in the authors' checkpoint layout")
    return name


def looks_like_authors_layout(keys) -> bool:
    """True when a state dict uses the original Wan names (``blocks.0.self_attn.q.weight`` ...)."""
    return any(k.startswith(("blocks.0.self_attn.", "head.head.", "text_embedding.")) for k in keys)
