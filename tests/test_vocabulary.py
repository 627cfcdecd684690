"""How the built-in word encoder reads a user's prompt: trained words, synonyms, unknown words."""

import logging

import pytest
import torch

from more4d_core.camera.intrinsics import intrinsics_from_fov
from more4d_core.data.procedural.scene_generator import generate_sample
from more4d_core.generator import build_generator
from more4d_core.models.config import MORE4D_SMALL, MORE4D_TINY, STraGConfig
from more4d_core.models.text_encoders import WordHashTextEncoder, hash_words
from more4d_core.models.vocabulary import KNOWN_WORDS, read_prompt


@pytest.mark.parametrize("prompt, expected", [
    ("the cube rotates counter-clockwise fast", "the box spins counterclockwise quickly"),
    ("The sphere comes closer", "the ball moves toward the camera"),
    ("the ball slides right quickly", "the ball moves right quickly"),
    ("it jumps", "object bounces"),
    ("the cat drifts to the left slowly", "the object moves left slowly"),
    ("the subject goes up", "the object moves up"),
    ("the person moves towards the viewer", "the object moves toward the camera"),
    ("the disk expands", "the disc grows"),
    ("the car drives away", "the object moves away"),
    ("the balloon gets bigger", "the ball grows"),
    ("the plate gets smaller", "the disc shrinks"),
    ("the kid climbs up quickly", "the object moves up quickly"),
    ("the ball falls down", "the ball moves down"),
    ("the person is approaching", "the object moves toward the camera"),
    ("the flag is swaying gently", "the card waves slowly"),
    ("the cube is spinning clockwise", "the box spins clockwise"),
])
def test_synonyms_and_generic_subjects_become_trained_words(prompt, expected):
    reading = read_prompt(prompt, 24)
    assert reading.text == expected
    assert not reading.unknown and not reading.warnings
    assert set(reading.words) <= KNOWN_WORDS


def test_nouns_spelled_like_a_motion_verb_stay_nouns():
    # "drop", "fall", "sink", "race", "march" and "sail" are nouns as often as verbs: only their unambiguous verb
    # forms are read as motion, so a noun is reported as unknown instead of becoming a motion the user did not ask for
    reading = read_prompt("a water drop falls", 24)
    assert reading.unknown == ["water", "drop"]
    assert reading.text == "moves down"
    for noun in ("fall", "sink", "race", "march", "sail"):
        assert read_prompt(f"the {noun}", 24).unknown == [noun]


def test_unknown_words_are_named_not_silently_dropped():
    reading = read_prompt("the ball flutters majestically over the meadow", 24)
    assert reading.unknown == ["majestically", "over", "meadow"]
    assert reading.text == "the ball waves the"
    assert any("majestically, over, meadow" in w for w in reading.warnings)
    assert reading.to_dict()["unknown"] == ["majestically", "over", "meadow"]


def test_prompts_without_a_known_word_or_in_another_script_say_so():
    other_script = read_prompt("猫が右に動く", 24)
    assert other_script.words == [] and any("script" in w for w in other_script.warnings)
    nothing_known = read_prompt("lorem ipsum", 24)
    assert any("no word the model knows" in w for w in nothing_known.warnings)
    assert read_prompt("", 24).warnings == []  # the empty prompt is a prompt: nothing moves


def test_long_prompts_are_reported_not_cut_silently():
    prompt = " and ".join(["the ball moves left"] * 8)  # 8 x 4 words + 7 x "and" = 39 words the model reads
    reading = read_prompt(prompt, 24)
    assert len(reading.words) == 39 and len(reading.kept) == 24
    assert any("at most 24" in w for w in reading.warnings)


def test_every_procedural_caption_reads_without_unknown_words():
    for recipe in ("v2", "v3"):
        for seed in range(40):
            s = generate_sample(seed, "train", 24, 32, 3, with_visibility=False, recipe=recipe)
            reading = read_prompt(s.caption, 24)
            assert not reading.unknown and not reading.warnings, (s.caption, reading.unknown)


def test_encoder_tokens_follow_the_reading_and_open_models_keep_every_word():
    enc = WordHashTextEncoder(4096, 16, 24, 1, words="procedural")
    ids = enc.tokenize(["the cube rotates", "the box spins", "the box spins wildly"])
    assert torch.equal(ids[0], ids[1]) and torch.equal(ids[1], ids[2])  # synonym = trained word; unknown dropped
    assert ids[0, :3].tolist() == hash_words("the box spins", 4096, 24)
    old = WordHashTextEncoder(4096, 16, 24, 1, words="open")
    assert old.tokenize(["the cube rotates"])[0, :3].tolist() == hash_words("the cube rotates", 4096, 24)


def test_configs_written_before_the_vocabulary_read_every_word():
    d = MORE4D_SMALL.to_dict()
    d.pop("text_vocabulary")
    d["config_version"] = 2
    assert STraGConfig.from_dict(d).text_vocabulary == "open"
    assert STraGConfig.from_dict(MORE4D_SMALL.to_dict()).text_vocabulary == "procedural"
    with pytest.raises(Exception, match="text_vocabulary"):
        MORE4D_SMALL.replace(text_vocabulary="klingon")


def test_generation_names_unknown_words_in_the_log_and_the_metadata(caplog):
    gen = build_generator(MORE4D_TINY.replace(text_vocabulary="procedural"))
    h, w = MORE4D_TINY.height, MORE4D_TINY.width
    with caplog.at_level(logging.WARNING, logger="more4d"):
        scene = gen.generate(torch.rand(h, w, 3), torch.ones(h, w) * 3, intrinsics_from_fov(h, w, 60.0),
                             "the ball zooms left", steps=1)
    reading = scene.metadata["prompt_reading"]
    assert reading["unknown"] == ["zooms"] and reading["read"] == "the ball left"
    assert "zooms" in caplog.text
