"""Camera-path presets: every path the reference names, each implemented and starting at the input camera.

All presets share three rules:

* frame 0 is exactly the identity pose (the input camera);
* translations scale with ``scene_depth`` (use the scene's median frame-0 depth) so a path looks
  the same for a toy scene in arbitrary units and a real one in metres;
* ``strength`` scales the amplitude (1 = the reference's amplitude); a negative strength reverses
  the direction of motion. Any frame count >= 1 works; motion is smooth (sine / cosine profiles).

The look-at target of the rotating presets is the point at ``scene_depth`` on the input optical
axis, so the image centre stays fixed on screen and frame 0 needs no correction.

Reference names are accepted as aliases (``forward_backward``, ``circle_rotating``, ``circular``,
``surrounding``, ``anti-surrounding``, ``camera_rotate``, ``x_moving``, ``y_moving``). The
reference lists ``mix1``/``mix2`` without defining them; ours are documented in
:data:`PRESET_DESCRIPTIONS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..errors import InputError
from .interpolation import compose_poses
from .path import CameraPath
from .rotations import look_at, rotation_y, rotation_z

_F64 = torch.float64

# Amplitudes at strength 1, as fractions of the scene depth or in degrees (reference values where
# the reference implements the path).
DOLLY_AMPLITUDE = 0.1  # reference: 0.4 * |c_z| with a peak of a quarter of that
CIRCLE_RADIUS = 0.05  # reference: 0.05 * |c_z|
CIRCLE_FORWARD = 3.0  # reference: moves forward 3 radii over the path
ORBIT_DEGREES = 45.0  # reference: pi / 4 over the path
ROLL_DEGREES = 30.0  # reference: 30 degrees, sin(pi * s) profile
PAN_AMPLITUDE = 0.15  # not implemented in the reference

PRESET_DESCRIPTIONS: dict[str, str] = {
    "static": "the input camera, unmoving",
    "dolly": "push in toward the scene and pull back past the start (sine profile)",
    "circle": "small circle in the image plane while drifting forward, looking at the scene centre",
    "orbit": "arc around the scene centre, 45 degrees to the left (camera moves to -x)",
    "orbit_reverse": "arc around the scene centre, 45 degrees to the right",
    "roll": "rotate about the optical axis up to 30 degrees and back",
    "pan_x": "slide sideways to the right (eased start and stop)",
    "pan_y": "slide upward (eased start and stop)",
    "mix1": "orbit combined with a dolly push-in",
    "mix2": "circle combined with a roll",
}

ALIASES: dict[str, str] = {
    "forward_backward": "dolly",
    "circle_rotating": "circle",
    "circular": "circle",
    "surrounding": "orbit",
    "anti-surrounding": "orbit_reverse",
    "anti_surrounding": "orbit_reverse",
    "camera_rotate": "roll",
    "x_moving": "pan_x",
    "y_moving": "pan_y",
}

PRESET_NAMES: tuple[str, ...] = tuple(PRESET_DESCRIPTIONS)
MAX_FRAMES = 4096  # the camera nodes' widget maximum: a path's poses and its renders grow with it


def _ease(s: torch.Tensor) -> torch.Tensor:
    return (1.0 - torch.cos(math.pi * s)) / 2.0


def _identity_rotations(n: int) -> torch.Tensor:
    return torch.eye(3, dtype=_F64).expand(n, 3, 3).clone()


def _translation_only(offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return _identity_rotations(offsets.shape[0]), offsets


def _static(s, d, k):
    return _translation_only(torch.zeros(len(s), 3, dtype=_F64))


def _dolly(s, d, k):
    pos = torch.zeros(len(s), 3, dtype=_F64)
    pos[:, 2] = DOLLY_AMPLITUDE * d * k * torch.sin(2 * math.pi * s)
    return _translation_only(pos)


def _pan(axis: int, sign: float):
    def make(s, d, k):
        pos = torch.zeros(len(s), 3, dtype=_F64)
        pos[:, axis] = sign * PAN_AMPLITUDE * d * k * _ease(s)
        return _translation_only(pos)

    return make


def _circle(s, d, k):
    r = CIRCLE_RADIUS * d * abs(k)
    theta = 2 * math.pi * s * (1.0 if k >= 0 else -1.0)
    pos = torch.stack(
        [r * (torch.cos(theta) - 1.0), r * torch.sin(theta), CIRCLE_FORWARD * r * s], dim=1
    )
    target = torch.tensor([0.0, 0.0, d], dtype=_F64)
    rots = torch.empty(len(s), 3, 3, dtype=_F64)
    for i, p in enumerate(pos):
        rots[i] = look_at(p, target)  # identity at frame 0: the camera starts on the optical axis
    return rots, pos


def _orbit_angles(s, k) -> torch.Tensor:
    return math.radians(ORBIT_DEGREES) * k * s


def _orbit_from_angles(phis: torch.Tensor, d: float) -> tuple[torch.Tensor, torch.Tensor]:
    rots = torch.stack([rotation_y(float(phi)) for phi in phis])
    centre = torch.tensor([0.0, 0.0, d], dtype=_F64)
    # camera at distance d from the centre, rotated about the vertical axis through it
    pos = centre - rots[:, :, 2] * d
    return rots, pos


def _orbit(s, d, k):
    return _orbit_from_angles(_orbit_angles(s, k), d)


def _orbit_reverse(s, d, k):
    return _orbit_from_angles(_orbit_angles(s, -k), d)


def _roll(s, d, k):
    angles = math.radians(ROLL_DEGREES) * k * torch.sin(math.pi * s)
    rots = torch.stack([rotation_z(float(a)) for a in angles])
    return rots, torch.zeros(len(s), 3, dtype=_F64)


def _then_local_offset(rots, pos, local_offsets):
    """Move each camera by an offset expressed in its own (rotated) frame."""
    return rots, pos + torch.einsum("tij,tj->ti", rots, local_offsets)


def _mix1(s, d, k):
    rots, pos = _orbit(s, d, k)
    push = torch.zeros(len(s), 3, dtype=_F64)
    push[:, 2] = DOLLY_AMPLITUDE * d * abs(k) * torch.sin(math.pi * s)
    return _then_local_offset(rots, pos, push)


def _mix2(s, d, k):
    rots, pos = _circle(s, d, k)
    roll, _ = _roll(s, d, k)
    return rots @ roll, pos


_BUILDERS: dict[str, Callable] = {
    "static": _static,
    "dolly": _dolly,
    "circle": _circle,
    "orbit": _orbit,
    "orbit_reverse": _orbit_reverse,
    "roll": _roll,
    "pan_x": _pan(0, 1.0),
    "pan_y": _pan(1, -1.0),
    "mix1": _mix1,
    "mix2": _mix2,
}


def canonical_preset_name(name: str) -> str:
    """The preset name for ``name`` (accepting the reference's names), or a clear error."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in _BUILDERS:
        known = ", ".join(PRESET_NAMES)
        raise InputError(
            f"unknown camera preset {name!r}. Choose one of: {known} "
            f"(reference names {', '.join(ALIASES)} are accepted too)."
        )
    return key


def camera_preset(
    name: str,
    num_frames: int = 49,
    *,
    scene_depth: float = 1.0,
    strength: float = 1.0,
) -> CameraPath:
    """Build the named preset path with ``num_frames`` poses.

    ``scene_depth`` is the distance that sets the scale of the motion (the scene's median depth);
    ``strength`` multiplies the amplitude and a negative value reverses the direction.
    """
    key = canonical_preset_name(name)
    if int(num_frames) != num_frames or num_frames < 1:
        raise InputError(f"a camera path needs a frame count >= 1, got {num_frames}")
    if num_frames > MAX_FRAMES:
        raise InputError(f"a camera path has at most {MAX_FRAMES} frames, got {num_frames}")
    num_frames = int(num_frames)
    if not (math.isfinite(scene_depth) and scene_depth > 0):
        raise InputError(f"scene depth must be a positive finite distance, got {scene_depth}")
    if not math.isfinite(strength):
        raise InputError(f"strength must be a finite number, got {strength}")
    if num_frames > 1:
        s = torch.linspace(0.0, 1.0, num_frames, dtype=_F64)
    else:
        s = torch.zeros(1, dtype=_F64)
    rots, pos = _BUILDERS[key](s, float(scene_depth), float(strength))
    poses = compose_poses(rots, pos)
    poses[0] = torch.eye(4, dtype=_F64)  # exact input camera (removes 1e-17 round-off)
    return CameraPath(
        poses,
        name=key,
        metadata={"preset": key, "strength": float(strength), "scene_depth": float(scene_depth)},
    )
