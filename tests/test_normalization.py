import math

import pytest
import torch

from more4d_core.camera.intrinsics import intrinsics_from_fov
from more4d_core.errors import InputError
from more4d_core.geometry.normalization import (
    REFERENCE_FX,
    NormalizationFactors,
    denormalize_motion,
    factors_for,
    normalize_motion,
)


def _tracks(t=7, n=50, dtype=torch.float64):
    p0 = torch.randn(n, 3, dtype=dtype)
    p0[:, 2] = torch.rand(n, dtype=dtype) * 5 + 0.5
    motion = torch.randn(t, n, 3, dtype=dtype) * 0.2
    motion[0] = 0
    return p0 + motion


def test_reference_constants():
    assert REFERENCE_FX == pytest.approx(1.0434783, abs=1e-7)
    f = NormalizationFactors()
    assert (f.fx, f.fy) == (REFERENCE_FX, 1.0)


@pytest.mark.parametrize("factors", [None, NormalizationFactors(0.9, 1.3)])
def test_round_trip(factors):
    pts = _tracks()
    n = normalize_motion(pts, factors)
    assert torch.all(n[0] == 0)
    back = denormalize_motion(n, pts[0], factors)
    torch.testing.assert_close(back, pts, rtol=1e-12, atol=1e-12)
    assert torch.equal(back[0], pts[0])


def test_grid_layout_round_trip_float32():
    pts = _tracks(dtype=torch.float32).reshape(7, 5, 10, 3)
    back = denormalize_motion(normalize_motion(pts), pts[0])
    torch.testing.assert_close(back, pts, rtol=1e-5, atol=1e-5)


def test_formula_matches_design():
    p0 = torch.tensor([[1.0, 2.0, 4.0]], dtype=torch.float64)
    p1 = torch.tensor([[1.5, 1.0, 5.0]], dtype=torch.float64)
    n = normalize_motion(torch.stack([p0, p1]))[1, 0]
    assert n.tolist() == pytest.approx([0.5 * REFERENCE_FX / 4.0, -1.0 / 4.0, 0.25])


def test_scale_invariance():
    pts = _tracks()
    torch.testing.assert_close(normalize_motion(pts * 3.7), normalize_motion(pts))


def test_bad_frame0_depth_is_replaced_by_one():
    pts = _tracks(t=2, n=3)
    pts[:, 1, 2] = 0.0  # zero depth in frame 0 (and 1)
    n = normalize_motion(pts)
    assert torch.isfinite(n).all()
    assert n[1, 1, 2] == 0.0


def test_factors_from_intrinsics():
    k = intrinsics_from_fov(368, 512, 60.0)
    f = NormalizationFactors.from_intrinsics(k, 368, 512)
    assert f.fx == pytest.approx(float(k[0, 0]) / 512)
    assert f.fy == pytest.approx(float(k[1, 1]) / 368)


def test_focal_normalization_does_not_depend_on_the_field_of_view():
    # an object 4 m away sliding 0.12 x its depth: the same focal-unit field at every field of view,
    # while the image-size field scales with the focal length
    points = torch.tensor([[[0.5, 0.2, 4.0]], [[0.98, 0.2, 4.0]]])
    fields = {}
    for fov in (50.0, 65.0):
        k = intrinsics_from_fov(96, 128, fov)
        fields[fov] = {mode: normalize_motion(points, factors_for(mode, k, 96, 128))[1, 0, 0].item()
                       for mode in ("focal", "intrinsics")}
        assert factors_for("reference", k, 96, 128) == NormalizationFactors.reference()
    assert fields[50.0]["focal"] == pytest.approx(0.12) and fields[65.0]["focal"] == pytest.approx(0.12)
    assert fields[50.0]["intrinsics"] / fields[65.0]["intrinsics"] == pytest.approx(
        math.tan(math.radians(32.5)) / math.tan(math.radians(25.0)))
    with pytest.raises(InputError, match="normalization must be one of"):
        factors_for("metres", k, 96, 128)


def test_errors():
    with pytest.raises(InputError, match="same grid"):
        denormalize_motion(torch.zeros(3, 10, 3), torch.zeros(9, 3))
    with pytest.raises(InputError, match="shape"):
        normalize_motion(torch.zeros(3, 10, 2))
    with pytest.raises(InputError, match="positive"):
        NormalizationFactors(0.0, 1.0)
