"""The description line of a command's ``--help``: a module docstring's first paragraph."""

from __future__ import annotations


def summary(doc: str | None) -> str:
    """The first paragraph of ``doc`` on one line (a first line alone can stop mid-sentence)."""
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def command_parser(prog: str, doc: str):
    """The argument parser of a ``python -m`` command whose module docstring is its help: the first paragraph as the
    description, the rest (usage lines and details) kept as written after the options."""
    import argparse

    return argparse.ArgumentParser(prog=prog, description=summary(doc), epilog=doc.split("\n", 2)[2],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
