"""TrajScene format, reader validation, and the guarded converter of the authors' layout."""

import json
import pickle

import numpy as np
import pytest
import torch

from more4d_core.data.procedural.scene_generator import generate_sample
from more4d_core.data.trajscene import (
    TrajSample,
    TrajSceneDataset,
    convert_authors_dataset,
    write_index,
    write_sample,
)
from more4d_core.errors import FormatError, InputError


def _procedural_sample(seed=0):
    s = generate_sample(seed, "train", 24, 32, 9)
    return TrajSample(f"p{seed:03d}", s.to_scene(), s.image, s.caption, s.depth, s.camera_poses, {"params": s.params})


def test_round_trip(tmp_path):
    samples = [_procedural_sample(i) for i in range(3)]
    for s in samples:
        write_sample(tmp_path, s)
    write_index(tmp_path, [{"id": s.id, "caption": s.caption, "split": "train" if i < 2 else "heldout"}
                           for i, s in enumerate(samples)])
    data = TrajSceneDataset(tmp_path)
    assert len(data) == 3 and len(TrajSceneDataset(tmp_path, split="heldout")) == 1
    back = data[1]
    orig = samples[1]
    assert back.caption == orig.caption and back.meta["params"] == orig.meta["params"]
    assert torch.equal(back.scene.points, orig.scene.points) and torch.equal(back.scene.visibility, orig.scene.visibility)
    assert (back.image - orig.image).abs().max() <= 0.5 / 255 + 1e-6
    torch.testing.assert_close(back.depth, orig.depth, rtol=1e-3, atol=1e-3)
    assert torch.equal(back.camera_poses.float(), orig.camera_poses.float())


def test_reader_validates(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a TrajScene dataset"):
        TrajSceneDataset(tmp_path)
    (tmp_path / "trajscene.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(FormatError, match="not a TrajScene index"):
        TrajSceneDataset(tmp_path)
    (tmp_path / "trajscene.json").write_text(json.dumps({"format": "more4d.trajscene", "version": 9}))
    with pytest.raises(FormatError, match="version 9"):
        TrajSceneDataset(tmp_path)
    s = _procedural_sample()
    write_sample(tmp_path, s)
    write_index(tmp_path, [{"id": s.id, "caption": s.caption, "split": "train"}])
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "samples" / s.id / "frame0.png", np.zeros((5, 5, 3), np.uint8))
    with pytest.raises(FormatError, match="frame0.png"):
        TrajSceneDataset(tmp_path)[0]
    write_index(tmp_path, [{"id": "../../escape", "caption": "", "split": "train"}])
    with pytest.raises(ValueError):
        TrajSceneDataset(tmp_path)[0]


class _Marker:
    """Unpickling this writes a file: proof that a pickle was executed."""

    path = None

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def _authors_dataset(tmp_path, with_trap=False):
    root = tmp_path / "webvid"
    (root / "videos").mkdir(parents=True)
    (root / "dt3d_render").mkdir()
    videos, captions = [], []
    for i in range(2):
        coords = np.random.default_rng(i).normal(size=(5, 24 * 32, 3)).astype(np.float32)
        coords[..., 2] = np.abs(coords[..., 2]) + 1
        data = {"coords": coords, "colors": np.full((24 * 32, 3), 100, np.uint8), "vis": np.ones((5, 24 * 32), bool)}
        if with_trap:
            data["trap"] = _Marker()
        with open(root / "dt3d_render" / f"clip{i}_dt3d_pred.pkl", "wb") as fh:
            pickle.dump(data, fh)
        videos.append(str(root / "videos" / f"clip{i}.mp4"))
        captions.append(f"a clip number {i}")
    (root / "prompts.txt").write_text("\n".join(captions))
    (root / "videos.txt").write_text("\n".join(videos))
    return root


def test_authors_converter_requires_trust(tmp_path):
    marker = tmp_path / "executed"
    _Marker.path = marker
    root = _authors_dataset(tmp_path, with_trap=True)
    with pytest.raises(InputError, match="trust_pickles=True"):
        convert_authors_dataset(root / "prompts.txt", root / "videos.txt", tmp_path / "out", grid_hw=(24, 32))
    for truthy in ("no", "False", 1, [True]):  # only the boolean True trusts
        with pytest.raises(InputError, match="trust_pickles"):
            convert_authors_dataset(root / "prompts.txt", root / "videos.txt", tmp_path / "out", grid_hw=(24, 32),
                                    trust_pickles=truthy)
    # the command line the message names exists, and without the flag it refuses too
    from more4d_core.data.trajscene import main

    with pytest.raises(InputError, match="--trust-pickles"):
        main([str(root / "prompts.txt"), str(root / "videos.txt"), str(tmp_path / "out"), "--grid", "24", "32"])
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_authors_converter_with_trust(tmp_path):
    root = _authors_dataset(tmp_path)
    count = convert_authors_dataset(root / "prompts.txt", root / "videos.txt", tmp_path / "out", grid_hw=(24, 32),
                                    trust_pickles=True)
    assert count == 2
    from more4d_core.data.trajscene import main

    assert main([str(root / "prompts.txt"), str(root / "videos.txt"), str(tmp_path / "cli"), "--grid", "24", "32",
                 "--trust-pickles"]) == 0
    assert len(TrajSceneDataset(tmp_path / "cli")) == 2
    data = TrajSceneDataset(tmp_path / "out")
    sample = data[1]
    assert sample.caption == "a clip number 1" and sample.scene.num_frames == 5
    expected = np.random.default_rng(1).normal(size=(5, 24 * 32, 3)).astype(np.float32)
    expected[..., 2] = np.abs(expected[..., 2]) + 1
    assert torch.equal(sample.scene.points, torch.from_numpy(expected))
