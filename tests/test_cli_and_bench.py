import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from more4d_core.bench.__main__ import main as bench_main
from more4d_core.cli import main as cli_main
from more4d_core.errors import InputError
from more4d_core.export import load_scene
from more4d_core.export.video import write_video

REPO = Path(__file__).resolve().parents[1]


def test_demo_then_render_from_the_command_line(tmp_path, capsys):
    assert cli_main(["demo", "--out", str(tmp_path / "demo"), "--grid", "32x24", "--frames", "5", "--glb"]) == 0
    scene = load_scene(tmp_path / "demo" / "scene.npz")
    assert scene.num_frames == 5 and scene.grid_hw == (24, 32)
    for name in ("orbit.mp4", "orbit_holes.mp4", "orbit_mid.png", "dolly.mp4", "scene.glb"):
        assert (tmp_path / "demo" / name).stat().st_size > 0
    video = iio.imread(tmp_path / "demo" / "orbit.mp4")
    assert video.shape == (5, 24, 32, 3)
    keyframes = tmp_path / "push.json"
    keyframes.write_text('{"keyframes": [{"time": 0}, {"time": 1, "position": [0, 0, 0.2]}]}')
    assert cli_main(["render", str(tmp_path / "demo" / "scene.npz"), "--out", str(tmp_path / "r"),
                     "--camera", "roll", str(keyframes), "--size", "64x48", "--splat", "2", "--ply"]) == 0
    assert iio.imread(tmp_path / "r" / "push.mp4").shape == (5, 48, 64, 3)
    assert len(list((tmp_path / "r" / "scene_ply").glob("*.ply"))) == 5
    out = capsys.readouterr().out
    assert "wrote:" in out and f"{(tmp_path / 'r' / 'push.mp4').resolve()}  (" in out and " KB)" in out


def _refused(capsys, argv, message):
    capsys.readouterr()
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and message in err, err


def test_cli_checks_its_inputs_before_any_work(tmp_path, capsys):
    """The README's render command with the shipped keyframe example; a rerun or a typo is one message
    (exit 2) before anything is written."""
    assert cli_main(["demo", "--out", str(tmp_path / "demo"), "--grid", "32x24", "--frames", "5"]) == 0
    scene = str(tmp_path / "demo" / "scene.npz")
    example = str(REPO / "more4d_core" / "assets" / "keyframes_example.json")
    argv = ["render", scene, "--camera", "circle", "roll", example, "--size", "64x48", "--out", str(tmp_path / "r")]
    assert cli_main(argv) == 0
    assert iio.imread(tmp_path / "r" / "keyframes_example.mp4").shape == (5, 48, 64, 3)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "r").iterdir()}
    _refused(capsys, argv, "already exist: pass --overwrite")  # the rerun: nothing replaced, nothing half-written
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "r").iterdir()} == before
    assert cli_main(argv + ["--overwrite"]) == 0
    fresh = str(tmp_path / "fresh")
    _refused(capsys, ["render", scene, "--camera", "circle", "orbitt", "--out", fresh], "unknown camera preset 'orbitt'")
    _refused(capsys, ["render", scene, "--camera", "nope.json", "--out", fresh], "keyframe file nope.json not found")
    _refused(capsys, ["render", scene, "--camera", "roll", "roll", "--out", fresh], "names roll more than once")
    _refused(capsys, ["render", str(tmp_path / "none.npz"), "--out", fresh], "none.npz not found")
    assert not (tmp_path / "fresh").exists()


def test_video_writer_pads_odd_sizes_and_refuses_bad_input(tmp_path):
    ramp = torch.linspace(0, 1, 11).view(1, 1, 11, 1)
    frames = (ramp * torch.tensor([1.0, 0.5, 0.25]) + torch.linspace(0, 0.3, 4).view(4, 1, 1, 1)).expand(4, 9, 11, 3)
    path = write_video(frames, tmp_path, "odd", fps=4)
    video = iio.imread(path)
    assert video.shape == (4, 10, 12, 3)
    assert np.abs(video[:, :9, :11].astype(float) - frames.numpy() * 255).mean() < 6  # lossy codec
    with pytest.raises(InputError, match="video frames"):
        write_video(torch.rand(4, 9, 11, 2), tmp_path, "bad")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mp4"]


def test_render_benchmark_runs_and_reports_a_ratio(capsys):
    assert bench_main(["render", "--frames", "3", "--height", "24", "--width", "32", "--repeats", "1",
                       "--reference-repeats", "1"]) == 0
    out = capsys.readouterr().out
    for label in ("workload", "ours", "reference", "speed-up", "peak memory", "agreement"):
        assert label in out
    assert "hole masks equal on 100.00%" in out


def test_model_benchmarks_run(capsys):
    assert bench_main(["params", "--config", "more4d-tiny", "more4d-14b"]) == 0
    out = capsys.readouterr().out
    assert "more4d-14b" in out and "no memory allocated" in out and "DiT 14.29" in out
    assert bench_main(["dit", "--config", "more4d-tiny", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "overhead" in out and "equal token count" in out


def test_code_passes_the_linter():
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=REPO, capture_output=True, text=True)
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr


def test_budget_bench_prints_measured_peaks_next_to_the_estimates(capsys):
    assert bench_main(["budget", "--grid", "64x48", "--frames", "5", "--render", "64x64", "--steps", "1",
                       "--threads", "1"]) == 0
    out = capsys.readouterr().out
    for stage in ("generation", "render", "completion"):
        line = next(line for line in out.splitlines() if line.strip().startswith(stage))
        assert "measured" in line and "estimate" in line and ("covers" in line or "UNDER" in line), line


def test_procedural_bench_times_samples_with_and_without_visibility(capsys):
    assert bench_main(["procedural", "--samples", "1", "--frames", "3", "--height", "16", "--width", "16"]) == 0
    lines = capsys.readouterr().out.splitlines()
    times = [float(line.split(":")[1].split()[0]) for line in lines if "visibility:" in line]
    assert [line.split(":")[0].strip() for line in lines if "visibility:" in line] == ["without visibility", "with visibility"]
    assert len(times) == 2 and all(t > 0 for t in times)


def test_depth_bench_prints_each_table_asked_for(capsys):
    assert bench_main(["depth", "--samples", "0", "--bokeh-samples", "2", "--split", "validation"]) == 0
    out = capsys.readouterr().out
    assert "stereo_motorcycle" in out and "procedural scenes" not in out  # --samples 0: no procedural table
    assert "validation shallow depth-of-field scenes: seeds 0-1" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("blurred", "sharp"))]
    assert [(r[0], " ".join(r[1:-3])) for r in rows] == [
        (b, m) for b in ("blurred", "sharp") for m in ("built-in prior", "prior by focus", "constant depth")]
    assert bench_main(["depth", "--samples", "1", "--bokeh-samples", "0", "--height", "48", "--width", "64"]) == 0
    out = capsys.readouterr().out
    assert "heldout procedural scenes: 1 at 64x48" in out and "shallow depth-of-field" not in out
    assert [line.split()[0] for line in out.split("procedural scenes")[1].splitlines()[2:5]] == ["built-in", "prior", "constant"]


def test_completion_bench_scores_every_fill_against_the_true_views(capsys):
    assert bench_main(["completion", "--scenes", "1", "--frames", "3", "--height", "48", "--width", "64",
                       "--camera", "orbit", "--strength", "0.6", "--split", "validation"]) == 0
    out = capsys.readouterr().out
    for method in ("leave holes", "per-frame inpaint", "classical", "classical, textured"):
        rows = [line for line in out.splitlines() if line.split()[:1] in (["orbit"], ["all"]) and f" {method} " in line
                and f"{method}, " not in line]
        assert len(rows) == 2, (method, out)
    assert "detail" in out and "3 px" in out


def test_completion_bench_passes_the_temporal_share_to_both_classical_fills(monkeypatch, capsys):
    from more4d_core.bench import completion_bench

    seen = []
    real = completion_bench.complete_classical

    def recording(*args, **kwargs):
        seen.append((kwargs.get("texture", False), kwargs.get("temporal")))
        return real(*args, **kwargs)

    monkeypatch.setattr(completion_bench, "complete_classical", recording)
    args = ["completion", "--scenes", "1", "--frames", "3", "--height", "32", "--width", "48", "--camera", "dolly",
            "--strength", "0.5", "--split", "validation"]
    assert bench_main(args + ["--temporal", "0.5"]) == 0
    assert seen == [(False, 0.5), (True, 0.5)] and "carried-over share 0.5" in capsys.readouterr().out
    seen.clear()
    assert bench_main(args) == 0
    assert seen == [(False, None), (True, None)]  # no choice given: complete_classical's own default
