"""The trajectory metrics of the evaluation harness, on hand-built tracks."""

import pytest
import torch

from more4d_core.eval.metrics import THRESHOLDS_PX, moving_points, score
from more4d_core.geometry.normalization import NormalizationFactors

K = torch.tensor([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]], dtype=torch.float64)
FACTORS = NormalizationFactors(1.0, 1.0)


def _tracks(t=6, n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    p0 = torch.rand(n, 3, generator=g, dtype=torch.float64) * torch.tensor([2.0, 2.0, 3.0]) + torch.tensor([-1, -1, 2.0])
    motion = torch.zeros(t, n, 3, dtype=torch.float64)
    motion[:, : n // 4, 0] = torch.linspace(0, 0.3, t)[:, None]  # a quarter of the points move sideways
    return p0 + motion


def test_exact_and_globally_scaled_predictions_are_perfect():
    gt = _tracks()
    vis = torch.ones(gt.shape[:2], dtype=torch.bool)
    exact = score(gt, gt, vis, K, FACTORS)
    assert exact.epe3d == 0 and all(v == 1.0 for v in exact.within.values())
    scaled = score(gt * 2.5, gt, vis, K, FACTORS)  # unknown global scale is undone by median scaling
    assert all(v == 1.0 for v in scaled.within.values())


def test_a_static_prediction_gets_the_static_points_right():
    gt = _tracks()
    vis = torch.ones(gt.shape[:2], dtype=torch.bool)
    static = gt[:1].expand_as(gt).clone()
    s = score(static, gt, vis, K, FACTORS)
    # frame 0 is not scored; at frame 1 the movers are 0.06 m off (>= 2 px at z <= 5 m, f = 100)
    assert s.within[1] == pytest.approx(0.75)
    assert s.epe3d > 0 and s.smoothness == 0.0
    # finer pixels are stricter: the same errors in pixels of a 4x larger image
    fine = score(static, gt, vis, K, FACTORS, pixel_scale=4.0)
    assert all(fine.within[d] <= s.within[d] for d in THRESHOLDS_PX)


def test_hidden_points_are_not_scored():
    gt = _tracks()
    vis = torch.ones(gt.shape[:2], dtype=torch.bool)
    vis[:, : gt.shape[1] // 4] = False  # hide the movers
    static = gt[:1].expand_as(gt).clone()
    s = score(static, gt, vis, K, FACTORS)
    assert all(v == 1.0 for v in s.within.values())


def test_moving_points_follow_the_pixel_threshold():
    gt = _tracks()  # a quarter of the points move 0.3 m sideways at 2-5 m depth, f = 100 px
    moving = moving_points(gt, K)
    assert moving[:10].all() and not moving[10:].any()  # 0.3 m at 5 m is 6 px > 2 px
    # in a 50x coarser image 6 px become 0.12 px: nothing moves more than 2 px there
    assert not moving_points(gt, K, pixel_scale=0.02).any()


def test_scores_restricted_to_moving_or_still_points():
    gt = _tracks()
    vis = torch.ones(gt.shape[:2], dtype=torch.bool)
    static = gt[:1].expand_as(gt).clone()
    moving = moving_points(gt, K)
    still = score(static, gt, vis, K, FACTORS, points=~moving)
    assert still.epe3d == 0 and all(v == 1.0 for v in still.within.values())
    assert still.points == 30 * 5  # 30 still points x 5 predicted frames
    moved = score(static, gt, vis, K, FACTORS, points=moving)
    # frame 1 moves 0.06 m: within 2 px for z >= 3 m, ... the last frame's 0.3 m is over 4 px for every point
    assert moved.within[1] < 0.5 and moved.within[16] == 1.0 and moved.epe3d > 0


def test_named_share_and_direction_controls_on_the_truth():
    from more4d_core.data.procedural.scene_generator import generate_sample
    from more4d_core.eval import controls

    checked_share = checked_direction = 0
    for seed in range(40):
        s = generate_sample(seed, "heldout", 48, 64, 9)
        if s.params["camera"]["phrase"] or len(s.params["movers"]) != 1:
            continue
        mover = s.params["movers"][0]
        # the truth moves only the named mover: all of its motion is on the mover's pixels
        assert controls.named_share(s.tracks, s, mover, 8.0) == pytest.approx(1.0)
        other = [i for i in controls.nameable_objects(s) if i != mover]
        if other:
            assert controls.named_share(s.tracks, s, other[0], 8.0) == 0.0
            checked_share += 1
        cases = controls.direction_cases(s)
        if cases:
            (caption, axis, sign), (swapped, axis2, sign2) = cases
            assert caption == s.caption and axis == axis2 and sign2 == -sign and swapped != caption
            assert controls.direction_sign(s.tracks, s, axis) == sign  # the truth goes the captioned way
            for a, b in controls.SWAPPED.items():
                if f" {a}" in caption and not (a == "away" and "toward" in caption):
                    assert f" {b}" in swapped
            checked_direction += 1
    assert checked_share >= 3 and checked_direction >= 3


def test_still_drift_is_measured_in_output_pixels():
    from more4d_core.eval.controls import still_drift

    p0 = torch.tensor([[0.0, 0.0, 2.0], [0.5, 0.0, 4.0]], dtype=torch.float64)
    tracks = torch.stack([p0, p0 + torch.tensor([[0.02, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)])
    drift = still_drift(tracks, K, 4.0)  # 0.02 m at 2 m with f = 100: 1 px of the grid, 4 of the output
    assert drift[0] == pytest.approx(4.0) and drift[1] == 0.0


def test_the_example_check_scores_the_truth_as_perfect():
    from more4d_core.data.procedural.scene_generator import generate_sample
    from more4d_core.eval.example_check import EXAMPLE_PROMPT, EXAMPLE_SEED, EXAMPLE_SPLIT, check_example

    truth = generate_sample(EXAMPLE_SEED, EXAMPLE_SPLIT, 192, 256, 49, with_visibility=False)
    assert truth.caption == EXAMPLE_PROMPT
    result = check_example(truth.tracks, (192, 256))
    assert result["model"]["moving"] > 0.95 and result["model"]["still"] > 0.99
    assert result["model"]["named_share"] > 0.95
    assert result["nothing moves"]["still"] == 1.0 and result["nothing moves"]["moving"] < 0.3
    # a scene with the depth scaled (e.g. another depth estimate) and the same relative motion scores the same
    scaled = check_example(truth.tracks * 1.7, (192, 256))
    assert scaled["model"]["moving"] == pytest.approx(result["model"]["moving"], abs=1e-6)


def test_evaluation_of_one_scene_is_refused_with_the_reason():
    """The wrong-caption control borrows another scene's caption: one scene has none to borrow (was a
    bare StopIteration)."""
    from more4d_core.eval.protocol import evaluate
    from more4d_core.generator import build_generator
    from more4d_core.models.config import MORE4D_TINY

    with pytest.raises(ValueError, match="at least 2 scenes.*wrong-caption"):
        evaluate(build_generator(MORE4D_TINY), split="validation", samples=1, mean_samples=1, log=lambda *_: None)


def _above_median_offset(gt: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """``gt`` with ``offset`` added to every point-frame after frame 0 (given, not predicted) whose distance from the
    camera is above the median and grows with it: the median distance, and so TAPVid-3D's global scale, stays exactly
    the truth's."""
    norms = gt.norm(dim=-1)
    above = norms > norms.median()
    above[0] = False
    moved = gt + above.unsqueeze(-1) * offset
    assert moved.norm(dim=-1).median() == norms.median()
    return moved


def test_the_error_axes_count_only_their_part_of_the_error():
    gt = _tracks()
    vis = torch.ones(gt.shape[:2], dtype=torch.bool)
    deeper = _above_median_offset(gt, torch.tensor([0.0, 0.0, 0.4], dtype=torch.float64))  # a pure depth error
    full, lateral, depth = (score(deeper, gt, vis, K, FACTORS, axes=a) for a in ("xyz", "xy", "z"))
    assert full.within[1] < 1.0 and full.epe3d > 0
    assert lateral.epe3d == 0 and all(v == 1.0 for v in lateral.within.values())  # no lateral error at all
    assert depth.within == full.within and depth.epe3d == pytest.approx(full.epe3d)  # all of it is depth error
    aside = _above_median_offset(gt, torch.tensor([0.6, 0.8, 0.0], dtype=torch.float64))  # a pure lateral error
    full, lateral, depth = (score(aside, gt, vis, K, FACTORS, axes=a) for a in ("xyz", "xy", "z"))
    # 1 m off at 2-5 m with f = 100 px: 20-50 px, outside every threshold; the depth part is exact
    assert full.within[16] < 0.9 and lateral.within == full.within
    assert depth.epe3d == 0 and all(v == 1.0 for v in depth.within.values())
    with pytest.raises(ValueError, match="axes must be one of"):
        score(gt, gt, vis, K, FACTORS, axes="x")


def test_the_evaluation_splits_the_models_error_by_axis_on_request():
    import json

    from more4d_core.eval.protocol import evaluate
    from more4d_core.generator import build_generator
    from more4d_core.models.config import MORE4D_TINY

    gen = build_generator(MORE4D_TINY, seed=0)
    common = dict(split="validation", samples=2, steps=1, mean_samples=2, with_controls=False, log=lambda *_: None)
    plain = evaluate(gen, **common)["cells"]["output"]
    assert "model, lateral error only" not in plain and "model, depth error only" not in plain
    rows = evaluate(gen, axis_split=True, **common)["cells"]["output"]
    same = json.dumps(rows["model"], sort_keys=True) == json.dumps(plain["model"], sort_keys=True)  # NaN-safe
    assert same  # the same generation, scored on the full error
    lateral, depth = rows["model, lateral error only"], rows["model, depth error only"]
    cells = [c for c, v in rows["model"].items() if v is not None and v["points"] > 0]
    assert len(cells) >= 3
    for cell in cells:  # a part of an error vector is never longer than the whole
        for part in (lateral, depth):
            assert part[cell]["within_avg"] >= rows["model"][cell]["within_avg"] - 1e-12
            assert part[cell]["epe3d"] <= rows["model"][cell]["epe3d"] + 1e-12
    # an untrained model is wrong on both axes: each part alone leaves points inside thresholds the whole does not
    assert any(lateral[c]["within_avg"] > rows["model"][c]["within_avg"] for c in cells)
    assert any(depth[c]["within_avg"] > rows["model"][c]["within_avg"] for c in cells)


def test_motion_groups_follow_the_procedural_motions():
    from more4d_core.eval.by_motion import motion_group

    assert motion_group({"kind": "translate", "vector": [0.3, 0.0, 0.0]}) == "slides"
    assert motion_group({"kind": "translate", "vector": [0.0, -0.2, 0.0]}) == "slides"
    assert motion_group({"kind": "translate", "vector": [0.0, 0.0, -0.5]}) == "moves toward / away"
    expected = {"bounce": "bounces", "spin": "spins", "grow": "grows / shrinks", "wave": "waves", "bend": "bends"}
    for kind, group in expected.items():
        assert motion_group({"kind": kind, "vector": [0.0, 0.0, 0.0]}) == group
    with pytest.raises(ValueError, match="no motion group"):
        motion_group({"kind": "still", "vector": [0.0, 0.0, 0.0]})


def test_gain_and_length_ratio_of_scaled_reversed_and_crossing_motions():
    from more4d_core.eval.by_motion import displacement_agreement

    gt = _tracks()
    movers = torch.zeros(gt.shape[1], dtype=torch.bool)
    movers[:10] = True  # the quarter of the points that slide sideways
    p0 = gt[:1]
    half = p0 + 0.5 * (gt - p0)
    reversed_ = p0 - (gt - p0)
    crossing = gt[:, :, [1, 0, 2]].clone()  # the sideways motion turned into a vertical one of the same length
    crossing[..., :2] = p0[..., :2] + (gt - p0)[..., [1, 0]]
    assert displacement_agreement(gt, gt, FACTORS, movers) == pytest.approx((1.0, 1.0))
    assert displacement_agreement(half, gt, FACTORS, movers) == pytest.approx((0.5, 0.5))
    assert displacement_agreement(reversed_, gt, FACTORS, movers) == pytest.approx((-1.0, 1.0))
    assert displacement_agreement(crossing, gt, FACTORS, movers) == pytest.approx((0.0, 1.0))
    with pytest.raises(ValueError, match="do not move"):
        displacement_agreement(gt, gt, FACTORS, ~movers)


def test_the_evaluation_reports_each_movers_motion_group():
    from more4d_core.data.procedural.scene_generator import generate_sample
    from more4d_core.eval.by_motion import GROUPS, motion_group
    from more4d_core.eval.protocol import evaluate
    from more4d_core.eval.report import format_by_motion
    from more4d_core.generator import build_generator
    from more4d_core.models.config import MORE4D_TINY

    cfg = MORE4D_TINY
    gen = build_generator(cfg, seed=0)
    result = evaluate(gen, split="validation", samples=6, steps=1, mean_samples=2, with_controls=False,
                      log=lambda *_: None)
    expected = {}  # the movers of the still-camera scenes, read from the scenes themselves
    for seed in range(6):
        s = generate_sample(seed, "validation", cfg.height, cfg.width, cfg.num_frames)
        if not s.params["camera"]["phrase"]:
            for index in s.params["movers"]:
                group = motion_group(s.params["objects"][index]["motion"])
                expected[group] = expected.get(group, 0) + 1
    groups = result["by_motion"]
    assert expected and list(groups) == [g for g in GROUPS if g in groups]
    assert {g: v["movers"] for g, v in groups.items()} == expected
    for group, v in groups.items():  # "nothing moves" moves no point: no moving point of a mover stays within 1 px of it
        assert 0.0 <= v["nothing moves"] < 1.0 and 0.0 <= v["model"] <= 1.0 and v["length_ratio"] >= 0.0
        rigid = group in ("slides", "moves toward / away", "bounces")  # rigid translations have a spread, others none
        assert (v["rigid_spread"] is not None) == rigid and (not rigid or v["rigid_spread"] >= 0.0)
    text = format_by_motion(result)
    assert all(g in text for g in groups)


def test_rigid_spread_is_zero_for_rigid_translations_and_measures_a_spread_of_speeds():
    from more4d_core.eval.by_motion import rigid_spread

    gt = _tracks()  # a quarter of the points slide 0.3 sideways by the last frame (one vector for all of them)
    movers = torch.zeros(gt.shape[1], dtype=torch.bool)
    movers[:10] = True
    p0 = gt[:1]
    assert rigid_spread(gt, gt, movers) == pytest.approx(0.0, abs=1e-12)
    assert rigid_spread(p0 + 0.5 * (gt - p0), gt, movers) == pytest.approx(0.0, abs=1e-12)  # too short, still rigid
    shifted = gt.clone()
    shifted[:, :, 1] += torch.linspace(0, 0.2, gt.shape[0], dtype=torch.float64)[:, None]  # off course, still rigid
    assert rigid_spread(shifted, gt, movers) == pytest.approx(0.0, abs=1e-12)
    # speeds 1 - a and 1 + a on two halves of the movers: along the motion they spread by a (analytic)
    a = 0.2
    speeds = torch.ones(gt.shape[1], dtype=torch.float64)
    speeds[:5], speeds[5:10] = 1 - a, 1 + a
    spread = p0 + (gt - p0) * speeds[None, :, None]
    assert rigid_spread(spread, gt, movers) == pytest.approx(a)
    with pytest.raises(ValueError, match="do not move"):
        rigid_spread(gt, gt, ~movers)


def test_motion_breakdown_averages_rigid_spread_over_the_movers_that_have_one():
    from more4d_core.eval.by_motion import MotionBreakdown

    rows = MotionBreakdown()
    rows.add("slides", model=0.5, nothing=0.1, gain=1.0, length_ratio=1.0, spread=0.1)
    rows.add("slides", model=0.7, nothing=0.1, gain=1.0, length_ratio=1.0, spread=0.3)
    rows.add("spins", model=0.4, nothing=0.2, gain=0.9, length_ratio=1.1)
    summary = rows.summary()
    assert summary["slides"]["rigid_spread"] == pytest.approx(0.2) and summary["slides"]["model"] == pytest.approx(0.6)
    assert summary["spins"]["rigid_spread"] is None and summary["spins"]["movers"] == 1


def test_control_names_nothing_still_and_a_reversed_path_built_by_hand():
    from types import SimpleNamespace

    from more4d_core.eval import controls

    assert controls.to_run(True) == frozenset(controls.CONTROLS) and controls.to_run(None) == frozenset()
    assert controls.to_run("named") == {"named"} and controls.to_run(["named", "direction"]) == {"named", "direction"}
    with pytest.raises(ValueError, match=r"unknown control\(s\) 'bogus': choose from named, direction, still"):
        controls.to_run(["named", "bogus"])
    # four points, the first two the mover's (object 5): it goes right at frame 1 and ends left at the last frame
    ids = torch.tensor([[[5, 5], [0, 0]], [[0, 0], [0, 0]], [[0, 0], [5, 5]]])  # frame 0's ids name the pixels
    sample = SimpleNamespace(object_id=ids, params={"movers": [5]}, intrinsics=torch.tensor(
        [[10.0, 0.0, 1.0], [0.0, 10.0, 1.0], [0.0, 0.0, 1.0]]))
    start = torch.tensor([[0.0, 0.0, 2.0], [0.1, 0.0, 2.0], [0.0, 0.1, 2.0], [0.1, 0.1, 2.0]])
    shift = torch.tensor([[0.0, 0.0, 0.0], [0.05, 0.0, 0.0], [-0.05, 0.0, 0.0]])
    on = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 4, 1)
    tracks = start + shift.view(3, 1, 3) * on
    assert controls.direction_sign(tracks, sample, 0) == -1.0  # the last frame decides, not the first step
    assert controls.named_share(tracks, sample, 5, 1.0) == pytest.approx(1.0)
    assert controls.named_share(start.expand(3, 4, 3), sample, 5, 1.0) == 0.0  # nothing moves: no share, no NaN
    near = torch.tensor([[[0.1, 0.0, 0.5]], [[0.2, 0.0, 0.5]]])  # half a unit away: 0.1 across is f 0.1 / 0.5 = 2 px
    assert controls.pixel_displacement(near, sample.intrinsics, 1.0)[1, 0].item() == pytest.approx(2.0)
