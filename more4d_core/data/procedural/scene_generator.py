"""Procedural 4D scenes with exact ground truth: a textured room, a few textured objects, some of
them moving (rigidly or not), optionally a moving camera, and a caption that says what moves how.

For every sample we ray-cast each frame analytically (colour, depth, object id), track every
frame-0 pixel's material point through time (in the camera coordinates of each frame, as a 3D
tracker on a real video reports them), and mark a track visible at frame t when the ray-cast depth
at its pixel shows the same object at that depth (a z-buffer test against the true scene, which
also catches occluders that were not visible at frame 0).

Seeds: the train, validation and held-out splits draw from separate random streams and separate
photographs.

Recipes: ``"v2"`` is the evaluation distribution (and what the bundled model was trained on until
recipe v3); ``"v3"`` is a training distribution over the same world: more scenes with two or three
objects, fewer with two movers, scenes where nothing moves or only the camera moves (captions such as
"nothing moves", "the scene is still" and the empty prompt), and generic subjects ("the object",
"it", "the subject", ...) naming the most prominent object when it is the one that moves. ``"v4"`` is v3 with
the surfaces' textures varied in colour and pattern (``appearance.py``): the same shapes, motion, depth and
caption as v3 for the same seed, only the colours differ. ``"v5"`` is v3 with spins and growth drawn twice as often
among a mover's motions (the motions the model makes worst). A v2 sample is bit-identical to what the generator
produced before v3 existed, and a v3 sample to what it produced before v4 existed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ...camera.intrinsics import intrinsics_from_fov
from ...geometry.projection import pixel_centers
from ...scene import Scene4D
from .appearance import VARY_PROB, vary_texture
from .motions import AMOUNT_JITTER, CameraMotion, Motion, rot_y, sample_camera_motion, sample_motion
from .shapes import Pose, Shape, intersect, surface_points
from .textures import sample_texture, sample_texture_uv

SPLIT_STREAMS = {"train": 1, "heldout": 2, "validation": 3}
CAMERA_MOTION_PROB = 0.5
RECIPES = {
    "v2": (f"procedural generator v2 (room + 1-3 textured objects, 1-2 movers, camera motion {CAMERA_MOTION_PROB:.0%}, "
           f"amounts +-{AMOUNT_JITTER:.0%}, scikit-image photographs)"),
    "v3": (f"procedural generator v3 (v2 world; objects 1/2/3 with p 0.2/0.4/0.4, two movers 20%, 8% still scenes, "
           f"7% camera-only scenes, generic subject for the most prominent lone mover 30%, camera motion "
           f"{CAMERA_MOTION_PROB:.0%} otherwise, amounts +-{AMOUNT_JITTER:.0%}, scikit-image photographs)"),
    "v4": (f"procedural generator v4 (v3 scenes; each texture varied with p {VARY_PROB:.0%}: channel order, inversion, "
           f"gamma, contrast, tinted grey, colour mixing, blur, or a procedural pattern; scikit-image photographs)"),
    "v5": ("procedural generator v5 (v3 scenes with spins and growth drawn twice as often among a mover's motions: "
           "2/7 each for balls and boxes, 2/10 each for cards and discs; scikit-image photographs)"),
}
V3_FAMILY = ("v3", "v4", "v5")  # recipes whose scenes (objects, scene kinds, captions' form) are v3's
# motion kinds a recipe draws once more than v3 does (the motions the bundled model makes worst; README)
EXTRA_MOTION_KINDS = {"v5": ("spin", "grow")}
RECIPE = RECIPES["v2"]
NAMES = {"sphere": "ball", "box": "box", "card": "card", "disc": "disc"}
# captions of scenes where nothing moves (recipe v3); the empty prompt means "nothing moves" too
STILL_CAPTIONS = ("nothing moves", "the scene is still", "everything stays still", "")
# what a user of real photos calls the main subject (recipe v3 trains them on the most prominent object)
GENERIC_SUBJECTS = ("the object", "the subject", "it", "the thing", "the main object")


@dataclass
class SceneObject:
    name: str
    shape: Shape
    base: Pose
    texture: torch.Tensor
    tiles: float = 1.0
    motion: Motion = field(default_factory=Motion)

    def pose(self, s: float) -> Pose:
        if self.shape.kind == "plane":
            return self.base
        return self.motion.pose(self.base, s, self.shape.size)


@dataclass
class ProceduralSample:
    """One generated sample with exact ground truth (see module doc)."""

    image: torch.Tensor  # [H, W, 3] float 0..1, frame 0
    frames: torch.Tensor | None  # [T, H, W, 3] rendered video (None when not requested)
    tracks: torch.Tensor  # [T, N, 3] metric, camera coordinates of each frame
    visibility: torch.Tensor  # [T, N] bool
    depth: torch.Tensor  # [T, H, W] ray-cast z-depth
    object_id: torch.Tensor  # [T, H, W] int, index into params["objects"]
    camera_poses: torch.Tensor  # [T, 4, 4] camera-to-world (world = frame-0 camera)
    intrinsics: torch.Tensor  # [3, 3] pixels
    caption: str
    params: dict[str, Any]
    fps: float = 8.0

    @property
    def grid_hw(self) -> tuple[int, int]:
        return tuple(self.image.shape[:2])

    def to_scene(self) -> Scene4D:
        return Scene4D(
            self.tracks, self.image.reshape(-1, 3), grid_hw=self.grid_hw, intrinsics=self.intrinsics, fps=self.fps,
            visibility=self.visibility, metadata={"source": "procedural", "caption": self.caption, "units": "metres",
                                                  "seed": self.params["seed"], "split": self.params["split"]},
        )


def _room(rng: np.random.Generator, split: str, tex_size: int) -> tuple[list[SceneObject], float]:
    depth = float(rng.uniform(6.0, 9.0))
    floor = float(rng.uniform(1.0, 1.6))
    side = float(rng.uniform(3.0, 5.0))
    planes = [
        ("back wall", (0.0, 0.0, depth), (0.0, 0.0, -1.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
        ("floor", (0.0, floor, 0.0), (0.0, -1.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
        ("left wall", (-side, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)),
        ("right wall", (side, 0.0, 0.0), (-1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)),
    ]
    out = []
    for name, point, normal, u_axis, v_axis in planes:
        tile = float(rng.uniform(2.0, 4.0))
        shape = Shape("plane", (torch.tensor(point), torch.tensor(normal), torch.tensor(u_axis), torch.tensor(v_axis), tile))
        out.append(SceneObject(name, shape, Pose(torch.eye(3), torch.zeros(3)), sample_texture(rng, split, tex_size)))
    return out, depth


def _objects(rng, split, tex_size, k_inv, width, height, wall_depth, recipe: str = "v2") -> list[SceneObject]:
    count = int(rng.integers(1, 4)) if recipe == "v2" else int(rng.choice([1, 2, 3], p=[0.2, 0.4, 0.4]))
    kinds = list(rng.permutation(["sphere", "box", "card", "disc"]))[:count]
    objects = []
    for kind in kinds:
        z = float(rng.uniform(2.5, min(wall_depth - 1.8, 6.0)))
        u = float(rng.uniform(0.22, 0.78) * width)
        v = float(rng.uniform(0.3, 0.72) * height)
        ray = k_inv @ torch.tensor([u, v, 1.0])
        position = ray * z
        half = float(rng.uniform(0.1, 0.16) * z)
        rotation = torch.eye(3)
        if kind == "sphere":
            shape = Shape("sphere", (half,))
            rotation = rot_y(float(rng.uniform(-math.pi, math.pi)))
        elif kind == "box":
            shape = Shape("box", (half, half * float(rng.uniform(0.7, 1.2)), half * float(rng.uniform(0.7, 1.2))))
            rotation = rot_y(float(rng.uniform(-0.6, 0.6)))
        else:
            a = half * float(rng.uniform(1.0, 1.4))
            shape = Shape("card", (a, half * float(rng.uniform(0.8, 1.2)), kind == "disc"))
            rotation = rot_y(float(rng.uniform(-0.3, 0.3)))
        objects.append(
            SceneObject(NAMES[kind], shape, Pose(rotation, position), sample_texture(rng, split, tex_size),
                        tiles=float(rng.choice([1.0, 2.0])))
        )
    return objects


def _camera_rays(k_inv: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``[H*W, 3]`` ray directions of the pixel centres in the camera, scaled to z = 1 (distance = z-depth)."""
    uu, vv = pixel_centers(height, width)
    return torch.stack([uu, vv, torch.ones_like(uu)], -1).reshape(-1, 3) @ k_inv.T


def _cast(objects: list[SceneObject], s: float, rot: torch.Tensor, centre: torch.Tensor, dirs_cam: torch.Tensor):
    """Ray-cast one frame at time ``s`` from a camera (rotation, centre): (dist [N], object id [N], per-object hits)."""
    dirs = dirs_cam @ rot.T
    hits = [intersect(o.shape, o.pose(s), centre, dirs) for o in objects]
    dist = torch.stack([h.dist for h in hits])
    best, ids = dist.min(0)
    return best, ids, hits


def _render(objects: list[SceneObject], s: float, cam: CameraMotion, dirs_cam: torch.Tensor):
    """Ray-cast one frame seen by the sample's own (moving) camera (see :func:`_cast`)."""
    return _cast(objects, s, *cam.pose(s), dirs_cam)


def _shade(objects: list[SceneObject], ids: torch.Tensor, hits, out: torch.Tensor) -> None:
    """Colour ``out`` ``[N, 3]`` from each pixel's object texture at its hit."""
    for i, obj in enumerate(objects):
        sel = ids == i
        if sel.any():
            uv = hits[i].uv[sel]
            out[sel] = sample_texture_uv(obj.texture, uv[:, 0], uv[:, 1], obj.tiles)


def _track_points(tracks, objects, ids0, params0, times, poses) -> None:
    """Fill ``tracks [T, N, 3]``: every frame-0 pixel's material point in each frame's camera.

    All frames of an object at once; an object that does not move is placed once.
    """
    rot = poses[:, :3, :3]  # camera-to-world
    centre = poses[:, :3, 3]
    for i, obj in enumerate(objects):
        index = torch.nonzero(ids0 == i).squeeze(1)
        if index.numel() == 0:
            continue
        if obj.shape.kind == "plane" or obj.motion.kind == "still":
            world = surface_points(obj.shape, obj.pose(0.0), params0[i]).unsqueeze(0)  # [1, n, 3]
        else:
            world = torch.stack([surface_points(obj.shape, obj.pose(s), params0[i]) for s in times])
        tracks[:, index] = torch.bmm(world - centre.unsqueeze(1), rot.expand(len(times), -1, -1))


def _visibility(tracks, depth, object_id, ids0, k) -> torch.Tensor:
    """Visible: inside the frame, the same object at that pixel, not behind the ray-cast surface."""
    num_frames, height, width = depth.shape
    z = tracks[..., 2]
    u = tracks[..., 0] / z * k[0, 0] + k[0, 2]
    v = tracks[..., 1] / z * k[1, 1] + k[1, 2]
    inside = (z > 1e-4) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    col = u.clamp(0, width - 1).long()
    row = v.clamp(0, height - 1).long()
    t_idx = torch.arange(num_frames).view(-1, 1).expand(-1, tracks.shape[1])
    surf_depth = depth[t_idx, row, col]
    surf_id = object_id[t_idx, row, col]
    return inside & (surf_id == ids0.view(1, -1)) & (z <= surf_depth * 1.02 + 1e-4)


@dataclass
class World:
    """What a sample's seed decides before anything is rendered: the room and objects (with their
    motions), the camera and its motion, and the random stream the caption continues to draw from."""

    rng: np.random.Generator
    fov: float
    k: torch.Tensor
    k_inv: torch.Tensor
    room: list[SceneObject]
    objects: list[SceneObject]
    movers: list[SceneObject]
    camera: CameraMotion

    @property
    def everything(self) -> list[SceneObject]:
        return self.room + self.objects


def build_world(seed: int, split: str, height: int, width: int, *, camera_motion_prob: float = CAMERA_MOTION_PROB,
                two_movers_prob: float | None = None, texture_size: int = 128, recipe: str = "v2") -> World:
    """The scene of ``generate_sample`` with the same arguments (deterministic in seed, split, recipe)."""
    if split not in SPLIT_STREAMS:
        raise ValueError(f"split must be one of {tuple(SPLIT_STREAMS)}, got {split!r}")
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {tuple(RECIPES)}, got {recipe!r}")
    if two_movers_prob is None:
        two_movers_prob = 0.3 if recipe == "v2" else 0.2
    rng = np.random.default_rng([SPLIT_STREAMS[split], int(seed)])
    fov = float(rng.uniform(50.0, 65.0))
    k = intrinsics_from_fov(height, width, fov).float()
    k_inv = torch.linalg.inv(k)
    room, wall_depth = _room(rng, split, texture_size)
    objects = _objects(rng, split, texture_size, k_inv, width, height, wall_depth, recipe)
    scene_kind = "objects"
    if recipe in V3_FAMILY:
        u = float(rng.random())
        scene_kind = "still" if u < 0.08 else "camera only" if u < 0.15 else "objects"
    movers = []
    if scene_kind == "objects":
        movers = [objects[0]] if (len(objects) == 1 or rng.random() > two_movers_prob) else objects[:2]
    for obj in movers:
        obj.motion = sample_motion(rng, obj.shape.kind, float(obj.base.position[2]), obj.shape.size[0],
                                   EXTRA_MOTION_KINDS.get(recipe, ()))
    cam = CameraMotion()
    if scene_kind == "camera only" or (scene_kind == "objects" and rng.random() < camera_motion_prob):
        cam = sample_camera_motion(rng, wall_depth, min(float(o.base.position[2]) for o in objects))
    if recipe == "v4":  # its own stream: the scene's draws above (and the caption's after) stay v3's
        looks = np.random.default_rng([SPLIT_STREAMS[split], int(seed), 4])
        for obj in room + objects:
            obj.texture = vary_texture(obj.texture, looks)

    return World(rng, fov, k, k_inv, room, objects, movers, cam)


def render_views(world: World, poses: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The true views of ``world`` through camera-to-world ``poses [T, 4, 4]`` (world = the frame-0
    camera) at the scene's times ``t / (T - 1)``: (colour ``[T, H, W, 3]``, z-depth ``[T, H, W]``),
    ray-cast analytically. The world's own camera motion is not applied: ``poses`` are the cameras."""
    dirs_cam = _camera_rays(world.k_inv, height, width)
    everything = world.everything
    count = poses.shape[0]
    frames = torch.empty(count, height, width, 3)
    depth = torch.empty(count, height, width)
    for t in range(count):
        s = t / (count - 1) if count > 1 else 0.0
        dist, ids, hits = _cast(everything, s, poses[t, :3, :3].float(), poses[t, :3, 3].float(), dirs_cam)
        depth[t] = dist.view(height, width)
        _shade(everything, ids, hits, frames[t].view(-1, 3))
    return frames.clamp(0, 1), depth


def generate_sample(
    seed: int,
    split: str = "train",
    height: int = 96,
    width: int = 128,
    num_frames: int = 49,
    *,
    fps: float = 8.0,
    render_video: bool = False,
    with_visibility: bool = True,
    camera_motion_prob: float = CAMERA_MOTION_PROB,
    two_movers_prob: float | None = None,
    texture_size: int = 128,
    recipe: str = "v2",
) -> ProceduralSample:
    """Generate one sample (deterministic in ``seed``, ``split`` and ``recipe``).

    ``with_visibility=False`` skips ray-casting frames 1..T (training needs only the tracks): the
    depth / object-id buffers then repeat frame 0 and visibility is all True.
    """
    world = build_world(seed, split, height, width, camera_motion_prob=camera_motion_prob,
                        two_movers_prob=two_movers_prob, texture_size=texture_size, recipe=recipe)
    rng, fov, k, k_inv, room, objects, movers, cam = (world.rng, world.fov, world.k, world.k_inv, world.room,
                                                      world.objects, world.movers, world.camera)
    everything = world.everything

    dirs_cam = _camera_rays(k_inv, height, width)
    n = height * width
    times = [t / (num_frames - 1) if num_frames > 1 else 0.0 for t in range(num_frames)]

    dist0, ids0, hits0 = _render(everything, 0.0, cam, dirs_cam)
    params0 = {i: hits0[i].param[ids0 == i] for i in range(len(everything))}
    tracks = torch.empty(num_frames, n, 3)
    depth = torch.empty(num_frames, height, width)
    object_id = torch.empty(num_frames, height, width, dtype=torch.int64)
    frames = torch.empty(num_frames, height, width, 3) if render_video else None
    poses = torch.zeros(num_frames, 4, 4)
    cast_all = with_visibility or render_video
    for t, s in enumerate(times):
        rot_c, centre = cam.pose(s)
        poses[t, :3, :3], poses[t, :3, 3], poses[t, 3, 3] = rot_c, centre, 1.0
    _track_points(tracks, everything, ids0, params0, times, poses)
    depth[:] = dist0.view(height, width)
    object_id[:] = ids0.view(height, width)
    for t, s in enumerate(times[1:] if cast_all else [], start=1):
        dist, ids, hits = _render(everything, s, cam, dirs_cam)
        depth[t] = dist.view(height, width)
        object_id[t] = ids.view(height, width)
        if frames is not None:
            _shade(everything, ids, hits, frames[t].view(-1, 3))
    image = torch.empty(n, 3)
    _shade(everything, ids0, hits0, image)
    image = image.view(height, width, 3)
    if frames is not None:
        frames[0] = image

    if cast_all:
        visibility = _visibility(tracks, depth, object_id, ids0, k)
    else:
        visibility = torch.ones(num_frames, n, dtype=torch.bool)

    subjects = [f"the {o.name}" for o in movers]
    mover_ids = [len(room) + objects.index(o) for o in movers]
    if recipe in V3_FAMILY and len(movers) == 1 and rng.random() < 0.3:
        areas = torch.bincount(ids0, minlength=len(everything))[len(room):]
        if int(areas.argmax()) == objects.index(movers[0]):  # the most prominent object is the one that moves
            subjects[0] = GENERIC_SUBJECTS[int(rng.integers(len(GENERIC_SUBJECTS)))]
    clauses = [f"{subject} {o.motion.phrase}" for subject, o in zip(subjects, movers)]
    if clauses:
        caption = " and ".join(clauses) + (f", while the camera {cam.phrase}" if cam.phrase else "")
    elif cam.phrase:
        caption = f"the camera {cam.phrase}"
    else:
        caption = STILL_CAPTIONS[int(rng.integers(len(STILL_CAPTIONS)))]
    params = {
        "seed": int(seed),
        "split": split,
        "recipe": recipe,
        "movers": mover_ids,  # indices into "objects" (room planes first)
        "fov_deg": fov,
        "objects": [
            {"name": o.name, "kind": o.shape.kind,
             "motion": {"kind": o.motion.kind, "phrase": o.motion.phrase, "vector": list(o.motion.vector),
                        "amount": o.motion.amount, "count": o.motion.count}}
            for o in everything
        ],
        "camera": {"phrase": cam.phrase, "vector": list(cam.vector)},
    }
    return ProceduralSample(image.clamp(0, 1), frames, tracks, visibility, depth, object_id, poses, k.double(),
                            caption, params, fps)
