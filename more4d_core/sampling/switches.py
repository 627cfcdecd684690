"""The sampler's three-way switches (the motion gate, clause composition, mirror averaging, the pixel gate, rigid
segments, object focus): "auto" follows the model's default or the situation, "on" and "off" force it; None, True and False are
the same three."""

from __future__ import annotations

from ..errors import InputError

SWITCH_MODES = ("auto", "on", "off")


def switch_mode(mode, name: str) -> str:
    """``mode`` (None = "auto", True = "on", False = "off", or one of :data:`SWITCH_MODES`) as its name; anything else
    is refused with an error that names the switch (``name``) and what it takes."""
    mode = {None: "auto", True: "on", False: "off"}.get(mode, mode)
    if mode not in SWITCH_MODES:
        raise InputError(f"{name} must be one of {', '.join(SWITCH_MODES)}, got {mode!r}")
    return mode
