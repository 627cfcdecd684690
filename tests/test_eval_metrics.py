"""The trajectory metrics of the evaluation harness, on hand-built tracks."""

import pytest
import torch

from more4d_core.eval.metrics import THRESHOLDS_PX, score
from more4d_core.geometry.normalization import NormalizationFactors

K = torch.tensor([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]], dtype=torch.float64)
FACTORS = NormalizationFactors(1.0, 1.0)


def _tracks(t=6, n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    p0 = torch.rand(n, 3, generator=g, dtype=torch.float64) * torch.tensor([2.0, 2.0, 3.0]) + torch.tensor([-1, -1, 2.0])
    motion = torch.zeros(t, n, 3, dtype=torch.float64)
    motion[:, : n // 4, 0] = torch.linspace(0, 0.3, t)[:, None]  # a quarter of the points move sideways
    return p0 + motion


def test_exact_and_globally_scaled_predictions_are_perfect():
    gt = _tracks()
    vis = torch.ones(gt.shape[:2], dtype=torch.bool)
    exact = score(gt, gt, vis, K, FACTORS)
    assert exact.epe3d == 0 and all(v == 1.0 for v in exact.within.values())
    scaled = score(gt * 2.5, gt, vis, K, FACTORS)  # unknown global scale is undone by median scaling
    assert all(v == 1.0 for v in scaled.within.values())


def test_a_static_prediction_gets_the_static_points_right():
    gt = _tracks()
    vis = torch.ones(gt.shape[:2], dtype=torch.bool)
    static = gt[:1].expand_as(gt).clone()
    s = score(static, gt, vis, K, FACTORS)
    # frame 0 is not scored; at frame 1 the movers are 0.06 m off (>= 2 px at z <= 5 m, f = 100)
    assert s.within[1] == pytest.approx(0.75)
    assert s.epe3d > 0 and s.smoothness == 0.0
    # finer pixels are stricter: the same errors in pixels of a 4x larger image
    fine = score(static, gt, vis, K, FACTORS, pixel_scale=4.0)
    assert all(fine.within[d] <= s.within[d] for d in THRESHOLDS_PX)


def test_hidden_points_are_not_scored():
    gt = _tracks()
    vis = torch.ones(gt.shape[:2], dtype=torch.bool)
    vis[:, : gt.shape[1] // 4] = False  # hide the movers
    static = gt[:1].expand_as(gt).clone()
    s = score(static, gt, vis, K, FACTORS)
    assert all(v == 1.0 for v in s.within.values())
