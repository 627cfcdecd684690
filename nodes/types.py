"""Socket type names of the custom types our nodes pass, and checks on what arrives in them.

Every custom value is a versioned class of ``more4d_core``: ``Scene4D`` (MORE4D_SCENE),
``CameraPath`` (MORE4D_CAMERA_PATH), ``DepthResult`` (MORE4D_DEPTH), ``ModelHandle``
(MORE4D_MODEL, MORE4D_VISM), ``MotionConditioning`` (MORE4D_MOTION) and ``RenderBundle``
(MORE4D_RENDER).
"""

from __future__ import annotations

from dataclasses import dataclass

from more4d_core.errors import expect_type

SCENE = "MORE4D_SCENE"
CAMERA_PATH = "MORE4D_CAMERA_PATH"
DEPTH = "MORE4D_DEPTH"
MODEL = "MORE4D_MODEL"
VISM = "MORE4D_VISM"
MOTION = "MORE4D_MOTION"
RENDER = "MORE4D_RENDER"
CATEGORY = "MoRe4D"


def require(value, cls, socket: str):
    """Check a node input carries the expected custom type; the error names the socket."""
    expect_type(value, cls, f"the '{socket}' input")
    return value


@dataclass(frozen=True)
class MotionConditioning:
    """The Motion Perception Module settings chosen by the MAdaNorm node: its strength lambda."""

    strength: float = 1.0
    version: int = 1


@dataclass
class RenderBundle:
    """A render with what produced it (scene, camera path), for completion that needs the geometry."""

    result: object
    scene: object
    path: object
    version: int = 1
