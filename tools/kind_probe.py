"""Can the model's tokens tell a ball from a box, a card and a disc? (issue 11: noun binding)

    python tools/kind_probe.py head MODEL_CHECKPOINT   # a training checkpoint's kind head (--kind-weight runs)
    python tools/kind_probe.py encoder [--steps 2000]   # a new object encoder, pretrained on the kinds alone
    python tools/kind_probe.py binding MODEL [--steps 1500 --scenes 2000]   # the object binding on the named objects

``head`` reads a checkpoint folder's ``model.safetensors`` (it holds the training-only kind head: at
a middle block, or at the object encoder of models that have one) and runs the transformer at pure
noise (sigma = 1: the answer cannot come from the noisy motion) on 32 validation scenes (recipe v2,
seeds 0-31); ``encoder`` pretrains a fresh object encoder of the small model and its kind readout as
``--pretrain-encoder`` does (800 training scenes unless ``--scenes``, recipe v3, batches of 32) and scores it on the same
validation scenes. Both report
the kind accuracy on tokens (8x8 pixels of the 96x128 grid) that are at least 60% one object, and
the confusion matrix (rows: true ball, box, card, disc; columns: predicted).

``binding`` scores a model file's (or checkpoint's) object binding on the same validation scenes; a
model without one gets a new one pretrained as ``--pretrain-binding`` does (``--steps``, ``--scenes``).
It reports the share of tokens at least half on a named (moving-by-the-caption) object that the
binding marks (logit > 0), the share of tokens with no named pixel that it marks, and the share of
the binding's mass (sigmoid of the logits) that falls on named pixels in scenes that name something.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from more4d_core.train.kind_head import kind_shares  # noqa: E402

SCENES = 32


def _validation():
    from more4d_core.train.examples import ProceduralExamples, collate

    ds = ProceduralExamples("validation", 96, 128, 49, mirror_prob=0.0, recipe="v2")
    return collate([ds[i] for i in range(SCENES)])


def score(logits: torch.Tensor, kinds: torch.Tensor) -> tuple[float, int, torch.Tensor]:
    """Accuracy over object tokens (>= 60% one object kind), their count, the 4x4 confusion matrix."""
    major = kind_shares(kinds, logits.shape[-2:]).max(1)
    chosen = (major.values >= 0.6) & (major.indices > 0)
    pred = logits[:, 1:].argmax(1) + 1
    truth, guess = major.indices[chosen], pred[chosen]
    confusion = torch.zeros(4, 4, dtype=torch.int64)
    for t, g in zip(truth.tolist(), guess.tolist()):
        confusion[t - 1, g - 1] += 1
    return float((truth == guess).float().mean()), int(chosen.sum()), confusion


def probe_head(checkpoint: Path) -> tuple[float, int, torch.Tensor]:
    from more4d_core.checkpoints import bundle
    from more4d_core.checkpoints.apply import load_into
    from more4d_core.generator import load_generator
    from more4d_core.sampling.conditioning import encode_conditions
    from more4d_core.train.kind_head import kind_head_for

    model = checkpoint / "model.safetensors" if checkpoint.is_dir() else checkpoint
    if "kind_head" not in bundle.read_header(model).components:
        raise SystemExit(f"{model} has no kind head (train with --kind-weight)")
    gen = load_generator(model)
    cfg = gen.transformer.cfg
    head = kind_head_for(gen.transformer)
    load_into(head, bundle.iter_component(model, "kind_head"), source=str(model))
    batch = _validation()
    noise = torch.Generator().manual_seed(0)
    logits = []
    with torch.no_grad():
        for i in range(0, SCENES, 8):
            part = slice(i, i + 8)
            cond = encode_conditions(cfg, gen.codec, gen.transformer, batch["image"][part], batch["depth"][part], 49)
            x = torch.randn((8, cfg.latent_channels, 1, cfg.height // cfg.spatial_compression,
                             cfg.width // cfg.spatial_compression), generator=noise)
            gen.transformer(cond.model_input(x), torch.full((8,), 1000.0), gen.text_encoder(batch["caption"][part]),
                            reference_latent=cond.reference, motion_features=cond.motion,
                            object_features=cond.objects)
            logits.append(head.grid_logits())
    return score(torch.cat(logits), batch["kind_map"])


def probe_encoder(steps: int, depth_noise: float, scenes: int) -> tuple[float, int, torch.Tensor]:
    from more4d_core.generator import build_generator
    from more4d_core.models.config import get_config
    from more4d_core.train.encoder_pretrain import pretrain_object_encoder
    from more4d_core.train.examples import ProceduralExamples
    from more4d_core.train.kind_head import EncoderKindHead
    from more4d_core.train.scene_pool import planes_of

    cfg = get_config("more4d-small").replace(object_encoder="conv")
    transformer = build_generator(cfg, seed=0).transformer
    head = EncoderKindHead(transformer)
    train = ProceduralExamples("train", cfg.height, cfg.width, 9, recipe="v3", depth_noise=depth_noise)
    pretrain_object_encoder(transformer, head, train, steps=steps, scenes=scenes, log=print)
    val = _validation()
    with torch.no_grad():
        return score(head.proj(transformer.object_encoder(planes_of(val, cfg.depth_condition))), val["kind_map"])


def probe_binding(model: Path, steps: int, scenes: int) -> tuple[float, float, float]:
    from more4d_core.checkpoints import bundle
    from more4d_core.checkpoints.apply import load_into
    from more4d_core.generator import load_generator
    from more4d_core.models.dit import STraGTransformer
    from more4d_core.train.binding_pretrain import binding_rates, pretrain_object_binding
    from more4d_core.train.examples import ProceduralExamples
    from more4d_core.train.mover_head import mover_shares
    from more4d_core.train.scene_pool import planes_of

    model = model / "ema.safetensors" if model.is_dir() else model
    gen = load_generator(model)
    transformer = gen.transformer
    if transformer.cfg.object_binding == "none":
        transformer = STraGTransformer.from_stgconfig(transformer.cfg.replace(object_binding="attention"))
        load_into(transformer, bundle.iter_component(model, "transformer"), source=str(model), strict=False)
        train = ProceduralExamples("train", 96, 128, 9, recipe="v3", depth_noise=0.5)
        report = pretrain_object_binding(transformer, gen.text_encoder, train, steps=steps, scenes=scenes, log=print)
        print(f"pretraining pool: named tokens found {report.named_recall:.3f}, other tokens marked {report.other_false:.3f}")
    val = _validation()
    with torch.no_grad():
        feats = transformer.object_encoder(planes_of(val, transformer.cfg.depth_condition))
        _, logits = transformer.object_binding(feats, gen.text_encoder(val["caption"]))
    recall, false = binding_rates(logits, val["mover_mask"])
    share = mover_shares(val["mover_mask"], logits.shape[-2:])
    mass = torch.sigmoid(logits)
    naming = share.sum(dim=(1, 2)) > 0
    on_named = float((mass * share)[naming].sum() / mass[naming].sum().clamp_min(1e-12))
    return recall, false, on_named


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    head = sub.add_parser("head", help="a training checkpoint's kind head at sigma = 1")
    head.add_argument("checkpoint", type=Path)
    enc = sub.add_parser("encoder", help="a new object encoder pretrained on the kinds (--pretrain-encoder)")
    enc.add_argument("--steps", type=int, default=2000)
    enc.add_argument("--depth-noise", type=float, default=0.0, help="share of perturbed depth inputs in training")
    enc.add_argument("--scenes", type=int, default=800, help="training scenes in the pool")
    bind = sub.add_parser("binding", help="a model's object binding (a new one pretrained if it has none)")
    bind.add_argument("model", type=Path)
    bind.add_argument("--steps", type=int, default=1500)
    bind.add_argument("--scenes", type=int, default=2000, help="training scenes in the pretraining pool")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.what == "binding":
        recall, false, on_named = probe_binding(args.model, args.steps, args.scenes)
        print(f"binding on {SCENES} validation scenes: named tokens marked {recall:.3f}, tokens without named pixels "
              f"marked {false:.3f}, binding mass on named pixels {on_named:.3f}")
        return 0
    accuracy, tokens, confusion = (probe_head(args.checkpoint) if args.what == "head"
                                   else probe_encoder(args.steps, args.depth_noise, args.scenes))
    print(f"kind accuracy on {tokens} object tokens of {SCENES} validation scenes: {accuracy:.3f}")
    print("confusion (rows true, columns predicted: ball, box, card, disc):")
    print(confusion)
    return 0


if __name__ == "__main__":
    sys.exit(main())
