"""Synthetic shallow depth-of-field photographs for the depth benchmark: windows of the split's
photographs never enlarged, a subject with its true depth in front, a backdrop blurred as asked,
and the benchmark's "in front" score on hand-made depths."""

import cv2
import numpy as np
import pytest
import torch

from more4d_core.bench.bokeh_scenes import bokeh_scene
from more4d_core.bench.depth_bench import bokeh_rows, in_front
from more4d_core.data.procedural import textures
from more4d_core.depth.defocus import defocus_map


def test_photo_windows_come_from_the_split_and_are_never_enlarged(monkeypatch):
    seen = []
    load = textures._load_photo
    monkeypatch.setattr(textures, "_load_photo", lambda name: seen.append(name) or load(name))
    for seed in range(6):
        win = textures.photo_window(np.random.default_rng(seed), "validation", 240, 320)
        assert win.shape == (3, 240, 320) and 0 <= float(win.min()) and float(win.max()) <= 1
    assert set(seen) <= set(textures.VALIDATION_PHOTOS)
    # the 200 px chessboard fills 240 x 320 by mirroring, not by enlarging: its squares' edges stay
    # within two pixels (enlarged 1.6 times or more, they would spread over three or more)
    monkeypatch.setattr(textures, "SPLITS", {"validation": ("chessboard_RGB.png",)})
    for seed in range(3):
        win = textures.photo_window(np.random.default_rng(seed), "validation", 240, 320).mean(0).numpy()
        within_two, within_six = np.abs(win[:, 2:] - win[:, :-2]).max(), np.abs(win[:, 6:] - win[:, :-6]).max()
        assert within_two >= 0.9 * within_six > 0.3
    enlarged = textures.sample_texture(np.random.default_rng(0), "validation", 320).mean(0).numpy()
    assert np.abs(enlarged[:, 2:] - enlarged[:, :-2]).max() < 0.8 * np.abs(enlarged[:, 6:] - enlarged[:, :-6]).max()
    with pytest.raises(ValueError, match="split"):
        textures.photo_window(np.random.default_rng(0), "test", 8, 8)


def test_a_scene_has_its_subject_in_front_and_its_backdrop_blurred_as_asked():
    read = 0
    for seed in range(4):
        scene = bokeh_scene(seed, "validation")
        sharp = bokeh_scene(seed, "validation", sharp_backdrop=True)
        mask = scene.subject.numpy()
        assert 0.1 <= mask.mean() <= 0.7 and torch.equal(scene.subject, sharp.subject)
        ratio = float(scene.depth[~scene.subject].median() / scene.depth[scene.subject].median())
        assert 1.6 <= ratio <= 4.0
        assert 2.0 <= scene.blur <= 6.0 and sharp.blur == 0.0
        # inside the outline the subject's pixels are the same; away from it the backdrop's are blurred
        inside = torch.from_numpy(cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool))
        assert torch.allclose(scene.image[inside], sharp.image[inside])
        far = cv2.erode((~mask).astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool)
        blurred = cv2.GaussianBlur(np.ascontiguousarray(sharp.image.numpy()), (0, 0), scene.blur)
        assert np.abs(scene.image.numpy()[far] - blurred[far]).max() < 0.02
        # where the blurred backdrop still has edges, they read about as wide as the blur
        reading = defocus_map(cv2.cvtColor(scene.image.numpy(), cv2.COLOR_RGB2GRAY))[far]
        if np.isfinite(reading).sum() > 100:
            assert np.nanmedian(reading) >= 0.8 * scene.blur
            read += 1
    assert read >= 2


def test_in_front_counts_the_subject_nearer_than_the_backdrops_median():
    subject = torch.zeros(4, 4, dtype=torch.bool)
    subject[:2, :2] = True
    depth = torch.full((4, 4), 5.0)
    depth[0, 0], depth[0, 1] = 2.0, 3.0  # two of the four subject pixels nearer; two at the backdrop's depth
    assert in_front(depth, subject) == pytest.approx(0.5)
    assert in_front(torch.ones(4, 4), subject) == 0.0


def test_the_benchmark_rows_score_a_constant_as_the_backdrops_share():
    """Median scaling puts a constant at the backdrop's depth when the backdrop is most of the frame:
    its delta is then the backdrop's share (the subject is 1.6 to 4 times nearer), and nothing is in front."""
    seeds = [s for s in range(6) if bokeh_scene(s, "validation").subject.float().mean() < 0.45][:2]
    rows = bokeh_rows("validation", seeds, sharp_backdrop=True)
    assert set(rows) == {"built-in prior", "prior by focus", "constant depth"}
    share = np.mean([1 - float(bokeh_scene(s, "validation").subject.float().mean()) for s in seeds])
    absrel, delta, front = rows["constant depth"]
    assert delta == pytest.approx(share, abs=1e-6) and front == 0.0
    # the in-focus control: the two priors agree (by focus changes nothing without a defocused backdrop)
    assert rows["built-in prior"] == pytest.approx(rows["prior by focus"])
