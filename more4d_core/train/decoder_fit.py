"""Fit a learned temporal decoder (``models/temporal_decoder.py``) to a model's temporal-basis codec.

    python -m more4d_core.train.decoder_fit MODEL --out OUT [--scenes 2500] [--pixels 600] [--steps 6000]
                                            [--width 256] [--loss huber|mse] [--seed 9] [--recipe v3]
                                            [--pool codec|generated] [--lr 1e-3] [--pool-cache FILE]

The codec keeps a few cosine coefficients of each trajectory; what they cannot draw (the kinks of a bounce)
is read back from them by a small network, fitted here on the exact tracks of training scenes of the
procedural generator: each pixel's coefficients, as the codec encodes and upsamples them, against what its
true trajectory adds to the cosines' curve. Nothing of the denoiser is involved (a few minutes on a CPU);
OUT is MODEL with the decoder (``temporal_decoder="learned"``; a decoder it had is replaced) and the fit's
report in its metadata. ``--pool generated`` reads the pairs from the model's own output instead
(:mod:`.generated_pool`: the model generates each scene, half of them from a perturbed depth; about 4 s a
scene on 2 CPU cores) and starts from the decoder MODEL has, if any (then its width is kept): a decoder of
this denoiser's output. ``--pool-cache FILE`` keeps the pool (safetensors) and reuses it when it matches the
pool's arguments and the model file's bytes. The pseudo-Huber loss (the default)
prices errors below about one output pixel quadratically and larger ones linearly: a within-threshold score
loses no more for a far miss than for a near one.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..data.procedural.scene_generator import RECIPES, generate_sample
from ..geometry.normalization import factors_for, safe_depth
from ..help_text import command_parser
from ..models.temporal_decoder import TemporalResidual
from ..models.trajectory_codec import TemporalBasisCodec, tracks_to_field
from .objective import MOVING_THRESHOLD, peak_motion

LOSSES = ("huber", "mse")
POOLS = ("codec", "generated")
HUBER_DELTA = 0.002  # normalized units: about one pixel of the 512-pixel-wide output the evaluation counts in
SEED_STRIDE = 10**7  # the pool's scenes are train-split seeds seed * SEED_STRIDE + i (the gate fit's convention)


@dataclass
class DecoderFitReport:
    scenes: int
    pixels: int  # pool size (pixels of all scenes)
    steps: int
    loss: str
    pool: str
    basis_rmse: float  # on the pool before the fit: the cosines' error alone, or with the decoder it starts from
    fitted_rmse: float  # on the pool, after the fit
    first_loss: float
    last_loss: float  # mean of the last 100 steps


def pixel_pool(codec: TemporalBasisCodec, tracks: torch.Tensor, factors, pixels: int,
               generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One scene's training pairs: ``tracks [T, H, W, 3]`` -> (coefficients in latent units ``[P, 3K]``, what the
    true trajectory adds to the cosines' curve ``[P, 3, T]``) for up to ``pixels`` moving pixels (their motion
    exceeds the motion gate's threshold) and ``pixels // 8`` still ones, drawn with ``generator``. The
    coefficients are the codec's own: encoded, pooled and upsampled as a generated latent is decoded."""
    grid = tracks.unsqueeze(0).float()
    field = tracks_to_field(grid, factors)  # [1, 3, T, H, W]
    coeffs = codec.output_coefficients(codec._coefficients(codec.encode_field(field)),
                                       torch.log(safe_depth(grid[:, 0, ..., 2])))
    basis = codec.basis_field(coeffs, grid.shape[1])
    units = (coeffs / codec.latent_scale.view(1, -1, 1, 1))[0].flatten(1).T  # [HW, 3K]
    missing = (field - basis)[0].flatten(2).permute(2, 0, 1)  # [HW, 3, T]
    pick = select_pixels(peak_motion(field)[0].flatten(), None, pixels, generator)
    return units[pick], missing[pick]


def select_pixels(peak: torch.Tensor, units: torch.Tensor | None, pixels: int,
                  generator: torch.Generator) -> torch.Tensor:
    """Indices into a scene's flattened pixels, drawn with ``generator`` in this order: up to ``pixels`` whose true
    motion ``peak`` exceeds the moving threshold; with the model's coefficients ``units`` (the generated pool), up
    to ``pixels // 4`` still ones the model moved (non-zero coefficients: what the decoder may shrink); and
    ``pixels // 8`` still ones at random."""
    still = peak <= MOVING_THRESHOLD
    groups = [(torch.nonzero(~still)[:, 0], pixels)]
    if units is not None:
        groups.append((torch.nonzero(still & (units.norm(dim=-1) > 0))[:, 0], pixels // 4))
    groups.append((torch.nonzero(still)[:, 0], pixels // 8))
    return torch.cat([idx[torch.randperm(len(idx), generator=generator)[:count]] for idx, count in groups])


def fit_temporal_residual(residual: TemporalResidual, units: torch.Tensor, missing: torch.Tensor, *, steps: int,
                          batch_size: int = 4096, lr: float = 1e-3, loss: str = "huber", seed: int = 0,
                          log=None) -> list[float]:
    """Fit ``residual`` to map ``units [P, 3K]`` to ``missing [P, 3, F]`` (F = its frames); the losses per step."""
    if loss not in LOSSES:
        raise ValueError(f"the loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if steps < 1 or len(units) == 0:
        raise ValueError(f"fitting a temporal decoder needs steps >= 1 and a non-empty pool, got {steps} and {len(units)}")
    with torch.random.fork_rng(devices=[]):  # seeded inside, the caller's global random state left as it was
        torch.manual_seed(seed)
        return _fit(residual, units, missing, steps, batch_size, lr, loss, torch.Generator().manual_seed(seed), log)


def _fit(residual, units, missing, steps, batch_size, lr, loss, gen, log) -> list[float]:
    opt = torch.optim.AdamW(residual.parameters(), lr=lr, weight_decay=1e-4)
    # one cycle with a 5% warm-up (half the steps for short fits, where 5% is not a step; two steps: constant)
    sched = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05 if steps >= 40 else 0.5)
             if steps > 2 else torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0))
    losses = []
    for step in range(steps):
        idx = torch.randint(len(units), (min(batch_size, len(units)),), generator=gen)
        err = residual.per_pixel(units[idx].float()) - missing[idx].float()
        if loss == "huber":
            value = (HUBER_DELTA**2 * (torch.sqrt(1 + (err / HUBER_DELTA) ** 2) - 1)).mean()
        else:
            value = err.pow(2).mean()
        opt.zero_grad()
        value.backward()
        opt.step()
        sched.step()
        losses.append(float(value.detach()))
        if log is not None and (step % 500 == 0 or step == steps - 1):
            log(f"temporal decoder: step {step + 1}/{steps}, loss {losses[-1]:.3e}")
    return losses


def pool_rmse(residual: TemporalResidual | None, units: torch.Tensor, missing: torch.Tensor) -> float:
    """Root mean square of what is still missing on the pool (None: the cosines alone)."""
    total, count = 0.0, 0
    with torch.no_grad():
        for u, m in zip(units.split(65536), missing.split(65536)):
            err = m.float() - (residual.per_pixel(u.float()) if residual is not None else 0.0)
            total, count = total + float(err.pow(2).sum()), count + err.numel()
    return (total / max(count, 1)) ** 0.5


def codec_pool(codec: TemporalBasisCodec, cfg, *, scenes: int, pixels: int, seed: int, recipe: str,
               log=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The codec pool: :func:`pixel_pool` of ``scenes`` train-split scenes (seeds ``seed * SEED_STRIDE + i``)."""
    h, w, frames = cfg.height, cfg.width, cfg.num_frames
    draw = torch.Generator().manual_seed(seed)
    parts = []
    for i in range(scenes):
        s = generate_sample(seed * SEED_STRIDE + i, "train", h, w, frames, recipe=recipe, with_visibility=False)
        factors = factors_for(cfg.normalization, s.intrinsics, h, w)
        with torch.no_grad():
            u, m = pixel_pool(codec, s.tracks.reshape(frames, h, w, 3), factors, pixels, draw)
        parts.append((u.half(), m.half()))  # half precision keeps a 2500-scene pool near 0.6 GB
        if log is not None and (i + 1) % 500 == 0:
            log(f"temporal decoder: pool {i + 1}/{scenes} scenes")
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def cached_pool(cache: str | Path | None, key: dict | None, build) -> tuple[torch.Tensor, torch.Tensor]:
    """``build()`` once: with ``cache``, a pool written there under the same ``key`` is read back instead, and a
    new one is written (atomically). A cache of other arguments is rebuilt, never mixed in; a file there that is no
    pool cache (a model given by mistake) is refused, not overwritten."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    from ..export.atomic import atomic_path

    wanted = json.dumps(key, sort_keys=True)
    if cache is not None and Path(cache).exists():
        try:
            with safe_open(str(cache), "pt") as f:
                found = (f.metadata() or {}).get("pool")
                if found == wanted:
                    return f.get_tensor("units"), f.get_tensor("missing")
        except Exception as exc:  # not a safetensors file: never overwritten
            raise ValueError(f"{cache} is not a pool cache of this command ({exc}); give a new path to --pool-cache") from None
        if found is None:
            raise ValueError(f"{cache} is a safetensors file but not a pool cache of this command; it is left as it is: "
                             f"give a new path to --pool-cache")
    units, missing = build()
    if cache is not None:
        with atomic_path(Path(cache), overwrite=True) as tmp:
            save_file({"units": units.contiguous(), "missing": missing.contiguous()}, str(tmp), metadata={"pool": wanted})
    return units, missing


def add_temporal_decoder(model: str | Path, out: str | Path, *, scenes: int = 2500, pixels: int = 600,
                         steps: int = 6000, width: int = 256, loss: str = "huber", seed: int = 9,
                         recipe: str = "v3", pool: str = "codec", lr: float = 1e-3,
                         pool_cache: str | Path | None = None, overwrite: bool = False,
                         log=print) -> DecoderFitReport:
    """Write ``out``: the model file ``model`` with a temporal decoder fitted to its codec (``pool="codec"``, a new
    decoder) or to its own output (``pool="generated"``, starting from the decoder ``model`` has, if any)."""
    from ..checkpoints import bundle
    from ..generator import load_generator
    from .generated_pool import generated_pool

    header = bundle.read_header(model)
    if header.config.codec != "dct":
        raise ValueError(f"{model}: a temporal decoder refines the temporal-basis (dct) codec; this model's codec is "
                         f"{header.config.codec!r}")
    if recipe not in RECIPES:
        raise ValueError(f"the recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
    if pool not in POOLS:
        raise ValueError(f"the pool must be one of {', '.join(POOLS)}, got {pool!r}")
    if scenes < 1 or pixels < 1:
        raise ValueError(f"the pool needs scenes and pixels >= 1, got {scenes} and {pixels}")
    if Path(out).exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    if pool == "generated" and header.config.temporal_decoder == "learned":
        width = header.config.temporal_decoder_width  # the warm start fixes the width
    cfg = header.config.replace(temporal_decoder="learned", temporal_decoder_width=int(width))
    gen = load_generator(model)
    codec = gen.codec
    start = codec.residual if pool == "generated" else None
    if pool == "codec":
        codec.residual = None  # a decoder the file had is replaced
    # both pools depend on the model (the codec's scales; the generated one on everything): its bytes are in the key
    key = None if pool_cache is None else {"pool": pool, "scenes": scenes, "pixels": pixels, "seed": seed,
                                           "recipe": recipe, "model": bundle.file_sha256(model)}
    if pool == "generated":
        units, missing = cached_pool(pool_cache, key, lambda: generated_pool(gen, scenes=scenes, pixels=pixels,
                                                                          seed=seed, recipe=recipe, log=log))
    else:
        units, missing = cached_pool(pool_cache, key, lambda: codec_pool(codec, cfg, scenes=scenes, pixels=pixels,
                                                                      seed=seed, recipe=recipe, log=log))
    with torch.random.fork_rng(devices=[]):  # the initial weights come from --seed, not from what loading left behind
        torch.manual_seed(seed)
        residual = TemporalResidual(codec.coefficients, cfg.num_frames, width)
    if start is not None:
        residual.load_state_dict({k: v.float() for k, v in start.state_dict().items()})
    before = pool_rmse(residual if start is not None else None, units, missing)
    losses = fit_temporal_residual(residual, units, missing, steps=steps, loss=loss, lr=lr, seed=seed, log=log)
    report = DecoderFitReport(scenes, len(units), steps, loss, pool, before, pool_rmse(residual, units, missing),
                              losses[0], sum(losses[-100:]) / len(losses[-100:]))
    codec.residual = residual
    info = {**header.info, "temporal_decoder_fit": {**asdict(report), "width": int(width), "pixels_per_scene": pixels,
                                                     "seed": seed, "recipe": recipe, "lr": lr, "from": str(model)}}
    bundle.save_generator(Path(out), cfg, gen, info, overwrite=overwrite)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("python -m more4d_core.train.decoder_fit", __doc__)
    parser.add_argument("model", help="trained model file (single-file .safetensors with the temporal-basis codec)")
    parser.add_argument("--out", required=True, help="model file to write (the input with the decoder)")
    parser.add_argument("--scenes", type=int, default=2500, help="training scenes in the pool")
    parser.add_argument("--pixels", type=int, default=600, help="moving pixels per scene (and an eighth as many still; the generated pool also a quarter as many still "
                             "ones the model moved)")
    parser.add_argument("--steps", type=int, default=6000, help="fitting steps (batches of 4096 pixels)")
    parser.add_argument("--width", type=int, default=256, help="hidden width of the decoder's network")
    parser.add_argument("--loss", choices=LOSSES, default="huber", help="pseudo-Huber (about one output pixel) or MSE")
    parser.add_argument("--seed", type=int, default=9, help="seed of the pool's scenes and of the fit")
    parser.add_argument("--recipe", default="v3", help="data recipe of the pool (default v3, as training)")
    parser.add_argument("--pool", choices=POOLS, default="codec",
                        help="pairs from the codec's encoding of true tracks (a new decoder) or from the model's own "
                             "output (starting from the decoder MODEL has)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of the fit")
    parser.add_argument("--pool-cache", default=None, help="safetensors file keeping the pool for another fit")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    report = add_temporal_decoder(args.model, args.out, scenes=args.scenes, pixels=args.pixels, steps=args.steps,
                                  width=args.width, loss=args.loss, seed=args.seed, recipe=args.recipe,
                                  pool=args.pool, lr=args.lr, pool_cache=args.pool_cache, overwrite=args.overwrite)
    print(f"temporal decoder: pool error {report.basis_rmse:.5f} -> {report.fitted_rmse:.5f} (normalized units, "
          f"{report.pixels} pixels of {report.scenes} scenes); wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
