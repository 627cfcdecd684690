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
from more4d_core.train.rollout import (
    check_rollout,
    draw_rollouts,
    own_rigid_rows,
    own_rigid_target,
    rollout_states,
    schedule_sigmas,
)

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
    got_noisy, got_sigma, got_target = objective._rollout(batch, conditions, text, x0, noise, ks, noisy, sigma, target)
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


def test_the_own_rigid_target_keeps_the_models_common_motion_and_drops_its_spread():
    # a 4 x 4 latent grid of 4 x 4-pixel cells; object 3 (id 4) covers 2 x 2 whole cells plus half of two more cells,
    # object 5 is a non-rigid mover in the grid's last column
    ids = torch.zeros(1, 16, 16, dtype=torch.int64)
    ids[0, 0:8, 0:8] = 4
    ids[0, 8:10, 0:8] = 4  # half of cells (2, 0) and (2, 1)
    loose = torch.zeros(1, 16, 16, dtype=torch.bool)
    loose[0, :, 13:16] = True  # three quarters of each cell of column 3
    f = torch.zeros(4, 4)
    f[0:2, 0:2], f[2, 0:2] = 1.0, 0.5
    m_true = torch.tensor([0.3, -0.2]).view(2, 1, 1, 1)  # [C, T, 1, 1]: the mover's one motion, two channels
    truth = (f * m_true).unsqueeze(0)  # [1, 2, 1, 4, 4]
    truth[0, :, :, :, 3] = 0.7  # whatever the non-rigid mover does
    d = torch.tensor([0.1, 0.05]).view(2, 1, 1, 1)  # the model's own common error: slower, off course
    bump = torch.zeros(2, 1, 4, 4)
    bump[:, :, 0, 0], bump[:, :, 1, 1] = 0.2, -0.2  # a spread of speed over the mover that sums to zero against f
    own = truth + (f * d + bump).unsqueeze(0)
    own[0, :, :, :, 3] = -1.0  # its own estimate of the non-rigid mover
    own[0, :, :, 3, 2] = 0.9  # and a motion where nothing moves
    got = own_rigid_target(truth, own, ids, loose)
    want = truth + (f * d).unsqueeze(0)
    want[0, :, :, :, 3] = -1.0  # cells of the non-rigid mover: the model's own
    assert torch.allclose(got, want, atol=1e-6)
    assert got[0, 0, 0, 3, 2] == 0.0  # a still cell keeps the truth


def test_only_still_camera_scenes_with_a_rigid_mover_roll_out_and_the_maps_follow_the_generator():
    from more4d_core.data.procedural.scene_generator import generate_sample

    ds = ProceduralExamples("train", DCT_TINY.height, DCT_TINY.width, DCT_TINY.num_frames, recipe="v3", mirror_prob=0)
    # train seeds (recipe v3): 0 a slide under a camera move, 3 a slide and a shrink, 6 a shrink, 17 a bend and a bounce
    batch = collate([ds[i] for i in (0, 3, 6, 17)])
    assert own_rigid_rows(batch).tolist() == [False, True, False, True]
    s = generate_sample(3, "train", DCT_TINY.height, DCT_TINY.width, DCT_TINY.num_frames, with_visibility=False,
                        recipe="v3")
    ball, disc = s.params["movers"]  # "the ball moves away quickly and the disc shrinks"
    assert torch.equal(batch["rigid_ids"][1] == ball + 1, s.object_id[0] == ball)
    assert torch.equal(batch["rigid_ids"][1] > 0, s.object_id[0] == ball)
    assert torch.equal(batch["loose_mask"][1], s.object_id[0] == disc)
    mirrored = ProceduralExamples("train", DCT_TINY.height, DCT_TINY.width, DCT_TINY.num_frames, recipe="v3",
                                  mirror_prob=1.0)[3]
    assert torch.equal(mirrored["rigid_ids"], batch["rigid_ids"][1].flip(-1))
    assert not bool(mirrored["camera_moves"]) and bool(batch["camera_moves"][0])
    with pytest.raises(InputError, match="own_rigid"):
        own_rigid_rows({"image": batch["image"]})
    with pytest.raises(InputError, match="rollout-target"):
        check_rollout(0.5, 10, "mean")


def test_own_rigid_rollouts_land_on_the_rigid_target_of_the_models_own_estimate(monkeypatch):
    ds = ProceduralExamples("train", DCT_TINY.height, DCT_TINY.width, DCT_TINY.num_frames, recipe="v3", mirror_prob=0)
    batch = collate([ds[i] for i in (3, 0)])
    gen = build_generator(DCT_TINY, seed=0)
    objective = FlowMatchingObjective(gen.transformer, gen.text_encoder, gen.codec, text_dropout=0.0, rollout=1.0,
                                      rollout_target="own_rigid")
    with torch.no_grad():
        x0 = gen.codec.encode_field(batch_fields(batch, DCT_TINY.normalization)).float()
        conditions = encode_conditions(DCT_TINY, gen.codec, gen.transformer, batch["image"], batch["depth"],
                                       DCT_TINY.num_frames)
        text = gen.text_encoder(batch["caption"])
    shift = torch.randn(x0.shape[1:], generator=torch.Generator().manual_seed(5))
    # a model whose clean estimate is always a fixed field: after k steps its state is that field noised to sigma_k
    _with_velocity(objective, monkeypatch, lambda x, s: (x - shift) / s)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(6))
    sigma = torch.full((2, 1, 1, 1, 1), 0.5)
    noisy, target = (1 - sigma) * x0 + sigma * noise, noise - x0
    ks = torch.tensor([5, 0])
    got_noisy, got_sigma, got_target = objective._rollout(batch, conditions, text, x0, noise, ks, noisy, sigma, target)
    s5 = float(schedule_sigmas(10, DCT_TINY.shift)[5])
    state = (1 - s5) * shift + s5 * noise[0]
    assert torch.allclose(got_noisy[0], state, atol=1e-5)
    land = own_rigid_target(x0[:1], shift.unsqueeze(0), batch["rigid_ids"][:1], batch["loose_mask"][:1])[0]
    assert torch.allclose(got_target[0], (state - land) / s5, atol=1e-4)
    assert not torch.allclose(land, x0[0], atol=1e-3) and not torch.allclose(land, shift, atol=1e-3)
    assert torch.equal(got_target[1], target[1])


def test_own_rigid_rollouts_skip_scenes_without_a_rigid_mover_under_a_still_camera(monkeypatch):
    ds = ProceduralExamples("train", DCT_TINY.height, DCT_TINY.width, DCT_TINY.num_frames, recipe="v3")
    gen = build_generator(DCT_TINY, seed=0)
    calls = []
    original = gen.transformer.forward
    monkeypatch.setattr(gen.transformer, "forward", lambda *a, **k: calls.append(len(a[0])) or original(*a, **k))
    for picks, rolled in (((0, 6), False), ((3, 6), True)):  # a slide under a camera move and a shrink; then a slide
        calls.clear()
        objective = FlowMatchingObjective(gen.transformer, gen.text_encoder, gen.codec, text_dropout=0.0, rollout=1.0,
                                          rollout_target="own_rigid")
        objective(collate([ds[i] for i in picks]), torch.Generator().manual_seed(7))
        assert (len(calls) > 1) == rolled and calls[-1] == 2
        assert all(n == 1 for n in calls[:-1])  # only the eligible row rolls out (and gets its own estimate)
