"""Analytic shapes of the procedural scenes: exact ray intersection and surface parametrization.

Every shape is intersected in its *local* frame (the object's pose at that instant maps local to
world: ``world = p + scale * R @ local``). A hit yields the distance along the ray, a surface
parameter that stays attached to the material point when the object moves or deforms (so tracks
are exact), and texture coordinates.

* ``plane``  — static background planes (walls, floor); parameter = world point.
* ``sphere`` — radius ``r``; parameter = unit direction in the local frame.
* ``box``    — half extents ``(a, b, c)``; parameter = local point.
* ``card``   — a rectangle or ellipse ``|x| <= a, |y| <= b`` in the local xy plane displaced along
  local z by a height field ``h(x, y)`` (waves, bending); parameter = ``(x, y)``. Intersected by
  fixed-point iteration, exact to float precision for the gentle deformations we generate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

INF = float("inf")


@dataclass
class Deformation:
    """Height field of a card: ``h = wave_amp * sin(wave_k * x + wave_phase) + bend * x^2``."""

    wave_amp: float = 0.0
    wave_k: float = 0.0
    wave_phase: float = 0.0
    bend: float = 0.0

    def height(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = torch.zeros_like(x)
        if self.wave_amp:
            h = h + self.wave_amp * torch.sin(self.wave_k * x + self.wave_phase)
        if self.bend:
            h = h + self.bend * x * x
        return h


@dataclass
class Pose:
    rotation: torch.Tensor  # [3, 3] local -> world
    position: torch.Tensor  # [3]
    scale: float = 1.0
    deformation: Deformation = field(default_factory=Deformation)

    def to_local(self, origin: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        o = (origin - self.position) @ self.rotation / self.scale
        d = dirs @ self.rotation / self.scale
        return o, d

    def to_world(self, local: torch.Tensor) -> torch.Tensor:
        return self.position + self.scale * local @ self.rotation.T


@dataclass
class Shape:
    kind: str
    size: tuple  # sphere (r,), box (a, b, c), card (a, b, round), plane (point, normal, u_axis, v_axis, tile)


@dataclass
class Hit:
    dist: torch.Tensor  # [N], inf where missed
    param: torch.Tensor  # [N, P] surface parameter
    uv: torch.Tensor  # [N, 2]


def _sphere(shape: Shape, o: torch.Tensor, d: torch.Tensor) -> Hit:
    r = shape.size[0]
    a = (d * d).sum(-1)
    b = (o * d).sum(-1)
    c = (o * o).sum(-1) - r * r
    disc = b * b - a * c
    s = (-b - torch.sqrt(disc.clamp(min=0))) / a
    hit = (disc > 0) & (s > 1e-6)
    p = o + s.unsqueeze(-1) * d
    unit = p / r
    u = torch.atan2(unit[:, 0], -unit[:, 2]) / (2 * math.pi) + 0.5
    v = torch.acos(unit[:, 1].clamp(-1, 1)) / math.pi
    return Hit(torch.where(hit, s, torch.full_like(s, INF)), unit, torch.stack([u, v], -1))


def _box(shape: Shape, o: torch.Tensor, d: torch.Tensor) -> Hit:
    half = torch.tensor(shape.size[:3], dtype=o.dtype)
    inv = 1.0 / torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)
    t1 = (-half - o) * inv
    t2 = (half - o) * inv
    tmin = torch.minimum(t1, t2).amax(-1)
    tmax = torch.maximum(t1, t2).amin(-1)
    hit = (tmax >= tmin) & (tmin > 1e-6)
    p = o + tmin.unsqueeze(-1) * d
    q = p / half  # in [-1, 1]^3 on the surface
    axis = q.abs().argmax(-1)
    # texture coordinates from the two coordinates across the face
    ua = torch.where(axis == 0, q[:, 2], q[:, 0])
    va = torch.where(axis == 1, q[:, 2], q[:, 1])
    uv = torch.stack([(ua + 1) / 2, (va + 1) / 2], -1)
    return Hit(torch.where(hit, tmin, torch.full_like(tmin, INF)), p, uv)


def card_inside(shape: Shape, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    a, b, rounded = shape.size
    if rounded:
        return (x / a) ** 2 + (y / b) ** 2 <= 1.0
    return (x.abs() <= a) & (y.abs() <= b)


def _card(shape: Shape, o: torch.Tensor, d: torch.Tensor, deform: Deformation) -> Hit:
    a, b, _ = shape.size
    dz = torch.where(d[:, 2].abs() < 1e-9, torch.full_like(d[:, 2], 1e-9), d[:, 2])
    s = -o[:, 2] / dz  # the flat card first
    for _ in range(12):  # s = (h(x(s), y(s)) - o_z) / d_z, a contraction for gentle height fields
        x = o[:, 0] + s * d[:, 0]
        y = o[:, 1] + s * d[:, 1]
        s = (deform.height(x, y) - o[:, 2]) / dz
    x = o[:, 0] + s * d[:, 0]
    y = o[:, 1] + s * d[:, 1]
    residual = (o[:, 2] + s * d[:, 2] - deform.height(x, y)).abs()
    hit = card_inside(shape, x, y) & (s > 1e-6) & (residual < 1e-4 * (1 + s.abs()))
    uv = torch.stack([(x / a + 1) / 2, (y / b + 1) / 2], -1)
    return Hit(torch.where(hit, s, torch.full_like(s, INF)), torch.stack([x, y], -1), uv)


def _plane(shape: Shape, origin: torch.Tensor, d: torch.Tensor) -> Hit:
    point, normal, u_axis, v_axis, tile = shape.size
    denom = d @ normal
    s = ((point - origin) @ normal) / torch.where(denom.abs() < 1e-12, torch.full_like(denom, 1e-12), denom)
    hit = s > 1e-6
    p = origin + s.unsqueeze(-1) * d
    rel = p - point
    uv = torch.stack([rel @ u_axis / tile, rel @ v_axis / tile], -1)
    return Hit(torch.where(hit, s, torch.full_like(s, INF)), p, uv)


def intersect(shape: Shape, pose: Pose, origin: torch.Tensor, dirs: torch.Tensor) -> Hit:
    """Nearest intersection of world rays ``origin + s * dirs`` (``s`` in world units)."""
    if shape.kind == "plane":
        return _plane(shape, origin, dirs)
    o, d = pose.to_local(origin, dirs)
    o = o.expand_as(d)
    if shape.kind == "sphere":
        return _sphere(shape, o, d)
    if shape.kind == "box":
        return _box(shape, o, d)
    if shape.kind == "card":
        return _card(shape, o, d, pose.deformation)
    raise ValueError(f"unknown shape kind {shape.kind!r}")


def surface_points(shape: Shape, pose: Pose, param: torch.Tensor) -> torch.Tensor:
    """World positions of surface parameters under ``pose`` (moves with the material)."""
    if shape.kind == "plane":
        return param
    if shape.kind == "sphere":
        return pose.to_world(param * shape.size[0])
    if shape.kind == "box":
        return pose.to_world(param)
    if shape.kind == "card":
        x, y = param[:, 0], param[:, 1]
        return pose.to_world(torch.stack([x, y, pose.deformation.height(x, y)], -1))
    raise ValueError(f"unknown shape kind {shape.kind!r}")
