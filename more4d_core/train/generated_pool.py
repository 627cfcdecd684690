"""Training pairs for the learned temporal decoder read from a model's own output ("generated pool").

The codec pool (:func:`.decoder_fit.pixel_pool`) teaches the decoder what the cosines miss of *true*
trajectories. At run time the decoder reads the denoiser's coefficients instead, which miss more than
the cosines do: a depth motion made too small, a bounce's height made too low. Here the model generates
each training scene as the evaluation's headline row does (its defaults, no still hold, no smoothing);
each pixel's output coefficients, decoded as at run time (upsampled guided by the depth the model was
given), are the input, and what the pixel's *true* trajectory adds to those coefficients' cosine curve is
the target. A decoder fitted to such pairs is a decoder of this denoiser's output (as image decoders are
fine-tuned on a diffusion model's latents); it is still positively 1-homogeneous, so what the model and
its motion gate hold still stays exactly still.

The generator's decode step is observed, not changed: :func:`recorded_decode` wraps the codec's
``decode_tracks`` for the length of one ``with`` block.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from ..data.procedural.scene_generator import generate_sample
from ..geometry.normalization import factors_for, safe_depth
from ..models.trajectory_codec import tracks_to_field
from .decoder_fit import select_pixels
from .depth_noise import perturb_depth
from .objective import peak_motion


@contextmanager
def recorded_decode(generator):
    """Within the block, every ``generator.codec.decode_tracks`` call appends ``(latents, points0)`` to the
    yielded list (detached copies); the codec is restored on leaving, also on an error."""
    codec, seen = generator.codec, []
    original = codec.decode_tracks
    own = "decode_tracks" in vars(codec)  # an instance attribute (another wrapper) is put back as it was

    def recording(latents, points0, *args, **kwargs):
        seen.append((latents.detach().float().cpu().clone(), points0.detach().float().cpu().clone()))
        return original(latents, points0, *args, **kwargs)

    codec.decode_tracks = recording
    try:
        yield seen
    finally:
        if own:
            codec.decode_tracks = original
        else:
            del codec.decode_tracks  # the class's method is back


def generated_pairs(model, sample, depth: torch.Tensor, seed: int, pixels: int,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One scene's pairs from ``model`` (a :class:`..generator.TrajectoryGenerator` with the dct codec) given
    ``depth`` ``[H, W]`` for the procedural ``sample``: (its output coefficients in latent units ``[P, 3K]``,
    the true trajectory minus their cosines' curve ``[P, 3, T]``)."""
    cfg, codec = model.config, model.codec
    frames = sample.tracks.shape[0]
    h, w = depth.shape
    with recorded_decode(model) as seen, torch.no_grad():
        model.generate(sample.image, depth, sample.intrinsics, sample.caption, seed=seed, depth_source="true",
                       still_threshold=0.0, motion_smoothing=0.0)
    latents, points0 = seen[-1]
    if tuple(points0.shape[1:3]) != (h, w):
        raise ValueError(f"the generated pool needs the output grid at the depth's size {h}x{w}, got "
                         f"{tuple(points0.shape[1:3])}")
    with torch.no_grad():
        coeffs = codec.output_coefficients(codec._coefficients(latents), torch.log(safe_depth(points0[..., 2])))
        field = tracks_to_field(sample.tracks.reshape(1, frames, h, w, 3).float(),
                                factors_for(cfg.normalization, sample.intrinsics, h, w))
        missing = (field - codec.basis_field(coeffs, frames))[0].flatten(2).permute(2, 0, 1)  # [HW, 3, T]
        units = (coeffs / codec.latent_scale.view(1, -1, 1, 1))[0].flatten(1).T  # [HW, 3K]
        pick = select_pixels(peak_motion(field)[0].flatten(), units, pixels, generator)
    return units[pick], missing[pick]


def generated_pool(model, *, scenes: int, pixels: int, seed: int, recipe: str, depth_noise: float = 0.5,
                   seed_stride: int = 10**7, log=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs of ``scenes`` train-split scenes (seeds ``seed * seed_stride + i``, data ``recipe``); with
    probability ``depth_noise`` a scene's depth input is a perturbed copy of the true depth (the training's
    kinds of depth error, :mod:`.depth_noise`). Half precision, as the codec pool."""
    cfg = model.config
    draw = torch.Generator().manual_seed(seed)
    units, missing = [], []
    for i in range(scenes):
        index = seed * seed_stride + i
        s = generate_sample(index, "train", cfg.height, cfg.width, cfg.num_frames, recipe=recipe,
                            with_visibility=False)
        rng = np.random.default_rng((11, index))
        depth = perturb_depth(s.depth[0], rng) if rng.random() < depth_noise else s.depth[0]
        u, m = generated_pairs(model, s, depth, i, pixels, draw)
        units.append(u.half())
        missing.append(m.half())
        if log is not None and ((i + 1) % 50 == 0 or i + 1 == scenes):
            log(f"temporal decoder: generated pool {i + 1}/{scenes} scenes")
    return torch.cat(units), torch.cat(missing)
