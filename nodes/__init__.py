"""ComfyUI node classes (thin wrappers over more4d_core).

Keys of NODE_CLASS_MAPPINGS are the stable node ids saved in workflows: never rename them. Each
node module is imported on its own, so a missing optional dependency disables only the nodes that
need it (and says so in the log) instead of the whole pack.
"""

from __future__ import annotations

import importlib
import logging

log = logging.getLogger("more4d")

# node id -> (module, class, display name)
_NODES = {
    "More4DEstimateDepth": ("depth_nodes", "EstimateDepth", "MoRe4D Estimate Depth"),
    "More4DDepthFromImage": ("depth_nodes", "DepthFromImage", "MoRe4D Depth from Image"),
    "More4DLoadTrajectoryModel": ("model_nodes", "LoadTrajectoryModel", "MoRe4D Load Trajectory Model (4D-STraG)"),
    "More4DLoadCompletionModel": ("model_nodes", "LoadCompletionModel", "MoRe4D Load Completion Model (4D-ViSM)"),
    "More4DMotionConditioning": ("generate_nodes", "MotionConditioningNode", "MoRe4D Motion Conditioning (MAdaNorm)"),
    "More4DGenerate": ("generate_nodes", "GenerateTrajectories", "MoRe4D Generate 4D Scene"),
    "More4DCameraPathPreset": ("camera_nodes", "CameraPathPreset", "MoRe4D Camera Path (Preset)"),
    "More4DCameraPathKeyframes": ("camera_nodes", "CameraPathKeyframes", "MoRe4D Camera Path (Keyframes)"),
    "More4DRender": ("render_nodes", "Render4D", "MoRe4D Render 4D Scene"),
    "More4DComplete": ("complete_nodes", "CompleteFrames", "MoRe4D Complete Frames"),
    "More4DWanVaceInputs": ("complete_nodes", "WanVaceInputs", "MoRe4D Render to Wan VACE Inputs"),
    "More4DSaveVideo": ("video_nodes", "SaveVideo", "MoRe4D Save Video"),
    "More4DLoadScene": ("scene_io_nodes", "LoadScene4D", "MoRe4D Load 4D Scene"),
    "More4DSaveScene": ("scene_io_nodes", "SaveScene4D", "MoRe4D Save 4D Scene"),
    "More4DPreview": ("preview_nodes", "Preview4D", "MoRe4D Preview 4D Scene"),
    "More4DDepthFromMoGe": ("interop_nodes", "DepthFromMoGe", "MoRe4D Depth from MoGe"),
    "More4DCameraPathFromFile": ("interop_nodes", "CameraPathFromFile", "MoRe4D Camera Path from File (RealEstate10K / npy)"),
    "More4DCameraPathFromCameraCtrl": ("interop_nodes", "CameraPathFromCameraCtrl", "MoRe4D Camera Path from CameraCtrl Poses"),
    "More4DCameraPathFromLoad3D": ("interop_nodes", "CameraPathFromLoad3D", "MoRe4D Camera Path from Load 3D View"),
    "More4DSceneToTracks": ("interop_nodes", "SceneToTracks", "MoRe4D Scene to Tracks"),
    "More4DCameraPathPreview": ("interop_nodes", "CameraPathPreview", "MoRe4D Draw Camera Path"),
    "More4DSceneToSplat": ("interop_nodes", "SceneToSplat", "MoRe4D Scene to Splat (core SPLAT)"),
    "More4DSceneTo3DFiles": ("interop_nodes", "SceneTo3DFiles", "MoRe4D Scene to 3D Files (core GLB / PLY)"),
}

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
UNAVAILABLE: dict[str, str] = {}

for _node_id, (_module, _cls, _title) in _NODES.items():
    try:
        NODE_CLASS_MAPPINGS[_node_id] = getattr(importlib.import_module(f".{_module}", __name__), _cls)
        NODE_DISPLAY_NAME_MAPPINGS[_node_id] = _title
    except ImportError as exc:  # a missing optional dependency
        UNAVAILABLE[_node_id] = str(exc)
        log.warning("MoRe4D: node %s is unavailable: %s", _node_id, exc)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "UNAVAILABLE"]
