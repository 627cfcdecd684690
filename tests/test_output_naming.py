"""Numbered outputs under concurrency: threads and processes saving with one prefix never lose a
file, and a multi-file save is all or nothing."""

import multiprocessing
import os
import threading
from pathlib import Path

import pytest

from more4d_core.errors import OutputExistsError
from more4d_core.export.atomic import atomic_file, atomic_folder
from more4d_core.export.naming import save_numbered


def _save(folder: str, tag: str) -> str:
    def write(stem, written):
        with atomic_file(Path(folder) / f"{stem}.txt") as fh:
            fh.write(tag.encode() * 1000)  # a complete file holds exactly this
        written.append(Path(folder) / f"{stem}.txt")

    return str(save_numbered(folder, "shot", (".txt",), write)[0])


def test_placement_refuses_a_name_taken_while_writing(tmp_path):
    target = tmp_path / "a.txt"
    with pytest.raises(OutputExistsError):
        with atomic_file(target) as fh:
            fh.write(b"ours")
            target.write_bytes(b"theirs")
    assert target.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # our temporary is gone
    folder = tmp_path / "plys"
    with pytest.raises(OutputExistsError):
        with atomic_folder(folder) as tmp:
            (tmp / "x.ply").write_bytes(b"ours")
            folder.mkdir()
            (folder / "theirs.ply").write_bytes(b"theirs")
    assert [p.name for p in folder.iterdir()] == ["theirs.ply"]


def test_threads_saving_one_prefix_get_distinct_complete_files(tmp_path):
    names, barrier = [], threading.Barrier(8)

    def worker(i):
        barrier.wait()
        names.append(_save(str(tmp_path), f"t{i}"))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(names)) == 8
    contents = sorted(Path(n).read_text() for n in names)
    assert contents == sorted(f"t{i}" * 1000 for i in range(8))  # none lost, none mixed


def test_processes_saving_one_prefix_get_distinct_complete_files(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        names = pool.starmap(_save, [(str(tmp_path), f"p{i}") for i in range(8)])
    assert len(set(names)) == 8
    assert sorted(Path(n).read_text() for n in names) == sorted(f"p{i}" * 1000 for i in range(8))
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporaries left


def test_a_failed_multi_file_save_leaves_nothing(tmp_path):
    def write(stem, written):
        with atomic_file(tmp_path / f"{stem}.npz") as fh:
            fh.write(b"scene")
        written.append(tmp_path / f"{stem}.npz")
        raise RuntimeError("the GLB export failed")

    with pytest.raises(RuntimeError, match="GLB"):
        save_numbered(tmp_path, "scene", (".npz", ".glb"), write)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("prefix, message", [
    (".", "hidden file"), ("more4d/.hidden", "hidden file"), ("..", "hidden file"),
    ("bad\x00name", "control characters"), ("x" * 260, "too long"),
])
def test_prefixes_that_would_make_unlisted_or_impossible_names_are_refused(tmp_path, prefix, message):
    from more4d_core.errors import InputError
    from more4d_core.export.naming import next_free_stem

    with pytest.raises(InputError, match=message):
        next_free_stem(tmp_path, prefix, (".mp4",))
    assert list(tmp_path.iterdir()) == []


def test_empty_images_and_nan_frames_are_refused(tmp_path):
    import numpy as np
    import torch

    from more4d_core.errors import InputError
    from more4d_core.export.video import write_video
    from more4d_core.sampling.conditioning import as_image_tensor

    with pytest.raises(InputError, match="the input image is empty"):
        as_image_tensor(torch.zeros(1, 0, 0, 3))
    frames = np.random.default_rng(0).random((4, 16, 16, 3)).astype(np.float32)
    frames[2, 3, 3, 0] = np.nan
    with pytest.raises(InputError, match="1 of 4 video frames hold NaN"):
        write_video(frames, tmp_path, "clip")
    with pytest.raises(InputError, match="empty"):
        write_video(np.zeros((2, 0, 16, 3), np.float32), tmp_path, "clip")
    assert list(tmp_path.iterdir()) == []
