"""One object per clause (sampling.object_focus): which depth segments keep a clause's motion, against layouts and
probabilities built by hand, and the config, defaults tool, generator and node that use it."""

import json

import pytest
import torch
from tiny_models import GATE_INTRINSICS, GATED_DCT, node_switch_results

from more4d_core.errors import InputError
from more4d_core.generator import build_generator
from more4d_core.geometry.projection import backproject_depth
from more4d_core.models.config import STraGConfig
from more4d_core.sampling.object_focus import focus_keep, touching

K = GATE_INTRINSICS


def _scene():
    """Depth 3 (the room) with a named object at depth 1 (rows 4-11, columns 3-10), a second object at depth 1.5
    apart from it (columns 18-25) and a third at depth 2 right behind the first's right side (columns 11-14)."""
    depth = torch.full((20, 30), 3.0)
    depth[4:12, 3:11] = 1.0
    depth[4:12, 18:26] = 1.5
    depth[4:12, 11:15] = 2.0
    return depth, backproject_depth(depth, K).float().reshape(20, 30, 3)


def test_a_clause_keeps_the_object_it_is_surest_of_and_the_far_side_of_its_edges():
    depth, points0 = _scene()
    p = torch.full((20, 30), 0.1)
    p[4:12, 3:11] = 0.9  # the named object
    p[4:12, 18:26] = 0.5  # a second object kept by the threshold 0.3, but 0.5 < 0.8 x 0.9
    p[4:12, 11:15] = 0.4  # the third, kept by the threshold
    keep, held = focus_keep(p[None], points0, 0.3, 0.8)
    assert held == 2
    assert keep[4:12, 3:11].all()  # the named object
    assert keep[4:12, 11].all()  # the third's column at the named one's depth edge: the far side, touching it
    assert not keep[4:12, 12:15].any()  # the rest of the third, a segment of its own, held still
    assert not keep[4:12, 18:26].any()  # the apart one held still
    assert not keep[depth == 3.0].any()
    plain, none = focus_keep(p[None], points0, 0.3, 0.4)  # 0.4 >= 0.4 x 0.9: nothing held
    assert none == 0 and torch.equal(plain, p >= 0.3)
    p[4:12, 11:15] = 0.1
    p[4:12, 18:26] = 0.45  # exactly 0.5 x 0.9 (both halvings exact in binary): not below, so kept
    level, none = focus_keep(p[None], points0, 0.3, 0.5)
    assert none == 0 and level[4:12, 3:11].all() and level[4:12, 18:26].all()


def test_each_clause_is_focused_on_its_own_object_and_the_kept_pixels_joined():
    depth, points0 = _scene()
    first = torch.full((20, 30), 0.05)
    first[4:12, 3:11] = 0.9
    first[4:12, 18:26] = 0.4  # the first clause leaks onto the second object
    second = torch.full((20, 30), 0.05)
    second[4:12, 18:26] = 0.8
    second[4:12, 3:11] = 0.35  # and the second onto the first
    keep, held = focus_keep(torch.stack([first, second]), points0, 0.3, 0.8)
    assert held == 2 and keep[4:12, 3:11].all() and keep[4:12, 18:26].all()  # each kept by its own clause
    alone, _ = focus_keep(first[None], points0, 0.3, 0.8)
    assert not alone[4:12, 18:26].any()


def test_segments_smaller_than_a_segment_are_not_judged_and_nothing_kept_keeps_nothing():
    depth, points0 = _scene()
    depth[15:17, 20:22] = 1.2  # a 4-pixel object
    points0 = backproject_depth(depth, K).float().reshape(20, 30, 3)
    p = torch.full((20, 30), 0.05)
    p[4:12, 3:11] = 0.9
    p[15:17, 20:22] = 0.35
    keep, held = focus_keep(p[None], points0, 0.3, 0.8)
    assert held == 0 and keep[15:17, 20:22].all()  # too small to judge: the pixel gate's decision stands
    empty, held = focus_keep(torch.zeros(1, 20, 30), points0, 0.3, 0.8)
    assert held == 0 and not empty.any()


def test_touching_finds_the_4_neighbours_of_a_label():
    labels = torch.tensor([[1, 1, 2, 2],
                           [1, 1, 3, 2],
                           [4, 4, 4, 2],
                           [5, 5, 5, 5]])
    assert touching(labels, 1).nonzero()[:, 0].tolist() == [2, 3, 4]
    assert touching(labels, 5).nonzero()[:, 0].tolist() == [2, 4]


def test_the_config_carries_it_only_with_the_pixel_gate_and_the_defaults_tool_writes_it(tmp_path):
    from more4d_core.checkpoints.bundle import read_header, save_bundle
    from more4d_core.checkpoints.defaults import set_defaults

    pixels = GATED_DCT.replace(motion_gate_pixels=True)
    assert pixels.replace(object_focus=0.8).object_focus == 0.8
    for bad in ({"motion_gate_pixels": False, "object_focus": 0.8}, {"object_focus": 1.5}, {"object_focus": -0.2},
                {"object_focus": float("nan")}, {"object_focus": True}):
        with pytest.raises(InputError, match="object_focus"):
            pixels.replace(**bad)
    data = json.loads(pixels.replace(object_focus=0.8).to_json())
    data["config_version"] = 16
    data.pop("object_focus")
    assert STraGConfig.from_dict(data).object_focus == 0.0  # written before the focus: off
    gen = build_generator(pixels, seed=0)
    save_bundle(tmp_path / "m.safetensors", pixels,
                {"transformer": gen.transformer, "codec": gen.codec, "text_encoder": gen.text_encoder}, {})
    out = set_defaults(tmp_path / "m.safetensors", tmp_path / "focus.safetensors", object_focus=0.8)
    assert read_header(out).config.object_focus == 0.8
    off = set_defaults(out, tmp_path / "off.safetensors", motion_gate_pixels=False)  # no pixel gate, no focus
    assert read_header(off).config.object_focus == 0.0
    with pytest.raises(InputError, match="object_focus"):
        set_defaults(out, tmp_path / "bad.safetensors", object_focus=2.0)
    assert not (tmp_path / "bad.safetensors").exists()


def _two_objects(monkeypatch, focus, config=None):
    gen = build_generator(config or GATED_DCT.replace(motion_gate_pixels=True), seed=0)
    depth = torch.full((32, 32), 3.0)
    depth[8:20, 4:12] = 1.0  # the ball
    depth[8:20, 20:28] = 1.5  # the card, apart from it
    image = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(2))

    def probability(transformer, conditions, text):
        p = torch.zeros(1, *conditions.control.shape[-2:])
        p[0, 2:5, 1:3] = 1.0  # the ball's cells
        p[0, 2:5, 5:7] = 0.6  # the card's: kept by the threshold 0.5, but below 0.8 x the ball's
        return p

    monkeypatch.setattr("more4d_core.generator.gate_probability", probability)
    scene = gen.generate(image, depth, K, "the ball moves right quickly", steps=2, num_frames=5, still_threshold=0.0,
                         motion_smoothing=0.0, object_focus=focus, seed=3)
    moved = (scene.points - scene.points[:1]).abs().amax(dim=(0, 2)).reshape(32, 32) > 0
    return scene, moved, depth


def test_the_generator_holds_the_less_sure_object_still_when_on(monkeypatch):
    plain, moved_plain, depth = _two_objects(monkeypatch, "off")
    focused, moved, _ = _two_objects(monkeypatch, "on")
    card = depth == 1.5
    assert moved_plain[card].float().mean() > 0.5  # without the focus the card moves with the ball
    assert not moved[card].any() and torch.equal(moved & (depth == 1.0), moved_plain & (depth == 1.0))
    assert focused.metadata["motion_gate"]["object_focus"] == 1
    assert "object_focus" not in plain.metadata["motion_gate"]
    auto, _, _ = _two_objects(monkeypatch, None, GATED_DCT.replace(motion_gate_pixels=True, object_focus=0.8))
    assert auto.metadata["motion_gate"]["object_focus"] == 1
    with pytest.raises(InputError, match="object_focus must be one of auto, on, off"):
        _two_objects(monkeypatch, "always")


def test_the_node_passes_the_setting_and_tells_what_was_held(monkeypatch):
    from more4d_core.sampling.motion_gating import describe_gate

    gen = build_generator(GATED_DCT.replace(motion_gate_pixels=True, object_focus=0.8), seed=0)
    used = node_switch_results(monkeypatch, gen, "object_focus", lambda meta: "object_focus" in meta["motion_gate"])
    assert used == {"auto": True, "off": False, "on": True}
    line = describe_gate({"moving_share": 0.1, "pixels": True, "pixel_moving_share": 0.1, "threshold": 0.3,
                          "object_focus": 2})
    assert "2 other regions it was less sure of held still" in line
