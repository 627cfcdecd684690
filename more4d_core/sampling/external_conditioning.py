"""Text states and CLIP image tokens from ComfyUI's own Wan components.

A Wan user already loads the umT5 text encoder with core's Load CLIP (type wan) and encodes prompts
with CLIP Text Encode, and loads ``clip_vision_h`` with Load CLIP Vision. Their outputs replace the
trajectory model's own encoders, so no second copy of those files is needed and ComfyUI manages their
memory:

* CONDITIONING is a list of ``[states, options]`` pairs; Wan's states are umT5's last layer
  ``[1, tokens, 4096]``, zero past the prompt's tokens and at least 512 long (as Wan pads) — the model
  reads the first ``text_len`` positions, zero-padded when shorter.
* a CLIP_VISION model's ``encode_image(image)`` returns an output whose
  ``penultimate_hidden_states`` are the tokens Wan uses; the authors' trajectory model always saw
  those of a uniform mid-grey image (see :mod:`..models.image_context`).

Nothing here imports ComfyUI: the objects are used through those two documented surfaces.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from ..models.image_context import GREY

CLIP_SIZE = 224  # ViT-H/14's input size (encode_image resizes anyway)
TEXT_LEN = 512  # Wan's text length (umT5 states, zero-padded)


def states_from_conditioning(conditioning, text_len: int, text_dim: int, what: str = "positive") -> torch.Tensor:
    """``[1, text_len, text_dim]`` text states from a CONDITIONING (one entry)."""
    if not isinstance(conditioning, (list, tuple)) or not conditioning:
        raise InputError(f"{what}: expected a CONDITIONING (a list of [states, options] from CLIP Text Encode), "
                         f"got {type(conditioning).__name__}")
    if len(conditioning) > 1:
        raise InputError(f"{what}: this CONDITIONING holds {len(conditioning)} entries (combined or concatenated); "
                         "the trajectory model reads one prompt: connect a single CLIP Text Encode")
    entry = conditioning[0]
    states = entry[0] if isinstance(entry, (list, tuple)) and entry else None
    if not isinstance(states, torch.Tensor) or states.ndim != 3 or states.shape[0] != 1:
        raise InputError(f"{what}: the CONDITIONING's states must be a [1, tokens, width] tensor")
    if states.shape[2] != text_dim:
        raise InputError(f"{what}: the text states are {states.shape[2]} wide but the model reads {text_dim} "
                         f"(the Wan umT5-XXL encoder: core's Load CLIP with umt5_xxl, type wan)")
    states = states[:, :text_len].float()
    if states.shape[1] < text_len:
        states = torch.cat([states, states.new_zeros(1, text_len - states.shape[1], text_dim)], dim=1)
    return states


def text_states(positive, negative, text_len: int, text_dim: int) -> torch.Tensor:
    """``[2, text_len, text_dim]``: the prompt's and the negative prompt's states (the negative is needed
    for guidance; without one the prompt stands in, which is what guidance 1 computes anyway)."""
    if positive is None:
        raise InputError("connect the prompt's CONDITIONING to 'positive' too (only 'negative' is connected)")
    pos = states_from_conditioning(positive, text_len, text_dim, "positive")
    neg = pos if negative is None else states_from_conditioning(negative, text_len, text_dim, "negative")
    return torch.cat([pos, neg], dim=0)


def grey_tokens_from_clip_vision(clip_vision) -> torch.Tensor:
    """``[1, tokens, hidden]``: a CLIP_VISION model's penultimate-layer tokens of a mid-grey image."""
    return clip_vision_tokens(clip_vision, torch.full((CLIP_SIZE, CLIP_SIZE, 3), GREY))


def clip_vision_tokens(clip_vision, image: torch.Tensor) -> torch.Tensor:
    """``[1, tokens, hidden]``: a CLIP_VISION model's penultimate-layer tokens of ``image`` ``[H, W, 3]`` (0..1)."""
    encode = getattr(clip_vision, "encode_image", None)
    if encode is None:
        raise InputError(f"clip_vision: expected a CLIP_VISION model (core's Load CLIP Vision), "
                         f"got {type(clip_vision).__name__}")
    output = encode(torch.as_tensor(image).float().unsqueeze(0))
    tokens = getattr(output, "penultimate_hidden_states", None)
    if tokens is None and hasattr(output, "__getitem__"):
        tokens = output["penultimate_hidden_states"]
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 3:
        raise InputError("clip_vision: its output has no [1, tokens, hidden] penultimate_hidden_states")
    return tokens[:1].float().cpu()
