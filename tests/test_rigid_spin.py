"""A named spin's fitted turn strengthened and fitted under its own limit (sampling.rigid_motion): rotations raised to a
power against rotations built by hand (Rodrigues' formula written out here), the fit of a spinning segment against a
turn built by hand, and the config, defaults tool, generator and gate line that carry it."""

import json
import math

import pytest
import torch
from tiny_models import GATED_DCT, through_the_defaults_tool

from more4d_core.errors import InputError
from more4d_core.models.config import CONFIG_VERSION, STraGConfig
from more4d_core.sampling.rigid_motion import (
    fit_segments,
    names_spin,
    rotation_power,
    similarity_fit,
    spin_pixels,
    unexplained,
)


def _turn(axis, angle):
    """The rotation of ``angle`` about ``axis`` (written out from the axis-angle formula, not the module's)."""
    x, y, z = (torch.tensor(axis, dtype=torch.float64) / torch.tensor(axis, dtype=torch.float64).norm()).tolist()
    c, s, C = math.cos(angle), math.sin(angle), 1 - math.cos(angle)
    return torch.tensor([[c + x * x * C, x * y * C - z * s, x * z * C + y * s],
                         [y * x * C + z * s, c + y * y * C, y * z * C - x * s],
                         [z * x * C - y * s, z * y * C + x * s, c + z * z * C]], dtype=torch.float64)


@pytest.mark.parametrize("axis", [(0.0, 1.0, 0.0), (0.0, -1.0, 0.0), (0.3, 1.0, -0.2)])
@pytest.mark.parametrize("power", [1.1, 0.5, 2.0])
def test_a_turn_past_half_a_turn_keeps_its_sense_when_raised_to_a_power(axis, power):
    angles = [0.0, 0.4, 1.2, 2.0, 2.9, math.pi - 1e-9, math.pi, math.pi + 0.1, 3.3]  # 3.3 rad is read as 2.98 the other way
    turned = rotation_power(torch.stack([_turn(axis, a) for a in angles]), power)
    for t, a in enumerate(angles):
        assert torch.allclose(turned[t], _turn(axis, power * a), atol=1e-7), (t, a)


def test_a_turn_that_goes_back_passes_through_no_turn_and_power_one_changes_nothing():
    angles = [0.0, 0.3, 0.1, -0.2, -0.5, 0.2]  # about one axis, back and forth
    rotations = torch.stack([_turn((0.0, 1.0, 0.0), a) for a in angles])
    turned = rotation_power(rotations, 2.0)
    for t, a in enumerate(angles):
        assert torch.allclose(turned[t], _turn((0.0, 1.0, 0.0), 2 * a), atol=1e-12)
    assert torch.allclose(rotation_power(rotations, 1.0), rotations, atol=1e-12)
    still = torch.eye(3, dtype=torch.float64).expand(4, 3, 3)
    assert torch.allclose(rotation_power(still, 1.5), still)  # no turn: nothing to raise


def test_the_similarity_fit_turns_the_fitted_rotation_about_the_generated_centroid():
    source = torch.randn(40, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    centre = source.mean(0)
    path = torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.0, 0.05], [0.2, 0.0, 0.1]], dtype=torch.float64)
    target = torch.stack([(source - centre) @ _turn((0.0, 1.0, 0.0), 0.9 * t).T + centre + path[t - 1]
                          for t in (1, 2, 3)])
    fitted = similarity_fit(source, target, with_scale=False, angle_power=1.5)
    for t in (1, 2, 3):  # by hand: 1.5 times the turn, about the same centroid path
        expected = (source - centre) @ _turn((0.0, 1.0, 0.0), 1.35 * t).T + centre + path[t - 1]
        assert torch.allclose(fitted[t - 1], expected, atol=1e-9)


def _block(depth_value=1.0):
    depth = torch.full((20, 30), 3.0)
    depth[5:13, 6:18] = depth_value
    return depth, depth < 2


def _spun(keep, angle_of_t, wobble=0.0):
    """Tracks ``[4, 20, 30, 3]`` of a block turning about the vertical axis through its centroid (the rest still)."""
    from tiny_models import GATE_INTRINSICS

    from more4d_core.geometry.projection import backproject_depth

    depth = torch.where(keep, torch.tensor(1.0), torch.tensor(3.0))
    p0 = backproject_depth(depth, GATE_INTRINSICS).double().reshape(20, 30, 3)
    centre = p0[keep].mean(0)
    frames = [p0]
    for t in (1, 2, 3):
        moved = (p0 - centre) @ _turn((0.0, 1.0, 0.0), angle_of_t(t)).T + centre
        frames.append(torch.where(keep.unsqueeze(-1), moved, p0))
    tracks = torch.stack(frames)
    if wobble:
        noise = wobble * torch.randn(tracks.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
        noise[0] = 0.0
        tracks = tracks + noise * keep.unsqueeze(-1) * torch.arange(4).view(4, 1, 1, 1)
    return tracks, centre


def test_a_named_spin_turns_gain_times_as_far_and_only_where_its_clause_names_it():
    _, keep = _block()
    tracks, centre = _spun(keep, lambda t: 0.3 * t)
    fitted, counts = fit_segments(tracks, keep, with_scale=False, spinning=True, spin_gain=1.2)
    assert counts == {"translation": 0, "similarity": 1, "as generated": 0, "turned": 1}
    p0 = tracks[0][keep]
    for t in (1, 2, 3):  # by hand: 1.2 times the turn about the (still) centroid
        expected = (p0 - centre) @ _turn((0.0, 1.0, 0.0), 0.36 * t).T + centre
        assert torch.allclose(fitted[t][keep], expected, atol=1e-6)
    assert torch.equal(fitted[:, ~keep], tracks[:, ~keep])
    plain, counts = fit_segments(tracks, keep, with_scale=False, spinning=False, spin_gain=1.2)  # not a spin clause's
    assert counts["turned"] == 0 and torch.allclose(plain, tracks, atol=1e-9)
    grown, counts = fit_segments(tracks, keep, with_scale=False, spinning=True, growing=True, spin_gain=1.2)
    assert counts["turned"] == 0 and torch.allclose(grown, tracks, atol=1e-9)  # a growth's clause: not turned
    as_is, counts = fit_segments(tracks, keep, with_scale=False, spinning=True)
    assert "turned" not in counts and torch.allclose(as_is, tracks, atol=1e-9)  # gain 1: as fitted


def test_a_spin_too_loose_for_the_common_limit_is_fitted_under_the_spin_limit_only_where_its_clause_spins():
    _, keep = _block()
    loose, _ = _spun(keep, lambda t: 0.3 * t, wobble=0.01)
    source, target = loose[0][keep], loose[1:][:, keep]
    share = unexplained(source, target, similarity_fit(source, target, with_scale=False))
    assert 0.1 < share < 0.5  # too loose for the common limit, within the spin limit below
    common, counts = fit_segments(loose, keep, with_scale=False, spinning=True)
    assert counts["as generated"] == 1 and torch.equal(common, loose)
    fitted, counts = fit_segments(loose, keep, with_scale=False, spinning=True, spin_limit=0.5)
    assert counts == {"translation": 0, "similarity": 1, "as generated": 0}
    again = similarity_fit(fitted[0][keep], fitted[1:][:, keep], with_scale=False)  # one rotation per frame now
    assert (again - fitted[1:][:, keep]).norm(dim=-1).max() < 1e-9
    other, counts = fit_segments(loose, keep, with_scale=False, spinning=False, spin_limit=0.5)
    assert counts["as generated"] == 1 and torch.equal(other, loose)  # not a spin clause's: the common limit


def test_spin_words_are_the_trained_one_and_each_pixel_spins_where_its_own_clause_names_it():
    assert names_spin("the ball spins clockwise quickly")
    assert names_spin("the box rotates") and names_spin("the card is turning")  # synonyms read as "spins"
    assert not names_spin("the ball slides left") and not names_spin("the camera pans left")
    regions = torch.tensor([[0, 1], [1, 0]])
    assert torch.equal(spin_pixels("", ["the ball slides left", "the box spins"], regions), regions == 1)
    assert spin_pixels("the box spins and the ball slides") is True  # no clauses: the whole prompt


def test_the_config_carries_the_spin_gain_and_limit_only_with_rigid_segments_and_reads_old_files_as_before():
    rigid = GATED_DCT.replace(motion_gate_pixels=True, rigid_segments=True)
    assert rigid.rigid_spin_gain == 1.0 and rigid.rigid_spin_limit == 0.1
    both = rigid.replace(rigid_spin_gain=1.1, rigid_spin_limit=0.3)
    assert (both.rigid_spin_gain, both.rigid_spin_limit) == (1.1, 0.3)
    for key, bad in (("rigid_spin_gain", 0.0), ("rigid_spin_gain", 2.5), ("rigid_spin_gain", True),
                     ("rigid_spin_limit", 0.0), ("rigid_spin_limit", 1.5), ("rigid_spin_limit", float("nan"))):
        with pytest.raises(InputError, match=key):
            rigid.replace(**{key: bad})
    for key, value in (("rigid_spin_gain", 1.1), ("rigid_spin_limit", 0.3)):
        with pytest.raises(InputError, match=key):
            GATED_DCT.replace(motion_gate_pixels=True, **{key: value})  # no segments
    data = json.loads(both.to_json())
    assert data["config_version"] == CONFIG_VERSION >= 21
    again = STraGConfig.from_dict(dict(data))
    assert (again.rigid_spin_gain, again.rigid_spin_limit) == (1.1, 0.3)
    data["config_version"] = 20
    data.pop("rigid_spin_gain")
    data.pop("rigid_spin_limit")
    old = STraGConfig.from_dict(data)
    assert (old.rigid_spin_gain, old.rigid_spin_limit) == (1.0, 0.1)


def test_the_defaults_tool_writes_the_spin_gain_and_limit(tmp_path):
    from more4d_core.checkpoints.defaults import set_defaults

    model, written, off = through_the_defaults_tool(tmp_path, "s.safetensors", ["--spin-gain", "1.1", "--spin-limit", "0.3"])
    assert (written.rigid_spin_gain, written.rigid_spin_limit) == (1.1, 0.3)
    assert (off.rigid_spin_gain, off.rigid_spin_limit) == (1.0, 0.1)  # no segments: nothing to turn or fit
    for key, bad in (("spin_gain", 3.0), ("spin_limit", 2.0)):
        with pytest.raises(InputError, match="rigid_" + key):
            set_defaults(model, tmp_path / "bad.safetensors", **{key: bad})
        assert not (tmp_path / "bad.safetensors").exists()


def test_the_generator_turns_only_the_spinning_clause_and_says_so(monkeypatch):
    from test_rigid_motion import _two_clauses

    from more4d_core.sampling.motion_gating import describe_gate

    base = GATED_DCT.replace(motion_gate_pixels=True, rigid_segments=True, rigid_scale="prompted",
                             clause_composition="gate", object_focus=0.8, rigid_clauses=True)
    scene, asked = _two_clauses(monkeypatch, base.replace(rigid_spin_gain=1.2, rigid_spin_limit=0.4))
    regions = asked["regions"]
    assert torch.equal(asked["spinning"], regions == 0)  # "the ball spins clockwise": the first clause
    assert asked["spin_gain"] == 1.2 and asked["spin_limit"] == 0.4  # the model's
    gate = scene.metadata["motion_gate"]
    assert "turned" in gate["rigid_segments"]
    assert ("rigid_spin_gain" in gate) is (gate["rigid_segments"]["turned"] > 0)  # said only where a turn was raised
    _, asked = _two_clauses(monkeypatch, base)  # a file before version 21: as fitted, the common limit
    assert asked["spin_gain"] == 1.0 and asked["spin_limit"] == 0.1
    said = {"moving_share": 0.1, "pixels": True, "pixel_moving_share": 0.1, "threshold": 0.3, "rigid_spin_gain": 1.1,
            "rigid_segments": {"translation": 0, "similarity": 2, "as generated": 0, "turned": 1}}
    assert "1 of them spins as the prompt names, the fitted turn 1.1 times as far" in describe_gate(said)
