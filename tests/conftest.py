import pytest
import torch

from more4d_core.camera.intrinsics import intrinsics_from_fov
from more4d_core.data.analytic import make_analytic_scene


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def small_scene():
    """Analytic scene: 24x32 grid, 9 frames (a ball moving in front of a wall)."""
    return make_analytic_scene(24, 32, 9)


@pytest.fixture
def intrinsics_32x24():
    return intrinsics_from_fov(24, 32, 60.0)
