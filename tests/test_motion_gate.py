"""The motion gate (motion_gate="attention"): which positions move at all, fitted after training on frozen
features, applied to the sampled motion latents; its target, its fit, the command that adds it to a model
file, the generator's on/off switch, what users are told, and warm starts from a gated file."""

import math
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import GATE_INTRINSICS as K
from tiny_models import TINY_GATE
from tiny_models import force_gate as _force
from tiny_models import gate_inputs as _inputs

from more4d_core.errors import InputError
from more4d_core.generator import build_generator, load_generator
from more4d_core.models.config import MORE4D_TINY, STraGConfig
from more4d_core.models.motion_gate import MotionGate
from more4d_core.sampling.motion_gating import apply_motion_gate, describe_gate, gate_enabled, gate_mask
from more4d_core.train.examples import ProceduralExamples
from more4d_core.train.gate_fit import add_motion_gate, fit_motion_gate, main
from more4d_core.train.objective import moving_mask


def test_the_config_checks_the_gate_and_old_files_have_none():
    with pytest.raises(InputError, match="motion_gate must be one of"):
        TINY_GATE.replace(motion_gate="mask")
    with pytest.raises(InputError, match="needs object_encoder"):
        MORE4D_TINY.replace(motion_gate="attention")
    with pytest.raises(InputError, match="motion_gate_threshold"):
        TINY_GATE.replace(motion_gate_threshold=1.0)
    assert STraGConfig.from_dict(TINY_GATE.to_dict()) == TINY_GATE
    old = {**TINY_GATE.to_dict(), "config_version": 6}
    old.pop("motion_gate")
    assert STraGConfig.from_dict(old).motion_gate == "none"


def test_the_gate_logit_is_the_log_odds_of_some_word_over_still():
    gate = MotionGate(TINY_GATE)
    with torch.no_grad():
        for p in gate.parameters():
            p.zero_()
        gate.query.weight[0, 0] = 1.0
        gate.key.weight[0, 0] = 1.0
        gate.nothing_key[0] = 1.0  # "still" scores the query's unit 0 too
    feats = torch.zeros(1, 16, 1, 2)
    feats[0, 0, 0] = torch.tensor([1.0, -2.0])
    text = torch.zeros(1, 3, TINY_GATE.text_dim)
    text[0, 0, 0], text[0, 1, 0] = 2.0, -1.0  # two words; the third is padding
    logits = gate(feats, text).detach()
    for pos, f in enumerate([1.0, -2.0]):
        still, words = f / math.sqrt(2), [f * 2.0 / math.sqrt(2), f * -1.0 / math.sqrt(2)]
        expected = math.log(sum(math.exp(w) for w in words)) - still
        assert float(logits[0, 0, pos]) == pytest.approx(expected, abs=1e-5)
    assert (gate(feats, torch.zeros(1, 3, TINY_GATE.text_dim)) < -100).all()  # an empty prompt: still everywhere


def test_the_mask_brings_the_probability_to_the_latent_grid_bilinearly_and_thresholds_it():
    p = torch.tensor([[[0.9, 0.1]]])  # [1, 1, 2] -> 4 latent columns at source x -0.25, 0.25, 0.75, 1.25
    # bilinear (edges clamped): 0.9, 0.75 * 0.9 + 0.25 * 0.1 = 0.7, 0.25 * 0.9 + 0.75 * 0.1 = 0.3, 0.1
    assert gate_mask(p, (1, 4), 0.5).flatten().tolist() == [1.0, 1.0, 0.0, 0.0]
    assert gate_mask(p, (1, 4), 0.2).flatten().tolist() == [1.0, 1.0, 1.0, 0.0]
    assert gate_mask(p, (1, 4), 0.5).shape == (1, 1, 1, 1, 4)
    latents = torch.ones(1, 6, 1, 1, 4)
    gated, summary = apply_motion_gate(latents, p, 0.5)
    assert gated[0, :, 0, 0].tolist() == [[1.0, 1.0, 0.0, 0.0]] * 6 and summary == {"moving_share": 0.5, "threshold": 0.5}


def test_the_target_marks_pixels_that_move_more_than_the_threshold_at_some_frame():
    tracks = torch.zeros(3, 2, 2, 3)
    tracks[..., 2] = 2.0  # every point 2 m away; focal normalization: displacement / depth
    tracks[2, 0, 0, 0] += 0.01  # 0.005 at the last frame: moves
    tracks[1, 0, 1, 1] += 0.006  # 0.003 at one frame: below 0.004, still
    tracks[1, 1, 0, 2] += 0.02  # depth change 0.02 / 2 = 0.01: moves
    assert moving_mask(tracks, K, "focal").tolist() == [[True, False], [True, False]]


def test_the_generator_holds_what_the_gate_judges_still_exactly_still():
    gen = build_generator(TINY_GATE, seed=0)
    image, depth = _inputs()
    free = gen.generate(image, depth, K, "the ball slides left", num_frames=9, steps=2, still_threshold=0.0,
                        motion_gate=False)
    assert "motion_gate" not in free.metadata
    assert (free.points - free.points[:1]).abs().max() > 1e-4  # the untrained denoiser moves things
    _force(gen.transformer.motion_gate, -20.0)
    still = gen.generate(image, depth, K, "the ball slides left", num_frames=9, steps=2, still_threshold=0.0)
    assert torch.equal(still.points, still.points[:1].expand_as(still.points))
    assert still.metadata["motion_gate"] == {"moving_share": 0.0, "threshold": 0.5}
    assert "nothing in the image moves" in describe_gate(still.metadata["motion_gate"])
    _force(gen.transformer.motion_gate, 20.0)
    moving = gen.generate(image, depth, K, "the ball slides left", num_frames=9, steps=2, still_threshold=0.0)
    assert torch.equal(moving.points, free.points) and moving.metadata["motion_gate"]["moving_share"] == 1.0
    assert describe_gate(moving.metadata["motion_gate"]) == "the motion gate lets the whole image move"
    empty = gen.generate(image, depth, K, "", num_frames=9, steps=2, still_threshold=0.0)
    assert torch.equal(empty.points, empty.points[:1].expand_as(empty.points))  # an empty prompt moves nothing
    plain = build_generator(MORE4D_TINY, seed=0).generate(image, depth, K, "the ball", num_frames=9, steps=1,
                                                          motion_gate=True)
    assert "motion_gate" not in plain.metadata  # a model without a gate ignores the switch


def test_auto_leaves_the_gate_off_only_on_the_built_in_prior_depth():
    # the policy the README states: auto = on, except for depth from the built-in weight-free prior
    assert [gate_enabled("auto", src) for src in ("prior", "external", "transformers:depth-anything", "unidepth",
                                                  "true", "perturbed", None)] == [False] + [True] * 6
    assert gate_enabled("on", "prior") and not gate_enabled("off", "external")
    assert (gate_enabled(None, "prior"), gate_enabled(True, "prior"), gate_enabled(False, "true")) == (False, True, False)
    with pytest.raises(InputError, match="motion_gate must be one of auto, on, off"):
        gate_enabled("yes", "prior")
    gen = build_generator(TINY_GATE, seed=0)
    _force(gen.transformer.motion_gate, -20.0)  # a gate that holds everything still
    image, depth = _inputs()
    kw = dict(num_frames=9, steps=2, still_threshold=0.0)
    free = gen.generate(image, depth, K, "the ball slides left", motion_gate="off", **kw)
    prior = gen.generate(image, depth, K, "the ball slides left", depth_source="prior", **kw)
    assert torch.equal(prior.points, free.points)  # auto on the prior's depth: the denoiser's motion
    assert prior.metadata["motion_gate"] == {"moving_share": None, "off": "the built-in prior's depth"}
    assert describe_gate(prior.metadata["motion_gate"]).startswith("the motion gate is off for the built-in prior's")
    for source, mode in (("external", "auto"), ("prior", "on")):
        held = gen.generate(image, depth, K, "the ball slides left", depth_source=source, motion_gate=mode, **kw)
        assert torch.equal(held.points, held.points[:1].expand_as(held.points)), (source, mode)


def test_fitting_learns_the_moving_positions_and_changes_nothing_else():
    gen = build_generator(TINY_GATE, seed=0)
    others = {k: v.clone() for k, v in gen.transformer.state_dict().items() if not k.startswith("motion_gate.")}
    data = ProceduralExamples("train", 32, 32, 9, recipe="v3")
    report = fit_motion_gate(gen.transformer, gen.text_encoder, data, steps=80, scenes=24, batch_size=8, lr=1e-2)
    assert report.last_loss < 0.7 * report.first_loss
    assert report.moving_recall > 0.5
    after = gen.transformer.state_dict()
    assert all(torch.equal(after[k], v) for k, v in others.items())
    with pytest.raises(ValueError, match="no motion gate"):
        fit_motion_gate(build_generator(MORE4D_TINY, seed=0).transformer, gen.text_encoder, data, steps=1)


def test_the_command_adds_a_fitted_gate_and_copies_the_rest_of_the_model(tmp_path, capsys):
    from tiny_models import save_encoder_model

    src = tmp_path / "model.safetensors"
    save_encoder_model(src, seed=4)
    before = src.read_bytes()
    out = tmp_path / "gated.safetensors"
    assert main([str(src), "--out", str(out), "--steps", "3", "--scenes", "4", "--threshold", "0.3"]) == 0
    assert "wrote" in capsys.readouterr().out and src.read_bytes() == before
    gated = load_generator(out)
    assert gated.config.motion_gate == "attention" and gated.config.motion_gate_threshold == 0.3
    a, b = load_file(str(src)), load_file(str(out))
    assert set(b) - set(a) == {k for k in b if k.startswith("transformer.motion_gate.")} != set()
    assert all(torch.equal(a[k].half(), b[k]) for k in a)  # the denoiser unchanged (written as float16)
    with pytest.raises(FileExistsError):
        add_motion_gate(src, out, steps=1, scenes=2)
    plain = tmp_path / "plain.safetensors"
    from more4d_core.checkpoints.bundle import save_bundle

    p = build_generator(MORE4D_TINY, seed=0)
    save_bundle(plain, MORE4D_TINY, {"transformer": p.transformer, "codec": p.codec, "text_encoder": p.text_encoder}, {})
    with pytest.raises(ValueError, match="has none"):
        add_motion_gate(plain, tmp_path / "x.safetensors", steps=1, scenes=2)
    assert not (tmp_path / "x.safetensors").exists()


def test_a_warm_start_from_a_gated_model_leaves_the_gate_behind(tmp_path, capsys):
    from tiny_models import save_encoder_model

    from more4d_core.train.loop import TrainArgs, train

    src = tmp_path / "model.safetensors"
    save_encoder_model(src, seed=5)
    gated = tmp_path / "gated.safetensors"
    add_motion_gate(src, gated, steps=2, scenes=2, log=None)
    train(TrainArgs(config="more4d-tiny", out=str(tmp_path / "run"), steps=1, batch_size=1, warmup=1, lr=0.0,
                    checkpoint_every=1, init=str(gated)))
    assert "its motion gate is not carried over" in capsys.readouterr().out
    assert not any(k.startswith("transformer.motion_gate.")
                   for k in load_file(str(tmp_path / "run" / "step-0000001" / "model.safetensors")))


def test_the_runner_and_the_evaluation_pass_the_gate_along(monkeypatch):
    from more4d_core.eval import protocol
    from more4d_core.run import _binding_summary

    doc = {"nodes": [{"id": 3, "type": "More4DGenerate"}]}
    scene = SimpleNamespace(metadata={"motion_gate": {"moving_share": 0.125, "threshold": 0.5}})
    assert _binding_summary(doc, {3: (scene,)}) == [
        "the motion gate lets 12% of the image move; the rest stays exactly still"]
    from tiny_models import record_generate_option

    gen = build_generator(TINY_GATE, seed=0)
    seen = record_generate_option(monkeypatch, gen, "motion_gate")
    result = protocol.evaluate(gen, split="validation", samples=2, seed=0, mean_samples=1, with_controls=False,
                               motion_gate="off", log=lambda *_: None)
    assert seen == ["off"] * 4 and result["motion_gate"] == "off"
    assert protocol.evaluate(gen, split="validation", samples=2, seed=0, mean_samples=1, with_controls=False,
                             log=lambda *_: None)["motion_gate"] == 0.5
    assert seen[4:] == ["auto"] * 4
    sources = record_generate_option(monkeypatch, gen, "depth_source")
    for depth, gate in (("perturbed", 0.5), ("prior", "off")):  # auto: off on the built-in prior's depth only
        assert protocol.evaluate(gen, split="validation", samples=2, seed=0, mean_samples=1, with_controls=False,
                                 depth=depth, log=lambda *_: None)["motion_gate"] == gate
    assert sources == ["perturbed"] * 4 + ["prior"] * 4


def test_a_share_of_the_pool_sees_the_built_in_prior_depth():
    from more4d_core.train.gate_fit import PriorDepthExamples

    data = ProceduralExamples("train", 32, 32, 9, recipe="v3")
    half = PriorDepthExamples(data, 0.5)
    share = sum(half.uses_prior(i) for i in range(2000)) / 2000
    assert 0.45 < share < 0.55
    swapped = next(i for i in range(50) if half.uses_prior(i))
    kept = next(i for i in range(50) if not half.uses_prior(i))
    assert torch.equal(half[kept]["depth"], data[kept]["depth"])
    prior, true = half[swapped], data[swapped]
    assert prior["depth"].shape == true["depth"].shape and not torch.allclose(prior["depth"], true["depth"])
    assert torch.equal(prior["tracks"], true["tracks"])  # the target stays the true motion
    assert not any(PriorDepthExamples(data, 0.0).uses_prior(i) for i in range(100))
    with pytest.raises(ValueError, match="prior-depth share"):
        PriorDepthExamples(data, 1.5)


def test_the_generate_node_tells_the_generator_where_its_depth_came_from(monkeypatch):
    from contextlib import nullcontext

    from more4d_core.cache import MODEL_CACHE
    from more4d_core.depth import DepthResult
    from nodes.generate_nodes import GenerateTrajectories

    gen = build_generator(TINY_GATE, seed=0)
    _force(gen.transformer.motion_gate, -20.0)  # a gate that holds everything still
    monkeypatch.setattr("nodes.generate_nodes.require_handle", lambda *a: None)
    monkeypatch.setattr(MODEL_CACHE, "use", lambda handle: nullcontext(gen))
    image, depth = _inputs()
    points = {}
    for backend in ("prior", "external"):
        result = DepthResult(depth, K, torch.ones(32, 32, dtype=torch.bool), backend)
        (scene,) = GenerateTrajectories().generate(object(), image[None], result, "the ball slides left", "", 0, 2, 0.0,
                                                   5.0, 9, 8.0, 1.0, "32", still_threshold=0.0)
        points[backend] = scene.points
    assert torch.equal(points["external"], points["external"][:1].expand_as(points["external"]))  # gated: still
    assert (points["prior"] - points["prior"][:1]).abs().max() > 1e-4  # auto on the prior's depth: not gated


def _named_scene_indices(data, count):
    """Indices of ``data`` whose scene has a still camera, a mover and two or more nameable objects, found from
    the generator's own parameters (not through ``named_examples``)."""
    from more4d_core.data.procedural.scene_generator import generate_sample

    found = []
    for i in range(200):
        s = generate_sample(data.seed_offset + i, "train", data.height, data.width, 9, with_visibility=False,
                            recipe=data.recipe)
        names = _nameable_if_eligible(s)
        if names:
            found.append((i, s, names))
        if len(found) == count:
            return found
    raise AssertionError("no scene with two nameable objects and a still camera in 200 seeds")


def test_named_examples_say_another_object_and_mark_its_pixels_mirrored_with_the_image():
    import numpy as np

    data = ProceduralExamples("train", 48, 64, 9, recipe="v3", mirror_prob=0.5)
    for index, s, names in _named_scene_indices(data, 4):
        exs = data.named_examples(index, 5, np.random.default_rng(index))
        assert len(exs) == len(names)  # at most one per nameable object, each once
        phrase = s.params["objects"][s.params["movers"][0]]["motion"]["phrase"]
        plain = data[index]
        mirrored = not torch.equal(plain["image"], s.image.permute(2, 0, 1))
        said = set()
        for ex in exs:
            j = next(j for j in names if torch.equal(ex["mover_mask"], (s.object_id[0] == j).flip(-1) if mirrored
                                                     else s.object_id[0] == j))
            said.add(j)
            caption = f"the {s.params['objects'][j]['name']} {phrase}"
            if mirrored:  # a mirror swaps left and right, and the turning sense
                swap = {"left": "right", "right": "left", "clockwise": "counterclockwise",
                        "counterclockwise": "clockwise"}
                caption = " ".join(swap.get(word, word) for word in caption.split())
            assert ex["caption"] == caption
            assert torch.equal(ex["image"], plain["image"]) and torch.equal(ex["depth"], plain["depth"])
        assert said == set(names)
    moving_camera = next(i for i in range(200) if data._sample(i).params["camera"]["phrase"])
    assert data.named_examples(moving_camera, 3, np.random.default_rng(0)) == []


def test_the_fit_adds_named_caption_examples_and_the_command_records_them(tmp_path):
    from tiny_models import save_encoder_model

    gen = build_generator(TINY_GATE, seed=0)
    data = ProceduralExamples("train", 32, 32, 9, recipe="v3")
    plain = fit_motion_gate(gen.transformer, gen.text_encoder, data, steps=2, scenes=16, batch_size=4)
    named = fit_motion_gate(gen.transformer, gen.text_encoder, data, steps=2, scenes=16, batch_size=4, named_captions=2)
    assert plain.named_examples == 0
    from more4d_core.train.gate_fit import named_pool
    from more4d_core.train.scene_pool import POOL_OFFSET

    expected = sum(min(2, len(n)) for n in (_nameable_if_eligible(data._sample(POOL_OFFSET + i)) for i in range(16)))
    assert named.named_examples == expected > 0
    pool = named_pool(data, 16, 2, seed=0)
    assert pool["moving"].shape[0] == expected and len(pool["caption"]) == expected
    with pytest.raises(ValueError, match="named captions"):
        fit_motion_gate(gen.transformer, gen.text_encoder, data, steps=1, scenes=2, named_captions=-1)
    src, out = tmp_path / "model.safetensors", tmp_path / "gated.safetensors"
    save_encoder_model(src, seed=4)
    assert main([str(src), "--out", str(out), "--steps", "2", "--scenes", "24", "--named-captions", "1"]) == 0
    from more4d_core.checkpoints import bundle

    fit = bundle.read_header(out).info["motion_gate_fit"]
    assert fit["named_captions"] == 1 and fit["named_examples"] > 0


def _nameable_if_eligible(s):
    """The objects of sample ``s`` with 30 or more frame-0 pixels (planes aside) when the camera is still, something
    moves and there are two or more of them; else []. Written from the generator's parameters, not the code's helpers."""
    counts = torch.bincount(s.object_id[0].reshape(-1), minlength=len(s.params["objects"]))
    names = [j for j, o in enumerate(s.params["objects"]) if o["kind"] != "plane" and counts[j] >= 30]
    return names if not s.params["camera"]["phrase"] and s.params["movers"] and len(names) >= 2 else []


def test_named_examples_of_the_prior_depth_pool_see_the_prior_depth_too():
    import numpy as np

    from more4d_core.train.gate_fit import PriorDepthExamples

    data = ProceduralExamples("train", 48, 64, 9, recipe="v3")
    index = _named_scene_indices(data, 1)[0][0]
    true = data.named_examples(index, 1, np.random.default_rng(0))[0]
    prior = PriorDepthExamples(data, 1.0).named_examples(index, 1, np.random.default_rng(0))[0]
    assert prior["caption"] == true["caption"] and torch.equal(prior["mover_mask"], true["mover_mask"])
    assert not torch.allclose(prior["depth"], true["depth"])
    kept = PriorDepthExamples(data, 0.0).named_examples(index, 1, np.random.default_rng(0))[0]
    assert torch.equal(kept["depth"], true["depth"])


def test_the_command_leaves_the_callers_random_state_its_own(tmp_path):
    from tiny_models import save_encoder_model

    src = tmp_path / "model.safetensors"
    save_encoder_model(src, seed=4)
    after = []
    for caller_seed in (1, 2):  # the fit seeds itself; what the caller draws next still follows the caller's seed
        torch.manual_seed(caller_seed)
        add_motion_gate(src, tmp_path / f"g{caller_seed}.safetensors", steps=1, scenes=2, log=lambda *_: None)
        after.append(torch.rand(4))
    assert not torch.equal(after[0], after[1])
    a, b = load_file(str(tmp_path / "g1.safetensors")), load_file(str(tmp_path / "g2.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # and the gate is the same whatever state it started in


def test_the_gate_note_counts_the_segments_and_what_they_did():
    base = {"moving_share": 0.5, "pixels": True, "pixel_moving_share": 0.25, "threshold": 0.3}
    assert describe_gate(base) == "the motion gate lets 25% of the image move; the rest stays exactly still"
    assert describe_gate({**base, "object_focus": 1}) == (
        "the motion gate lets 25% of the image move; the rest stays exactly still; 1 other region it was less sure of "
        "held still")
    assert describe_gate({**base, "object_focus": 3}).endswith("still; 3 other regions it was less sure of held still")
    fitted = {"translation": 2, "similarity": 1, "as generated": 1}
    assert describe_gate({**base, "rigid_segments": fitted}) == (
        "the motion gate lets 25% of the image move; the rest stays exactly still; 3 of its 4 moving segments move as "
        "one piece")
    assert describe_gate({**base, "rigid_segments": fitted, "rigid_keeps_size": True}).endswith(
        "move as one piece and keep their size (the prompt names no growth)")
    none_whole = {"translation": 0, "similarity": 0, "as generated": 2}  # nothing kept its size: no such claim
    assert describe_gate({**base, "rigid_segments": none_whole, "rigid_keeps_size": True}).endswith(
        "; 0 of its 2 moving segments move as one piece")
    assert "segments" not in describe_gate({**base, "rigid_segments": {"translation": 0, "similarity": 0,
                                                                         "as generated": 0}})
    grown = {"translation": 0, "similarity": 3, "as generated": 0, "strengthened": 1}
    assert describe_gate({**base, "rigid_segments": grown, "rigid_growth_power": 2.0}).endswith(
        "; 3 of its 3 moving segments move as one piece; 1 of them grows as the prompt names, the fitted size change "
        "strengthened (raised to the power 2)")
    assert "; 2 of them grow as the prompt names" in describe_gate(
        {**base, "rigid_segments": {**grown, "strengthened": 2}, "rigid_growth_power": 1.5})
    assert "grow" not in describe_gate({**base, "rigid_segments": grown})  # no power recorded: nothing strengthened
    assert "grow" not in describe_gate({**base, "rigid_segments": {k: v for k, v in grown.items() if k != "strengthened"},
                                        "rigid_growth_power": 2.0})  # no count recorded: nothing strengthened
    assert "grow" not in describe_gate({**base, "rigid_segments": {**grown, "strengthened": 0},
                                        "rigid_growth_power": 2.0})
