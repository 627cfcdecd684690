"""The mean of several denoiser samples: a lower-variance estimate of the motion a prompt asks for.

One flow-matching sample is one draw from what the model believes; part of it is the seed's noise
(on the small model, points of one sliding object spread around their mean by about a tenth of the
motion, differently for every seed). The mean of ``N`` samples of the same conditions is an estimate
of the model's posterior mean, which scores closer to the truth than any single draw when the
motion is pinned down by the prompt (docs/bundled-model-history.md: the evaluation of ``sample_average``). The price is
``N`` times the sampling time; diversity across seeds shrinks too, which is the point.

Sample ``k`` starts from the ``k``-th successive draw of one generator seeded with the seed, so
sample 0 is exactly the single sample of that seed (``N = 1`` changes nothing) and every ``N``
shares its first samples with every larger ``N``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from ..errors import InputError

MAX_SAMPLE_AVERAGE = 64


def check_sample_average(count) -> int:
    """``count`` as an int in [1, MAX_SAMPLE_AVERAGE], else an :class:`InputError` saying what is allowed."""
    if isinstance(count, bool) or not isinstance(count, (int, float)) or int(count) != count:
        raise InputError(f"the number of samples to average must be a whole number, got {count!r}")
    if not 1 <= int(count) <= MAX_SAMPLE_AVERAGE:
        raise InputError(f"the number of samples to average must be between 1 and {MAX_SAMPLE_AVERAGE}, got {count}")
    return int(count)


def sample_noises(shape: tuple[int, ...], seed: int, count: int, device, dtype=torch.float32) -> Iterator[torch.Tensor]:
    """``count`` Gaussian noises of ``shape``: successive draws of one CPU generator seeded with ``seed``
    (the first is :func:`.flow_sampler.seeded_noise` of that seed), each moved to ``device``."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    for _ in range(check_sample_average(count)):
        yield torch.randn(shape, generator=gen, dtype=torch.float32).to(device=device, dtype=dtype)


def mean_of_samples(sample: Callable[[int, torch.Tensor, Callable[[int, int], None] | None], torch.Tensor],
                    noises: Iterator[torch.Tensor] | list[torch.Tensor], count: int,
                    progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """The mean of ``sample(k, noise, step_progress)`` over ``count`` noises (``k`` the sample's number from 0),
    accumulated in float32 one sample at a time (the memory of one sample). ``progress(done, total)`` counts the
    steps of all samples together."""
    total, done = None, 0
    for k, noise in enumerate(noises):
        if k >= count:
            break

        def step_progress(i: int, steps: int, k=k) -> None:
            if progress is not None:
                progress(k * steps + i, count * steps)

        latents = sample(k, noise, step_progress).float()
        total = latents if total is None else total + latents
        done += 1
    if done != count:
        raise InputError(f"{count} samples to average but {done} noises to start them from")
    return total / count
