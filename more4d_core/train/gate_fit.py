"""Fit a motion gate (``models/motion_gate.py``) to a trained model.

    python -m more4d_core.train.gate_fit MODEL --out OUT [--steps 1500] [--scenes 2000] [--threshold 0.5]
                                         [--seed 9] [--recipe v3] [--depth-noise 0.5] [--prior-depth 0.5]
                                         [--named-captions 1] [--gate attention|fine] [--small-mover-weight 4]

The gate judges, from the image, the depth and the caption, which positions move at all. It reads the
model's object encoder and text encoder, which stay frozen, so it is fitted after the diffusion training
on a pool of training scenes (frame 0 and each pixel's true "moves more than about 2 output pixels at
some frame", from the procedural generator's exact tracks) in a few minutes on a CPU. OUT is the input
model with the gate added (the denoiser's weights are copied unchanged, float16 like the bundled file);
the fit's report goes into its metadata. Choose ``--threshold`` (the probability below which a position
is held still) on the validation split (``python -m more4d_core.eval --split validation``).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..depth.estimate import prior_depth_at
from ..help_text import command_parser
from ..models.config import MOTION_GATES
from ..models.motion_gate import FineMotionGate, build_motion_gate
from .binding_pretrain import fit_position_logits, pool_inputs
from .examples import ProceduralExamples
from .gate_balance import check_small_mover_weight, small_mover_weights
from .objective import moving_mask
from .scene_pool import POOL_OFFSET, frame0_pool, planes_of, recent_loss

GATE_KINDS = tuple(kind for kind in MOTION_GATES if kind != "none")  # "attention", "fine"


@dataclass
class GateFitReport:
    steps: int
    scenes: int
    first_loss: float
    last_loss: float  # mean of the last 50 steps
    moving_recall: float  # on the pool: share of mostly-moving positions (of the gate's grid) judged moving (logit > 0)
    still_false: float  # on the pool: share of positions without a moving pixel judged moving
    named_examples: int = 0  # pool examples whose caption names one of the scene's objects (``named_captions``)


def gate_scenes(cfg, *, seed: int = 9, recipe: str = "v3", depth_noise: float = 0.5,
                prior_depth: float = 0.0) -> ProceduralExamples | PriorDepthExamples:
    """Training scenes for the pool: 9-frame clips (frame 0 and the clip's motion over the same time span);
    with probability ``prior_depth`` a scene's depth input is the built-in prior's."""
    scenes = ProceduralExamples("train", cfg.height, cfg.width, 9, seed_offset=seed * 10**7, recipe=recipe,
                                depth_noise=depth_noise)
    return PriorDepthExamples(scenes, prior_depth) if prior_depth > 0 else scenes


class PriorDepthExamples:
    """Examples of ``dataset`` whose depth input is, for a share ``fraction`` of the indices (a fixed hash of
    the index), the built-in prior's depth of the example's image: what a user without a depth model gives
    the model. The targets stay the true motion."""

    def __init__(self, dataset, fraction: float):
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"the prior-depth share must be in [0, 1], got {fraction}")
        self.dataset, self.fraction = dataset, float(fraction)

    def uses_prior(self, index: int) -> bool:
        return (int(index) * 2654435761 % 2**32) / 2**32 < self.fraction

    def __getitem__(self, index: int) -> dict:
        return self._depth_for(self.dataset[index], index)

    def named_examples(self, index: int, count: int, rng) -> list[dict]:
        return [self._depth_for(ex, index) for ex in self.dataset.named_examples(index, count, rng)]

    def _depth_for(self, ex: dict, index: int) -> dict:
        if self.uses_prior(index):
            ex = {**ex, "depth": prior_depth_at(ex["image"].permute(1, 2, 0), ex["intrinsics"]).float()}
        return ex


def fit_motion_gate(transformer, text_encoder, dataset, *, steps: int, scenes: int = 2000, batch_size: int = 64,
                    lr: float = 3e-3, seed: int = 0, named_captions: int = 0, small_mover_weight: float = 1.0,
                    log=None) -> GateFitReport:
    """Fit ``transformer.motion_gate`` (query, key, "still" key; a fine gate's convolution and mix too) on
    ``scenes`` examples of ``dataset``, plus up to ``named_captions`` examples per still-camera scene that name
    one of its objects (:func:`named_pool`); ``small_mover_weight`` > 1 weighs up the moving positions of examples
    whose moving region is small (:mod:`.gate_balance`)."""
    if steps < 1 or scenes < 1:
        raise ValueError(f"fitting a motion gate needs steps and scenes >= 1, got {steps} and {scenes}")
    if named_captions < 0:
        raise ValueError(f"named captions per scene must be >= 0, got {named_captions}")
    check_small_mover_weight(small_mover_weight)
    gate = getattr(transformer, "motion_gate", None)
    if gate is None:
        raise ValueError("the model has no motion gate to fit (config motion_gate 'attention' or 'fine')")
    norm = transformer.cfg.normalization
    pool = frame0_pool(dataset, scenes, ("image", "depth", "caption"),
                       derived={"moving": lambda ex: moving_mask(ex["tracks"], ex["intrinsics"], norm)})
    named = named_pool(dataset, scenes, named_captions, seed) if named_captions else None
    if named is not None:
        pool = {"caption": pool["caption"] + named["caption"],
                **{key: torch.cat([pool[key], named[key]]) for key in ("image", "depth", "moving")}}
    planes = planes_of(pool, transformer.cfg.depth_condition)
    feats, text = pool_inputs(transformer, text_encoder, pool, planes=planes)
    size = len(pool["caption"])
    weights = (small_mover_weights(pool["moving"], tuple(feats.shape[-2:]), small_mover_weight)
               if small_mover_weight > 1.0 else None)  # 1: the plain loss, nothing to compute
    losses, recall, false = fit_position_logits(gate, gate, feats, text, pool["moving"], steps=steps, scenes=size,
                                                batch_size=batch_size, lr=lr, seed=seed, log=log, label="motion gate",
                                                planes=planes.float() if isinstance(gate, FineMotionGate) else None,
                                                positive_weight=weights)
    return GateFitReport(steps, scenes, losses[0], recent_loss(losses), recall, false, size - scenes)


def named_pool(dataset, scenes: int, per_scene: int, seed: int) -> dict | None:
    """Frame-0 inputs of the pool's still-camera scenes captioned to name one of their objects
    (``dataset.named_examples``; up to ``per_scene`` each, drawn with a generator seeded by ``seed`` and the
    index) with ``moving``: the named object's pixels. In the procedural captions only the objects that move are
    named, so a fit on them alone never sees a still object named; on validation, in the gate fitted without these,
    the named object made up on average only 54% of the region the gate let move (docs/bundled-model-history.md, "Named captions for the
    motion gate"). None when no scene has one."""
    parts = {"image": [], "depth": [], "caption": [], "moving": []}
    for i in range(scenes):
        index = POOL_OFFSET + i
        for ex in dataset.named_examples(index, per_scene, np.random.default_rng([int(seed), index])):
            for key, value in (("image", ex["image"]), ("depth", ex["depth"]), ("caption", ex["caption"]),
                               ("moving", ex["mover_mask"])):
                parts[key].append(value)
    if not parts["caption"]:
        return None
    return {key: (values if key == "caption" else torch.stack(values)) for key, values in parts.items()}


def add_motion_gate(model: str | Path, out: str | Path, *, steps: int = 1500, scenes: int = 2000,
                    threshold: float = 0.5, seed: int = 9, recipe: str = "v3", depth_noise: float = 0.5,
                    prior_depth: float = 0.0, named_captions: int = 0, gate: str = "attention",
                    small_mover_weight: float = 1.0, overwrite: bool = False, log=print) -> GateFitReport:
    """Write ``out``: the model file ``model`` with a motion gate of kind ``gate`` ("attention": on the token
    grid; "fine": on the latent grid) fitted to it (a gate it had is replaced)."""
    from ..checkpoints import bundle
    from ..generator import load_generator

    header = bundle.read_header(model)
    if header.config.object_encoder == "none":
        raise ValueError(f"{model}: a motion gate reads the object encoder's features, and this model has none")
    if gate not in GATE_KINDS:
        raise ValueError(f"the gate must be one of {', '.join(GATE_KINDS)}, got {gate!r}")
    check_small_mover_weight(small_mover_weight)
    cfg = header.config.replace(motion_gate=gate, motion_gate_threshold=float(threshold))
    gen = load_generator(model)
    with torch.random.fork_rng(devices=[]):  # seeded from --seed inside, the caller's global random state left as it was
        torch.manual_seed(seed)
        gen.transformer.cfg = cfg
        gen.transformer.motion_gate = build_motion_gate(cfg)
        gen.transformer.float()
        scenes_ = gate_scenes(cfg, seed=seed, recipe=recipe, depth_noise=depth_noise, prior_depth=prior_depth)
        report = fit_motion_gate(gen.transformer, gen.text_encoder, scenes_, steps=steps, scenes=scenes, seed=seed,
                                 named_captions=named_captions, small_mover_weight=small_mover_weight, log=log)
    info = {**header.info, "motion_gate_fit": {**asdict(report), "threshold": float(threshold), "seed": seed,
                                                "recipe": recipe, "depth_noise": depth_noise,
                                                "prior_depth": prior_depth, "named_captions": named_captions,
                                                "gate": gate, "small_mover_weight": small_mover_weight,
                                                "from": str(model)}}
    bundle.save_generator(Path(out), cfg, gen, info, overwrite=overwrite)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("python -m more4d_core.train.gate_fit", __doc__)
    parser.add_argument("model", help="trained model file (single-file .safetensors with an object encoder)")
    parser.add_argument("--out", required=True, help="model file to write (the input with the gate)")
    parser.add_argument("--steps", type=int, default=1500, help="fitting steps (batches of 64)")
    parser.add_argument("--scenes", type=int, default=2000, help="training scenes in the pool")
    parser.add_argument("--threshold", type=float, default=0.5, help="probability below which a position is held still")
    parser.add_argument("--seed", type=int, default=9, help="seed of the pool's scenes and of the fit")
    parser.add_argument("--recipe", default="v3", help="data recipe of the pool (default v3, as training)")
    parser.add_argument("--depth-noise", type=float, default=0.5, help="probability of a perturbed depth input")
    parser.add_argument("--prior-depth", type=float, default=0.0,
                        help="share of the pool's scenes whose depth input is the built-in prior's (what users without "
                             "a depth model give the model)")
    parser.add_argument("--named-captions", type=int, default=0,
                        help="per still-camera pool scene with two or more objects, this many more examples whose "
                             "caption names one of its objects, drawn per scene (its pixels are what moves); 0 = the captions "
                             "as generated")
    parser.add_argument("--gate", choices=GATE_KINDS, default="attention",
                        help="attention: on the token grid, from the object encoder's features; fine: on the latent "
                             "grid, from those features and the gate's own convolution of the image and depth")
    parser.add_argument("--small-mover-weight", type=float, default=1.0,
                        help="cap C of the weight of a pool example's moving positions, clamp(median area / its moving "
                             "area, 1, C): objects smaller than the pool's median are weighed up (1 = off)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    try:
        report = add_motion_gate(args.model, args.out, steps=args.steps, scenes=args.scenes,
                                 threshold=args.threshold, seed=args.seed, recipe=args.recipe,
                                 depth_noise=args.depth_noise, prior_depth=args.prior_depth,
                                 named_captions=args.named_captions, gate=args.gate,
                                 small_mover_weight=args.small_mover_weight, overwrite=args.overwrite)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        parser.error(str(err))
    print(f"motion gate: moving positions found {report.moving_recall:.3f}, still positions marked "
          f"{report.still_false:.3f}; "
          f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
