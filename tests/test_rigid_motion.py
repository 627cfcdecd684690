"""Each moving segment fitted as one transform per frame (sampling.rigid_motion): the closed-form fits against
transforms built by hand, the segments against a known depth layout, which fit a segment takes, and the generator,
config, defaults tool and node that use it."""

import json
import math

import pytest
import torch
from tiny_models import GATE_INTRINSICS, GATED_DCT, node_switch_results, save_tiny_model, through_the_defaults_tool

from more4d_core.errors import InputError
from more4d_core.generator import build_generator
from more4d_core.geometry.projection import backproject_depth
from more4d_core.models.config import CONFIG_VERSION, STraGConfig
from more4d_core.sampling.rigid_motion import (
    fit_segments,
    motion_segments,
    similarity_fit,
    translation_fit,
    unexplained,
)

K = GATE_INTRINSICS


def _rotation(axis, angle):
    axis = torch.tensor(axis, dtype=torch.float64)
    axis = axis / axis.norm()
    x, y, z = axis.tolist()
    cross = torch.tensor([[0, -z, y], [z, 0, -x], [-y, x, 0]], dtype=torch.float64)
    return torch.eye(3, dtype=torch.float64) + math.sin(angle) * cross + (1 - math.cos(angle)) * cross @ cross


def test_the_similarity_fit_recovers_a_rotation_scale_and_move_built_by_hand():
    source = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    frames = []
    for t, (angle, scale) in enumerate([(0.3, 1.2), (-1.1, 0.7), (2.5, 1.0)]):
        r = _rotation([1.0, 2.0, -0.5 + t], angle)
        frames.append(scale * source @ r.T + torch.tensor([0.5, -1.0, 2.0 * t]))
    target = torch.stack(frames)
    assert torch.allclose(similarity_fit(source, target), target, atol=1e-9)
    rigid = similarity_fit(source, target[2:], with_scale=False)  # the third frame has scale 1
    assert torch.allclose(rigid, target[2:], atol=1e-9)


def test_a_mirror_image_is_not_fitted_as_a_rotation():
    source = torch.randn(40, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    mirrored = source * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    fitted = similarity_fit(source, mirrored[None])
    r = torch.linalg.lstsq(source - source.mean(0), fitted[0] - fitted[0].mean(0)).solution
    assert torch.linalg.det(r) > 0  # a proper rotation (scaled), not the reflection
    assert not torch.allclose(fitted[0], mirrored, atol=1e-3)


def test_the_translation_is_the_median_displacement_per_axis():
    source = torch.zeros(5, 3)
    target = torch.tensor([[[1.0, 0, 0], [1.0, 0, 0], [1.0, 0, 0], [1.0, 0, 0], [6.0, 0, 0]],
                           [[0.0, 2, 1], [0.0, 3, 1], [0.0, 4, 1], [0.0, 9, 1], [0.0, -5, 1]]])
    expected = torch.tensor([[1.0, 0, 0], [0.0, 3, 1]]).unsqueeze(1).expand(2, 5, 3)
    assert torch.equal(translation_fit(source, target), expected)  # not the means (2, 0, 0) and (0, 2.6, 1)
    assert unexplained(source, target, target) == 0.0
    assert unexplained(source, target, source.expand_as(target)) == 1.0


def _layout():
    """Depth 3 with two squares at depth 1 and 1.01 that touch (one surface) and a third at depth 2 beside them."""
    depth = torch.full((20, 30), 3.0)
    depth[4:10, 4:10] = 1.0
    depth[4:10, 10:16] = 1.01  # continuous with the first: 1% < the jump
    depth[4:10, 18:26] = 2.0
    return depth


def test_segments_are_cut_where_the_depth_jumps_and_the_far_side_is_its_own():
    depth = _layout()
    points0 = backproject_depth(depth, K).float().reshape(20, 30, 3)
    keep = torch.zeros(20, 30, dtype=torch.bool)
    keep[3:11, 3:17] = True  # the two touching squares and a one-pixel rim of background around them
    keep[4:10, 18:26] = True
    labels = torch.from_numpy(motion_segments(points0, keep))
    squares = labels[4:10, 4:16]
    assert (squares > 0).all() and squares.unique().numel() == 1  # one surface, one segment
    third = labels[4:10, 18:26]
    assert third.unique().numel() == 1 and int(third[0, 0]) not in squares.unique().tolist()
    rim = keep & (depth == 3.0)
    assert (labels[rim] > 0).all() and not set(labels[rim].tolist()) & {int(squares[0, 0]), int(third[0, 0])}
    assert (labels[~keep] == 0).all()


def test_segments_are_also_cut_at_a_level_of_the_gate_probability():
    depth = _layout()
    points0 = backproject_depth(depth, K).float().reshape(20, 30, 3)
    keep = depth < 2.5  # the two touching squares and the third one
    probability = torch.full((20, 30), 0.9)
    probability[4:10, 10:16] = 0.4  # the second square: the gate is less sure of it
    one = torch.from_numpy(motion_segments(points0, keep, probability=probability, level=0.0))
    assert one[4:10, 4:16].unique().numel() == 1  # no level: one surface, one segment
    cut = torch.from_numpy(motion_segments(points0, keep, probability=probability, level=0.5))
    first, second, third = cut[4:10, 4:10], cut[4:10, 10:16], cut[4:10, 18:26]
    for part in (first, second, third):
        assert (part > 0).all() and part.unique().numel() == 1
    assert len({int(first[0, 0]), int(second[0, 0]), int(third[0, 0])}) == 3
    assert (cut[~keep] == 0).all()


def test_a_still_strip_the_gate_was_unsure_of_stays_still_beside_a_slide():
    depth = torch.full((20, 30), 3.0)
    depth[5:13, 6:25] = 1.0  # one surface: a slide (columns 6-18) and a strip beside it (19-24) the model kept still
    keep = depth < 2
    slider = keep.clone()
    slider[:, 19:] = False
    cols = torch.arange(30, dtype=torch.float64).view(1, 30).expand(20, 30)
    bump = torch.where(slider, torch.cos((cols - 6) / 12 * math.pi), torch.zeros(20, 30))  # median 0 over the slide
    slide = torch.tensor([0.2, 0.05, 0.0], dtype=torch.float64)
    true = _tracks(depth, lambda p, t: t * slide * slider.unsqueeze(-1))
    generated = _tracks(depth, lambda p, t: t * slide * (slider * (1 + 0.1 * bump)).unsqueeze(-1))
    probability = torch.where(slider, 0.9, 0.35)
    fitted, counts = fit_segments(generated, keep, probability=probability, level=0.45)
    assert counts == {"translation": 2, "similarity": 0, "as generated": 0}
    assert torch.allclose(fitted, true, atol=1e-5)  # the slide slides as one piece, the strip stays
    whole, counts = fit_segments(generated, keep)  # one segment: one similarity drags the still strip along
    strip = keep & ~slider
    assert counts["similarity"] == 1 and (whole[:, strip] - whole[:1, strip]).norm(dim=-1).amax() > 0.02


def _tracks(depth, moves):
    """Tracks ``[T, H, W, 3]``: frame-0 points of ``depth`` and, per frame, the displacement ``moves(points0, t)``."""
    points0 = backproject_depth(depth, K).double().reshape(*depth.shape, 3)
    return torch.stack([points0 + moves(points0, t) for t in range(4)]).float()


def test_a_rigid_slide_generated_with_a_bump_in_its_speed_moves_as_one_piece():
    depth = torch.full((20, 30), 3.0)
    depth[5:13, 6:19] = 1.0  # 13 columns: the bump's middle column is its median
    keep = depth < 2
    cols = torch.arange(30, dtype=torch.float64).view(1, 30).expand(20, 30)
    bump = torch.where(keep, torch.cos((cols - 6) / 12 * math.pi), torch.zeros(20, 30))  # median 0 over the object
    slide = torch.tensor([0.2, 0.05, 0.0], dtype=torch.float64)

    def moves(p, t):
        out = t * slide * (1 + 0.1 * bump).unsqueeze(-1)  # one side faster, the other slower
        return torch.where(keep.unsqueeze(-1), out, torch.zeros_like(out))

    tracks = _tracks(depth, moves)
    fitted, counts = fit_segments(tracks, keep)
    truth = _tracks(depth, lambda p, t: torch.where(keep.unsqueeze(-1), (t * slide).expand_as(p), torch.zeros_like(p)))
    assert counts == {"translation": 1, "similarity": 0, "as generated": 0}
    assert torch.allclose(fitted, truth, atol=1e-5)
    assert not torch.allclose(tracks, truth, atol=1e-3)
    assert torch.equal(fitted[0], tracks[0])


def test_a_spin_is_fitted_as_a_rotation_and_a_bend_keeps_its_motion():
    depth = torch.full((20, 30), 3.0)
    depth[5:13, 6:18] = 1.0
    keep = depth < 2
    centre = backproject_depth(depth, K).double().reshape(20, 30, 3)[keep].mean(0)

    def spin(p, t):
        r = _rotation([0.0, 1.0, 0.0], 0.2 * t)
        out = (p - centre) @ r.T + centre - p
        return torch.where(keep.unsqueeze(-1), out, torch.zeros_like(out))

    tracks = _tracks(depth, spin)
    wobble = 1e-3 * torch.randn(tracks.shape, generator=torch.Generator().manual_seed(3))
    wobble[0] = 0
    wobble[:, ~keep] = 0
    fitted, counts = fit_segments(tracks + wobble, keep)
    assert counts == {"translation": 0, "similarity": 1, "as generated": 0}
    assert (fitted - tracks)[:, keep].norm(dim=-1).max() < 5e-4

    def bend(p, t):
        x = p[..., 0] - centre[0]
        out = torch.zeros_like(p)
        out[..., 2] = -0.5 * t * x * x  # the sides curl toward the camera
        return torch.where(keep.unsqueeze(-1), out, torch.zeros_like(out))

    bent = _tracks(depth, bend)
    fitted, counts = fit_segments(bent, keep)
    assert counts == {"translation": 0, "similarity": 0, "as generated": 1}
    assert torch.equal(fitted, bent)


def test_a_spin_that_pulls_its_points_in_keeps_its_size_when_scale_is_not_allowed():
    depth = torch.full((20, 30), 3.0)
    depth[5:13, 6:18] = 1.0
    keep = depth < 2
    centre = torch.tensor([0.0, 0.0, 1.3], dtype=torch.float64)  # the axis behind the visible surface

    def turn(p, t, pull):  # a turn about the vertical axis through centre, the points pulled in by pull per frame
        r = _rotation([0.0, 1.0, 0.0], 0.4 * t)
        out = (1 - pull * t) * (p - centre) @ r.T + centre - p
        return torch.where(keep.unsqueeze(-1), out, torch.zeros_like(out))

    shrunk = _tracks(depth, lambda p, t: turn(p, t, 0.05))  # 0.85 of its size at the last frame
    fitted, counts = fit_segments(shrunk, keep)
    assert counts == {"translation": 0, "similarity": 1, "as generated": 0}
    assert torch.allclose(fitted, shrunk, atol=1e-5)  # with scale: the shrinking turn exactly
    kept, counts = fit_segments(shrunk, keep, with_scale=False)
    assert counts == {"translation": 0, "similarity": 1, "as generated": 0}
    # by hand: each frame the same rotation at full size, placed on the generated points' centroid
    p0 = shrunk[0][keep].double()
    for t in range(1, 4):
        r = _rotation([0.0, 1.0, 0.0], 0.4 * t)
        expected = (p0 - p0.mean(0)) @ r.T + shrunk[t][keep].double().mean(0)
        assert torch.allclose(kept[t][keep].double(), expected, atol=1e-5)
        spread = (kept[t][keep] - kept[t][keep].mean(0)).norm(dim=-1)
        assert torch.allclose(spread, (p0 - p0.mean(0)).norm(dim=-1).float(), atol=1e-5)  # its size kept
    assert torch.equal(kept[:, ~keep], shrunk[:, ~keep])


def test_growth_words_are_the_trained_ones():
    from more4d_core.sampling.rigid_motion import names_growth

    assert names_growth("the ball expands") and names_growth("The disc SHRINKS slowly") and names_growth("it grows")
    assert not names_growth("the ball spins clockwise quickly") and not names_growth("the box moves toward the camera")
    assert not names_growth("") and not names_growth("the camera moves forward")


def test_segments_too_small_to_fit_keep_their_motion():
    depth = torch.full((20, 30), 3.0)
    depth[5:8, 6:9] = 1.0  # 9 pixels
    keep = depth < 2
    tracks = _tracks(depth, lambda p, t: t * 0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(t),
                                                               dtype=torch.float64) * keep.unsqueeze(-1))
    fitted, counts = fit_segments(tracks, keep)
    assert torch.equal(fitted, tracks) and counts == {"translation": 0, "similarity": 0, "as generated": 0}
    depth[5:9, 6:10] = 1.0  # 16 pixels: MIN_SEGMENT, just large enough
    keep = depth < 2
    slide = _tracks(depth, lambda p, t: t * torch.tensor([0.02, 0.0, 0.0], dtype=torch.float64) * keep.unsqueeze(-1))
    assert fit_segments(slide, keep)[1] == {"translation": 1, "similarity": 0, "as generated": 0}


def test_the_config_carries_it_only_with_the_pixel_gate():
    with pytest.raises(InputError, match="rigid_segments"):
        GATED_DCT.replace(rigid_segments=True)
    with pytest.raises(InputError, match="rigid_segments"):
        GATED_DCT.replace(motion_gate_pixels=True, rigid_segments="yes")
    data = json.loads(GATED_DCT.replace(motion_gate_pixels=True, rigid_segments=True).to_json())
    assert data["config_version"] == CONFIG_VERSION and STraGConfig.from_dict(dict(data)).rigid_segments is True
    data["config_version"] = 15
    data.pop("rigid_segments")
    assert STraGConfig.from_dict(data).rigid_segments is False


def test_the_config_carries_a_level_only_with_rigid_segments_and_above_the_gate_threshold():
    pixels = GATED_DCT.replace(motion_gate_pixels=True)  # gate threshold 0.5
    assert pixels.replace(rigid_segments=True, rigid_level=0.7).rigid_level == 0.7
    for bad in ({"rigid_level": 0.7}, {"rigid_segments": True, "rigid_level": 0.5},
                {"rigid_segments": True, "rigid_level": 1.0}, {"rigid_segments": True, "rigid_level": float("nan")},
                {"rigid_segments": True, "rigid_level": True}):
        with pytest.raises(InputError, match="rigid_level"):
            pixels.replace(**bad)
    data = json.loads(pixels.replace(rigid_segments=True, rigid_level=0.7).to_json())
    assert STraGConfig.from_dict(dict(data)).rigid_level == 0.7
    data["config_version"] = 16
    data.pop("rigid_level")
    assert STraGConfig.from_dict(data).rigid_level == 0.0  # written before the level: depth jumps only


def test_the_config_keeps_sizes_only_with_rigid_segments_and_reads_old_files_as_any():
    rigid = GATED_DCT.replace(motion_gate_pixels=True, rigid_segments=True)
    assert rigid.rigid_scale == "any" and rigid.replace(rigid_scale="prompted").rigid_scale == "prompted"
    for bad in ({"rigid_scale": "never"}, {"rigid_scale": True}):
        with pytest.raises(InputError, match="rigid_scale"):
            rigid.replace(**bad)
    with pytest.raises(InputError, match="rigid_scale"):
        GATED_DCT.replace(motion_gate_pixels=True, rigid_scale="prompted")  # no segments to fit
    data = json.loads(rigid.replace(rigid_scale="prompted").to_json())
    assert data["config_version"] == CONFIG_VERSION >= 18
    assert STraGConfig.from_dict(dict(data)).rigid_scale == "prompted"
    data["config_version"] = 17
    data.pop("rigid_scale")
    assert STraGConfig.from_dict(data).rigid_scale == "any"  # written before the field: sizes may change


def test_the_defaults_tool_writes_it(tmp_path):
    from more4d_core.checkpoints.bundle import read_header, save_bundle
    from more4d_core.checkpoints.defaults import set_defaults

    def saved(config, name):
        gen = build_generator(config, seed=0)
        save_bundle(tmp_path / name, config,
                    {"transformer": gen.transformer, "codec": gen.codec, "text_encoder": gen.text_encoder}, {})
        return tmp_path / name

    out = set_defaults(saved(GATED_DCT.replace(motion_gate_pixels=True), "m.safetensors"),
                       tmp_path / "out.safetensors", rigid_segments=True)
    assert read_header(out).config.rigid_segments is True
    level = set_defaults(out, tmp_path / "level.safetensors", rigid_level=0.7)
    assert read_header(level).config.rigid_level == 0.7
    off = set_defaults(level, tmp_path / "off.safetensors", rigid_segments=False)  # no segments, no level
    assert read_header(off).config.rigid_segments is False and read_header(off).config.rigid_level == 0.0
    sized = set_defaults(out, tmp_path / "sized.safetensors", rigid_scale="prompted")
    assert read_header(sized).config.rigid_scale == "prompted"
    assert read_header(set_defaults(sized, tmp_path / "none.safetensors", rigid_segments=False)).config.rigid_scale == "any"
    with pytest.raises(InputError, match="rigid_scale"):
        set_defaults(out, tmp_path / "odd.safetensors", rigid_scale="sometimes")
    assert not (tmp_path / "odd.safetensors").exists()
    with pytest.raises(InputError, match="rigid_level"):
        set_defaults(out, tmp_path / "low.safetensors", rigid_level=0.3)  # below the gate threshold
    assert not (tmp_path / "low.safetensors").exists()
    with pytest.raises(InputError, match="rigid_segments"):
        set_defaults(saved(GATED_DCT, "n.safetensors"), tmp_path / "bad.safetensors", rigid_segments=True)
    assert not (tmp_path / "bad.safetensors").exists()


def _slide_generation(monkeypatch, rigid, config=None, prompt="the ball moves right quickly"):
    gen = build_generator(config or GATED_DCT.replace(motion_gate_pixels=True), seed=0)
    depth = torch.full((32, 32), 3.0)
    depth[10:19, 10:19] = 1.0
    image = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(2))

    def probability(transformer, conditions, text):
        p = torch.zeros(1, *conditions.control.shape[-2:])
        p[0, 2:5, 2:5] = 1.0  # the cells of the object
        return p

    monkeypatch.setattr("more4d_core.generator.gate_probability", probability)
    return gen.generate(image, depth, K, prompt, steps=2, num_frames=5, still_threshold=0.0,
                        motion_smoothing=0.0, rigid_segments=rigid, seed=3), depth < 2


def test_the_generator_moves_each_segment_as_one_piece_when_on(monkeypatch):
    plain, obj = _slide_generation(monkeypatch, "off")
    fitted, _ = _slide_generation(monkeypatch, "on")
    summary = fitted.metadata["motion_gate"]["rigid_segments"]
    assert "rigid_segments" not in plain.metadata["motion_gate"]
    assert summary["translation"] + summary["similarity"] == 1  # the object is one segment, moved as one piece
    moved = (fitted.points - fitted.points[:1]).abs().amax(dim=(0, 2)).reshape(32, 32) > 0
    assert torch.equal(moved, obj)  # the pixel gate's pixels still decide what moves
    grid = fitted.points.reshape(5, 32, 32, 3)[:, obj]
    again = similarity_fit(grid[0].double(), grid[1:].double())  # already one transform per frame: fitted exactly
    assert (again - grid[1:]).norm(dim=-1).max() < 1e-4
    assert torch.equal(fitted.points[0], plain.points[0])
    assert not torch.equal(fitted.points, plain.points)


def test_the_generator_cuts_segments_at_the_models_level(monkeypatch):
    depth = torch.full((32, 32), 3.0)
    depth[10:19, 10:27] = 1.0  # one surface over the cells of both probabilities below
    image = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(2))

    def probability(transformer, conditions, text):
        p = torch.zeros(1, *conditions.control.shape[-2:])
        p[0, 2:5, 2:5] = 1.0  # the gate is sure of the left of the surface
        p[0, 2:5, 5:7] = 0.6  # and less sure of its right, above the threshold 0.5
        return p

    monkeypatch.setattr("more4d_core.generator.gate_probability", probability)
    segments = {}
    for level in (0.0, 0.8):
        gen = build_generator(GATED_DCT.replace(motion_gate_pixels=True, rigid_segments=True, rigid_level=level),
                              seed=0)
        out = gen.generate(image, depth, K, "the ball moves right quickly", steps=2, num_frames=5,
                           still_threshold=0.0, motion_smoothing=0.0, seed=3)
        segments[level] = sum(out.metadata["motion_gate"]["rigid_segments"].values())
    assert segments == {0.0: 1, 0.8: 2}


def test_the_generator_keeps_sizes_unless_the_prompt_names_a_growth(monkeypatch):
    import more4d_core.generator as generator_module

    scales = []

    def spy(*args, **kwargs):  # the real fit, and whether it was let change sizes
        scales.append(kwargs["with_scale"] or kwargs["growing"] is True)  # every segment, or one that grows
        return fit_segments(*args, **kwargs)

    monkeypatch.setattr(generator_module, "fit_segments", spy)
    prompted = GATED_DCT.replace(motion_gate_pixels=True, rigid_segments=True, rigid_scale="prompted")
    cases = (("any", prompted.replace(rigid_scale="any"), "the ball spins"), ("spins", prompted, "the ball spins"),
             ("expands", prompted, "the ball expands"), ("shrinks", prompted, "the disc shrinks"))
    for name, config, prompt in cases:
        out, _ = _slide_generation(monkeypatch, None, config, prompt)
        assert out.metadata["motion_gate"].get("rigid_keeps_size", False) is (name == "spins")
    assert scales == [True, False, True, True]
    from more4d_core.sampling.motion_gating import describe_gate

    line = describe_gate({"moving_share": 0.1, "pixels": True, "pixel_moving_share": 0.1, "threshold": 0.3,
                          "rigid_segments": {"translation": 0, "similarity": 2, "as generated": 0},
                          "rigid_keeps_size": True})
    assert "move as one piece and keep their size" in line


def test_the_models_default_decides_auto_and_a_bad_setting_is_refused(monkeypatch):
    on = GATED_DCT.replace(motion_gate_pixels=True, rigid_segments=True)
    auto, _ = _slide_generation(monkeypatch, None, on)
    assert "rigid_segments" in auto.metadata["motion_gate"]
    off, _ = _slide_generation(monkeypatch, None)
    assert "rigid_segments" not in off.metadata["motion_gate"]
    with pytest.raises(InputError, match="rigid_segments must be one of auto, on, off"):
        _slide_generation(monkeypatch, "always")


def test_the_node_passes_the_setting_and_tells_what_was_fitted(monkeypatch):
    from more4d_core.sampling.motion_gating import describe_gate

    gen = build_generator(GATED_DCT.replace(motion_gate_pixels=True, rigid_segments=True), seed=0)
    used = node_switch_results(monkeypatch, gen, "rigid_segments", lambda meta: "rigid_segments" in meta["motion_gate"])
    assert used == {"auto": True, "off": False, "on": True}
    line = describe_gate({"moving_share": 0.1, "pixels": True, "pixel_moving_share": 0.1, "threshold": 0.3,
                          "rigid_segments": {"translation": 1, "similarity": 1, "as generated": 1}})
    assert "2 of its 3 moving segments move as one piece" in line


def _growth(depth, keep, scale_step, move):
    """Tracks of ``keep``'s surface growing by ``1 + scale_step * t`` about the point ``(0, 0, 1)`` and moving by
    ``move * t``; the rest of ``depth`` still."""
    centre = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    mask = keep.unsqueeze(-1)
    return _tracks(depth, lambda p, t: torch.where(mask, scale_step * t * (p - centre) + move * t, torch.zeros_like(p)))


def test_a_named_growth_is_strengthened_by_the_power_and_only_where_its_clause_names_it():
    depth = torch.full((20, 30), 3.0)
    depth[5:13, 6:18] = 1.0
    keep = depth < 2
    move = torch.tensor([0.01, -0.005, 0.02], dtype=torch.float64)
    grown = _growth(depth, keep, 0.1, move)  # 1.3x its size at the last frame
    as_fitted, counts = fit_segments(grown, keep, with_scale=False, growing=True)
    assert counts == {"translation": 0, "similarity": 1, "as generated": 0}
    assert torch.allclose(as_fitted, grown, atol=1e-5)  # a growth the prompt names: its size change as generated
    strong, counts = fit_segments(grown, keep, with_scale=False, growing=True, growth_power=2.0)
    assert counts == {"translation": 0, "similarity": 1, "as generated": 0, "strengthened": 1}
    p0 = grown[0][keep].double()
    for t in range(1, 4):  # by hand: about the generated centroid, (1 + 0.1 t)^2 times the frame-0 spread
        expected = (1 + 0.1 * t) ** 2 * (p0 - p0.mean(0)) + grown[t][keep].double().mean(0)
        assert torch.allclose(strong[t][keep].double(), expected, atol=1e-5)
    assert torch.equal(strong[:, ~keep], grown[:, ~keep]) and torch.equal(strong[0], grown[0])
    kept, counts = fit_segments(grown, keep, with_scale=False, growing=False, growth_power=2.0)
    assert counts["as generated"] == 1 and torch.equal(kept, grown)  # no growth named: a turn cannot explain it
    where = torch.zeros(20, 30, dtype=torch.bool)
    where[5:13, 6:11] = True  # a growth map covering less than half of the segment: not its clause's growth
    minority, counts = fit_segments(grown, keep, with_scale=False, growing=where, growth_power=2.0)
    assert counts["as generated"] == 1 and torch.equal(minority, grown)


def test_segments_are_also_cut_between_clauses_so_touching_objects_move_apart():
    depth = _layout()
    points0 = backproject_depth(depth, K).float().reshape(20, 30, 3)
    keep = depth < 2.5
    regions = torch.zeros(20, 30, dtype=torch.long)
    regions[:, 10:] = 1  # the second square and the third are the second clause's
    cut = torch.from_numpy(motion_segments(points0, keep, regions=regions))
    first, second = cut[4:10, 4:10], cut[4:10, 10:16]
    assert first.unique().numel() == 1 and second.unique().numel() == 1 and int(first[0, 0]) != int(second[0, 0])
    assert int(cut[4:10, 18:26].unique().numel()) == 1 and (cut[~keep] == 0).all()
    squares = keep & (depth < 1.5)
    left = squares & (regions == 0)
    apart = torch.where(left, -1.0, 1.0).to(torch.float64).view(20, 30, 1) * torch.tensor([0.1, 0.0, 0.0],
                                                                                         dtype=torch.float64)
    tracks = _tracks(depth, lambda p, t: t * apart * squares.unsqueeze(-1))  # the two squares slide apart
    whole, counts = fit_segments(tracks, squares)
    assert counts == {"translation": 0, "similarity": 0, "as generated": 1}  # one segment: no one motion fits it
    fitted, counts = fit_segments(tracks, squares, regions=regions)
    assert counts == {"translation": 2, "similarity": 0, "as generated": 0}
    assert torch.allclose(fitted, tracks, atol=1e-6)


def test_each_pixel_grows_where_its_own_clause_names_a_growth():
    from more4d_core.sampling.rigid_motion import growth_pixels

    regions = torch.tensor([[0, 1, 1], [2, 0, 1]])
    clauses = ["the ball spins clockwise", "the card expands", "the box moves left"]
    assert torch.equal(growth_pixels("unused", clauses, regions), regions == 1)
    assert growth_pixels("the ball spins and the card grows") is True  # no clauses: any growth word, every pixel
    assert growth_pixels("the ball spins clockwise", clauses, None) is False


def test_the_config_strengthens_growth_and_cuts_at_clauses_only_with_rigid_segments_and_reads_old_files_as_before():
    rigid = GATED_DCT.replace(motion_gate_pixels=True, rigid_segments=True)
    assert rigid.rigid_growth_power == 1.0 and rigid.rigid_clauses is False
    assert rigid.replace(rigid_growth_power=2.0, rigid_clauses=True).rigid_growth_power == 2.0
    for bad in ({"rigid_growth_power": 0.0}, {"rigid_growth_power": 4.5}, {"rigid_growth_power": float("nan")},
                {"rigid_growth_power": True}, {"rigid_growth_power": "2"}):
        with pytest.raises(InputError, match="rigid_growth_power"):
            rigid.replace(**bad)
    for bad in ({"rigid_clauses": 1}, {"rigid_clauses": "on"}):
        with pytest.raises(InputError, match="rigid_clauses"):
            rigid.replace(**bad)
    pixels = GATED_DCT.replace(motion_gate_pixels=True)  # no segments
    with pytest.raises(InputError, match="rigid_growth_power"):
        pixels.replace(rigid_growth_power=2.0)
    with pytest.raises(InputError, match="rigid_clauses"):
        pixels.replace(rigid_clauses=True)
    data = json.loads(rigid.replace(rigid_growth_power=2.0, rigid_clauses=True).to_json())
    assert data["config_version"] == CONFIG_VERSION >= 19
    read = STraGConfig.from_dict(dict(data))
    assert read.rigid_growth_power == 2.0 and read.rigid_clauses is True
    data["config_version"] = 18
    data.pop("rigid_growth_power")
    data.pop("rigid_clauses")
    old = STraGConfig.from_dict(data)
    assert old.rigid_growth_power == 1.0 and old.rigid_clauses is False  # written before: as fitted, no clause cuts


def test_the_defaults_tool_writes_the_growth_power_and_clause_cuts(tmp_path):
    from more4d_core.checkpoints.defaults import set_defaults

    model, written, off = through_the_defaults_tool(tmp_path, "g.safetensors", ["--growth-power", "2", "--rigid-clauses", "on"])
    assert written.rigid_growth_power == 2.0 and written.rigid_clauses is True
    assert off.rigid_growth_power == 1.0 and off.rigid_clauses is False  # no segments: nothing to strengthen or cut
    for bad in (5.0, True):
        with pytest.raises(InputError, match="growth power|rigid_growth_power"):
            set_defaults(model, tmp_path / "bad.safetensors", growth_power=bad)
        assert not (tmp_path / "bad.safetensors").exists()


def _two_clauses(monkeypatch, config, prompt="the ball spins clockwise and the card grows"):
    import more4d_core.generator as generator_module

    seen = []

    def spy(*args, **kwargs):  # the real fit, and what the generator asked of it
        seen.append(kwargs)
        return fit_segments(*args, **kwargs)

    monkeypatch.setattr(generator_module, "fit_segments", spy)
    gen = build_generator(config, seed=0)
    depth = torch.full((32, 32), 3.0)
    depth[8:20, 4:28] = 1.0  # one surface: the ball (left) touching the card (right)
    image = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(2))
    calls = []

    def probability(transformer, conditions, text):
        p = torch.zeros(1, *conditions.control.shape[-2:])
        p[0, 2:5, 1:4] = 1.0 if len(calls) % 2 == 0 else 0.0  # the first clause's cells (pixels 4-15)
        p[0, 2:5, 4:7] = 0.0 if len(calls) % 2 == 0 else 1.0  # the second's (pixels 16-27)
        calls.append(1)
        return p

    monkeypatch.setattr("more4d_core.generator.gate_probability", probability)
    scene = gen.generate(image, depth, K, prompt, steps=1, num_frames=5, still_threshold=0.0, motion_smoothing=0.0,
                         seed=3)
    return scene, seen[0]


def test_the_generator_cuts_segments_at_clauses_and_strengthens_only_the_growing_clause(monkeypatch):
    base = GATED_DCT.replace(motion_gate_pixels=True, rigid_segments=True, rigid_scale="prompted",
                             clause_composition="gate", object_focus=0.8)
    per_clause, asked = _two_clauses(monkeypatch, base.replace(rigid_clauses=True, rigid_growth_power=2.0,
                                                               rigid_growth_limit=0.5))
    regions = asked["regions"]
    assert regions is not None and regions.shape == (32, 32)
    assert (regions[8:20, 4:16] == 0).all() and (regions[8:20, 16:28] == 1).all()  # each pixel's surest clause
    assert torch.equal(asked["growing"], regions == 1) and asked["growth_power"] == 2.0
    assert asked["growth_limit"] == 0.5  # the model's
    assert not asked["with_scale"]
    gate = per_clause.metadata["motion_gate"]
    fitted = gate["rigid_segments"]
    assert fitted["translation"] + fitted["similarity"] + fitted["as generated"] == 2  # one segment per clause
    assert "strengthened" in fitted and "rigid_keeps_size" not in gate
    assert ("rigid_growth_power" in gate) is (fitted["strengthened"] > 0)  # said only where a growth was strengthened
    whole, asked = _two_clauses(monkeypatch, base)  # before version 19: one segment, any growth word lets it scale
    assert asked["regions"] is None and asked["growing"] is True and asked["growth_power"] == 1.0
    assert sum(whole.metadata["motion_gate"]["rigid_segments"].values()) == 1
    assert "rigid_growth_power" not in whole.metadata["motion_gate"]
    _, asked = _two_clauses(monkeypatch, base.replace(rigid_clauses=True), "the ball spins and the card slides left")
    assert not asked["growing"].any()  # no clause names a growth: every segment keeps its size
    _, asked = _two_clauses(monkeypatch, base.replace(rigid_clauses=True, object_focus=0.0))  # without the focus too
    assert torch.equal(asked["regions"], regions) and torch.equal(asked["growing"], regions == 1)
    from more4d_core.sampling.motion_gating import describe_gate

    said = {"moving_share": 0.1, "pixels": True, "pixel_moving_share": 0.1, "threshold": 0.3, "rigid_growth_power": 2.0,
            "rigid_segments": {"translation": 1, "similarity": 2, "as generated": 0, "strengthened": 1}}
    line = describe_gate(said)
    assert "2 of its 3 moving segments" not in line and "3 of its 3 moving segments move as one piece" in line
    assert "1 of them grows as the prompt names, the fitted size change strengthened (raised to the power 2)" in line


def test_a_growth_too_loose_for_the_common_limit_is_fitted_under_the_growth_limit_only_where_its_clause_grows():
    depth = torch.full((20, 30), 3.0)
    depth[5:13, 6:18] = 1.0
    keep = depth < 2
    grown = _growth(depth, keep, 0.1, torch.zeros(3, dtype=torch.float64))
    wobble = 0.012 * torch.randn(grown.shape, generator=torch.Generator().manual_seed(4)) * keep.unsqueeze(-1)
    wobble[0] = 0.0
    loose = grown + wobble * torch.arange(4).view(4, 1, 1, 1)  # a growth with a non-rigid part, frame 0 exact
    share = unexplained(loose[0][keep], loose[1:][:, keep], similarity_fit(loose[0][keep], loose[1:][:, keep]))
    assert 0.1 < share < 0.5  # too loose for the common limit, within the growth limit below
    common, counts = fit_segments(loose, keep, with_scale=False, growing=True)
    assert counts["as generated"] == 1 and torch.equal(common, loose)
    fitted, counts = fit_segments(loose, keep, with_scale=False, growing=True, growth_limit=0.5)
    assert counts == {"translation": 0, "similarity": 1, "as generated": 0}
    again = similarity_fit(fitted[0][keep].double(), fitted[1:][:, keep].double())  # one transform per frame now
    assert (again - fitted[1:][:, keep].double()).norm(dim=-1).max() < 1e-5
    other, counts = fit_segments(loose, keep, with_scale=True, growing=False, growth_limit=0.5)
    assert counts["as generated"] == 1 and torch.equal(other, loose)  # not a growth clause's: the common limit


def test_the_growth_limit_is_a_share_carried_only_with_rigid_segments_and_old_files_use_the_common_one(tmp_path):
    from more4d_core.checkpoints.bundle import read_header
    from more4d_core.checkpoints.defaults import main, set_defaults
    from more4d_core.models.config import COMMON_SIMILARITY_LIMIT
    from more4d_core.sampling.rigid_motion import SIMILARITY_LIMIT

    assert COMMON_SIMILARITY_LIMIT == SIMILARITY_LIMIT == 0.1  # the config's default is the fit's own limit
    rigid = GATED_DCT.replace(motion_gate_pixels=True, rigid_segments=True)
    assert rigid.rigid_growth_limit == 0.1 and rigid.replace(rigid_growth_limit=0.5).rigid_growth_limit == 0.5
    for bad in (0.0, 1.5, float("nan"), True):
        with pytest.raises(InputError, match="rigid_growth_limit"):
            rigid.replace(rigid_growth_limit=bad)
    with pytest.raises(InputError, match="rigid_growth_limit"):
        GATED_DCT.replace(motion_gate_pixels=True, rigid_growth_limit=0.5)  # no segments
    data = json.loads(rigid.replace(rigid_growth_limit=0.5).to_json())
    assert data["config_version"] == CONFIG_VERSION >= 20 and STraGConfig.from_dict(dict(data)).rigid_growth_limit == 0.5
    data["config_version"] = 19
    data.pop("rigid_growth_limit")
    assert STraGConfig.from_dict(data).rigid_growth_limit == 0.1
    model = save_tiny_model(tmp_path / "m.safetensors", rigid)
    assert main([str(model), "--out", str(tmp_path / "l.safetensors"), "--growth-limit", "0.5"]) == 0
    assert read_header(tmp_path / "l.safetensors").config.rigid_growth_limit == 0.5
    off = set_defaults(tmp_path / "l.safetensors", tmp_path / "off.safetensors", rigid_segments=False)
    assert read_header(off).config.rigid_growth_limit == 0.1
    with pytest.raises(InputError, match="rigid_growth_limit"):
        set_defaults(model, tmp_path / "bad.safetensors", growth_limit=2.0)
    assert not (tmp_path / "bad.safetensors").exists()


def test_one_point_repeated_takes_the_mean_move_and_nothing_undefined():
    source = torch.tensor([[0.5, -0.25, 2.0]], dtype=torch.float64).expand(8, 3)  # exact in binary: no spread at all
    target = source + torch.randn(3, 8, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    fitted = similarity_fit(source, target)  # no spread: no rotation or size is defined, only the move
    assert torch.isfinite(fitted).all()
    assert torch.allclose(fitted, target.mean(1, keepdim=True).expand_as(target), atol=1e-12)


def test_a_named_shrink_is_strengthened_as_a_growth_is():
    depth = torch.full((20, 30), 3.0)
    depth[5:13, 6:18] = 1.0
    keep = depth < 2
    shrunk = _growth(depth, keep, -0.1, torch.zeros(3, dtype=torch.float64))  # 0.7x its size at the last frame
    strong, counts = fit_segments(shrunk, keep, with_scale=False, growing=True, growth_power=2.0)
    assert counts["strengthened"] == 1
    p0 = shrunk[0][keep].double()
    for t in range(1, 4):  # by hand: (1 - 0.1 t)^2 times the frame-0 spread, about the generated centroid
        expected = (1 - 0.1 * t) ** 2 * (p0 - p0.mean(0)) + shrunk[t][keep].double().mean(0)
        assert torch.allclose(strong[t][keep].double(), expected, atol=1e-5)


@pytest.mark.parametrize("scale", [0.25, 1.0, 4.0])
def test_a_depth_jump_is_relative_to_the_nearer_depth_at_any_distance(scale):
    # three strips side by side: the second 2.5% farther than the first (one surface: below the 4% jump), the third 8%
    # farther than the second (a cut); the same at a quarter of the distance and at four times it
    depth = torch.full((12, 30), 9.0 * scale)
    depth[2:10, 2:10] = scale
    depth[2:10, 10:18] = 1.025 * scale
    depth[2:10, 18:26] = 1.025 * 1.08 * scale
    keep = depth < 5 * scale
    labels = torch.from_numpy(motion_segments(backproject_depth(depth, K).double().reshape(12, 30, 3), keep))
    surface = labels[2:10, 2:18].unique()
    assert surface.numel() == 1 and surface.item() > 0  # the 2.5% step is one surface
    third = set(labels[2:10, 18:26].unique().tolist())  # its column at the jump is the far side's own segment
    assert len(third) == 2 and surface.item() not in third


def test_segments_on_both_sides_of_a_jump_and_in_two_clauses_keep_their_own_labels():
    depth = torch.full((20, 30), 3.0)
    depth[4:10, 4:10] = 1.0  # clause 0's square, with the column of the wall beside it that the gate let move
    depth[12:18, 18:26] = 1.0  # clause 1's square
    keep = torch.zeros(20, 30, dtype=torch.bool)
    keep[4:10, 4:11] = True
    keep[12:18, 18:26] = True
    regions = torch.zeros(20, 30, dtype=torch.long)
    regions[11:, 15:] = 1
    labels = torch.from_numpy(motion_segments(backproject_depth(depth, K).float().reshape(20, 30, 3), keep,
                                              regions=regions))
    square0, square1, wall = labels[4:10, 4:10].unique(), labels[12:18, 18:26].unique(), labels[4:10, 10].unique()
    assert square0.numel() == square1.numel() == wall.numel() == 1  # near side clause 0 / 1, far side clause 0
    assert len({square0.item(), square1.item(), wall.item()}) == 3 and labels[keep].unique().numel() == 3


def test_every_segment_is_fitted_and_counted():
    # six separate squares: two slide, two spin, two bend; each pair must take its fit and be counted twice
    depth = torch.full((30, 40), 3.0)
    boxes = [(2, 9, 2, 10), (2, 9, 14, 22), (12, 19, 2, 10), (12, 19, 14, 22), (21, 28, 2, 10), (21, 28, 14, 22)]
    masks = []
    for r0, r1, c0, c1 in boxes:
        depth[r0:r1, c0:c1] = 1.0
        m = torch.zeros(30, 40, dtype=torch.bool)
        m[r0:r1, c0:c1] = True
        masks.append(m)
    points0 = backproject_depth(depth, K).double().reshape(30, 40, 3)
    centres = [points0[m].mean(0) for m in masks]

    def moves(p, t):
        out = torch.zeros_like(p)
        for i, m in enumerate(masks):
            if i < 2:
                move = torch.tensor([0.05, 0.02, 0.0], dtype=torch.float64) * t
            elif i < 4:
                r = _rotation([0.0, 1.0, 0.0], 0.2 * t * (1 if i == 2 else -1))
                move = (p - centres[i]) @ r.T + centres[i] - p
            else:
                x = p[..., 0] - centres[i][0]
                move = torch.zeros_like(p)
                move[..., 2] = -0.5 * t * x * x
            out = torch.where(m.unsqueeze(-1), move, out)
        return out

    tracks = _tracks(depth, moves)
    keep = depth < 2
    fitted, counts = fit_segments(tracks, keep)
    assert counts == {"translation": 2, "similarity": 2, "as generated": 2}
    assert (fitted - tracks)[:, keep].norm(dim=-1).max() < 1e-4  # the slides and spins fitted exactly, the bends kept
    both = masks[0] | masks[1]
    grown = _tracks(depth, lambda p, t: sum(torch.where(masks[i].unsqueeze(-1), 0.1 * t * (p - centres[i]),
                                                        torch.zeros_like(p)) for i in (0, 1)))  # each about its centre
    _, counts = fit_segments(grown, both, with_scale=False, growing=True, growth_power=2.0)
    assert counts == {"translation": 0, "similarity": 2, "as generated": 0, "strengthened": 2}


def test_three_clauses_keep_two_touching_objects_apart():
    depth = _layout()  # the two touching squares (clauses 0 and 1) and the third square beside them (clause 2)
    keep = depth < 2.5
    regions = torch.zeros(20, 30, dtype=torch.long)
    regions[:, 10:] = 1
    regions[:, 17:] = 2
    labels = torch.from_numpy(motion_segments(backproject_depth(depth, K).float().reshape(20, 30, 3), keep,
                                              regions=regions))
    first, second, third = labels[4:10, 4:10].unique(), labels[4:10, 10:16].unique(), labels[4:10, 18:26].unique()
    assert first.numel() == second.numel() == third.numel() == 1
    assert len({first.item(), second.item(), third.item()}) == 3
