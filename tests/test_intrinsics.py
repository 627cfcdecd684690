import math

import pytest
import torch

from more4d_core.camera.intrinsics import (
    fov_from_intrinsics,
    intrinsics_from_focal,
    intrinsics_from_focal_mm,
    intrinsics_from_fov,
    intrinsics_from_normalized,
    make_intrinsics,
    scale_intrinsics,
)
from more4d_core.errors import InputError
from more4d_core.geometry.projection import project_points


def test_fov_gives_expected_focal_and_centre():
    k = intrinsics_from_fov(368, 512, 90.0)
    assert k.dtype == torch.float64
    assert k[0, 0] == pytest.approx(256.0)
    assert k[1, 1] == pytest.approx(256.0)
    assert (k[0, 2], k[1, 2]) == (256.0, 184.0)
    kv = intrinsics_from_fov(368, 512, 90.0, axis="vertical")
    assert kv[0, 0] == pytest.approx(184.0)
    kd = intrinsics_from_fov(300, 400, 90.0, axis="diagonal")
    assert kd[0, 0] == pytest.approx(250.0)


def test_fov_round_trip():
    k = intrinsics_from_fov(240, 320, 70.0)
    fx_deg, _ = fov_from_intrinsics(k, 240, 320)
    assert fx_deg == pytest.approx(70.0)


def test_focal_mm_full_frame_equivalent():
    k = intrinsics_from_focal_mm(100, 360, 36.0)  # focal = sensor width -> f = width
    assert k[0, 0] == pytest.approx(360.0)


@pytest.mark.parametrize("fov", [0.0, 180.0, -5.0, float("nan")])
def test_bad_fov_is_rejected(fov):
    with pytest.raises(InputError, match="field of view"):
        intrinsics_from_fov(10, 10, fov)


@pytest.mark.parametrize("fx", [0.0, -1.0])
def test_zero_or_negative_focal_is_rejected(fx):
    with pytest.raises(InputError, match="focal"):
        make_intrinsics(fx, 1.0, 0.0, 0.0)
    with pytest.raises(InputError, match="focal"):
        intrinsics_from_focal(10, 10, fx)


def test_scaling_is_exact_with_pixel_centres():
    k = intrinsics_from_focal(24, 32, 30.0)
    k2 = scale_intrinsics(k, (24, 32), (48, 64))
    pts = torch.tensor([[0.3, -0.2, 2.0], [1.0, 0.5, 3.0]], dtype=torch.float64)
    uv1, _ = project_points(pts, k)
    uv2, _ = project_points(pts, k2)
    torch.testing.assert_close(uv2, uv1 * 2, rtol=0, atol=1e-12)


def test_normalized_reference_convention():
    kn = torch.tensor([[1.0, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1]], dtype=torch.float64)
    k = intrinsics_from_normalized(kn, 368, 512)
    assert k[0, 0] == 512 and k[1, 1] == 368 and k[0, 2] == 256 and k[1, 2] == 184
    assert math.isclose(float(k[2, 2]), 1.0)
