"""Recipe v4: v3's scenes with their textures varied in colour and pattern (data/procedural/appearance.py)."""

import json

import numpy as np
import pytest
import torch

from more4d_core.data.procedural.appearance import PATTERNS, PHOTO_CHANGES, change_photo, pattern, vary_texture
from more4d_core.data.procedural.scene_generator import RECIPES, build_world, generate_sample
from more4d_core.train.loop import TrainArgs, train


def test_v4_scenes_are_v3_scenes_in_other_colours():
    changed = 0
    for seed in range(12):
        a = generate_sample(seed, "train", 24, 32, 5, recipe="v3")
        b = generate_sample(seed, "train", 24, 32, 5, recipe="v4")
        assert a.caption == b.caption
        for key in ("tracks", "depth", "object_id", "visibility", "camera_poses"):
            assert torch.equal(getattr(a, key), getattr(b, key)), key
        assert a.params["objects"] == b.params["objects"] and a.params["movers"] == b.params["movers"]
        changed += not torch.equal(a.image, b.image)
    assert changed >= 6  # each of 5-7 textures per scene is varied with p 0.5


def test_about_half_of_the_textures_are_varied_and_all_stay_in_range():
    varied = total = 0
    for seed in range(40):
        v3 = build_world(seed, "train", 24, 32, recipe="v3")
        v4 = build_world(seed, "train", 24, 32, recipe="v4")
        for a, b in zip(v3.everything, v4.everything):
            assert a.texture.shape == b.texture.shape and a.texture.dtype == b.texture.dtype
            assert float(b.texture.min()) >= 0.0 and float(b.texture.max()) <= 1.0
            varied += not torch.equal(a.texture, b.texture)
            total += 1
    assert 0.38 < varied / total < 0.62  # VARY_PROB = 0.5 of about 230 textures


def test_the_evaluation_default_stays_v2_unvaried_and_unknown_recipes_are_refused():
    with pytest.raises(ValueError, match="recipe"):
        generate_sample(0, "validation", 24, 32, 3, recipe="v9")
    for split in ("validation", "heldout"):  # the evaluation generates with the default recipe: v2, never varied
        default, v2 = generate_sample(3, split, 24, 32, 3), generate_sample(3, split, 24, 32, 3, recipe="v2")
        assert default.params["recipe"] == "v2" and torch.equal(default.image, v2.image)


def _texture(seed=0):
    return torch.from_numpy(np.random.default_rng(seed).random((3, 16, 16))).float()


def test_each_photo_change_does_what_its_name_says():
    tex = _texture()
    rng = np.random.default_rng(1)
    assert torch.allclose(change_photo(change_photo(tex, "invert", rng), "invert", rng), tex, atol=1e-6)
    perm = change_photo(tex, "channels", rng)
    assert not torch.equal(perm, tex) and torch.equal(perm.sort(dim=0).values, tex.sort(dim=0).values)
    grey = change_photo(tex, "grey_tint", rng)
    ratio = grey / grey[:1].clamp_min(1e-6)  # a tinted grey: each channel a fixed multiple of the first
    assert torch.allclose(ratio, ratio[:, :1, :1].expand_as(ratio), atol=1e-4)
    mixed = change_photo(tex, "colour_mix", rng)
    assert float(mixed.min()) >= 0 and float(mixed.max()) <= 1  # convex mixing of the channels
    blurred = change_photo(tex, "blur", rng)
    assert blurred.std() < 0.6 * tex.std() and abs(float(blurred.mean() - tex.mean())) < 0.02
    low = change_photo(tex, "contrast", np.random.default_rng(2))
    assert torch.allclose(low.mean(dim=(1, 2)), tex.mean(dim=(1, 2)), atol=1e-5)  # contrast about the mean
    with pytest.raises(ValueError, match="unknown texture change"):
        change_photo(tex, "sepia", rng)
    assert set(PHOTO_CHANGES) == {"channels", "invert", "gamma", "contrast", "grey_tint", "colour_mix", "blur"}


@pytest.mark.parametrize("name", PATTERNS)
def test_patterns_are_two_coloured_or_between_two_colours(name):
    p = pattern(name, 32, np.random.default_rng(5))
    assert p.shape == (3, 32, 32) and float(p.min()) >= 0 and float(p.max()) <= 1
    colours = torch.unique(p.reshape(3, -1).T, dim=0)
    if name != "noise":
        assert len(colours) == 2
    else:  # smooth noise: a blend a*t + b*(1-t) of the two colours, so every colour lies on one segment
        d = colours - colours[:1]
        direction = d[d.norm(dim=1).argmax()]
        assert torch.allclose(torch.linalg.cross(d, direction.expand_as(d)), torch.zeros_like(d), atol=1e-5)


def test_vary_texture_returns_the_input_untouched_or_a_new_tensor_in_range():
    tex = _texture(3)
    keep = 0
    for seed in range(60):
        out = vary_texture(tex, np.random.default_rng(seed))
        assert out.shape == tex.shape and float(out.min()) >= 0 and float(out.max()) <= 1
        keep += out is tex
    assert 15 < keep < 45
    assert torch.equal(tex, _texture(3))  # the input was never changed in place


def test_training_with_recipe_v4_trains_on_it_and_says_so(tmp_path):
    out = train(TrainArgs(config="more4d-tiny", out=str(tmp_path / "run"), steps=1, batch_size=2, warmup=1,
                          recipe="v4", checkpoint_every=1, scale_samples=4))
    info = json.loads((out / "step-0000001" / "trainer.json").read_text())
    assert info["data_recipe"].startswith(RECIPES["v4"]) and "v4" in info["data_recipe"]
