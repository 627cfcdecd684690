"""The training loop: one code path for one CPU, one GPU, many GPUs and many nodes (Hugging Face
accelerate), with mixed precision, gradient checkpointing, EMA, resumable checkpoints, a progress
bar and a JSON-lines loss log.

Launch with ``python -m more4d_core.train ...`` or ``accelerate launch -m more4d_core.train ...``.
Data parallelism splits every global batch by rank; the examples of a step depend only on the
step number, so resuming continues exactly where the run stopped (bit for bit on the CPU).
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..checkpoints import bundle
from ..checkpoints.apply import load_into
from ..data.procedural.scene_generator import RECIPES
from ..generator import build_generator, load_generator
from ..models.config import STraGConfig, get_config
from ..sampling.condition_detail import zero_detail_weights
from ..sampling.still import check_still_threshold
from .binding_pretrain import pretrain_object_binding
from .ema import EMA
from .encoder_pretrain import pretrain_object_encoder
from .examples import ProceduralExamples, TrajSceneExamples, collate
from .freeze import GATE_INPUTS, freeze_parts, keeps_gate_inputs, parse_freeze
from .grow import grown_weights
from .objective import MOTION_SIZE_CAP, FlowMatchingObjective, batch_fields
from .state import latest_checkpoint, load_optimizer_state, save_training_state


@dataclass
class TrainArgs:
    config: str = "more4d-small"
    out: str = "runs/more4d-small"
    data: str = "procedural"  # or a TrajScene folder
    steps: int = 1000
    batch_size: int = 8
    lr: float = 3e-4
    warmup: int = 200
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    text_dropout: float = 0.1
    train_shift: float = 3.0
    recipe: str = "v2"  # procedural data recipe (scene_generator.RECIPES)
    channel_weights: str = "uniform"  # "displacement": latent channels weighted by what their error moves (channel_weights.py)
    motion_weight: float = 0.0  # extra loss weight of latent cells whose points move (objective.motion_weights)
    motion_size_power: float = 0.0  # > 0: that extra weight priced up for small motions (objective.motion_size_factors)
    motion_size_cap: float = MOTION_SIZE_CAP  # the most a small motion's extra weight is multiplied by
    mover_weight: float = 0.0  # weight of the mover head's loss (mover_head.py: which tokens the caption makes move)
    mover_min_sigma: float = 0.0  # the mover loss counts only samples noised at least this much (0..1)
    kind_weight: float = 0.0  # weight of the kind head's loss (kind_head.py: what kind of object each token shows)
    condition_detail: str | None = None  # the config's condition_detail unless given ("subcell": sampling/condition_detail.py)
    object_encoder: str | None = None  # the config's object_encoder unless given ("conv": models/object_encoder.py)
    pretrain_encoder: int = 0  # steps teaching a new object encoder the kinds before step 0 (encoder_pretrain.py)
    pretrain_scenes: int = 800  # training scenes in the encoder-pretraining pool
    object_binding: str | None = None  # the config's object_binding unless given ("attention": models/object_binding.py)
    binding_weight: float = 0.0  # weight of the object binding's loss (binding_loss.py: which positions the caption names)
    pretrain_binding: int = 0  # steps teaching a new object binding the named positions before step 0 (binding_pretrain.py)
    rollout: float = 0.0  # share of samples trained on the model's own first steps of sampling (rollout.py)
    rollout_steps: int = 10  # the sampler's schedule those steps follow (with the config's shift)
    rollout_target: str = "truth"  # what a rollout state is landed on: "truth" or "own_rigid" (rollout.py)
    depth_noise: float = 0.0  # probability that an example's depth input is perturbed (depth_noise.py)
    init: str | None = None  # start from this model file's weights (warm start; optimizer fresh)
    grow_layers: int = 0  # a warm start adds this many transformer blocks, each starting as the identity (grow.py)
    freeze: str = ""  # parts kept fixed, comma-separated (freeze.py); object_encoder,text_encoder keeps an init gate
    still_threshold: float | None = None  # the exported model's default still hold (None: the config's); chosen on validation
    seed: int = 0
    mixed_precision: str = "no"  # "bf16" / "fp16" on GPUs
    gradient_checkpointing: bool = False
    checkpoint_every: int = 500
    log_every: int = 25
    resume: bool = True
    workers: int = 0
    scale_samples: int = 128  # samples used to fit the codec's latent scale
    export: str | None = None  # write the EMA model here at the end (single-file, float16)
    stop_after: int | None = None  # stop (with a checkpoint, exported with --export) after this step; the schedule still spans `steps`
    info: dict[str, Any] = field(default_factory=dict)


def git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _dataset(args: TrainArgs, cfg: STraGConfig):
    if args.data == "procedural":
        return ProceduralExamples("train", cfg.height, cfg.width, cfg.num_frames, seed_offset=args.seed * 10**7,
                                  recipe=args.recipe, depth_noise=args.depth_noise)
    return TrajSceneExamples(args.data, cfg.height, cfg.width)


def fit_latent_scale(codec, dataset, cfg: STraGConfig, samples: int) -> None:
    """Per-channel scale of the motion latents, so the diffusion model sees unit-scale targets."""
    if not hasattr(codec, "latent_scale") and not hasattr(codec, "motion_scale"):
        return
    batch = collate([dataset[10**8 + i] for i in range(samples)])  # indices never used in training
    with torch.no_grad():
        if hasattr(codec, "latent_scale"):
            codec.latent_scale.fill_(1.0)
            z = codec.encode_field(batch_fields(batch, cfg.normalization))
            std = z.transpose(0, 1).reshape(z.shape[1], -1).std(dim=1)
            codec.latent_scale.copy_(std.clamp(min=1e-3))
        else:
            codec.motion_scale.fill_(1.0)
            z = codec.encode_field(batch_fields(batch, cfg.normalization))
            codec.motion_scale.fill_(float(z.std().clamp(min=1e-3)))


def train(args: TrainArgs) -> Path:
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    accelerator = Accelerator(mixed_precision=args.mixed_precision)
    cfg = get_config(args.config)
    if args.grow_layers < 0:
        raise ValueError(f"--grow-layers adds blocks: it must be 0 or more, got {args.grow_layers}")
    if args.init:  # a warm start keeps the init model's inputs and encoder unless the options change them
        init_cfg = bundle.read_header(args.init).config
        cfg = cfg.replace(condition_detail=init_cfg.condition_detail, object_encoder=init_cfg.object_encoder,
                          object_encoder_width=init_cfg.object_encoder_width, object_binding=init_cfg.object_binding,
                          object_binding_width=init_cfg.object_binding_width)
        if cfg.codec == init_cfg.codec == "dct":  # the temporal decoder reads the codec alone, whose scale is carried
            cfg = cfg.replace(temporal_decoder=init_cfg.temporal_decoder,
                              temporal_decoder_width=init_cfg.temporal_decoder_width)
        # its depth too (a model grown before continues as it is), plus any blocks --grow-layers adds
        cfg = cfg.replace(num_layers=init_cfg.num_layers + args.grow_layers)
    elif args.grow_layers:
        raise ValueError("--grow-layers adds blocks to a trained model: it needs --init MODEL")
    frozen = parse_freeze(args.freeze)
    carry_gate = bool(args.init) and init_cfg.motion_gate != "none" and keeps_gate_inputs(frozen)
    if carry_gate:  # the gate's inputs stay the init model's: its gate still fits and is kept as it is
        cfg = cfg.replace(motion_gate=init_cfg.motion_gate, motion_gate_width=init_cfg.motion_gate_width,
                          motion_gate_threshold=init_cfg.motion_gate_threshold)
    if args.condition_detail is not None:
        cfg = cfg.replace(condition_detail=args.condition_detail)
    if args.object_encoder is not None:
        cfg = cfg.replace(object_encoder=args.object_encoder)
    if args.object_binding is not None:
        cfg = cfg.replace(object_binding=args.object_binding)
    if args.pretrain_encoder and (cfg.object_encoder == "none" or args.kind_weight <= 0):
        raise ValueError("--pretrain-encoder teaches the object encoder's kind readout: it needs --object-encoder conv "
                         "(or a config with one) and --kind-weight > 0")
    if (args.binding_weight > 0 or args.pretrain_binding) and cfg.object_binding == "none":
        raise ValueError("--binding-weight and --pretrain-binding train the object binding: they need "
                         "--object-binding attention (with an object encoder)")
    out = Path(args.out)
    gen = build_generator(cfg, seed=args.seed)
    dataset = _dataset(args, cfg)
    objective = FlowMatchingObjective(gen.transformer, gen.text_encoder, gen.codec,
                                      text_dropout=args.text_dropout, train_shift=args.train_shift,
                                      motion_weight=args.motion_weight, mover_weight=args.mover_weight,
                                      mover_min_sigma=args.mover_min_sigma, kind_weight=args.kind_weight,
                                      binding_weight=args.binding_weight, channel_weighting=args.channel_weights,
                                      motion_size_power=args.motion_size_power, motion_size_cap=args.motion_size_cap,
                                      rollout=args.rollout, rollout_steps=args.rollout_steps,
                                      rollout_target=args.rollout_target)
    if args.gradient_checkpointing:
        gen.transformer.enable_gradient_checkpointing()
    if frozen:
        parts = frozen + (("motion_gate",) if carry_gate else ())
        print(f"frozen: {', '.join(parts)} ({freeze_parts(objective, parts)} parameters)")
    params = [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.99), weight_decay=args.weight_decay)

    start_step = 0
    resume_from = latest_checkpoint(out) if args.resume else None
    if resume_from is not None:
        for name, module in _parts(gen, objective).items():
            load_into(module, bundle.iter_component(resume_from / "model.safetensors", name), source=str(resume_from))
        load_optimizer_state(resume_from, optimizer)
        resumed = json.loads((resume_from / "trainer.json").read_text())
        start_step = resumed["step"]
    elif args.init:  # warm start: every weight and the codec's latent scale from a model file
        if carry_gate:
            print(f"{args.init}: its motion gate is carried over unchanged (its inputs, "
                  f"{', '.join(sorted(GATE_INPUTS))}, are frozen)")
        elif init_cfg.motion_gate != "none":
            print(f"{args.init}: its motion gate is not carried over (it was fitted to the init model's encoder; "
                  "--freeze object_encoder,text_encoder keeps it); fit one to the trained model with "
                  "python -m more4d_core.train.gate_fit")
        grow = (init_cfg.num_layers, args.grow_layers) if args.grow_layers else None
        for name, module in (("transformer", gen.transformer), ("codec", gen.codec), ("text_encoder", gen.text_encoder)):
            _load_init(module, name, args.init, new=_new_parts(cfg, init_cfg),
                       drop=() if carry_gate else ("motion_gate.",), grow=grow if name == "transformer" else None)
        _start_detail_from_zero(gen.transformer, cfg, init_cfg)
    else:
        fit_latent_scale(gen.codec, dataset, cfg, args.scale_samples)
    if resume_from is None and args.pretrain_encoder:
        pool = _pretraining_scenes(args, cfg, "--pretrain-encoder needs the procedural generator's object kinds")
        report = pretrain_object_encoder(gen.transformer, objective.kind_head, pool, steps=args.pretrain_encoder,
                                         scenes=args.pretrain_scenes, seed=args.seed, log=print)
        args.info = {**args.info, "encoder_pretraining": vars(report)}
    if resume_from is None and args.pretrain_binding:
        pool = _pretraining_scenes(args, cfg, "--pretrain-binding needs the procedural generator's object ids")
        report = pretrain_object_binding(gen.transformer, gen.text_encoder, pool, steps=args.pretrain_binding,
                                         scenes=args.pretrain_scenes, seed=args.seed, log=print)
        print(f"binding pretraining: named tokens found {report.named_recall:.3f}, "
              f"other tokens marked {report.other_false:.3f}")
        args.info = {**args.info, "binding_pretraining": vars(report)}
    ema = EMA(objective, args.ema_decay)
    if resume_from is not None:  # bundle keys ("transformer.*", "text_encoder.*") are the objective's names
        from safetensors.torch import load_file

        ema.load_state_dict({k: v.float() for k, v in load_file(str(resume_from / "ema.safetensors")).items()
                             if k in ema.shadow})

    model, optimizer = accelerator.prepare(objective, optimizer)
    world, rank = accelerator.num_processes, accelerator.process_index
    per_rank = args.batch_size // world
    if per_rank * world != args.batch_size:
        raise ValueError(f"batch size {args.batch_size} must be divisible by the number of processes {world}")

    def lr_at(step: int) -> float:
        warm = min(1.0, (step + 1) / max(1, args.warmup))
        progress = step / max(1, args.steps)
        return args.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))

    info = {
        "config": cfg.name, "seed": args.seed, "data": args.data, "git_revision": git_revision(),
        "data_recipe": (f"{RECIPES[args.recipe]}, train split, mirror augmentation"
                        + (f", depth input perturbed in {args.depth_noise:.0%}" if args.depth_noise else "")
                        if args.data == "procedural" else args.data),
        "train_args": {k: v for k, v in asdict(args).items() if k != "info"}, **args.info,
    }
    log_path = out / "metrics.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(range(start_step, args.steps), initial=start_step, total=args.steps, disable=not accelerator.is_main_process,
               desc="training", unit="step")
    started = time.perf_counter()
    samples_seen = 0
    running = resumed.get("loss_avg") if resume_from is not None else None
    last = args.steps if args.stop_after is None else min(args.steps, args.stop_after)
    for step in bar:
        if step >= last:
            break
        indices = range(step * args.batch_size + rank * per_rank, step * args.batch_size + (rank + 1) * per_rank)
        batch = collate([dataset[i] for i in indices])
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        generator = torch.Generator().manual_seed(args.seed * 1_000_003 + step * 7919 + rank)
        model.train()
        with accelerator.autocast():
            loss = model(batch, generator)
        accelerator.backward(loss)
        if args.grad_clip:
            accelerator.clip_grad_norm_(params, args.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update(accelerator.unwrap_model(model), step)
        samples_seen += args.batch_size
        value = float(accelerator.gather(loss.detach().reshape(1)).mean())
        running = value if running is None else 0.98 * running + 0.02 * value
        elapsed = time.perf_counter() - started
        bar.set_postfix(loss=f"{running:.4f}", sps=f"{samples_seen / elapsed:.1f}")
        done = step + 1
        if accelerator.is_main_process and (done % args.log_every == 0 or done == args.steps):
            terms = {f"loss_{k}": v for k, v in getattr(accelerator.unwrap_model(model), "terms", {}).items()}
            with open(log_path, "a") as fh:
                fh.write(json.dumps({"step": done, "loss": value, "loss_avg": running, **terms, "lr": lr_at(step),
                                     "samples_per_s": samples_seen / elapsed, "elapsed_s": elapsed}) + "\n")
        if accelerator.is_main_process and (done % args.checkpoint_every == 0 or done == last):
            _checkpoint(out, done, cfg, gen, objective, ema, optimizer, {**info, "samples_per_s": samples_seen / elapsed,
                                                              "wall_time_s": elapsed, "loss_avg": running})
        accelerator.wait_for_everyone()
    bar.close()
    if accelerator.is_main_process and args.export and start_step <= last:
        # the run ended at `last` (all its steps, or --stop-after): export the EMA weights of that step
        _export(out, args, cfg, {**info, "steps": last, "scheduled_steps": args.steps, "batch_size": args.batch_size})
    return out


def _pretraining_scenes(args: TrainArgs, cfg: STraGConfig, needs: str) -> ProceduralExamples:
    """The training scenes a pretraining's pool is drawn from (procedural data only: ``needs`` says why)."""
    if args.data != "procedural":
        raise ValueError(f"{needs} (--data procedural)")
    # frame 0 is all a pretraining sees: a short clip of the same scenes is enough and 5x faster to make
    return ProceduralExamples("train", cfg.height, cfg.width, 9, seed_offset=args.seed * 10**7, recipe=args.recipe,
                              depth_noise=args.depth_noise)


def _new_parts(cfg: STraGConfig, init_cfg: STraGConfig) -> tuple[str, ...]:
    """Transformer sub-modules the model has and the init file lacks (an object encoder, an object binding)."""
    new = []
    if cfg.object_encoder != "none" and init_cfg.object_encoder == "none":
        new.append("object_encoder.")
    if cfg.object_binding != "none" and init_cfg.object_binding == "none":
        new.append("object_binding.")
    return tuple(new)


def _load_init(module, name: str, init: str, *, new: tuple[str, ...] = (), drop: tuple[str, ...] = (),
               grow: tuple[int, int] | None = None) -> None:
    """One component of a warm start. A model file without an object encoder (or object binding)
    initializes a model with one: the new part keeps its fresh weights (its map into the tokens is
    zero, so the model computes the init model's function); every other weight must be in the file.
    Weights under ``drop`` (a motion gate, fitted after training) are not read. ``grow`` = (the file's
    blocks, blocks to add) renumbers the blocks and adds identity blocks (grow.py)."""
    weights = ((k, v) for k, v in bundle.iter_component(init, name) if not (drop and k.startswith(drop)))
    if grow is not None:
        weights = grown_weights(weights, *grow)
    report = load_into(module, weights, source=str(init), strict=not new)
    if new:
        stray = report.unexpected + [k for k in report.missing if not k.startswith(new)]
        if stray:
            raise ValueError(f"{init} does not match the model's {name}: {', '.join(stray[:8])}")


def _start_detail_from_zero(transformer, cfg: STraGConfig, init_cfg: STraGConfig) -> None:
    """A warm start that adds sub-cell detail to a model trained without it begins with zero input
    weights on the detail channels (never trained: their input was always zero), so step 0 computes
    the init model's function."""
    if cfg.condition_detail != "none" and init_cfg.condition_detail == "none":
        zero_detail_weights(transformer.patch_embedding, cfg.latent_channels, cfg.dct_coefficients,
                            cfg.spatial_compression)


def _parts(gen, objective: FlowMatchingObjective) -> dict:
    """What a checkpoint holds: the generator's modules and the training-only heads."""
    parts = {"transformer": gen.transformer, "codec": gen.codec, "text_encoder": gen.text_encoder}
    for name in ("mover_head", "kind_head"):
        if getattr(objective, name) is not None:
            parts[name] = getattr(objective, name)
    return parts


def _checkpoint(out: Path, step: int, cfg, gen, objective: FlowMatchingObjective, ema: EMA, optimizer,
                info: dict) -> Path:
    """Current and EMA weights (the EMA ones through a copy of the objective), optimizer, step."""
    import copy

    ema_objective = copy.deepcopy(objective)
    ema.copy_to(ema_objective)
    parts = _parts(gen, objective)
    ema_parts = _parts(ema_objective, ema_objective)
    return save_training_state(out, step, cfg, parts, ema_parts, optimizer, {**info, "step": step})


def _export(out: Path, args: TrainArgs, cfg: STraGConfig, info: dict) -> Path:
    """The final EMA weights as a float16 single-file model (what ships as the default model)."""
    latest = latest_checkpoint(out)
    if args.still_threshold is not None:
        cfg = cfg.replace(still_threshold=check_still_threshold(args.still_threshold))
    gen = load_generator(latest / "ema.safetensors")
    header = bundle.read_header(latest / "ema.safetensors")
    return bundle.save_generator(Path(args.export), cfg, gen, {**header.info, **info, "weights": "EMA", "dtype": "float16"},
                                 overwrite=True)
