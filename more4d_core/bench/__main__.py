"""Benchmarks: ``python -m more4d_core.bench <name> [options]``.

Each benchmark prints measured numbers and, where one exists, the ratio against a reference
implementation run in the same process. Available: ``render``.
"""

from __future__ import annotations

import argparse
import sys

from . import render_bench

BENCHMARKS = {"render": render_bench}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m more4d_core.bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="name", required=True)
    for name, module in BENCHMARKS.items():
        module.add_arguments(sub.add_parser(name, help=module.__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    return BENCHMARKS[args.name].run(args)


if __name__ == "__main__":
    sys.exit(main())
