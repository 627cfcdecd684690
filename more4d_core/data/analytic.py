"""A small analytic 4D scene with exact trajectories (benchmarks, tests, demos).

The input camera looks at a textured back wall; a textured ball in front of it bounces sideways
and spins, and the wall ripples gently. Every frame-0 pixel is ray-cast against the scene, so the
frame-0 points are exact, and each point then moves with the surface it lies on. The richer
procedural generator for training data lives elsewhere; this one is tiny and dependency-free.
"""

from __future__ import annotations

import math

import torch

from ..camera.intrinsics import intrinsics_from_fov
from ..geometry.projection import pixel_centers
from ..scene import Scene4D


def _texture(u: torch.Tensor, v: torch.Tensor, palette: tuple[tuple[float, float, float], ...]) -> torch.Tensor:
    """Checkerboard blended with a smooth gradient, [..., 3] float 0..1."""
    check = ((torch.floor(u * 8) + torch.floor(v * 8)) % 2).unsqueeze(-1)
    a = torch.tensor(palette[0], dtype=torch.float32)
    b = torch.tensor(palette[1], dtype=torch.float32)
    grad = torch.stack([u, v, 1 - u], dim=-1).clamp(0, 1)
    return (0.65 * (a * (1 - check) + b * check) + 0.35 * grad).clamp(0, 1)


def make_analytic_scene(
    height: int = 96,
    width: int = 128,
    num_frames: int = 49,
    *,
    fps: float = 8.0,
    wall_depth: float = 4.0,
    ball_radius: float = 0.6,
    ball_depth: float = 2.5,
    bounce: float = 0.5,
    spin_turns: float = 0.5,
    ripple: float = 0.03,
    fov_deg: float = 60.0,
) -> Scene4D:
    """Build the analytic scene at any grid size and frame count (deterministic, no randomness)."""
    k = intrinsics_from_fov(height, width, fov_deg)
    uu, vv = pixel_centers(height, width)
    rays = torch.stack([(uu - k[0, 2]) / k[0, 0], (vv - k[1, 2]) / k[1, 1], torch.ones_like(uu)], dim=-1).float()
    rays = rays.reshape(-1, 3)
    n = rays.shape[0]

    centre = torch.tensor([0.0, 0.0, ball_depth])
    # ray / sphere intersection (nearest root)
    b = (rays * centre).sum(-1)
    c = (centre * centre).sum() - ball_radius**2
    a = (rays * rays).sum(-1)
    disc = b * b - a * c
    hit_ball = disc > 0
    t_ball = (b - torch.sqrt(disc.clamp(min=0))) / a
    t_wall = wall_depth / rays[:, 2]
    t_hit = torch.where(hit_ball, t_ball, t_wall)
    p0 = rays * t_hit.unsqueeze(-1)

    s = torch.linspace(0, 1, num_frames) if num_frames > 1 else torch.zeros(1)
    offsets = torch.stack(
        [bounce * torch.sin(2 * math.pi * s), -0.6 * bounce * torch.abs(torch.sin(2 * math.pi * s)), torch.zeros_like(s)],
        dim=-1,
    )
    angles = 2 * math.pi * spin_turns * s
    points = torch.empty(num_frames, n, 3)
    local = p0 - centre
    for t in range(num_frames):
        ca, sa = math.cos(angles[t]), math.sin(angles[t])
        rot = torch.tensor([[ca, 0.0, sa], [0.0, 1.0, 0.0], [-sa, 0.0, ca]])
        ball_t = local @ rot.T + centre + offsets[t]
        wall_t = p0.clone()
        wall_t[:, 2] += ripple * wall_depth * math.sin(2 * math.pi * float(s[t])) * torch.sin(p0[:, 0] * 3.0)
        points[t] = torch.where(hit_ball.unsqueeze(-1), ball_t, wall_t)
    points[0] = p0

    # colour: wall texture from its (x, y), ball texture from spherical coordinates
    wall_uv = (p0[:, 0] / (2 * wall_depth) + 0.5, p0[:, 1] / (2 * wall_depth) + 0.5)
    dirs = local / ball_radius
    ball_uv = (torch.atan2(dirs[:, 0], -dirs[:, 2]) / (2 * math.pi) + 0.5, torch.acos(dirs[:, 1].clamp(-1, 1)) / math.pi)
    wall_rgb = _texture(*wall_uv, ((0.85, 0.82, 0.75), (0.35, 0.45, 0.6)))
    ball_rgb = _texture(*ball_uv, ((0.95, 0.35, 0.2), (0.98, 0.85, 0.3)))
    colors = torch.where(hit_ball.unsqueeze(-1), ball_rgb, wall_rgb)
    return Scene4D(
        points,
        colors,
        grid_hw=(height, width),
        intrinsics=k,
        fps=fps,
        metadata={"source": "analytic", "units": "metres", "prompt": "a ball bouncing in front of a wall"},
    )
