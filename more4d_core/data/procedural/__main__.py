"""Write procedural samples as a TrajScene dataset folder.

    python -m more4d_core.data.procedural --out data/procedural --train 1000 --validation 48 --heldout 64 [--video]

Each split's samples use seeds 0..N-1 of its own stream and its own photographs: train, validation
and held-out share no texture and no seed stream.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm.auto import tqdm

from ...help_text import summary
from ..trajscene import TrajSample, write_index, write_sample
from .scene_generator import generate_sample


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m more4d_core.data.procedural", description=summary(__doc__))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train", type=int, default=100)
    parser.add_argument("--validation", type=int, default=0, help="validation samples (the split choices are made on)")
    parser.add_argument("--heldout", type=int, default=16)
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--video", action="store_true", help="also write the rendered video of each sample")
    args = parser.parse_args(argv)
    entries = []
    jobs = ([("train", i) for i in range(args.train)] + [("validation", i) for i in range(args.validation)]
            + [("heldout", i) for i in range(args.heldout)])
    for split, seed in tqdm(jobs, desc="samples"):
        s = generate_sample(seed, split, args.height, args.width, args.frames, render_video=args.video)
        sample_id = f"{split}-{seed:06d}"
        write_sample(args.out, TrajSample(sample_id, s.to_scene(), s.image, s.caption, s.depth, s.camera_poses,
                                          {"generator": "more4d procedural v1", "params": s.params}),
                     video=s.frames, overwrite=True)
        entries.append({"id": sample_id, "caption": s.caption, "split": split})
    write_index(args.out, entries)
    print(f"wrote {len(entries)} samples to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
