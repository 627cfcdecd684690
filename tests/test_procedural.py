"""The procedural 4D scene generator: determinism, splits, exact ground truth, augmentation."""

import pytest
import torch

from more4d_core.data.procedural.scene_generator import generate_sample
from more4d_core.data.procedural.textures import HELDOUT_PHOTOS, PHOTOS_AVAILABLE, TRAIN_PHOTOS
from more4d_core.render import render_points
from more4d_core.sampling.mirroring import mirror_caption
from more4d_core.train.examples import ProceduralExamples, mirror_example

EYE = torch.eye(4, dtype=torch.float64)


def test_seeded_and_split():
    a = generate_sample(3, "train", 24, 32, 9)
    b = generate_sample(3, "train", 24, 32, 9)
    c = generate_sample(3, "heldout", 24, 32, 9)
    assert torch.equal(a.tracks, b.tracks) and a.caption == b.caption and torch.equal(a.image, b.image)
    assert not torch.equal(a.image, c.image)
    assert not set(TRAIN_PHOTOS) & set(HELDOUT_PHOTOS)
    assert PHOTOS_AVAILABLE  # scikit-image's photographs are a test dependency


def test_ground_truth_is_exact():
    """Splatting the tracks of frame t reproduces the independently ray-cast frame t where visible."""
    checked = 0
    for seed in range(6):
        s = generate_sample(seed, "train", 48, 64, 9, render_video=True)
        n = s.tracks.shape[1]
        ids0 = s.object_id[0].reshape(-1)
        ids_rgb = torch.stack([ids0.float(), torch.zeros(n), torch.zeros(n)], -1) / 16.0
        res = render_points(s.tracks, ids_rgb, EYE.expand(9, 4, 4), s.intrinsics, 48, 64,
                            point_mask=s.visibility, return_point_index=True)
        covered = ~res.holes
        # the object each splatted pixel shows is the object the ray-cast frame shows there
        splat_ids = (res.frames[..., 0] * 16).round().long()
        agree = (splat_ids == s.object_id)[covered].float().mean()
        assert agree > 0.97, (seed, float(agree))
        # and at the same depth as the ray-cast surface
        rel = ((res.depth - s.depth).abs() / s.depth)[covered & (splat_ids == s.object_id)]
        assert rel.median() < 0.01, (seed, float(rel.median()))
        # colours: each pixel takes the frame-0 colour of the point landing there
        frame_err = (s.image.reshape(-1, 3)[res.point_index.clamp(min=0)] - s.frames).abs()
        assert frame_err.amax(-1)[covered & (splat_ids == s.object_id)].median() < 0.08
        checked += int(covered.sum())
    assert checked > 1000


def test_tracks_follow_the_caption():
    for seed in range(20):
        s = generate_sample(seed, "train", 24, 32, 9, with_visibility=False)
        movers = [o for o in s.params["objects"] if o["motion"]["kind"] != "still"]
        assert movers and all(f"the {o['name']} {o['motion']['phrase']}" in s.caption for o in movers)
        if not s.params["camera"]["phrase"]:
            ids = s.object_id[0].reshape(-1)
            names = [o["name"] for o in s.params["objects"]]
            background = torch.tensor([names[i] in ("back wall", "floor", "left wall", "right wall") for i in ids.tolist()])
            assert torch.equal(s.tracks[-1][background], s.tracks[0][background])  # the room does not move


def test_mirror_augmentation():
    assert mirror_caption("the ball slides left, while the camera pans right") == "the ball slides right, while the camera pans left"
    assert mirror_caption("the box spins clockwise quickly") == "the box spins counterclockwise quickly"
    ex = ProceduralExamples("train", 24, 32, 9, mirror_prob=0.0)[5]
    back = mirror_example(mirror_example(ex))
    for key in ("image", "depth", "tracks", "intrinsics"):
        assert torch.equal(back[key], ex[key])
    assert back["caption"] == ex["caption"]
    once = mirror_example(ex)
    # after mirroring, the point stored at column 3 still projects onto the centre of column 3
    k = once["intrinsics"]
    p = once["tracks"][0, 10, 3]
    u = p[0] / p[2] * k[0, 0] + k[0, 2]
    assert abs(float(u) - 3.5) < 1e-3


def test_true_views_match_the_generator_and_the_renderer():
    from more4d_core.camera.presets import camera_preset
    from more4d_core.data.procedural.scene_generator import build_world, render_views
    from more4d_core.render import render_scene

    s = generate_sample(3, "heldout", 48, 64, 5, render_video=True, camera_motion_prob=0.0)
    world = build_world(3, "heldout", 48, 64, camera_motion_prob=0.0)
    frames, depth = render_views(world, torch.eye(4).expand(5, 4, 4), 48, 64)
    assert torch.equal(frames, s.frames) and torch.allclose(depth, s.depth)
    # the same camera convention as the renderer: a pan of the true 4D scene shows what the
    # ray-caster sees from the panned camera on nearly every covered pixel
    scene = s.to_scene()
    path = camera_preset("pan_x", 5, scene_depth=scene.median_depth(), strength=0.3)
    truth, _ = render_views(world, path.poses, 48, 64)
    result = render_scene(scene, path)
    covered = ~result.holes
    close = ((result.frames - truth).abs().amax(-1) < 0.05)[covered].float().mean()
    assert close > 0.85


def test_without_scikit_image_the_scenes_are_refused_not_replaced(monkeypatch):
    """Other textures would be other scenes than the splits and the bundled example's truth."""
    import numpy as np

    from more4d_core.data.procedural import textures

    monkeypatch.setattr(textures, "PHOTOS_AVAILABLE", False)
    with pytest.raises(ImportError, match="pip install scikit-image"):
        textures.sample_texture(np.random.default_rng(0), "heldout")


def test_the_dataset_writer_writes_the_validation_split(tmp_path):
    import json

    from more4d_core.data.procedural.__main__ import main

    assert main(["--out", str(tmp_path), "--train", "1", "--validation", "1", "--heldout", "0", "--height", "24",
                 "--width", "32", "--frames", "5"]) == 0
    index = json.loads(next(tmp_path.glob("*.json")).read_text())
    entries = index["samples"] if isinstance(index, dict) else index
    splits = sorted(e["split"] for e in entries)
    assert splits == ["train", "validation"]
    mine = next(e for e in entries if e["split"] == "validation")
    assert mine["caption"] == generate_sample(0, "validation", 24, 32, 5).caption  # seed 0 of the validation stream
