"""Training on the model's own sampling path (train/rollout.py, ``--rollout``)."""

import pytest
import torch

from more4d_core.errors import InputError
from more4d_core.generator import build_generator
from more4d_core.models.config import MORE4D_TINY
from more4d_core.sampling.conditioning import encode_conditions
from more4d_core.sampling.flow_sampler import sample_flow
from more4d_core.train.examples import ProceduralExamples, collate
from more4d_core.train.objective import FlowMatchingObjective, batch_fields
from more4d_core.train.rollout import check_rollout, draw_rollouts, rollout_states, schedule_sigmas

DCT_TINY = MORE4D_TINY.replace(codec="dct", dct_coefficients=4, temporal_compression=1)


def test_the_schedule_is_the_shifted_sampler_schedule():
    sigmas = schedule_sigmas(10, 5.0)
    assert sigmas.shape == (11,) and sigmas[0] == pytest.approx(1.0) and sigmas[-1] == 0.0
    # diffusers spaces the unshifted levels evenly from 1 to its smallest, then shifts each: s' = 5 s / (1 + 4 s)
    unshifted = sigmas[:-1] / (5.0 - 4.0 * sigmas[:-1])
    steps = unshifted[:-1] - unshifted[1:]
    assert torch.allclose(steps, steps[0].expand_as(steps), atol=1e-5)


def test_a_state_after_k_steps_of_a_model_that_knows_the_answer_is_that_answer_noised_to_the_step():
    # velocity (x - c) / sigma: the model's clean estimate is c at every step, so after k Euler steps the state is
    # exactly (1 - sigma_k) c + sigma_k noise, whatever k each row takes
    sigmas = schedule_sigmas(10, 5.0)
    gen = torch.Generator().manual_seed(0)
    c, noise = torch.randn(4, 3, 2, 2, generator=gen), torch.randn(4, 3, 2, 2, generator=gen)
    ks = torch.tensor([1, 8, 0, 4])

    def velocity(x, t, rows):
        return (x - c[rows]) / (t / 1000.0).view(-1, 1, 1, 1)

    got = rollout_states(velocity, noise, ks, sigmas)
    for i, k in enumerate(ks.tolist()):
        s = float(sigmas[k])
        assert torch.allclose(got[i], (1 - s) * c[i] + s * noise[i], atol=1e-5), k
    assert torch.equal(got[2], noise[2])  # no step: the noise itself


def test_all_steps_of_the_rollout_are_the_samplers_steps():
    # an arbitrary nonlinear velocity: the rollout carried through every step lands where the run-time sampler does
    noise = torch.randn(3, 2, 4, generator=torch.Generator().manual_seed(1))

    def velocity(x, t):
        return torch.sin(3 * x) * (t / 1000.0).view(-1, 1, 1) + 0.1 * x

    want = sample_flow(velocity, noise, steps=6, shift=3.0)
    got = rollout_states(lambda x, t, rows: velocity(x, t), noise, torch.full((3,), 6), schedule_sigmas(6, 3.0))
    assert torch.allclose(got, want, atol=1e-5)


def test_the_draw_picks_the_share_and_never_the_first_or_last_step():
    ks = draw_rollouts(4000, 0.25, 10, torch.Generator().manual_seed(2))
    picked = ks[ks > 0]
    assert 0.22 < len(picked) / 4000 < 0.28
    assert picked.min() == 1 and picked.max() == 8  # 8 = steps - 2: the state before the last two steps
    assert torch.equal(draw_rollouts(5, 0.0, 10, torch.Generator()), torch.zeros(5, dtype=torch.int64))


@pytest.mark.parametrize("share, steps", [(1.5, 10), (-0.1, 10), (0.5, 2)])
def test_bad_rollouts_are_refused(share, steps):
    with pytest.raises(InputError, match="rollout"):
        check_rollout(share, steps)


@pytest.fixture(scope="module")
def tiny():
    gen = build_generator(DCT_TINY, seed=0)
    ds = ProceduralExamples("train", DCT_TINY.height, DCT_TINY.width, DCT_TINY.num_frames)
    batch = collate([ds[i] for i in range(3)])
    with torch.no_grad():
        x0 = gen.codec.encode_field(batch_fields(batch, DCT_TINY.normalization)).float()
        conditions = encode_conditions(DCT_TINY, gen.codec, gen.transformer, batch["image"], batch["depth"],
                                       DCT_TINY.num_frames)
        text = gen.text_encoder(batch["caption"])
    return gen, batch, x0, conditions, text


def _with_velocity(objective, monkeypatch, velocity):
    """The objective's transformer answers ``velocity(noisy, sigma)`` (the noisy latents are its input's first channels)."""
    channels = DCT_TINY.latent_channels

    def forward(latents, timestep, text, **kwargs):
        return velocity(latents[:, :channels], (timestep / 1000.0).view(-1, 1, 1, 1, 1))

    monkeypatch.setattr(objective.transformer, "forward", forward)


@pytest.mark.parametrize("model", ["still", "oracle"])
def test_rollout_rows_get_the_state_its_noise_level_and_the_velocity_to_the_truth(tiny, monkeypatch, model):
    gen, batch, x0, conditions, text = tiny
    objective = FlowMatchingObjective(gen.transformer, gen.text_encoder, gen.codec, text_dropout=0.0, rollout=1.0)
    sigmas = schedule_sigmas(10, DCT_TINY.shift)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(3))
    sigma = torch.full((3, 1, 1, 1, 1), 0.5)
    noisy, target = (1 - sigma) * x0 + sigma * noise, noise - x0
    ks = torch.tensor([0, 3, 8])
    x0 = x0[1:2].expand_as(x0).clone()  # one truth for every row: the oracle below needs no row index
    noisy, target = (1 - sigma) * x0 + sigma * noise, noise - x0
    if model == "still":  # a model that never moves: its state stays the noise
        _with_velocity(objective, monkeypatch, lambda x, s: torch.zeros_like(x))
    else:  # a model that knows the true x0
        _with_velocity(objective, monkeypatch, lambda x, s: (x - x0[: len(x)]) / s)
    got_noisy, got_sigma, got_target = objective._rollout(conditions, text, x0, noise, ks, noisy, sigma, target)
    assert torch.equal(got_noisy[0], noisy[0]) and torch.equal(got_target[0], target[0]) and got_sigma[0] == 0.5
    for i in (1, 2):
        s = float(sigmas[ks[i]])
        assert float(got_sigma[i]) == pytest.approx(s)
        if model == "still":
            assert torch.allclose(got_noisy[i], noise[i])
            assert torch.allclose(got_target[i], (noise[i] - x0[i]) / s, atol=1e-5)
        else:  # the state is the truth noised to the step, and the target is plain flow matching's
            assert torch.allclose(got_noisy[i], (1 - s) * x0[i] + s * noise[i], atol=1e-5)
            assert torch.allclose(got_target[i], target[i], atol=1e-4)


def test_a_rollout_step_trains_through_the_last_pass_only(tiny, monkeypatch):
    gen, batch, *_ = tiny
    objective = FlowMatchingObjective(gen.transformer, gen.text_encoder, gen.codec, text_dropout=0.0, rollout=1.0)
    calls = []
    original = gen.transformer.forward

    def recording(latents, timestep, text, **kwargs):
        calls.append((len(latents), timestep.detach().clone(), torch.is_grad_enabled()))
        return original(latents, timestep, text, **kwargs)

    monkeypatch.setattr(gen.transformer, "forward", recording)
    loss = objective(batch, torch.Generator().manual_seed(4))
    loss.backward()
    sigmas = schedule_sigmas(10, DCT_TINY.shift)
    *rollout, last = calls
    assert rollout and not any(grad for _, _, grad in rollout)  # the path is taken without gradients
    assert last[0] == 3 and last[2]
    steps = [round(float(t), 3) for t in last[1]]
    allowed = [round(float(s) * 1000, 3) for s in sigmas[1:9]]
    assert all(t in allowed for t in steps)  # every row trains at a schedule level reached by its rollout
    assert len(rollout) == max(allowed.index(t) + 1 for t in steps)  # one batched pass per step of the longest
    assert rollout[0][1][0] == pytest.approx(1000.0)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in gen.transformer.parameters())
