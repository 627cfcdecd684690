"""A depth prior that needs no weights — an APPROXIMATION for the default workflow on a fresh
machine and for previews; connect a learned depth model (Depth Anything, Depth Pro, MoGe,
UniDepth) for real work.

What it assumes, in order of the cues it reads:
- subjects: what stands out from the image's top/left/right borders in colour or focus near the
  middle of the frame is a subject (saliency seeds, GrabCut boundary on image edges); each subject
  is one smooth, gently rounded surface — no depth seam is ever cut through a subject;
- ground: when the bottom of the frame shows something other than a subject, that is the ground,
  a plane under a camera ``camera_height`` above it, pitched as its converging vertical edges say
  (level when there are too few); the ground's inverse depth grows linearly with the image row;
- behind the ground: whatever stands where the ground ends in a column (a wall, shelves, trees)
  is upright, at the ground's depth along that foot line;
- a subject that stands on the ground is at the depth of its lowest point (its contact); one that
  fills the bottom of the frame is as near as the ground there;
- with no ground in view (portraits, close-ups, top-down shots): a flat backdrop and the subjects in
  front of it, the farther in front the more sharply they stand out from a defocused backdrop;
- ``subjects_from_focus`` (off by default): when the borders show a defocused backdrop, what is in
  focus is the subject even where it fills the frame's borders (a close-up at a wide aperture).
The scale is nominal (a ``camera_height`` of 1.5 m) or set by ``median_depth``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from ..errors import InputError
from .layout import camera_pitch, find_ground
from .result import DepthResult, intrinsics_for
from .subject import extract_subjects

WORK_SIDE = 320  # the cues are read at this size (long side); the result is upsampled along image edges
BACKDROP_DEPTH = 3.0  # metres, for the layout without ground (scaled by camera_height / 1.5)
MAX_RANGE = 3.0  # ground layout with an unknown pitch: the farthest ground is at most this many times the nearest
PITCH_SIDE = 640  # the camera's pitch is read from line segments at this size (long side)
RELIEF = 0.08  # a subject's centre is this much nearer (in inverse depth) than its outline
BACKDROP_LEAN = 0.5  # no ground in view: the bottom of the backdrop is this much nearer (inverse depth) than its top
FEATHER = 0.03  # subject outlines are feathered along image edges over this fraction of the image


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` following the edges of the grey ``guide`` (He et al.)."""
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x):
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(guide), box(src)
    cov = box(guide * src) - mean_i * mean_p
    var = box(guide * guide) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


def _at_most(u8: np.ndarray, side: int) -> np.ndarray:
    """``u8`` shrunk (area averaging) so that its long side is at most ``side`` pixels (8 at least)."""
    h, w = u8.shape[:2]
    s = min(1.0, side / max(h, w))
    hw = (max(8, int(round(h * s))), max(8, int(round(w * s))))
    return u8 if hw == (h, w) else cv2.resize(u8, hw[::-1], interpolation=cv2.INTER_AREA)


def _rounded(component: np.ndarray) -> np.ndarray:
    """0 on a component's outline rising to 1 at its most interior point (a rounded bulge)."""
    dt = cv2.distanceTransform(component.astype(np.uint8), cv2.DIST_L2, 5)
    return np.sqrt(dt / max(float(dt.max()), 1e-6))


def prior_nearness(u8: np.ndarray, f: float, *, horizon: float | None, camera_height: float,
                   pitch: tuple[float, int] = (0.0, 0), subjects_from_focus: bool = False) -> tuple[np.ndarray, dict]:
    """Inverse depth (1/m) of the ``[h, w, 3]`` uint8 image at its own size and what was found;
    ``pitch`` is the camera's (radians, segments that showed it; 0 segments: unknown, level)."""
    h, w = u8.shape[:2]
    rows = np.arange(h, dtype=np.float64)[:, None] + 0.5
    ground = find_ground(u8)
    hides = None
    if ground.fraction > 0:
        # occlusion order: what is not ground below where the ground ends stands on it
        r = max(1, int(round(0.01 * max(h, w))))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        hides = (rows >= ground.foot[None, :] + 0.02 * h) & ~ground.mask
        hides = cv2.morphologyEx(hides.astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)
    subjects = extract_subjects(u8, background=ground.mask if ground.fraction > 0 else None, seeds=hides,
                                likely=ground.rising, from_focus=subjects_from_focus)
    info: dict = {"subjects": subjects.count, "subject_fraction": round(float(subjects.mask.mean()), 3),
                  "subject_confidence": round(subjects.confidence, 2), "ground_fraction": round(ground.fraction, 3),
                  "subjects_by": "focus" if subjects_from_focus else "colour",
                  "defocused_backdrop": subjects.defocused_backdrop}
    if ground.fraction > 0:
        if horizon is not None:
            v_h, pitch, used = horizon * h, math.atan((h / 2 - horizon * h) / f), 0
        else:
            pitch, used = pitch
            v_h = h / 2 - f * math.tan(pitch)
        foot = ground.foot
        # the ground is seen below its horizon: a horizon below the ground's top edge is impossible;
        # with nothing that shows the pitch, the background stands at most MAX_RANGE times as far
        # as the nearest ground
        top = float(foot.min())
        v_h = min(v_h, top - 0.05 * h)
        if not used and horizon is None:
            v_h = min(v_h, (MAX_RANGE * top - h) / (MAX_RANGE - 1))
        scale = math.cos(pitch) / (camera_height * f)
        nearness = np.maximum(rows - v_h, 1e-3) * scale * np.ones((1, w))
        wall = np.maximum(foot - v_h, 1e-3) * scale
        nearness = np.where(rows < foot[None, :], wall[None, :], nearness)
        info.update(layout="ground", pitch_deg=round(math.degrees(pitch), 1), vertical_segments=used,
                    horizon_row=round(v_h / h, 3))

        def at_contact(component: np.ndarray) -> float:
            # a subject stands where its lowest pixels are; one that does not reach down to where
            # the ground ends hangs on the background behind
            ys, xs = np.nonzero(component)
            bottom = float(np.percentile(ys, 98)) + 0.5
            cols = xs[ys >= bottom - 1.5]
            if bottom < float(np.median(foot[cols])) - 0.02 * h:
                return float(np.median(wall[cols])) * 1.05
            return (min(bottom, h) - v_h) * scale
    else:
        # no ground in view: a backdrop leaning back a little (lower in the frame is nearer)
        far = 1.0 / (BACKDROP_DEPTH * camera_height / 1.5)
        nearness = far * (1.0 + BACKDROP_LEAN * rows / h) * np.ones((1, w))
        info.update(layout="backdrop")
        inside = subjects.sharpness[subjects.mask].mean() if subjects.count else 1.0
        outside = subjects.sharpness[~subjects.mask].mean() if subjects.count else 1.0
        # a subject in focus before a defocused backdrop stands well in front of it
        gap = 0.25 + 0.35 * float(np.clip((inside / max(outside, 1e-6) - 1.0) / 3.0, 0.0, 1.0))
        info["subject_gap"] = round(gap, 3)

        def at_contact(component: np.ndarray) -> float:
            ys = np.nonzero(component)[0]
            bottom = float(np.percentile(ys, 98)) + 0.5
            return far * (1.0 + BACKDROP_LEAN * bottom / h) * (1.0 + gap)
    return _with_subjects(nearness, subjects, at_contact, u8), info


def _with_subjects(background: np.ndarray, subjects, at_contact, u8: np.ndarray) -> np.ndarray:
    """The background's inverse depth with each subject laid over it as a gently rounded surface;
    the subjects' outlines are feathered along image edges (a guided filter of the subject mask)
    so that where the segmentation has no image edge to follow there is no hard depth step."""
    if subjects.count == 0:
        return background
    h, w = background.shape
    front = np.zeros((h, w))
    for c in range(1, subjects.count + 1):
        component = subjects.labels == c
        front[component] = at_contact(component) * (1.0 + RELIEF * _rounded(component)[component])
    # outside the subjects the front layer takes its nearest subject's value (to blend towards)
    _, nearest = cv2.distanceTransformWithLabels((~subjects.mask).astype(np.uint8), cv2.DIST_L2, 5,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(subjects.mask)
    lookup = np.zeros(nearest.max() + 1)
    zero_ids = nearest[subjects.mask]
    lookup[zero_ids] = front[ys, xs]
    front = np.where(subjects.mask, front, lookup[nearest])
    grey = cv2.cvtColor(u8, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    radius = max(2, int(round(FEATHER * max(h, w))))
    alpha = np.clip(guided_filter(grey, subjects.mask.astype(np.float32), radius, 1e-3), 0.0, 1.0)
    return (1.0 - alpha) * background + alpha * front


def focus_suggested(metadata: dict) -> bool:
    """Whether a prior result by colour is one that subjects by focus were made for: a close-up or
    portrait (no ground in view) whose borders read out of focus. The bundled example's soft walls read
    out of focus too, but it shows ground: a room, not a close-up at a wide aperture."""
    return (metadata.get("subjects_by") == "colour" and bool(metadata.get("defocused_backdrop"))
            and metadata.get("layout") == "backdrop")


def prior_depth(
    image: torch.Tensor,
    *,
    fov_deg: float | None = None,
    horizon: float | None = None,
    camera_height: float = 1.5,
    median_depth: float | None = None,
    subjects_from_focus: bool = False,
) -> DepthResult:
    """Approximate metric depth of ``image`` ``[H, W, 3]`` (0..1) from weight-free cues (module doc).

    ``horizon`` (a fraction of the image height, negative above the image) fixes where the ground's
    horizon is instead of reading the camera's pitch from the image; it matters only when ground is
    seen, and a horizon below the ground's visible end is moved just above it.
    ``subjects_from_focus``: before a defocused backdrop, what is in focus is the subject (off by
    default; the metadata's ``defocused_backdrop`` says whether the borders show one either way)."""
    img = torch.as_tensor(image).float()
    if img.ndim == 4 and img.shape[0] == 1:
        img = img[0]
    if img.ndim != 3 or img.shape[-1] < 3:
        raise InputError(f"the image must be [H, W, 3], got {list(img.shape)}")
    if horizon is not None and not -1.0 <= horizon <= 0.95:
        raise InputError(f"horizon must be a fraction of the image height in -1..0.95 (negative: above the image), got {horizon}")
    if camera_height <= 0:
        raise InputError(f"camera height must be positive, got {camera_height}")
    if median_depth is not None and not (0 < median_depth < float("inf")):
        raise InputError(f"median depth must be a positive number of metres, got {median_depth}")
    h, w = img.shape[:2]
    k = intrinsics_for(h, w, fov_deg)
    u8 = (img[..., :3].clamp(0, 1).numpy() * 255).astype(np.uint8)
    small = _at_most(u8, WORK_SIDE)
    pitch = (0.0, 0)
    if horizon is None:
        for_lines = _at_most(u8, PITCH_SIDE)
        pitch = camera_pitch(cv2.cvtColor(for_lines, cv2.COLOR_RGB2GRAY), float(k[1, 1]) * for_lines.shape[0] / h)
    nearness, info = prior_nearness(small, float(k[1, 1]) * small.shape[0] / h, horizon=horizon,
                                    camera_height=camera_height, pitch=pitch, subjects_from_focus=subjects_from_focus)
    nearness = cv2.resize(nearness.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    grey = cv2.cvtColor(u8, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    radius = max(2, int(round(0.01 * max(h, w))))
    lo, hi = float(nearness.min()), float(nearness.max())
    nearness = np.clip(guided_filter(grey, nearness, radius, 1e-3), lo, hi)
    depth = 1.0 / nearness
    if median_depth is not None:
        depth = depth * (median_depth / float(np.median(depth)))
    return DepthResult(
        torch.from_numpy(depth.astype(np.float32)), k, torch.ones(h, w, dtype=torch.bool), "prior", metric=False,
        metadata={"approximation": "weight-free prior: subjects, ground plane, upright background", **info},
    )
