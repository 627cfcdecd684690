"""Motion programs of procedural objects and cameras, each with the words that describe it.

A motion maps normalized time ``s`` in [0, 1] to a :class:`Pose` (rigid pose, uniform scale and
card deformation). Every parameter the caption does not state is fixed (up to a small jitter), so
the caption determines the motion; amplitudes scale with the object's depth so the on-screen
motion has a consistent size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .shapes import Deformation, Pose


def rot_y(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass
class Motion:
    """One object's motion. ``kind`` in ``still, translate, bounce, spin, grow, wave, bend``."""

    kind: str = "still"
    vector: tuple[float, float, float] = (0.0, 0.0, 0.0)  # translate: total displacement
    amount: float = 0.0  # bounce height, spin angle (rad, signed), grow factor - 1, wave / bend amplitude
    count: int = 1  # bounces, wave cycles
    phrase: str = "stays still"

    def pose(self, base: Pose, s: float, size: tuple) -> Pose:
        pos = base.position.clone()
        rot = base.rotation.clone()
        scale = base.scale
        deform = Deformation()
        if self.kind == "translate":
            pos = pos + torch.tensor(self.vector) * s
        elif self.kind == "bounce":
            pos = pos + torch.tensor([0.0, -self.amount * abs(math.sin(math.pi * self.count * s)), 0.0])
        elif self.kind == "spin":
            rot = rot @ rot_y(self.amount * s)
        elif self.kind == "grow":
            scale = base.scale * (1.0 + self.amount * s)
        elif self.kind == "wave":
            a = size[0]
            deform = Deformation(wave_amp=self.amount * a, wave_k=math.pi * self.count / a, wave_phase=2 * math.pi * s)
        elif self.kind == "bend":
            a = size[0]
            deform = Deformation(bend=-self.amount * s / a)
        return Pose(rot, pos, scale, deform)


RIGID_KINDS = ("translate", "bounce")  # motions that move every point of the object by one 3D vector
AMOUNT_JITTER = 0.03  # relative spread of every amount the caption does not state (speeds, heights, angles)


def _jitter(rng: np.random.Generator, value: float, rel: float = AMOUNT_JITTER) -> float:
    return float(value * rng.uniform(1 - rel, 1 + rel))


TRANSLATIONS = {
    "left": (-1.0, 0.0, 0.0),
    "right": (1.0, 0.0, 0.0),
    "up": (0.0, -1.0, 0.0),
    "down": (0.0, 1.0, 0.0),
    "toward the camera": (0.0, 0.0, -1.0),
    "away": (0.0, 0.0, 1.0),
}
SPEEDS = {"slowly": 0.12, "quickly": 0.3}


def sample_motion(rng: np.random.Generator, kind_of_shape: str, depth: float, half_width: float,
                  extra_kinds: tuple[str, ...] = ()) -> Motion:
    """A random motion suited to the shape, with its caption phrase. ``extra_kinds`` (rigid kinds: ``spin``,
    ``grow``, ...) are drawn as often again as the ones listed once (recipe v5)."""
    kinds = ["translate", "translate", "bounce", "spin", "grow", *extra_kinds]
    if kind_of_shape == "card":
        kinds += ["wave", "wave", "bend"]
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "translate":
        direction = list(TRANSLATIONS)[int(rng.integers(len(TRANSLATIONS)))]
        speed = list(SPEEDS)[int(rng.integers(len(SPEEDS)))]
        amount = _jitter(rng, SPEEDS[speed] * depth)
        if direction == "toward the camera":
            amount = min(amount, 0.45 * depth)
        vec = tuple(v * amount for v in TRANSLATIONS[direction])
        verb = "moves" if direction in ("toward the camera", "away") else "slides"
        return Motion("translate", vector=vec, phrase=f"{verb} {direction} {speed}")
    if kind == "bounce":
        count = int(rng.integers(1, 3))
        return Motion("bounce", amount=_jitter(rng, 0.18 * depth), count=count,
                      phrase="bounces" if count == 1 else "bounces twice")
    if kind == "spin":
        clockwise = bool(rng.random() < 0.5)
        speed = list(SPEEDS)[int(rng.integers(len(SPEEDS)))]
        angle = _jitter(rng, math.pi / 2 if speed == "slowly" else math.pi)
        return Motion("spin", amount=angle if clockwise else -angle,
                      phrase=f"spins {'clockwise' if clockwise else 'counterclockwise'} {speed}")
    if kind == "grow":
        grow = bool(rng.random() < 0.5)
        return Motion("grow", amount=_jitter(rng, 0.5 if grow else -0.4), phrase="grows" if grow else "shrinks")
    if kind == "wave":
        count = int(rng.integers(1, 3))
        return Motion("wave", amount=_jitter(rng, 0.12), count=count,
                      phrase="waves" if count == 1 else "ripples")
    return Motion("bend", amount=_jitter(rng, 0.35), phrase="bends toward the camera")


@dataclass
class CameraMotion:
    """Motion of the camera (camera-to-world poses); the tracks are expressed in the moving camera."""

    vector: tuple[float, float, float] = (0.0, 0.0, 0.0)
    phrase: str = ""

    def pose(self, s: float) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.eye(3), torch.tensor(self.vector) * s


def sample_camera_motion(rng: np.random.Generator, scene_depth: float, nearest: float) -> CameraMotion:
    options = {
        "pans left": (-0.12 * scene_depth, 0.0, 0.0),
        "pans right": (0.12 * scene_depth, 0.0, 0.0),
        "moves forward": (0.0, 0.0, min(0.12 * scene_depth, 0.4 * nearest)),
        "moves back": (0.0, 0.0, -0.12 * scene_depth),
        "rises": (0.0, -0.1 * scene_depth, 0.0),
    }
    phrase = list(options)[int(rng.integers(len(options)))]
    vec = tuple(_jitter(rng, v) if v else 0.0 for v in options[phrase])
    return CameraMotion(vector=vec, phrase=phrase)

