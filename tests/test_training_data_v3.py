"""Training data recipe v3, the validation split, depth perturbation and the motion-weighted loss."""

import numpy as np
import pytest
import torch

from more4d_core.data.procedural.scene_generator import GENERIC_SUBJECTS, STILL_CAPTIONS, generate_sample
from more4d_core.data.procedural.textures import HELDOUT_PHOTOS, TRAIN_PHOTOS, VALIDATION_PHOTOS
from more4d_core.errors import InputError
from more4d_core.generator import build_generator
from more4d_core.models.config import MORE4D_TINY
from more4d_core.train.depth_noise import KINDS, perturb_depth
from more4d_core.train.examples import ProceduralExamples, collate
from more4d_core.train.loop import TrainArgs, train
from more4d_core.train.objective import MOTION_SIZE_REFERENCE, FlowMatchingObjective, motion_weights

ROOM = 4


def test_the_three_splits_share_no_photograph_and_no_scene():
    assert not set(VALIDATION_PHOTOS) & (set(TRAIN_PHOTOS) | set(HELDOUT_PHOTOS))
    a, b, c = (generate_sample(5, split, 24, 32, 3, with_visibility=False) for split in ("train", "validation", "heldout"))
    assert not torch.equal(a.image, b.image) and not torch.equal(b.image, c.image)


def _v3(count=300):
    return [generate_sample(seed, "train", 24, 32, 5, with_visibility=False, recipe="v3") for seed in range(count)]


def test_v3_has_still_and_camera_only_scenes_whose_objects_do_not_move():
    samples = _v3()
    still = [s for s in samples if not s.params["movers"] and not s.params["camera"]["phrase"]]
    camera_only = [s for s in samples if not s.params["movers"] and s.params["camera"]["phrase"]]
    assert 10 <= len(still) <= 40 and 8 <= len(camera_only) <= 40  # 8% and 7% of 300
    for s in still:
        assert s.caption in STILL_CAPTIONS
        assert torch.equal(s.tracks, s.tracks[:1].expand_as(s.tracks))  # nothing moves at all
    for s in camera_only:
        assert s.caption == f"the camera {s.params['camera']['phrase']}"
        # every point moves by minus the camera's displacement (the world stands still)
        shift = -torch.tensor(s.params["camera"]["vector"], dtype=s.tracks.dtype)
        assert torch.allclose(s.tracks[-1] - s.tracks[0], shift.expand_as(s.tracks[0]), atol=1e-4)


def test_v3_names_the_most_prominent_object_generically_and_only_then():
    generic = 0
    for s in _v3():
        subject = next((g for g in GENERIC_SUBJECTS if s.caption.startswith(g + " ")), None)
        if subject is None:
            continue
        generic += 1
        assert len(s.params["movers"]) == 1
        areas = torch.bincount(s.object_id[0].reshape(-1), minlength=len(s.params["objects"]))[ROOM:]
        assert int(areas.argmax()) + ROOM == s.params["movers"][0]
    assert generic >= 10


def test_v3_draws_more_multi_object_scenes_than_v2():
    def multi(recipe):
        return np.mean([len(generate_sample(seed, "train", 24, 32, 2, with_visibility=False, recipe=recipe)
                                .params["objects"]) > ROOM + 1 for seed in range(200)])
    assert multi("v2") < 0.75 < multi("v3")  # 2/3 vs 4/5 of the scenes


@pytest.mark.parametrize("kind", KINDS)
def test_each_depth_perturbation_changes_the_depth_and_keeps_it_valid(kind):
    s = generate_sample(1, "train", 48, 64, 2, with_visibility=False)
    depth = s.depth[0]
    noisy = perturb_depth(depth, np.random.default_rng(0), kinds=(kind,))
    assert noisy.shape == depth.shape and torch.isfinite(noisy).all() and (noisy > 0).all()
    assert not torch.allclose(noisy, depth)
    again = perturb_depth(depth, np.random.default_rng(0), kinds=(kind,))
    assert torch.equal(noisy, again)


def test_a_disparity_shift_keeps_the_depth_order():
    depth = torch.linspace(1.0, 8.0, 64).view(8, 8).double()
    noisy = perturb_depth(depth, np.random.default_rng(3), kinds=("disparity_shift",))
    assert torch.all(noisy.view(-1)[1:] > noisy.view(-1)[:-1])
    assert not torch.allclose(noisy / depth, (noisy / depth).mean().expand_as(depth))  # ratios change


def test_training_examples_perturb_only_the_depth_input():
    clean = ProceduralExamples("train", 24, 32, 5, recipe="v3", mirror_prob=0.0)
    noisy = ProceduralExamples("train", 24, 32, 5, recipe="v3", mirror_prob=0.0, depth_noise=1.0)
    a, b = clean[3], noisy[3]
    assert torch.equal(a["tracks"], b["tracks"]) and torch.equal(a["image"], b["image"])  # the target is the truth
    assert not torch.equal(a["depth"], b["depth"])
    assert torch.allclose(a["depth"], a["tracks"][0, ..., 2], rtol=1e-5)  # the clean input is the true depth


def test_motion_weights_mark_the_cells_whose_points_move():
    field = torch.zeros(2, 3, 5, 8, 8)
    field[0, 0, 2:, 0:2, 4:6] = 0.05  # sample 0: a 2x2 patch in latent cell (0, 2) moves right
    field[1, 2, 1, 7, 7] = 0.001  # sample 1: below the threshold
    w = motion_weights(field, (4, 4), 3.0)
    assert w.shape == (2, 1, 1, 4, 4)
    expected = torch.ones(2, 4, 4)
    expected[0, 0, 2] = 4.0
    assert torch.equal(w[:, 0, 0], expected)


def test_motion_weights_price_small_motions_by_their_size():
    ref = MOTION_SIZE_REFERENCE
    field = torch.zeros(3, 3, 5, 8, 8)
    field[0, 0, 2:, 0:4, 0:4] = ref  # a motion of the reference size: priced as before
    field[1, 2, 2:, 0:4, 0:4] = ref / 4  # a quarter of it (a bend's size): (4 ** power), up to the cap
    field[2, 1, 1, 7, 7] = 0.001  # nothing above the threshold: no moving cell
    moving = torch.zeros(4, 4)
    moving[0:2, 0:2] = 1.0
    for power, cap, small in ((0.0, 8.0, 1.0), (1.0, 8.0, 4.0), (2.0, 8.0, 8.0), (2.0, 32.0, 16.0)):
        w = motion_weights(field, (4, 4), 3.0, size_power=power, size_cap=cap)[:, 0, 0]
        assert torch.allclose(w[0], 1 + 3.0 * moving)
        assert torch.allclose(w[1], 1 + 3.0 * small * moving), (power, cap)
        assert torch.equal(w[2], torch.ones(4, 4))
    big = torch.zeros(1, 3, 5, 8, 8)
    big[0, 0, 2:, 0:4, 0:4] = 4 * ref  # larger than the reference: never priced down
    assert torch.allclose(motion_weights(big, (4, 4), 3.0, size_power=2.0)[0, 0, 0], 1 + 3.0 * moving)


def test_the_size_price_reaches_the_loss_and_bad_prices_are_refused(monkeypatch):
    import more4d_core.train.objective as objective_module

    gen = build_generator(MORE4D_TINY, seed=0)
    data = ProceduralExamples("train", MORE4D_TINY.height, MORE4D_TINY.width, MORE4D_TINY.num_frames, recipe="v3")
    batch = collate([data[i] for i in range(2)])
    seen = []
    real = objective_module.motion_weights
    monkeypatch.setattr(objective_module, "motion_weights", lambda *a: seen.append(a) or real(*a))
    for power in (0.0, 2.0):
        objective = FlowMatchingObjective(gen.transformer, gen.text_encoder, gen.codec, text_dropout=0.0,
                                          motion_weight=3.0, motion_size_power=power, motion_size_cap=5.0)
        with torch.no_grad():
            objective(batch, torch.Generator().manual_seed(0))
    assert [a[-2:] for a in seen] == [(0.0, 5.0), (2.0, 5.0)]
    for kwargs, match in ((dict(motion_weight=3.0, motion_size_power=-1.0), "power >= 0"),
                          (dict(motion_weight=3.0, motion_size_power=2.0, motion_size_cap=0.5), "cap >= 1"),
                          (dict(motion_size_power=2.0), "needs a motion weight")):
        with pytest.raises(InputError, match=match):
            FlowMatchingObjective(gen.transformer, gen.text_encoder, gen.codec, **kwargs)


def test_a_training_run_hands_its_size_price_to_the_objective(tmp_path, monkeypatch):
    import more4d_core.train.loop as loop_module

    class Stop(Exception):
        pass

    def objective(*args, **kwargs):
        raise Stop(kwargs)

    monkeypatch.setattr(loop_module, "FlowMatchingObjective", objective)
    with pytest.raises(Stop) as stop:
        train(TrainArgs(config="more4d-tiny", out=str(tmp_path / "run"), steps=1, batch_size=1, motion_weight=3.0,
                        motion_size_power=2.0, motion_size_cap=6.0))
    kwargs = stop.value.args[0]
    assert (kwargs["motion_size_power"], kwargs["motion_size_cap"]) == (2.0, 6.0)
