"""Mirror averaging: half of the averaged samples drawn on the mirrored image, mirrored back.

The small models are trained on clips and their mirror images alike (the training examples are
mirrored about the vertical image axis half of the time, their captions with left and right, clockwise
and counterclockwise swapped), so the motion a model draws for the mirrored image and caption,
mirrored back, is a draw of the same motion. A model is not exactly mirror-symmetric, though: part of
what it gets wrong on one image (one side of a sliding object drawn faster than the other) turns the
other way on the mirrored one. With ``mirror_average`` on, every odd-numbered sample of
:mod:`.sample_average`'s mean is generated on the mirrored image, depth and prompt and mirrored back,
so the mean is taken over both orientations at the cost of the same number of samples (one extra
encoding of the conditions and of the mirrored prompt).

Measured on the bundled file (docs/bundled-model-history.md, "Mirror averaging, judged"): it did not help. The
model's accuracy on one scene swings by as much with the image's orientation as with the seed, so the mirrored
samples are another draw of its per-scene error rather than one that cancels it; validation's moving points fell
(0.528 -> 0.511). The bundled file's default is off; the option stays for the evaluation and for models that are
closer to mirror-symmetric.

Mirroring the cosine-basis latents (:class:`..models.trajectory_codec.TemporalBasisCodec`, channels
``[x coefficients | y coefficients | z coefficients]`` of the focal-unit displacement) is exact:
flip the width and negate the x channels. Other codecs (the Wan VAE's latents) have no such map, and
external text conditioning has no caption to mirror, so for them it stays off.
"""

from __future__ import annotations

import re

import torch

from ..errors import InputError
from .switches import SWITCH_MODES, switch_mode

_SWAPS = {"left": "right", "right": "left", "clockwise": "counterclockwise", "counterclockwise": "clockwise"}
_SWAP_RE = re.compile(r"\b(left|right|clockwise|counterclockwise)\b")
MIRROR_SETTINGS = SWITCH_MODES


def mirror_caption(caption: str) -> str:
    """The caption of the horizontally mirrored clip (left <-> right, clockwise <-> counterclockwise).

    It swaps the trained words; a user's prompt is mirrored after it is read (its synonyms mapped onto them)."""
    return _SWAP_RE.sub(lambda m: _SWAPS[m.group(1)], caption)


def mirror_latents(latents: torch.Tensor, coefficients: int) -> torch.Tensor:
    """Cosine-basis latents ``[B, 3K, T', h, w]`` of the mirrored clip: width flipped, the ``K`` x channels negated."""
    if latents.ndim != 5 or latents.shape[1] != 3 * coefficients:
        raise InputError(f"mirroring needs cosine-basis latents of {3 * coefficients} channels [B, C, T, h, w], "
                         f"got {list(latents.shape)}")
    out = latents.flip(-1).clone()
    out[:, :coefficients] = -out[:, :coefficients]
    return out


def mirror_image(image: torch.Tensor) -> torch.Tensor:
    """An image or depth map (width last) mirrored about its vertical axis."""
    return image.flip(-1)


def mirror_averaging(setting, model_default: bool, *, codec: str, samples: int, caption_known: bool) -> tuple[bool, str]:
    """Whether a generation mirrors its odd samples, and why (for the scene's metadata).

    "auto" follows the model's default; "on" asks for it and is refused where it cannot work (a codec
    without a mirror map, text conditioning given as encoder states or an encoder that cannot read its words);
    one sample has nothing to average, so it is off."""
    name = switch_mode(setting, "mirror_average")
    wanted = model_default if name == "auto" else name == "on"
    if not wanted:
        return False, "off"
    blocked = None
    if codec != "dct":
        blocked = f"the model's codec ({codec}) has no mirror map of its latents"
    elif not caption_known:
        blocked = "the prompt's words are not known (text conditioning given as encoder states), so it cannot be mirrored"
    if blocked is not None:
        if name == "on":
            raise InputError(f"mirror averaging cannot run here: {blocked}; set it to auto or off")
        return False, f"off ({blocked})"
    if samples < 2:
        return False, "off (one sample: nothing to average)"
    return True, "on"
