"""Socket type names of the custom types our nodes pass, and checks on what arrives in them."""

from __future__ import annotations

from more4d_core.errors import expect_type

SCENE = "MORE4D_SCENE"
CAMERA_PATH = "MORE4D_CAMERA_PATH"
CATEGORY = "MoRe4D"


def require(value, cls, socket: str):
    """Check a node input carries the expected custom type; the error names the socket."""
    expect_type(value, cls, f"the '{socket}' input")
    return value
