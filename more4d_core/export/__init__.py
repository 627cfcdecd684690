"""Writing scenes to files other tools open: the .npz scene file, PLY frames, animated GLB.

Every writer takes an output folder and a name inside it, refuses names that escape the folder and
writes atomically (temporary name + rename), so a failure never leaves a partial file.
"""

from .atomic import atomic_file, atomic_folder, resolve_inside, write_file_atomic
from .gltf import export_glb
from .ply import export_ply_frame, export_ply_sequence, write_ply
from .scene_file import load_scene, save_scene

__all__ = [
    "atomic_file",
    "atomic_folder",
    "export_glb",
    "export_ply_frame",
    "export_ply_sequence",
    "load_scene",
    "resolve_inside",
    "save_scene",
    "write_file_atomic",
    "write_ply",
]
