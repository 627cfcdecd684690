"""Adapters to what ComfyUI core and popular packs pass around: MoGe geometry, camera formats
(RealEstate10K files, [T, 4, 4] .npy, AnimateDiff-Evolved CameraCtrl poses, Load3D views), core
TRACKS / spline-editor JSON, core SPLAT and 3D-file types, and a picture of a camera path."""

from __future__ import annotations

import torch

from more4d_core.camera import CameraPath
from more4d_core.camera.interpolation import compose_poses, hermite_positions, slerp_rotations
from more4d_core.camera.presets import MAX_FRAMES
from more4d_core.camera.visualize import draw_camera_path
from more4d_core.export import export_glb, export_ply_frame
from more4d_core.export.naming import save_numbered
from more4d_core.interop import (
    depth_from_moge,
    path_from_camera_file,
    path_from_load3d,
    path_from_realestate,
    scene_splat_fields,
    scene_tracks,
    tracks_to_json,
)
from more4d_core.scene import Scene4D

from .comfy_bridge import core_type, temp_directory
from .scene_io_nodes import resolve_scene_file
from .types import CAMERA_PATH, CATEGORY, DEPTH, SCENE, require

_PATH_OUT = dict(RETURN_TYPES=(CAMERA_PATH,), RETURN_NAMES=("camera_path",),
                 OUTPUT_TOOLTIPS=("Camera poses (camera-to-world, OpenCV axes).",))


class DepthFromMoGe:
    DESCRIPTION = "Use ComfyUI core's MoGe geometry (MoGe Inference) as metric depth with its predicted intrinsics."
    CATEGORY = CATEGORY
    FUNCTION = "convert"
    RETURN_TYPES = (DEPTH,)
    RETURN_NAMES = ("depth",)
    OUTPUT_TOOLTIPS = ("Metric depth + intrinsics for Generate.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"moge_geometry": ("MOGE_GEOMETRY", {"tooltip": "Output of ComfyUI's MoGe Inference."})}}

    def convert(self, moge_geometry):
        return (depth_from_moge(moge_geometry),)


class CameraPathFromFile:
    DESCRIPTION = "A camera path from a RealEstate10K .txt or a [T, 4, 4] camera-to-world .npy in ComfyUI's input folder."
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = _PATH_OUT["RETURN_TYPES"]
    RETURN_NAMES = _PATH_OUT["RETURN_NAMES"]
    OUTPUT_TOOLTIPS = _PATH_OUT["OUTPUT_TOOLTIPS"]

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "file": ("STRING", {"default": "input/cameras.txt", "tooltip": "input/... or output/... path of the file."}),
            "relative": ("BOOLEAN", {"default": True, "tooltip": "Re-express the path so frame 0 is the input camera."}),
            "world_to_camera": ("BOOLEAN", {"default": False, "tooltip": ".npy only: the matrices are world-to-camera."}),
        }}

    def load(self, file, relative, world_to_camera):
        return (path_from_camera_file(resolve_scene_file(file), relative=relative, world_to_camera=world_to_camera),)


class CameraPathFromCameraCtrl:
    DESCRIPTION = "Convert AnimateDiff-Evolved CameraCtrl poses (CAMERACTRL_POSES, RealEstate10K rows) into a camera path."
    CATEGORY = CATEGORY
    FUNCTION = "convert"
    RETURN_TYPES = _PATH_OUT["RETURN_TYPES"]
    RETURN_NAMES = _PATH_OUT["RETURN_NAMES"]
    OUTPUT_TOOLTIPS = _PATH_OUT["OUTPUT_TOOLTIPS"]

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "poses": ("CAMERACTRL_POSES", {"tooltip": "From AnimateDiff-Evolved's camera nodes."}),
            "relative": ("BOOLEAN", {"default": True, "tooltip": "Re-express the path so frame 0 is the input camera."}),
        }}

    def convert(self, poses, relative):
        return (path_from_realestate(poses, relative=relative),)


class CameraPathFromLoad3D:
    DESCRIPTION = "A smooth move from the input camera to a viewpoint chosen in ComfyUI's Load 3D viewer."
    CATEGORY = CATEGORY
    FUNCTION = "convert"
    RETURN_TYPES = _PATH_OUT["RETURN_TYPES"]
    RETURN_NAMES = _PATH_OUT["RETURN_NAMES"]
    OUTPUT_TOOLTIPS = _PATH_OUT["OUTPUT_TOOLTIPS"]

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "camera_info": ("LOAD3D_CAMERA", {"tooltip": "Camera info output of Load 3D."}),
            "frames": ("INT", {"default": 49, "min": 1, "max": MAX_FRAMES, "tooltip": "Frames of the move."}),
            "scene_depth": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 1000.0, "step": 0.01,
                                      "tooltip": "Metres per Load3D unit (its view is normalized to the model size)."}),
        }}

    def convert(self, camera_info, frames, scene_depth):
        end = path_from_load3d(camera_info, scene_depth=scene_depth)
        times = torch.tensor([0.0, float(max(frames - 1, 1))], dtype=torch.float64)
        query = torch.arange(frames, dtype=torch.float64)
        rots = torch.stack([torch.eye(3, dtype=torch.float64), end.poses[0, :3, :3]])
        pos = torch.stack([torch.zeros(3, dtype=torch.float64), end.poses[0, :3, 3]])
        poses = compose_poses(slerp_rotations(rots, times, query), hermite_positions(pos, times, query, spline=False))
        return (CameraPath(poses, name="load3d", metadata={"source": "Load3D"}),)


class SceneToTracks:
    DESCRIPTION = (
        "2D tracks of the scene's points through a camera path: ComfyUI's TRACKS (for WanMove and similar) and the "
        "[{x, y}] JSON of ATI / WanMove / KJNodes spline editors."
    )
    CATEGORY = CATEGORY
    FUNCTION = "convert"
    RETURN_TYPES = ("TRACKS", "STRING")
    RETURN_NAMES = ("tracks", "tracks_json")
    OUTPUT_TOOLTIPS = ("track_path [T, N, 2] pixels and track_visibility [T, N].", "Spline-editor JSON.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "scene": (SCENE, {"tooltip": "The 4D scene."}),
            "camera_path": (CAMERA_PATH, {"tooltip": "The camera the tracks are seen through."}),
            "grid": ("INT", {"default": 8, "min": 1, "max": 64, "tooltip": "Tracks on a grid x grid lattice of points."}),
            "width": ("INT", {"default": 0, "min": 0, "max": 8192, "tooltip": "Pixel width of the tracks; 0 = the scene grid."}),
            "height": ("INT", {"default": 0, "min": 0, "max": 8192, "tooltip": "Pixel height; 0 = the scene grid."}),
        }}

    def convert(self, scene, camera_path, grid, width, height):
        require(scene, Scene4D, "scene")
        require(camera_path, CameraPath, "camera_path")
        out_hw = (height or scene.height, width or scene.width)
        tracks = scene_tracks(scene, camera_path, grid=grid, out_hw=out_hw)
        return (tracks, tracks_to_json(tracks))


class CameraPathPreview:
    DESCRIPTION = "Draw a camera path (top and side views, with the scene's points when connected) as an image."
    CATEGORY = CATEGORY
    FUNCTION = "draw"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    OUTPUT_TOOLTIPS = ("The drawing.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "camera_path": (CAMERA_PATH, {"tooltip": "The path to draw."}),
                "size": ("INT", {"default": 384, "min": 128, "max": 2048, "step": 32, "tooltip": "Height of each view in pixels."}),
            },
            "optional": {"scene": (SCENE, {"tooltip": "Draw the scene's frame-0 points too."})},
        }

    def draw(self, camera_path, size, scene=None):
        require(camera_path, CameraPath, "camera_path")
        points = require(scene, Scene4D, "scene").points0 if scene is not None else None
        return (draw_camera_path(camera_path, points, size),)


class SceneToSplat:
    DESCRIPTION = (
        "The 4D scene as Gaussian splats of ComfyUI core's SPLAT type (one splat per point, the size of its pixel), "
        "for core's Preview Splat, Save Splat, Render Splat and Merge/Transform Splat nodes."
    )
    CATEGORY = CATEGORY
    FUNCTION = "convert"
    RETURN_TYPES = ("SPLAT",)
    RETURN_NAMES = ("splat",)
    OUTPUT_TOOLTIPS = ("Core SPLAT: one batch item per chosen frame (core's file writers save the first).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "scene": (SCENE, {"tooltip": "The 4D scene."}),
            "frame": ("INT", {"default": 0, "min": -1, "max": 10000,
                              "tooltip": "Frame to convert; -1 = every frame, as a batch of splats."}),
            "point_stride": ("INT", {"default": 1, "min": 1, "max": 16,
                                     "tooltip": "Keep every n-th row and column of points (fewer, larger splats)."}),
            "size": ("FLOAT", {"default": 1.0, "min": 0.1, "max": 8.0, "step": 0.1,
                               "tooltip": "Splat size relative to a point's frame-0 pixel footprint."}),
            "visible_only": ("BOOLEAN", {"default": False,
                                         "tooltip": "Hide points occluded in the input camera at that frame."}),
        }}

    def convert(self, scene, frame, point_stride, size, visible_only):
        require(scene, Scene4D, "scene")
        frames = None if frame < 0 else [frame]
        fields = scene_splat_fields(scene, frames, point_stride=point_stride, size=size, visible_only=visible_only)
        return (core_type("SPLAT")(**fields),)


class SceneTo3DFiles:
    DESCRIPTION = (
        "The 4D scene as ComfyUI core 3D files: an animated GLB point cloud (core Preview 3D / Save 3D Model play "
        "it) and one frame as a PLY point cloud (core Preview Point Cloud / Save Point Cloud). Written to the temp "
        "folder; core's save nodes copy them to output."
    )
    CATEGORY = CATEGORY
    FUNCTION = "convert"
    RETURN_TYPES = ("FILE_3D_GLB", "FILE_3D_PLY")
    RETURN_NAMES = ("animated_glb", "frame_ply")
    OUTPUT_TOOLTIPS = ("Animated point cloud, one node per frame (glTF axes, y up).",
                       "Point cloud of the chosen frame (glTF axes, y up).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "scene": (SCENE, {"tooltip": "The 4D scene."}),
            "frame": ("INT", {"default": 0, "min": 0, "max": 10000, "tooltip": "Frame written to the PLY."}),
            "frame_stride": ("INT", {"default": 1, "min": 1, "max": 16,
                                     "tooltip": "Keep every n-th frame in the GLB (smaller file)."}),
            "point_stride": ("INT", {"default": 2, "min": 1, "max": 16,
                                     "tooltip": "Keep every n-th row and column of points (smaller files)."}),
        }}

    def convert(self, scene, frame, frame_stride, point_stride):
        require(scene, Scene4D, "scene")
        file3d = core_type("File3D")
        folder = temp_directory()

        def write(stem, written):
            written.append(export_glb(scene, folder, stem, frame_stride=frame_stride, point_stride=point_stride))
            written.append(export_ply_frame(scene, folder, stem, frame, point_stride=point_stride))

        glb, ply = save_numbered(folder, "more4d_scene", (".glb", ".ply"), write)
        return (file3d(str(glb), file_format="glb"), file3d(str(ply), file_format="ply"))
