"""The description line of a command's ``--help``: a module docstring's first paragraph."""

from __future__ import annotations


def summary(doc: str | None) -> str:
    """The first paragraph of ``doc`` on one line (a first line alone can stop mid-sentence)."""
    return " ".join((doc or "").strip().split("\n\n")[0].split())
