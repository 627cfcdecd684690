"""Clause composition: a prompt of several object clauses sampled clause by clause and composed by the gate."""

import json

import pytest
import torch
from tiny_models import GATE_INTRINSICS as K
from tiny_models import TINY_GATE
from tiny_models import force_gate as _force_everywhere
from tiny_models import gate_inputs as _inputs

from more4d_core.checkpoints.defaults import main as defaults_main
from more4d_core.errors import InputError
from more4d_core.generator import build_generator, load_generator
from more4d_core.models.config import MORE4D_TINY, STraGConfig
from more4d_core.models.vocabulary import read_prompt
from more4d_core.sampling.clause_composition import (
    ClausePlan,
    clause_progress,
    compose_latents,
    composition_kind,
    plan_clauses,
)
from more4d_core.sampling.generation_notes import generation_notes

KW = dict(num_frames=9, steps=2, still_threshold=0.0)


def _clauses(prompt: str) -> list[str]:
    """The object clauses composition "gate" samples, or the whole prompt's words as one item."""
    words = read_prompt(prompt).kept
    plan = plan_clauses(words)
    return [" ".join(words)] if plan is None else list(plan.objects)


def _gate_halves_by_text(monkeypatch, gen, halves: dict) -> None:
    """Make the generator's gate give, for a text in ``halves`` (read when the gate is called, so the test may change
    it), probability ``left`` on the left half of its grid and ``right`` on the right half; other texts keep the
    model's gate."""
    from more4d_core import generator as generator_module

    real = generator_module.gate_probability

    def by_text(transformer, objects, text):
        p = real(transformer, objects, text)
        for clause, (left, right) in halves.items():
            if torch.equal(text, gen.text_encoder([clause, ""]).to(text)):
                p = p.clone()
                w = p.shape[-1] // 2
                p[..., :w], p[..., w:] = left, right
        return p

    monkeypatch.setattr(generator_module, "gate_probability", by_text)


def test_only_prompts_of_two_or_more_object_clauses_are_split():
    assert _clauses("the card moves away quickly and the box slides right quickly") == [
        "the card moves away quickly", "the box moves right quickly"]
    assert _clauses("The ball bounces, and the cube rotates and it grows") == [
        "the ball bounces", "the box spins", "object grows"]
    # "toward the camera" inside an object clause is a direction, not a camera clause
    assert _clauses("the ball moves toward the camera and the disc waves") == [
        "the ball moves toward the camera", "the disc waves"]
    for whole in ("the ball slides left quickly",  # one clause
                  "the ball and the box slide right",  # a piece without a verb: one motion of two subjects
                  "the ball slides left and the card waves, while the camera pans right",  # a camera clause
                  "the camera pans left and the ball bounces",
                  "nothing moves and the scene is still",  # no subject
                  ""):
        assert _clauses(whole) == [" ".join(read_prompt(whole).kept)], whole


def test_gate_camera_also_splits_object_clauses_that_come_with_one_camera_clause():
    def plan(prompt):
        return plan_clauses(read_prompt(prompt).kept, "gate_camera")

    two = plan("the card bends toward the camera and the ball slides right slowly, while the camera pans left")
    assert two == ClausePlan(("the card bends toward the camera", "the ball moves right slowly"), "the camera pans left")
    assert two.sampled("the ball moves right slowly") == "the ball moves right slowly, while the camera pans left"
    assert two.samplings == 3
    # one object clause, and the camera clause first
    assert plan("the camera rises and the ball bounces") == ClausePlan(("the ball bounces",), "the camera rises")
    # without a camera clause "gate_camera" splits as "gate" does; the plan then samples each clause alone
    objects = plan("the ball bounces and the card waves")
    assert objects == ClausePlan(("the ball bounces", "the card waves")) and objects.sampled("the card waves") == (
        "the card waves") and objects.samplings == 2
    for whole in ("the camera pans left",  # the camera alone
                  "the ball bounces",
                  "the ball bounces, while the camera pans left and the camera rises",  # two camera clauses
                  "the ball and the box slide right, while the camera pans left",  # a piece without a verb
                  "nothing moves, while the camera pans left"):
        assert plan(whole) is None, whole
    # "gate" leaves prompts with a camera clause whole, "none" every prompt
    assert plan_clauses(read_prompt("the ball bounces, while the camera pans left").kept, "gate") is None
    assert plan_clauses(read_prompt("the ball bounces and the card waves").kept, "none") is None


def test_each_position_takes_the_most_likely_clause_if_it_reaches_the_threshold():
    first, second = torch.full((1, 2, 1, 1, 3), 1.0), torch.full((1, 2, 1, 1, 3), 2.0)
    p_first = torch.tensor([[[0.9, 0.1, 0.15]]])
    p_second = torch.tensor([[[0.5, 0.8, 0.1]]])  # the last position: both below 0.2
    out, summary = compose_latents([first, second], [p_first, p_second], 0.2)
    assert out[0, :, 0, 0].tolist() == [[1.0, 2.0, 0.0]] * 2
    assert summary == {"moving_share": round(2 / 3, 4), "clause_shares": [round(1 / 3, 4), round(1 / 3, 4)],
                       "threshold": 0.2}
    # a coarser gate grid is brought to the latent grid bilinearly (edges clamped): [0.9, 0.1] -> 0.9, 0.7, 0.3, 0.1
    out, _ = compose_latents([torch.ones(1, 1, 1, 1, 4), torch.full((1, 1, 1, 1, 4), 2.0)],
                             [torch.tensor([[[0.9, 0.1]]]), torch.tensor([[[0.1, 0.5]]])], 0.2)
    # the second clause's bilinear values: 0.1, 0.2, 0.4, 0.5
    assert out.flatten().tolist() == [1.0, 1.0, 2.0, 2.0]
    with pytest.raises(InputError, match="one gate probability per clause"):
        compose_latents([first], [p_first, p_second], 0.2)


def test_positions_no_object_clause_claims_take_the_camera_clause_where_its_gate_lets_them_move():
    first, camera = torch.full((1, 2, 1, 1, 4), 1.0), torch.full((1, 2, 1, 1, 4), 5.0)
    p_first = torch.tensor([[[0.9, 0.1, 0.1, 0.1]]])
    p_camera = torch.tensor([[[0.2, 0.9, 0.9, 0.1]]])  # the last position: still for the camera too
    out, summary = compose_latents([first], [p_first], 0.3, rest=(camera, p_camera))
    assert out[0, :, 0, 0].tolist() == [[1.0, 5.0, 5.0, 0.0]] * 2
    assert summary == {"moving_share": 0.75, "clause_shares": [0.25], "camera_share": 0.5, "threshold": 0.3}


def test_modes_follow_the_model_default_and_progress_spans_the_clauses():
    assert [composition_kind(m, "gate") for m in ("auto", None, "on", "off", True, False)] == [
        "gate", "gate", "gate", "none", "gate", "none"]
    assert [composition_kind(m, "gate_camera") for m in ("auto", "on", "off")] == ["gate_camera", "gate_camera", "none"]
    assert [composition_kind(m, "none") for m in ("auto", "on", "off")] == ["none", "gate", "none"]
    with pytest.raises(InputError, match="clause_composition must be one of auto, on, off"):
        composition_kind("yes", "gate")
    seen = []
    report = clause_progress(lambda done, total: seen.append((done, total)), 1, 2)
    report(3, 10)
    assert seen == [(13, 20)] and clause_progress(None, 0, 2) is None


def test_the_config_checks_the_field_and_older_files_sample_the_whole_prompt():
    with pytest.raises(InputError, match="clause_composition must be one of none, gate"):
        TINY_GATE.replace(clause_composition="yes")
    with pytest.raises(InputError, match="needs motion_gate"):
        MORE4D_TINY.replace(clause_composition="gate")
    composed = TINY_GATE.replace(clause_composition="gate")
    data = json.loads(composed.to_json())
    assert data["config_version"] >= 11 and STraGConfig.from_dict(data) == composed
    data.pop("clause_composition")
    data["config_version"] = 9
    assert STraGConfig.from_dict(data).clause_composition == "none"


def test_the_generator_samples_each_clause_from_the_same_noise_and_composes_by_the_gate(monkeypatch):
    gen = build_generator(TINY_GATE.replace(clause_composition="gate"), seed=0)
    _force_everywhere(gen.transformer.motion_gate, 20.0)
    image, depth = _inputs()
    prompt = "the ball slides left and the card bounces"
    whole = gen.generate(image, depth, K, prompt, clause_composition="off", **KW)
    first = gen.generate(image, depth, K, "the ball slides left", **KW)
    second = gen.generate(image, depth, K, "the card bounces", **KW)
    assert not torch.allclose(first.points, whole.points, atol=1e-4)  # the clause alone is another motion
    # a gate that lets everything move for every clause: ties go to the first clause everywhere
    tied = gen.generate(image, depth, K, prompt, **KW)
    assert torch.equal(tied.points, first.points) and not torch.allclose(tied.points, second.points, atol=1e-4)
    assert tied.metadata["motion_gate"]["clauses"] == ["the ball slides left", "the card bounces"]
    assert tied.metadata["motion_gate"]["clause_shares"] == [1.0, 0.0]
    assert any("2 clauses were sampled one by one" in line for line in generation_notes(tied.metadata))
    # the gate gives the left half to the first clause and the right half to the second: the decoded motion is
    # linear in the latents, so the composed motion is the sum of the two clauses' gated motions
    _gate_halves_by_text(monkeypatch, gen, {"the ball slides left": (1.0, 0.0), "the card bounces": (0.0, 1.0)})
    composed = gen.generate(image, depth, K, prompt, **KW)
    left = gen.generate(image, depth, K, "the ball slides left", **KW)
    right = gen.generate(image, depth, K, "the card bounces", **KW)
    p0 = composed.points[:1]
    assert torch.allclose(composed.points - p0, (left.points - p0) + (right.points - p0), atol=1e-5)
    assert composed.metadata["motion_gate"]["clause_shares"] == [0.5, 0.5]
    for moved in (left, right):
        assert (moved.points - p0).abs().max() > 1e-4
    # with the gate off, or the composition off, the whole prompt is sampled at once
    assert torch.equal(gen.generate(image, depth, K, prompt, motion_gate="off", **KW).points,
                       gen.generate(image, depth, K, prompt, motion_gate="off", clause_composition="on", **KW).points)
    assert "clauses" not in gen.generate(image, depth, K, prompt, clause_composition="off", **KW).metadata["motion_gate"]


def test_the_defaults_tool_writes_the_composition_and_the_evaluation_passes_it_along(tmp_path, monkeypatch, capsys):
    from tiny_models import record_generate_option

    from more4d_core.checkpoints import bundle
    from more4d_core.eval import protocol

    gen = build_generator(TINY_GATE, seed=0)
    src = tmp_path / "gated.safetensors"
    bundle.save_bundle(src, gen.config, {"transformer": gen.transformer, "codec": gen.codec,
                                         "text_encoder": gen.text_encoder}, {})
    out = tmp_path / "composed.safetensors"
    assert defaults_main([str(src), "--out", str(out), "--clause-composition", "gate"]) == 0
    loaded = load_generator(out)
    assert loaded.config.clause_composition == "gate" and load_generator(src).config.clause_composition == "none"
    assert bundle.read_header(out).info["defaults_set"][-1]["after"] == {"clause_composition": "gate"}
    seen = record_generate_option(monkeypatch, loaded, "clause_composition")
    result = protocol.evaluate(loaded, split="validation", samples=2, seed=0, mean_samples=1, with_controls=False,
                               clause_composition="off", log=lambda *_: None)
    assert set(seen) == {"off"} and result["clause_composition"] == "none"
    result = protocol.evaluate(loaded, split="validation", samples=2, seed=0, mean_samples=1, with_controls=False,
                               log=lambda *_: None)
    assert result["clause_composition"] == "gate"
    assert protocol.evaluate(loaded, split="validation", samples=2, seed=0, mean_samples=1, with_controls=False,
                             depth="prior", log=lambda *_: None)["clause_composition"] == "none"  # the gate is off there


def test_the_defaults_tool_sets_the_gate_threshold_and_refuses_a_model_without_a_gate(tmp_path):
    from more4d_core.checkpoints import bundle
    from more4d_core.checkpoints.defaults import set_defaults

    def save(cfg, name):
        gen = build_generator(cfg, seed=0)
        path = tmp_path / name
        bundle.save_bundle(path, cfg, {"transformer": gen.transformer, "codec": gen.codec,
                                       "text_encoder": gen.text_encoder}, {})
        return path

    gated = save(TINY_GATE, "gated.safetensors")
    out = set_defaults(gated, tmp_path / "t03.safetensors", motion_gate_threshold=0.3)
    assert load_generator(out).config.motion_gate_threshold == 0.3
    assert load_generator(gated).config.motion_gate_threshold == 0.5  # the input is untouched
    with pytest.raises(InputError, match="motion_gate_threshold must be in"):
        set_defaults(gated, tmp_path / "bad.safetensors", motion_gate_threshold=1.5)
    assert not (tmp_path / "bad.safetensors").exists()
    with pytest.raises(InputError, match="has no motion gate"):
        set_defaults(save(MORE4D_TINY, "plain.safetensors"), tmp_path / "p.safetensors", motion_gate_threshold=0.3)


def test_with_gate_camera_each_object_clause_is_sampled_with_the_camera_clause_and_the_rest_takes_the_camera(
        monkeypatch):
    gen = build_generator(TINY_GATE.replace(clause_composition="gate_camera"), seed=0)
    image, depth = _inputs()
    prompt = "the ball bounces, while the camera rises"  # the tiny model reads 8 words
    joint, ball, camera = prompt, "the ball bounces", "the camera rises"
    halves = {}
    _gate_halves_by_text(monkeypatch, gen, halves)
    # the object clause alone finds the ball in the left half; with the camera clause everything moves (as a real
    # gate says of a moving camera), so a composition that read the joint text's gate would give it everything
    halves.update({ball: (1.0, 0.0), joint: (1.0, 1.0), camera: (1.0, 1.0)})
    composed = gen.generate(image, depth, K, prompt, **KW)
    gate = composed.metadata["motion_gate"]
    assert gate["clauses"] == [ball] and gate["camera_clause"] == camera
    assert gate["clause_shares"] == [0.5] and gate["camera_share"] == 0.5 and gate["moving_share"] == 1.0
    assert any('each with "the camera rises"' in line for line in generation_notes(composed.metadata))
    # the left half moves as the joint text, the right half as the camera clause alone; the decoded motion is
    # linear in the latents, so the composition is the sum of the two gated generations
    halves.update({joint: (1.0, 0.0), camera: (0.0, 1.0)})
    left = gen.generate(image, depth, K, joint, clause_composition="off", **KW)
    right = gen.generate(image, depth, K, camera, **KW)
    p0 = composed.points[:1]
    for moved in (left, right):
        assert (moved.points - p0).abs().max() > 1e-4
    assert torch.allclose(composed.points - p0, (left.points - p0) + (right.points - p0), atol=1e-5)
    # a model whose default is "gate" samples the same prompt whole
    gen.config = gen.config.replace(clause_composition="gate")
    assert "clauses" not in gen.generate(image, depth, K, prompt, **KW).metadata["motion_gate"]


def test_the_clause_note_gives_each_clause_its_share_and_the_camera_its_own():
    from more4d_core.sampling.clause_composition import describe_clauses

    assert describe_clauses({"clauses": ["the ball moves left", "the box spins"], "clause_shares": [0.25, 0.1]}) == (
        'the prompt\'s 2 clauses were sampled one by one and each moves what the gate gives it ("the ball moves left" '
        '25%, "the box spins" 10% of the image); set clause_composition to off to sample the whole prompt at once')
    line = describe_clauses({"clauses": ["the ball moves left"], "clause_shares": [0.25],
                             "camera_clause": "the camera pans left", "camera_share": 0.5})
    assert line == ('the prompt\'s 1 object clause(s) were sampled one by one, each with "the camera pans left", and '
                    'each moves what the gate gives it ("the ball moves left" 25% of the image); the rest moves as '
                    '"the camera pans left" alone (50%); set clause_composition to off to sample the whole prompt at '
                    'once')
    assert "alone (0%)" in describe_clauses({"clauses": ["the ball moves left"], "clause_shares": [0.25],
                                             "camera_clause": "the camera pans left"})
