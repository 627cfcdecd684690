"""Train a trajectory generator: ``python -m more4d_core.train [options]`` on one device, or
``accelerate launch [--multi_gpu ...] -m more4d_core.train [options]`` on many.

The bundled default model is trained with::

    python -m more4d_core.train --config more4d-small --steps 3000 --batch-size 16 --lr 5e-4 --warmup 100 \\
        --out runs/more4d-small --export more4d_core/weights/more4d-small.safetensors
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from ..help_text import summary
from .loop import TrainArgs, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m more4d_core.train", description=summary(__doc__))
    defaults = TrainArgs()
    for f in dataclasses.fields(TrainArgs):
        if f.name == "info":
            continue
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:  # options without a default take the type their annotation names ("int | None" -> int)
            kind = type(value) if value is not None else {"int": int, "float": float}.get(str(f.type).split(" ")[0], str)
            parser.add_argument(flag, type=kind, default=value)
    args = TrainArgs(**{k: v for k, v in vars(parser.parse_args(argv)).items()})
    out = train(args)
    print(f"checkpoints in {out}" + (f"; exported {args.export}" if args.export else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
