"""Paired comparison of two evaluations (``python -m more4d_core.eval.compare``): the evaluation keeps each scene's
values, the bootstrap interval behaves as its definition and the central limit theorem say, and the comparison
pairs scenes and named cases and refuses files that do not hold the same scenes."""

import json

import numpy as np
import pytest

from more4d_core.eval.compare import Paired, bootstrap_interval, compare, format_comparison, load_runs, main, paired

SETTING = {"split": "validation", "depth": "true", "steps": 10, "sample_average": 8, "motion_gate": 0.3,
           "clause_composition": "gate_camera"}


def _run(path, scenes, cases=(), **setting):
    """An evaluation JSON with ``scenes``: (seed, camera, moving, still, all) of the row "model"."""
    per_scene = [{"seed": s, "camera": cam, "within_avg": {"model": {"moving": m, "still": st, "all": a}}}
                 for s, cam, m, st, a in scenes]
    run = {**SETTING, **setting, "per_scene": per_scene,
           "controls": {"named_object_share": {"per_case": [{"seed": s, "object": o, "share": v} for s, o, v in cases]}}}
    path.write_text(json.dumps(run))
    return path


def test_the_interval_of_equal_differences_is_that_difference():
    assert bootstrap_interval(np.full(7, 0.25)) == pytest.approx((0.25, 0.25))


def test_the_interval_of_many_draws_is_the_normal_one():
    d = np.random.default_rng(3).normal(0.1, 1.0, 400)
    low, high = bootstrap_interval(d, rounds=20000)
    expected = 2 * 1.959964 * d.std() / np.sqrt(d.size)  # the central limit theorem's 95% interval of the mean
    assert high - low == pytest.approx(expected, rel=0.08)
    assert (low + high) / 2 == pytest.approx(d.mean(), abs=0.02)


def test_scenes_and_named_cases_are_paired(tmp_path):
    base = [(0, "still", 0.5, 0.99, 0.8), (1, "moves", None, None, 0.7), (2, "still", 0.4, 1.0, 0.9),
            (3, "still", 0.6, 0.98, 0.85)]
    cand = [(s, cam, None if m is None else m + 0.02, st, a) for s, cam, m, st, a in base]
    a = load_runs([_run(tmp_path / "a0.json", base[:2], [(0, 1, 0.8)]),
                   _run(tmp_path / "a1.json", base[2:], [(2, 1, 0.5)])])
    b = load_runs([_run(tmp_path / "b.json", cand, [(0, 1, 0.9), (2, 1, 0.4), (3, 2, 1.0)])])
    rows = {r.label: r for r in compare(a, b, rounds=200)}
    moving = rows["camera still, moving points"]
    assert (moving.count, moving.better, moving.worse) == (3, 3, 0)
    assert moving.base == pytest.approx(0.5) and moving.difference == pytest.approx(0.02)
    assert (moving.low, moving.high) == pytest.approx((0.02, 0.02))
    assert rows["camera moves, all points"].count == 1 and rows["all scenes, all points"].count == 4
    assert rows["camera still, still points"].difference == 0.0
    named = rows["named-object share"]  # only the cases both sides ran
    assert named.count == 2 and named.difference == pytest.approx(0.0) and (named.better, named.worse) == (1, 1)


def test_files_of_other_scenes_or_settings_are_refused(tmp_path):
    one = [(0, "still", 0.5, 0.99, 0.8)]
    a = load_runs([_run(tmp_path / "a.json", one)])
    with pytest.raises(ValueError, match="different seeds"):
        compare(a, load_runs([_run(tmp_path / "b.json", [(1, "still", 0.5, 0.99, 0.8)])]))
    with pytest.raises(ValueError, match="different scenes"):
        compare(a, load_runs([_run(tmp_path / "c.json", one, split="heldout")]))
    with pytest.raises(ValueError, match="one setting per side"):
        load_runs([tmp_path / "a.json", _run(tmp_path / "d.json", [(1, "still", 0.5, 1.0, 0.8)], depth="perturbed")])
    with pytest.raises(ValueError, match="one setting per side"):  # two models on one side
        load_runs([tmp_path / "a.json", _run(tmp_path / "e.json", [(1, "still", 0.5, 1.0, 0.8)], model_sha256="ab")])
    for default in ({"rigid_growth_power": 2.0}, {"rigid_clauses": True}):  # sampler defaults a model file carries
        with pytest.raises(ValueError, match="one setting per side"):
            load_runs([tmp_path / "a.json", _run(tmp_path / "f.json", [(1, "still", 0.5, 1.0, 0.8)], **default)])
    with pytest.raises(ValueError, match="in two files"):
        load_runs([tmp_path / "a.json", tmp_path / "a.json"])
    old = tmp_path / "old.json"
    old.write_text(json.dumps({**SETTING, "cells": {}}))
    with pytest.raises(ValueError, match="no per-scene values"):
        load_runs([old])


def test_the_command_prints_the_table_and_refuses_in_one_line(tmp_path, capsys):
    a = _run(tmp_path / "a.json", [(0, "still", 0.5, 0.99, 0.8), (1, "still", 0.3, 1.0, 0.7)])
    b = _run(tmp_path / "b.json", [(0, "still", 0.6, 0.99, 0.8), (1, "still", 0.4, 1.0, 0.7)])
    assert main(["--base", str(a), "--candidate", str(b), "--rounds", "100"]) == 0
    out = capsys.readouterr().out
    assert "camera still, moving points" in out and "+0.1000" in out and "(up)" in out
    with pytest.raises(SystemExit) as exit_:
        main(["--base", str(a), "--candidate", str(tmp_path / "missing.json")])
    assert exit_.value.code == 2 and "not an evaluation JSON" in capsys.readouterr().err


def test_the_evaluation_keeps_each_scenes_values():
    from more4d_core.eval.protocol import evaluate
    from more4d_core.generator import build_generator
    from more4d_core.models.config import MORE4D_TINY

    result = evaluate(build_generator(MORE4D_TINY, seed=0), split="validation", samples=3, steps=1, mean_samples=2,
                      with_controls=False, log=lambda *_: None)
    records = result["per_scene"]
    assert [r["seed"] for r in records] == [0, 1, 2]
    assert result["rigid_clauses"] is False and result["rigid_growth_power"] == 1.0  # no gate: no segments to fit
    assert sum(r["camera"] == "still" for r in records) == result["scene_counts"]["camera still"]
    for r in records:  # "nothing moves" keeps every still point exactly where it is
        if r["within_avg"]["nothing moves"]["still"] is not None:
            assert r["within_avg"]["nothing moves"]["still"] == 1.0
    cell = result["cells"]["output"]["model"]["all scenes / all"]["within_avg"]
    assert np.mean([r["within_avg"]["model"]["all"] for r in records]) == pytest.approx(cell)


def test_the_kept_evaluations_are_of_the_bundled_file_and_cover_the_judging_set():
    from pathlib import Path

    from more4d_core.checkpoints.bundle import file_sha256
    from more4d_core.weights import default_model_path

    folder = Path(__file__).resolve().parents[1] / "docs" / "evaluations"
    kept = load_runs(sorted(folder.glob("validation_seed*.json")))  # one setting, no seed twice
    assert sorted(kept["scenes"]) == list(range(96))
    assert kept["settings"]["model_sha256"] == file_sha256(default_model_path())  # replaced with the bundled file
    assert len(kept["cases"]) > 0
    for pattern in ("heldout_seed*.json", "heldout_perturbed_seed*.json"):  # reported only, kept for paired reports
        held = load_runs(sorted(folder.glob(pattern)))
        assert sorted(held["scenes"]) == list(range(48))
        assert held["settings"]["model_sha256"] == file_sha256(default_model_path())


def test_the_interval_is_reproducible_by_its_seed_and_refuses_what_has_none():
    d = np.random.default_rng(4).normal(0.0, 1.0, 30)
    assert bootstrap_interval(d, rounds=500, seed=7) == bootstrap_interval(d, rounds=500, seed=7)
    assert bootstrap_interval(d, rounds=500, seed=7) != bootstrap_interval(d, rounds=500, seed=8)
    for bad in ([], np.zeros((2, 3))):
        with pytest.raises(ValueError, match="at least one difference"):
            bootstrap_interval(bad)
    for rounds, level in ((0, 0.95), (100, 0.0), (100, 1.0)):
        with pytest.raises(ValueError, match="rounds >= 1"):
            bootstrap_interval(d, rounds=rounds, level=level)


def test_ties_are_neither_better_nor_worse_and_the_settings_reach_the_interval():
    base = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    candidate = [0.5, 0.63, 0.41, 0.5, 0.57, 0.52]
    row = paired("x", base, candidate, rounds=300, seed=5)
    assert (row.count, row.better, row.worse) == (6, 3, 1)
    d = np.array(candidate) - np.array(base)
    assert (row.low, row.high) == pytest.approx(bootstrap_interval(d, rounds=300, seed=5), abs=1e-12)
    assert (row.low, row.high) != pytest.approx(bootstrap_interval(d, rounds=300, seed=6), abs=1e-9)
    assert (row.low, row.high) != pytest.approx(bootstrap_interval(d, seed=5), abs=1e-9)


def test_a_flag_only_where_the_interval_clears_zero():
    rows = [Paired("up", 5, 0.5, 0.6, 0.1, 0.01, 0.2, 4, 0), Paired("down", 5, 0.5, 0.4, -0.1, -0.2, -0.01, 0, 4),
            Paired("holds zero", 5, 0.5, 0.5, 0.0, -0.1, 0.1, 2, 2),
            Paired("touches zero", 5, 0.5, 0.51, 0.01, 0.0, 0.03, 3, 0),  # a lower end of exactly 0 is not above it
            Paired("touches from below", 5, 0.5, 0.49, -0.01, -0.03, 0.0, 0, 3)]
    lines = format_comparison(rows).splitlines()
    assert lines[1].endswith("4/0  (up)") and lines[2].endswith("0/4  (down)")
    assert lines[3].endswith("2/2") and lines[4].endswith("3/0") and lines[5].endswith("0/3")


def test_both_sides_are_required_and_a_method_missing_on_one_side_is_refused(tmp_path, capsys):
    a = _run(tmp_path / "a.json", [(0, "still", 0.5, 0.99, 0.8)])
    with pytest.raises(SystemExit):
        main(["--base", str(a)])
    with pytest.raises(SystemExit):
        main(["--candidate", str(a)])
    b = tmp_path / "b.json"
    run = json.loads(a.read_text())
    run["per_scene"][0]["within_avg"] = {"other": run["per_scene"][0]["within_avg"]["model"]}
    b.write_text(json.dumps(run))
    with pytest.raises(SystemExit):
        main(["--base", str(a), "--candidate", str(b)])
    assert "no 'model' row for seed 0 on both sides" in capsys.readouterr().err


def test_the_bootstraps_settings_reach_every_row_and_the_command_line(tmp_path, capsys):
    scenes = [(s, "still", 0.3 + 0.01 * s, 0.99, 0.8) for s in range(6)]
    a = _run(tmp_path / "a.json", scenes, cases=[(s, 4, 0.5 + 0.02 * s) for s in range(6)])
    b = _run(tmp_path / "b.json", [(s, c, m + 0.013 * (s % 3), st, x) for s, c, m, st, x in scenes],
             cases=[(s, 4, 0.5 + 0.03 * s) for s in range(6)])
    base, cand = load_runs([a]), load_runs([b])
    rows = compare(base, cand, rounds=300, seed=3)
    assert rows == compare(base, cand, rounds=300, seed=3)
    moving = [r for r in rows if r.label == "camera still, moving points"][0]
    expected = paired("camera still, moving points", [x[2] for x in scenes],
                      [x[2] + 0.013 * (x[0] % 3) for x in scenes], rounds=300, seed=3)
    assert (moving.low, moving.high) == pytest.approx((expected.low, expected.high), abs=1e-12)
    named = [r for r in rows if r.label == "named-object share"][0]
    expected = paired("named", [0.5 + 0.02 * s for s in range(6)], [0.5 + 0.03 * s for s in range(6)], rounds=300,
                      seed=3)
    assert (named.low, named.high) == pytest.approx((expected.low, expected.high), abs=1e-12)
    main(["--base", str(a), "--candidate", str(b), "--rounds", "300", "--seed", "3"])
    assert capsys.readouterr().out == format_comparison(rows) + "\n"
    assert bootstrap_interval(np.array([0.1, 0.3]), rounds=1) in ((0.1, 0.1), (0.2, 0.2), (0.3, 0.3))
