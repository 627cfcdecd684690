"""Camera moves that stay fillable: hole fractions and the preset's auto strength, against the
geometry of a flat wall (where the revealed strip can be computed by hand)."""

import json
import logging

import pytest
import torch

from more4d_core.camera import camera_preset
from more4d_core.camera.fillable import fillable_preset, hole_fractions, probe_size
from more4d_core.camera.presets import PAN_AMPLITUDE
from more4d_core.errors import InputError
from more4d_core.scene import Scene4D
from nodes.camera_nodes import CameraPathKeyframes, CameraPathPreset


def _wall(h=96, w=128, depth=2.0, frames=17):
    """A fronto-parallel wall filling the view, f = image width (a 53-degree field of view)."""
    k = torch.tensor([[float(w), 0, w / 2], [0, float(w), h / 2], [0, 0, 1]])
    return Scene4D.from_depth(torch.full((h, w), depth), torch.rand(h, w, 3), k, num_frames=frames)


def test_the_unmoved_view_has_no_holes_not_even_sampling_cracks():
    scene = _wall(192, 256)
    assert probe_size(scene.grid_hw) == (96, 128)
    assert float(hole_fractions(scene, camera_preset("static", 17)).max()) == 0.0


def test_a_pan_reveals_the_strip_the_geometry_predicts():
    scene = _wall()
    # the camera slides PAN_AMPLITUDE * depth * strength sideways: the wall shifts by
    # f * shift / depth = PAN_AMPLITUDE * strength * width pixels, that share of the frame is revealed
    path = camera_preset("pan_x", 17, scene_depth=2.0, strength=0.5)
    assert float(hole_fractions(scene, path)[-1]) == pytest.approx(PAN_AMPLITUDE * 0.5, abs=0.01)


def test_auto_strength_is_the_largest_move_within_the_budget():
    scene = _wall()
    move = fillable_preset(scene, "pan_x", 17, max_holes=0.06)
    assert move.within_budget and move.worst_holes <= 0.06
    assert move.strength == pytest.approx(0.06 / PAN_AMPLITUDE, abs=0.03)  # 0.4
    assert move.path.metadata["strength_mode"] == "auto" and move.path.metadata["strength"] == move.strength
    # the path is the move of the strength it reports: it ends PAN_AMPLITUDE * depth * strength to the right
    assert float(move.path.positions()[-1, 0]) == pytest.approx(PAN_AMPLITUDE * 2.0 * move.strength, rel=1e-6)
    # the limit's sign is the direction; a budget the full move meets gives the full move
    back = fillable_preset(scene, "pan_x", 17, limit=-0.2, max_holes=0.06)
    assert back.strength == pytest.approx(-0.2) and back.path.positions()[-1, 0] < 0
    with pytest.raises(InputError, match="hole budget"):
        fillable_preset(scene, "pan_x", 17, max_holes=1.5)


def test_the_preset_node_reports_its_auto_strength_and_needs_the_scene(caplog):
    scene = _wall()
    with caplog.at_level(logging.INFO, logger="more4d"):
        (path,) = CameraPathPreset().build("pan_x", 0, 1.0, scene=scene, strength_mode="auto", max_holes=0.06)
    assert path.metadata["strength"] == pytest.approx(0.4, abs=0.03)
    assert f"auto strength {path.metadata['strength']:.2f}" in caplog.text and "budget 6%" in caplog.text
    (fixed,) = CameraPathPreset().build("pan_x", 0, 1.0, scene=scene, strength_mode="fixed", max_holes=0.06)
    assert fixed.metadata["strength"] == 1.0
    with pytest.raises(InputError, match="connect the scene"):
        CameraPathPreset().build("pan_x", 0, 1.0, strength_mode="auto")
    assert CameraPathPreset().build("pan_x", 0, 1.0, strength_mode="fixed")[0].num_frames == 49


def test_a_keyframe_path_that_reveals_too_much_is_flagged(caplog):
    scene = _wall()
    big = json.dumps({"keyframes": [{"time": 0}, {"time": 1, "position": [0.2, 0, 0]}]})  # a 20% shift
    with caplog.at_level(logging.WARNING, logger="more4d"):
        (path,) = CameraPathKeyframes().build(big, 0, scene=scene)
    assert path.metadata["worst_holes"] == pytest.approx(0.2, abs=0.02)
    assert "reveals 20% of the picture" in caplog.text


def test_a_workflow_saved_before_auto_strength_keeps_its_values():
    from nodes import NODE_CLASS_MAPPINGS
    from nodes.workflow_format import read_workflow

    old = {"nodes": [{"id": 1, "type": "More4DCameraPathPreset", "widgets_values": ["dolly", 0, 0.7, 2.0],
                      "inputs": [], "outputs": []}], "links": []}
    widgets = read_workflow(old, NODE_CLASS_MAPPINGS)[1].widgets
    assert widgets == {"preset": "dolly", "frames": 0, "strength": 0.7, "scene_depth": 2.0}  # new widgets take defaults


def test_frame_counts_that_would_exhaust_memory_are_refused_before_work():
    from more4d_core.camera import parse_keyframes
    from more4d_core.camera.presets import MAX_FRAMES
    from more4d_core.models.config import MAX_GENERATED_FRAMES, MORE4D_TINY

    with pytest.raises(InputError, match="at most 4096 frames"):
        camera_preset("orbit", 10_000_000)
    with pytest.raises(InputError, match="frame index from 0 to 4095"):
        parse_keyframes(json.dumps({"keyframes": [{"frame": 0}, {"frame": 1e9}]}))
    with pytest.raises(InputError, match="'num_frames' must be an integer from 1 to 4096"):
        parse_keyframes(json.dumps({"num_frames": 10**9, "keyframes": [{"time": 0}, {"time": 1}]}))
    with pytest.raises(InputError, match="frame count must be from 1 to 4096"):
        parse_keyframes(json.dumps({"keyframes": [{"time": 0}, {"time": 1}]}), num_frames=MAX_FRAMES + 1)
    with pytest.raises(InputError, match="at most 257 frames"):
        MORE4D_TINY.check_size(32, 32, MAX_GENERATED_FRAMES + 4)
    assert camera_preset("orbit", MAX_FRAMES).num_frames == MAX_FRAMES
