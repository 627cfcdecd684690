"""Recipe v5: v3's scenes with spins and growth drawn twice as often among a mover's motions."""

import json
from collections import Counter

from more4d_core.data.procedural.scene_generator import RECIPES, build_world, generate_sample
from more4d_core.train.loop import TrainArgs, train

# captions of these seeds as the generator made them before recipe v5 existed (recorded from git 5d2e90c)
V3_TRAIN_0_9 = ["the disc slides up quickly, while the camera moves back", "the card ripples",
                "the disc spins clockwise slowly", "the ball moves away quickly and the disc shrinks", "the disc bounces",
                "", "the ball shrinks", "the card spins clockwise slowly, while the camera pans right",
                "the card ripples, while the camera moves forward",
                "the box spins clockwise slowly and the ball moves away slowly"]
V2_VALIDATION_0_3 = ["the disc slides down quickly, while the camera pans right", "the card bounces",
                     "the card ripples, while the camera moves forward", "the disc waves, while the camera moves back"]


def test_v2_and_v3_scenes_are_what_they_were_before_v5():
    assert [generate_sample(s, "train", 24, 32, 2, with_visibility=False, recipe="v3").caption
            for s in range(10)] == V3_TRAIN_0_9
    assert [generate_sample(s, "validation", 24, 32, 2, with_visibility=False).caption
            for s in range(4)] == V2_VALIDATION_0_3


def _mix(recipe, count=1500):
    kinds, shapes = Counter(), Counter()
    for seed in range(count):
        for obj in build_world(seed, "train", 24, 32, recipe=recipe).movers:
            kinds[obj.motion.kind] += 1
            shapes[obj.motion.kind, obj.shape.kind] += 1
    total = sum(kinds.values())
    return {k: v / total for k, v in kinds.items()}, shapes


def test_v5_draws_spins_and_growth_twice_as_often_as_v3():
    # a mover is a ball or a box (kinds: 2 translate, bounce, spin, grow) or a flat card or disc (those and 2 waves,
    # a bend) with equal chance; v5 lists spin and grow once more: spin = grow = (2/7 + 2/10) / 2, v3 (1/5 + 1/8) / 2
    v3, _ = _mix("v3")
    v5, shapes = _mix("v5")
    for kind in ("spin", "grow"):
        assert abs(v3[kind] - (1 / 5 + 1 / 8) / 2) < 0.035, (kind, v3[kind])
        assert abs(v5[kind] - (2 / 7 + 2 / 10) / 2) < 0.035, (kind, v5[kind])
    assert abs(v5["translate"] - (2 / 7 + 2 / 10) / 2) < 0.035 and v5["translate"] < v3["translate"] - 0.03
    assert shapes["grow", "card"] > 0 and shapes["spin", "sphere"] > 0  # flat objects grow too, balls spin
    assert shapes["wave", "sphere"] == 0 and shapes["bend", "box"] == 0  # non-rigid motions stay the cards'


def test_v5_keeps_v3s_scene_kinds_and_generic_subjects():
    captions = [generate_sample(s, "train", 24, 32, 2, with_visibility=False, recipe="v5").caption for s in range(150)]
    assert any(c in ("", "nothing moves", "the scene is still", "everything stays still") for c in captions)
    assert any(c.startswith("the camera ") for c in captions)
    assert any(c.startswith(("it ", "the object", "the subject", "the thing", "the main object")) for c in captions)


def test_training_with_recipe_v5_trains_on_it_and_says_so(tmp_path):
    out = train(TrainArgs(config="more4d-tiny", out=str(tmp_path / "run"), steps=1, batch_size=2, warmup=1,
                          recipe="v5", checkpoint_every=1, scale_samples=4))
    info = json.loads((out / "step-0000001" / "trainer.json").read_text())
    assert info["data_recipe"].startswith(RECIPES["v5"])
