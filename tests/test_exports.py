import json
import os

import numpy as np
import pygltflib
import pytest
import torch
import trimesh

from more4d_core.errors import FormatError, OutputExistsError, UnsafePathError
from more4d_core.export import (
    atomic_folder,
    export_glb,
    export_ply_frame,
    export_ply_sequence,
    load_scene,
    resolve_inside,
    save_scene,
    write_file_atomic,
)
from more4d_core.export.naming import next_free_stem
from more4d_core.scene import Scene4D


def _gl(points: torch.Tensor) -> np.ndarray:
    return (points * torch.tensor([1.0, -1.0, -1.0])).numpy()


def _assert_scenes_identical(a: Scene4D, b: Scene4D):
    assert a.storage == b.storage
    assert torch.equal(a.points, b.points)
    assert torch.equal(a.points0, b.points0)
    assert torch.equal(a.colors, b.colors)
    assert torch.equal(a.visibility, b.visibility)
    assert torch.equal(a.intrinsics, b.intrinsics)
    assert a.grid_hw == b.grid_hw and a.fps == b.fps and a.metadata == b.metadata
    if a.storage == "float16":
        assert torch.equal(a.raw_offsets(), b.raw_offsets())


@pytest.mark.parametrize("storage", ["float32", "float16"])
@pytest.mark.parametrize("compress", [False, True])
def test_npz_round_trip_is_bit_identical(tmp_path, small_scene, storage, compress):
    vis = torch.rand(small_scene.num_frames, small_scene.num_points) > 0.3
    scene = small_scene.with_points(small_scene.points, visibility=vis, storage=storage,
                                    metadata={"prompt": "ball", "seed": 3, "nested": {"a": [1, 2]}})
    path = save_scene(scene, tmp_path, "shot", compress=compress)
    assert path == tmp_path / "shot.npz"
    _assert_scenes_identical(scene, load_scene(path))
    with np.load(path, allow_pickle=False) as data:  # plain numpy can read it, no pickle
        assert str(data["format"]) == "more4d.scene4d"


def test_loader_rejects_foreign_and_newer_files(tmp_path, small_scene):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(FormatError, match="not a MoRe4D scene file"):
        load_scene(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(FormatError, match="not a readable"):
        load_scene(tmp_path / "junk.npz")
    (tmp_path / "empty.npz").write_bytes(b"")  # was a raw EOFError ("No data left in file")
    with pytest.raises(FormatError, match=r"empty\.npz \(0 bytes\) is not a readable \.npz scene file"):
        load_scene(tmp_path / "empty.npz")
    np.savez(tmp_path / "pickled.npz", format=np.array("more4d.scene4d"), version=np.array(1),
             storage=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(FormatError):
        load_scene(tmp_path / "pickled.npz")
    path = save_scene(small_scene, tmp_path, "new")
    with np.load(path) as data:
        arrays = dict(data)
    arrays["version"] = np.array(99)
    np.savez(tmp_path / "future.npz", **arrays)
    with pytest.raises(FormatError, match="version 99"):
        load_scene(tmp_path / "future.npz")
    with pytest.raises(FileNotFoundError):
        load_scene(tmp_path / "missing.npz")


@pytest.mark.parametrize("binary", [True, False])
def test_ply_frames_parse_with_trimesh(tmp_path, small_scene, binary):
    folder = export_ply_sequence(small_scene, tmp_path, "seq", binary=binary, frame_stride=4)
    info = json.loads((folder / "sequence.json").read_text())
    assert info["frames"] == [0, 4, 8] and info["fps"] == pytest.approx(2.0)
    for t, name in zip(info["frames"], info["files"]):
        cloud = trimesh.load(folder / name)
        assert isinstance(cloud, trimesh.PointCloud)
        np.testing.assert_allclose(cloud.vertices, _gl(small_scene.frame(t)), rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(cloud.colors[:, :3], small_scene.colors.numpy())


def test_single_ply_in_opencv_coordinates_with_stride(tmp_path, small_scene):
    path = export_ply_frame(small_scene, tmp_path, "f3", 3, coordinates="opencv", point_stride=2)
    cloud = trimesh.load(path)
    assert len(cloud.vertices) == (24 // 2) * (32 // 2)
    np.testing.assert_allclose(cloud.vertices[1], small_scene.frame(3)[2].numpy(), rtol=1e-6)


def test_glb_parses_and_animates(tmp_path, small_scene):
    path = export_glb(small_scene, tmp_path, "anim", frame_stride=2)
    gltf = pygltflib.GLTF2().load(str(path))
    frames = list(range(0, small_scene.num_frames, 2))
    frame_nodes = [n for n in gltf.nodes if n.mesh is not None]
    assert len(frame_nodes) == len(frames)
    assert [n.scale for n in frame_nodes][:2] == [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    anim = gltf.animations[0]
    assert len(anim.channels) == len(frames) and all(c.target.path == "scale" for c in anim.channels)
    assert all(s.interpolation == "STEP" for s in anim.samplers)
    blob = gltf.binary_blob()
    for i, t in enumerate(frames):
        prim = gltf.meshes[frame_nodes[i].mesh].primitives[0]
        assert prim.mode == 0
        acc = gltf.accessors[prim.attributes.POSITION]
        view = gltf.bufferViews[acc.bufferView]
        pos = np.frombuffer(blob, dtype=np.float32, count=acc.count * 3, offset=view.byteOffset).reshape(-1, 3)
        np.testing.assert_array_equal(pos, _gl(small_scene.frame(t)).astype(np.float32))
        assert acc.min == pytest.approx(pos.min(0).tolist()) and acc.max == pytest.approx(pos.max(0).tolist())
    cacc = gltf.accessors[gltf.meshes[0].primitives[0].attributes.COLOR_0]
    cols = np.frombuffer(blob, dtype=np.uint8, count=cacc.count * 4, offset=gltf.bufferViews[cacc.bufferView].byteOffset)
    np.testing.assert_array_equal(cols.reshape(-1, 4)[:, :3], small_scene.colors.numpy())
    assert gltf.cameras[0].type == "perspective"
    scene = trimesh.load(path)  # a second, independent reader
    assert len(scene.geometry) == len(frames)


def test_single_frame_glb_has_no_animation(tmp_path, small_scene):
    gltf = pygltflib.GLTF2().load(str(export_glb(small_scene, tmp_path, "still", frames=[0], include_camera=False)))
    assert not gltf.animations and len(gltf.nodes) == 2


@pytest.mark.parametrize("name", ["../escape.npz", "a/../../escape.npz", "/etc/passwd_more4d", "../../x"])
def test_writes_outside_the_folder_are_refused(tmp_path, small_scene, name):
    root = tmp_path / "out"
    root.mkdir()
    with pytest.raises((UnsafePathError, ValueError)):
        save_scene(small_scene, root, name)
    assert not (tmp_path / "escape.npz").exists()


def test_symlink_escape_is_refused(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafePathError):
        resolve_inside(root, "link/x.npz")
    assert resolve_inside(root, "sub/x.npz") == (root / "sub" / "x.npz").resolve()


def test_failed_write_leaves_nothing(tmp_path):
    def broken(fh):
        fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_file_atomic(tmp_path / "x.bin", broken)
    assert os.listdir(tmp_path) == []
    with pytest.raises(RuntimeError):
        with atomic_folder(tmp_path / "seq") as tmp:
            (tmp / "frame_0000.ply").write_bytes(b"x")
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []


def test_existing_outputs_are_kept_unless_overwrite(tmp_path, small_scene):
    save_scene(small_scene, tmp_path, "a")
    before = (tmp_path / "a.npz").read_bytes()
    with pytest.raises(OutputExistsError, match="already exists"):
        save_scene(small_scene.with_points(small_scene.points * 2), tmp_path, "a")
    assert (tmp_path / "a.npz").read_bytes() == before
    save_scene(small_scene.with_points(small_scene.points * 2), tmp_path, "a", overwrite=True)
    assert torch.equal(load_scene(tmp_path / "a.npz").points, small_scene.points * 2)
    export_ply_sequence(small_scene, tmp_path, "s", frames=[0])
    export_ply_sequence(small_scene, tmp_path, "s", frames=[1, 2], overwrite=True)
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["frame_0001.ply", "frame_0002.ply", "sequence.json"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_numbered_names(tmp_path):
    assert next_free_stem(tmp_path, "more4d/scene", (".npz",)) == "more4d/scene_00001"
    (tmp_path / "more4d").mkdir()
    (tmp_path / "more4d" / "scene_00007.glb").write_bytes(b"")
    assert next_free_stem(tmp_path, "more4d/scene", (".npz", ".glb")) == "more4d/scene_00008"
    with pytest.raises(UnsafePathError):
        next_free_stem(tmp_path, "../scene")


def test_readable_size_of_files_and_folders(tmp_path):
    from more4d_core.export.file_size import readable_size

    (tmp_path / "a").write_bytes(b"x" * 1000)
    (tmp_path / "b").write_bytes(b"x" * 1536)  # 1.5 KiB
    (tmp_path / "c").write_bytes(b"x" * (3 * 1024**2 + 1024**2 // 4))  # 3.25 MiB
    assert readable_size(tmp_path / "a") == "1000 bytes"
    assert readable_size(tmp_path / "b") == "1.5 KB"
    assert readable_size(tmp_path / "c") == "3.2 MB"  # 3.25 rounds half to even
    folder = tmp_path / "seq"
    folder.mkdir()
    (folder / "f0").write_bytes(b"x" * 1024)
    (folder / "f1").write_bytes(b"x" * 2048)
    assert readable_size(folder) == "3.0 KB"
    assert readable_size(tmp_path / "gone") == "?"
