"""A translation the prompt names on one axis of the camera kept on that axis (sampling.rigid_motion's ``axes``): the
axis read from the words, the fit of a segment against translations built by hand, and the config, defaults tool,
generator and gate line that carry it."""

import json

import pytest
import torch
from tiny_models import GATED_DCT, through_the_defaults_tool

from more4d_core.errors import InputError
from more4d_core.models.config import CONFIG_VERSION, STraGConfig
from more4d_core.sampling.rigid_motion import axis_pixels, fit_segments, named_axis


@pytest.mark.parametrize("clause, axis", [
    ("the ball slides left quickly", 0), ("the box moves right", 0), ("the car drives to the left", 0),
    ("the card slides up slowly", 1), ("the ball falls", 1), ("the ball bounces twice", 1), ("the disc moves down", 1),
    ("the box moves toward the camera slowly", 2), ("the ball comes closer", 2), ("the card moves away quickly", 2),
    ("the ball moves", -1),  # no axis named
    ("the ball spins clockwise", -1), ("the box grows", -1), ("the card waves", -1), ("the card bends", -1),
    ("the ball slides left and moves up", -1), ("the ball bounces to the left", -1),  # two axes: none
    ("the ball spins and slides left", -1),  # a spin is not a translation
])
def test_the_one_axis_a_clause_names(clause, axis):
    assert named_axis(clause) == axis


def test_each_pixel_takes_its_own_clauses_axis():
    regions = torch.tensor([[0, 1], [2, 0]])
    clauses = ["the ball slides left", "the box moves away", "the card spins"]
    assert torch.equal(axis_pixels("", clauses, regions), torch.tensor([[0, 2], [-1, 0]]))
    assert axis_pixels("the ball bounces") == 1  # no clauses: the whole prompt's


def _two_blocks():
    """Tracks ``[4, 12, 20, 3]``: a left block (columns 2-7) and a right block (columns 12-17) at depth 1 before a wall
    at 3, each translated per frame by its own vector with motion off the named axis, the wall still."""
    h, w = 12, 20
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    left = (xs >= 2) & (xs < 8) & (ys >= 3) & (ys < 9)
    right = (xs >= 12) & (xs < 18) & (ys >= 3) & (ys < 9)
    z = torch.where(left | right, 1.0, 3.0).double()
    p0 = torch.stack([(xs - w / 2) * z / 20, (ys - h / 2) * z / 20, z], -1)
    step_left = torch.tensor([0.10, 0.01, -0.02], dtype=torch.float64)  # a slide right with drift in y and z
    step_right = torch.tensor([0.005, 0.004, 0.08], dtype=torch.float64)  # a move away with drift in x and y
    frames = [p0]
    for t in (1, 2, 3):
        moved = p0.clone()
        moved[left] += t * step_left
        moved[right] += t * step_right
        frames.append(moved)
    return torch.stack(frames), left, right, step_left, step_right


def test_a_named_axis_keeps_only_that_component_of_a_segments_translation():
    tracks, left, right, step_left, step_right = _two_blocks()
    keep = left | right
    axes = torch.full(left.shape, -1)
    axes[left], axes[right] = 0, 2  # "slides right" on the left block, "moves away" on the right one
    fitted, counts = fit_segments(tracks, keep, axes=axes)
    assert counts == {"translation": 2, "similarity": 0, "as generated": 0, "on axis": 2}
    for t in (1, 2, 3):  # by hand: x alone on the left block, z alone on the right one
        assert torch.allclose(fitted[t][left] - tracks[0][left], torch.tensor([0.10 * t, 0.0, 0.0], dtype=torch.float64))
        assert torch.allclose(fitted[t][right] - tracks[0][right], torch.tensor([0.0, 0.0, 0.08 * t], dtype=torch.float64))
    assert torch.equal(fitted[:, ~keep], tracks[:, ~keep])
    plain, counts = fit_segments(tracks, keep)  # no axes: the translation on every axis
    assert "on axis" not in counts and torch.allclose(plain, tracks)
    axes[right] = -1  # the right block's clause names no one axis
    some, counts = fit_segments(tracks, keep, axes=axes)
    assert counts["on axis"] == 1 and torch.allclose(some[:, right], tracks[:, right])
    everywhere, counts = fit_segments(tracks, keep, axes=1)  # one axis for every pixel (one clause)
    assert counts["on axis"] == 2
    assert torch.allclose(everywhere[3][left] - tracks[0][left], torch.tensor([0.0, 0.03, 0.0], dtype=torch.float64))


def test_a_segment_mostly_of_one_clause_takes_that_clauses_axis_and_a_turn_is_not_put_on_an_axis():
    tracks, left, right, _, _ = _two_blocks()
    axes = torch.full(left.shape, -1)
    axes[left] = 0
    axes[3, 2] = 2  # one pixel of the left block on another clause's axis: the most of its pixels decide
    fitted, counts = fit_segments(tracks, left, axes=axes)
    assert counts["on axis"] == 1 and torch.allclose(fitted[3][left][:, 1:], tracks[0][left][:, 1:])
    from test_rigid_spin import _block, _spun

    _, keep = _block()
    spun, _ = _spun(keep, lambda t: 0.3 * t)
    turned, counts = fit_segments(spun, keep, with_scale=False, axes=0)  # a similarity fit: left as fitted
    assert counts == {"translation": 0, "similarity": 1, "as generated": 0, "on axis": 0}
    assert torch.allclose(turned, spun, atol=1e-9)


def test_the_config_carries_rigid_axes_only_with_rigid_segments_and_reads_old_files_as_off(tmp_path):
    from more4d_core.checkpoints.defaults import main

    rigid = GATED_DCT.replace(motion_gate_pixels=True, rigid_segments=True)
    assert rigid.rigid_axes is False and rigid.replace(rigid_axes=True).rigid_axes is True
    for bad in (1, "on", None):
        with pytest.raises(InputError, match="rigid_axes"):
            rigid.replace(rigid_axes=bad)
    with pytest.raises(InputError, match="rigid_axes"):
        GATED_DCT.replace(motion_gate_pixels=True, rigid_axes=True)  # no segments
    data = json.loads(rigid.replace(rigid_axes=True).to_json())
    assert data["config_version"] == CONFIG_VERSION >= 22 and STraGConfig.from_dict(dict(data)).rigid_axes is True
    data["config_version"] = 21
    data.pop("rigid_axes")
    assert STraGConfig.from_dict(data).rigid_axes is False
    model, written, off = through_the_defaults_tool(tmp_path, "a.safetensors", ["--rigid-axes", "on"])
    assert written.rigid_axes is True
    assert off.rigid_axes is False  # no segments: no translation to put on an axis
    with pytest.raises(SystemExit):
        main([str(model), "--out", str(tmp_path / "bad.safetensors"), "--rigid-axes", "yes"])
    assert not (tmp_path / "bad.safetensors").exists()


def test_the_generator_reads_each_clauses_axis_only_when_on_and_the_gate_line_says_so(monkeypatch):
    from test_rigid_motion import _two_clauses

    from more4d_core.sampling.motion_gating import describe_gate

    base = GATED_DCT.replace(motion_gate_pixels=True, rigid_segments=True, rigid_scale="prompted",
                             clause_composition="gate", object_focus=0.8, rigid_clauses=True)
    prompt = "ball slides left and card moves away"  # the tiny model reads 8 words
    scene, asked = _two_clauses(monkeypatch, base.replace(rigid_axes=True), prompt)
    regions = asked["regions"]
    assert torch.equal(asked["axes"], torch.where(regions == 0, 0, 2))  # x for the ball's clause, z for the card's
    assert "on axis" in scene.metadata["motion_gate"]["rigid_segments"]
    _, asked = _two_clauses(monkeypatch, base, prompt)  # off (files before version 22): no axes at all
    assert asked["axes"] is None
    said = {"moving_share": 0.1, "pixels": True, "pixel_moving_share": 0.1, "threshold": 0.3,
            "rigid_segments": {"translation": 2, "similarity": 0, "as generated": 0, "on axis": 2}}
    assert "2 of them move along the one axis the prompt names (left / right, up / down, toward / away) alone" in (
        describe_gate(said))
