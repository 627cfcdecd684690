"""The motion gate decided per output pixel (sampling.pixel_gate): the cell dilation, the pixel decision against a
known object outline, holding the rest still, the generator's use of it, composition, the config and defaults."""

import json

import pytest
import torch
from tiny_models import GATE_INTRINSICS, GATED_DCT, node_switch_results, record_decoded_latents

from more4d_core.errors import InputError
from more4d_core.generator import build_generator
from more4d_core.geometry.projection import backproject_depth
from more4d_core.models.config import CONFIG_VERSION, STraGConfig
from more4d_core.sampling.clause_composition import compose_latents
from more4d_core.sampling.motion_gating import apply_motion_gate
from more4d_core.sampling.pixel_gate import dilate_cells, hold_outside, upsampled_probability

K = GATE_INTRINSICS


def _object_scene(size=24, box=(6, 14)):
    """A depth of 3 with a square object at depth 1 over pixels ``box`` x ``box`` (not on the 4-pixel cells' edges)."""
    depth = torch.full((size, size), 3.0)
    lo, hi = box
    depth[lo:hi, lo:hi] = 1.0
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[lo:hi, lo:hi] = True
    return depth, mask


def test_a_kept_cell_grows_to_its_eight_neighbours_and_stops_at_the_border():
    keep = torch.zeros(1, 1, 1, 5, 6)
    keep[0, 0, 0, 2, 3] = 1
    keep[0, 0, 0, 0, 0] = 1
    grown = dilate_cells(keep)[0, 0, 0]
    expected = torch.zeros(5, 6)
    expected[1:4, 2:5] = 1
    expected[0:2, 0:2] = 1
    assert grown.shape == (5, 6) and torch.equal(grown, expected)


def test_the_pixels_kept_follow_the_objects_outline_not_the_cells():
    depth, mask = _object_scene()
    points0 = backproject_depth(depth, K).float().reshape(1, 24, 24, 3)
    probability = torch.zeros(1, 1, 1, 6, 6)
    probability[..., 1:4, 1:4] = 1.0  # the cells the object touches (pixels 4-15), a cell wider than it each way
    keep = upsampled_probability(probability, points0) >= 0.5
    assert keep.shape == (1, 24, 24)
    assert torch.equal(keep[0], mask)
    cells = probability[0, 0, 0].repeat_interleave(4, 0).repeat_interleave(4, 1) >= 0.5
    assert (cells & ~mask).any()  # the cell decision would have kept background pixels


def test_points_outside_are_held_at_frame_zero_and_the_rest_is_untouched():
    points0 = torch.randn(1, 3, 4, 3)
    tracks = points0.unsqueeze(1) + torch.randn(1, 5, 3, 4, 3)
    keep = torch.zeros(1, 3, 4, dtype=torch.bool)
    keep[0, 1, 2] = True
    held = hold_outside(tracks, points0, keep)
    assert torch.equal(held[0, :, 1, 2], tracks[0, :, 1, 2])
    still = ~keep[0]
    assert torch.equal(held[0][:, still], points0[0][still].unsqueeze(0).expand(5, -1, -1))


def test_the_latent_gate_grows_its_cells_only_when_asked():
    latents = torch.ones(1, 6, 1, 4, 4)
    probability = torch.zeros(1, 4, 4)
    probability[0, 1, 1] = 0.9
    plain, summary = apply_motion_gate(latents, probability, 0.5)
    grown, summary_grown = apply_motion_gate(latents, probability, 0.5, dilate=True)
    assert plain[0, 0, 0].sum() == 1 and grown[0, 0, 0].sum() == 9
    assert summary == summary_grown == {"moving_share": 1 / 16, "threshold": 0.5}


def test_composed_clauses_grow_each_into_the_cells_it_is_most_likely_in():
    a, b = torch.full((1, 3, 1, 4, 6), 1.0), torch.full((1, 3, 1, 4, 6), 2.0)
    pa, pb = torch.zeros(1, 4, 6), torch.zeros(1, 4, 6)
    pa[0, 1, 1] = 0.9
    pb[0, 1, 4] = 0.9
    pb[0, :, 3:] += 0.1  # the right half leans to clause b below the threshold
    out, summary = compose_latents([a, b], [pa, pb], 0.5, dilate=True)
    expected = torch.zeros(4, 6)
    expected[0:3, 0:3] = 1.0
    expected[0:3, 3:6] = 2.0
    assert torch.equal(out[0, 0, 0], expected)
    assert summary["clause_shares"] == [round(1 / 24, 4), round(1 / 24, 4)]
    with pytest.raises(InputError, match="object clauses only"):
        compose_latents([a, b], [pa, pb], 0.5, rest=(a, pa), dilate=True)


def _gated_generation(monkeypatch, pixels, prompt="the ball moves right quickly"):
    gen = build_generator(GATED_DCT, seed=0)
    depth, mask = _object_scene(32, (10, 19))
    image = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(2))

    def probability(transformer, conditions, text):
        p = torch.zeros(1, *conditions.control.shape[-2:])
        p[0, 2:5, 2:5] = 1.0  # cells of pixels 8-19: the object (10-18) and background around it
        return p

    monkeypatch.setattr("more4d_core.generator.gate_probability", probability)
    scene = gen.generate(image, depth, K, prompt, steps=2, num_frames=5, still_threshold=0.0, motion_smoothing=0.0,
                         motion_gate_pixels=pixels, seed=3)
    moved = (scene.points - scene.points[:1]).abs().amax(dim=(0, 2)).reshape(32, 32) > 0
    return scene, moved, mask


def test_the_generator_moves_only_the_objects_pixels_and_all_of_them(monkeypatch):
    cells, moved_cells, mask = _gated_generation(monkeypatch, False)
    pixels, moved_pixels, _ = _gated_generation(monkeypatch, True)
    assert (moved_cells & ~mask).sum() > 0  # the cell gate moves background pixels beside the object
    assert not (moved_pixels & ~mask).any()  # the pixel gate none
    assert moved_pixels[mask].all()
    assert pixels.metadata["motion_gate"]["pixels"] is True
    assert pixels.metadata["motion_gate"]["pixel_moving_share"] == pytest.approx(float(mask.float().mean()), abs=1e-4)
    assert "pixels" not in cells.metadata["motion_gate"]


def test_a_camera_clause_keeps_the_cell_decision(monkeypatch):
    gen = build_generator(GATED_DCT.replace(clause_composition="gate_camera"), seed=0)
    depth, _ = _object_scene(32, (10, 19))
    image = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(2))
    args = dict(steps=1, num_frames=5, still_threshold=0.0, motion_smoothing=0.0, seed=3)
    prompt = "the ball moves right, while the camera pans left"
    on = gen.generate(image, depth, K, prompt, motion_gate_pixels=True, **args)
    off = gen.generate(image, depth, K, prompt, motion_gate_pixels=False, **args)
    assert torch.equal(on.points, off.points) and "pixels" not in on.metadata["motion_gate"]


def test_the_config_field_is_checked_and_older_files_gate_per_cell(tmp_path):
    from more4d_core.checkpoints.bundle import read_header, save_bundle
    from more4d_core.checkpoints.defaults import set_defaults

    with pytest.raises(InputError, match="motion_gate_pixels"):
        GATED_DCT.replace(motion_gate="none", motion_gate_pixels=True)
    with pytest.raises(InputError, match="motion_gate_pixels"):
        GATED_DCT.replace(motion_gate_pixels=1)
    data = json.loads(GATED_DCT.replace(motion_gate_pixels=True).to_json())
    assert data["config_version"] == CONFIG_VERSION and STraGConfig.from_dict(dict(data)).motion_gate_pixels is True
    data["config_version"] = 14
    data.pop("motion_gate_pixels")
    assert STraGConfig.from_dict(data).motion_gate_pixels is False
    gen = build_generator(GATED_DCT, seed=0)
    src = tmp_path / "m.safetensors"
    save_bundle(src, GATED_DCT, {"transformer": gen.transformer, "codec": gen.codec, "text_encoder": gen.text_encoder},
                {})
    out = set_defaults(src, tmp_path / "out.safetensors", motion_gate_pixels=True)
    assert read_header(out).config.motion_gate_pixels is True


def test_the_generator_decodes_the_outline_cells_motion_with_the_pixel_gate(monkeypatch):
    gen = build_generator(GATED_DCT, seed=0)
    depth, _ = _object_scene(32, (10, 19))
    image = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(2))
    seen = record_decoded_latents(monkeypatch, gen)

    def probability(transformer, conditions, text):
        p = torch.zeros(1, *conditions.control.shape[-2:])
        p[0, 3, 3] = 1.0  # one cell inside the object
        return p

    monkeypatch.setattr("more4d_core.generator.gate_probability", probability)
    for pixels in (False, True):
        gen.generate(image, depth, K, "the ball moves right", steps=1, num_frames=5, still_threshold=0.0,
                     motion_smoothing=0.0, motion_gate_pixels=pixels, seed=3)
    cells = [(latents[0].abs().amax(dim=(0, 1)) > 0) for latents in seen]
    expected = torch.zeros_like(cells[0])
    expected[2:5, 2:5] = True
    assert cells[0].sum() == 1 and torch.equal(cells[1], expected)


def test_composed_object_clauses_each_move_their_objects_pixels(monkeypatch):
    gen = build_generator(GATED_DCT.replace(clause_composition="gate"), seed=0)
    depth = torch.full((32, 32), 3.0)
    depth[5:11, 5:11] = 1.0
    depth[21:27, 21:27] = 1.2
    objects = depth < 2
    image = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(2))
    calls = []

    def probability(transformer, conditions, text):
        p = torch.zeros(1, *conditions.control.shape[-2:])
        if len(calls) % 2 == 0:
            p[0, 1:3, 1:3] = 1.0  # the first clause's cells (pixels 4-11)
        else:
            p[0, 5:7, 5:7] = 1.0  # the second's (pixels 20-27)
        calls.append(1)
        return p

    monkeypatch.setattr("more4d_core.generator.gate_probability", probability)
    scene = gen.generate(image, depth, K, "the ball moves right and the box moves left", steps=1, num_frames=5,
                         still_threshold=0.0, motion_smoothing=0.0, motion_gate_pixels=True, seed=3)
    moved = (scene.points - scene.points[:1]).abs().amax(dim=(0, 2)).reshape(32, 32) > 0
    assert len(calls) == 2 and scene.metadata["motion_gate"]["pixels"] is True
    assert torch.equal(moved, objects)


def test_the_node_passes_the_setting(monkeypatch):
    gen = build_generator(GATED_DCT.replace(motion_gate_pixels=True), seed=0)
    used = node_switch_results(monkeypatch, gen, "gate_pixels", lambda meta: meta["motion_gate"].get("pixels", False))
    assert used == {"auto": True, "off": False, "on": True}


def test_the_share_people_are_told_is_the_pixels_where_the_pixel_gate_decided():
    from more4d_core.sampling.motion_gating import describe_gate

    assert "lets 9% of the image move" in describe_gate({"moving_share": 0.09, "threshold": 0.3})
    assert "lets 7% of the image move" in describe_gate({"moving_share": 0.09, "pixels": True,
                                                          "pixel_moving_share": 0.07, "threshold": 0.3})


def test_a_setting_other_than_auto_on_off_is_refused():
    gen = build_generator(GATED_DCT, seed=0)
    depth, _ = _object_scene(32, (10, 19))
    with pytest.raises(InputError, match="motion_gate_pixels must be one of auto, on, off"):
        gen.generate(torch.rand(32, 32, 3), depth, K, "the ball moves right", steps=1, num_frames=5,
                     motion_gate_pixels="sometimes")
