"""The object binding (object_binding="attention"): its attention over the caption's words and the
"nothing" slot, how it reaches the tokens, its loss, its pretraining and warm starts."""

import math

import pytest
import torch
from safetensors.torch import load_file

from more4d_core.errors import InputError
from more4d_core.generator import build_generator
from more4d_core.models.config import MORE4D_TINY, STraGConfig
from more4d_core.models.object_binding import ObjectBinding
from more4d_core.sampling.conditioning import encode_conditions
from more4d_core.train.binding_loss import BindingLoss
from more4d_core.train.binding_pretrain import binding_rates, pretrain_object_binding
from more4d_core.train.examples import ProceduralExamples
from more4d_core.train.loop import TrainArgs, train
from more4d_core.train.mover_head import mover_cross_entropy

# the tiny model: a 4x4 token grid (one token per 8x8 pixels of 32x32)
TINY_BIND = MORE4D_TINY.replace(object_encoder="conv", object_encoder_width=16, object_binding="attention",
                                object_binding_width=2)


def _hand_set(binding: ObjectBinding, nothing_value: float = 0.5) -> None:
    """query = feature channel 0, key = value = text dimension 0 (first width unit), "nothing" key 0,
    "nothing" value ``nothing_value``; the map into the tokens copies unit 0 into model channel 0."""
    with torch.no_grad():
        for p in binding.parameters():
            p.zero_()
        binding.query.weight[0, 0] = 1.0
        binding.key.weight[0, 0] = 1.0
        binding.value.weight[0, 0] = 1.0
        binding.nothing_value[0] = nothing_value
        binding.proj.weight[0, 0] = 1.0


def test_the_config_checks_the_binding_and_old_files_have_none():
    with pytest.raises(InputError, match="object_binding must be one of"):
        TINY_BIND.replace(object_binding="film")
    with pytest.raises(InputError, match="needs object_encoder"):
        MORE4D_TINY.replace(object_binding="attention")
    assert STraGConfig.from_dict(TINY_BIND.to_dict()) == TINY_BIND
    old = {**TINY_BIND.to_dict(), "config_version": 5}
    old.pop("object_binding")
    assert STraGConfig.from_dict(old).object_binding == "none"


def test_each_position_attends_over_the_words_and_nothing_as_the_softmax_formula_says():
    binding = ObjectBinding(TINY_BIND)
    _hand_set(binding, nothing_value=0.5)
    feats = torch.zeros(1, 16, 1, 3)
    feats[0, 0, 0] = torch.tensor([0.0, 2.0, -1.0])  # three positions
    text = torch.zeros(1, 4, TINY_BIND.text_dim)
    text[0, 0, 0], text[0, 1, 0] = 1.0, 3.0
    text[0, 0, 1] = 7.0  # a second dimension makes word 0 a real (non-padding) word whatever its dimension 0
    text[0, 1, 1] = 7.0  # words 2 and 3 are padding (all zero)
    additions, logits = binding(feats, text)
    for pos, f in enumerate([0.0, 2.0, -1.0]):
        s = [0.0, f * 1.0 / math.sqrt(2), f * 3.0 / math.sqrt(2)]  # nothing, word 0, word 1 (width 2)
        z = sum(math.exp(v) for v in s)
        a = [math.exp(v) / z for v in s]
        assert float(logits[0, 0, pos].detach()) == pytest.approx(math.log((a[1] + a[2]) / a[0]), abs=1e-5)
        assert float(additions[0, pos, 0].detach()) == pytest.approx(a[0] * 0.5 + a[1] * 1.0 + a[2] * 3.0, abs=1e-5)
    assert torch.count_nonzero(additions[..., 1:]) == 0


def test_an_empty_prompt_binds_every_position_to_nothing():
    binding = ObjectBinding(TINY_BIND)
    _hand_set(binding, nothing_value=0.5)
    feats = torch.randn(2, 16, 2, 2)
    additions, logits = binding(feats, torch.zeros(2, 5, TINY_BIND.text_dim))
    assert torch.isfinite(logits).all() and (logits < -100).all()
    assert torch.allclose(additions[..., 0], torch.full((2, 4), 0.5))


def test_the_binding_starts_adding_nothing_and_is_read_by_the_transformer():
    gen = build_generator(TINY_BIND, seed=0)
    g = torch.Generator().manual_seed(0)
    image, depth = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 32, 32, generator=g) + 1.0
    cond = encode_conditions(TINY_BIND, gen.codec, gen.transformer, image, depth, 9, with_motion=False)
    text = gen.text_encoder(["the ball slides left"])
    x = cond.model_input(torch.randn(1, 12, 3, 8, 8, generator=g))
    found, _ = gen.transformer.object_binding(cond.objects, text)
    assert torch.count_nonzero(found) == 0

    def run():
        with torch.no_grad():
            return gen.transformer(x, torch.tensor([500.0]), text, reference_latent=cond.reference,
                                   object_features=cond.objects)

    zero = run()
    with torch.no_grad():
        gen.transformer.object_binding.proj.weight.normal_(0, 0.5)
    assert not torch.allclose(run(), zero)


def test_the_loss_is_the_binary_cross_entropy_of_the_named_share_per_token():
    logits = torch.tensor([[[2.0, -1.0], [0.5, 3.0]]])  # [1, 2, 2] tokens of 2x2 pixels each
    mask = torch.zeros(1, 4, 4)
    mask[0, :2, :2] = 1  # token (0, 0) fully named
    mask[0, 2, 2] = 1  # token (1, 1) a quarter named
    shares = [1.0, 0.0, 0.0, 0.25]

    def bce(z, y):
        p = 1 / (1 + math.exp(-z))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    expected = sum(bce(z, y) for z, y in zip([2.0, -1.0, 0.5, 3.0], shares)) / 4
    assert float(mover_cross_entropy(logits, mask)[0]) == pytest.approx(expected, rel=1e-6)
    recall, false = binding_rates(logits, mask)
    assert recall == 1.0 and false == pytest.approx(0.5)  # tokens (0, 1) and (1, 0) have no named pixel; (1, 0) is marked


def test_the_loss_reads_the_last_forward_and_skips_samples_without_their_caption():
    gen = build_generator(TINY_BIND, seed=0)
    loss = BindingLoss(gen.transformer)
    with pytest.raises(RuntimeError, match="none has run"):
        loss.loss(torch.zeros(1, 32, 32))
    feats = torch.randn(2, 16, 4, 4)
    _, logits = gen.transformer.object_binding(feats, torch.randn(2, 5, TINY_BIND.text_dim))
    masks = torch.zeros(2, 32, 32)
    masks[1, :16] = 1
    per = mover_cross_entropy(logits, masks)
    assert float(loss.loss(masks, torch.tensor([0.0, 1.0])).detach()) == pytest.approx(float(per[1].detach()), rel=1e-6)
    with pytest.raises(ValueError, match="--object-binding attention"):
        BindingLoss(build_generator(MORE4D_TINY, seed=0).transformer)


def test_pretraining_learns_the_named_positions_and_leaves_the_generator_function_alone():
    gen = build_generator(TINY_BIND, seed=0)
    others = {k: v.clone() for k, v in gen.transformer.state_dict().items()
              if not k.startswith(("object_binding.query.", "object_binding.key.", "object_binding.nothing_key"))}
    data = ProceduralExamples("train", 32, 32, 9, recipe="v3")
    report = pretrain_object_binding(gen.transformer, gen.text_encoder, data, steps=80, scenes=24, batch_size=8, lr=1e-2)
    assert report.last_loss < 0.7 * report.first_loss
    after = gen.transformer.state_dict()
    assert all(torch.equal(after[k], v) for k, v in others.items())  # the map into the tokens is still zero


def test_binding_options_need_a_model_with_a_binding(tmp_path):
    with pytest.raises(ValueError, match="--object-binding attention"):
        train(TrainArgs(config="more4d-tiny", out=str(tmp_path / "a"), steps=1, batch_size=1, binding_weight=0.5))
    with pytest.raises(ValueError, match="--object-binding attention"):
        train(TrainArgs(config="more4d-tiny", out=str(tmp_path / "b"), steps=1, batch_size=1, object_encoder="conv",
                        pretrain_binding=5))
    with pytest.raises(InputError, match="needs object_encoder"):
        train(TrainArgs(config="more4d-tiny", out=str(tmp_path / "c"), steps=1, batch_size=1, object_binding="attention"))


def test_a_warm_start_adds_a_binding_keeps_the_function_and_the_run_trains_and_exports_it(tmp_path):
    from tiny_models import save_encoder_model

    from more4d_core.generator import load_generator

    init = tmp_path / "init.safetensors"
    src = save_encoder_model(init, seed=3)
    train(TrainArgs(config="more4d-tiny", out=str(tmp_path / "run"), steps=1, batch_size=2, warmup=1, lr=0.0,
                    recipe="v3", checkpoint_every=1, init=str(init), object_binding="attention", binding_weight=0.5,
                    pretrain_binding=3, pretrain_scenes=4, export=str(tmp_path / "m.safetensors")))
    warm = load_generator(tmp_path / "run" / "step-0000001" / "model.safetensors")
    assert warm.transformer.cfg.object_binding == "attention"
    logged = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert '"loss_binding"' in logged
    g = torch.Generator().manual_seed(1)
    image, depth = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 32, 32, generator=g) + 1.0
    noisy = torch.randn(1, 12, 3, 8, 8, generator=g)
    outs = []
    for gen in (src, warm):
        c = gen.transformer.cfg
        cond = encode_conditions(c, gen.codec, gen.transformer, image, depth, 9, with_motion=False)
        text = gen.text_encoder(["the ball slides left"])
        with torch.no_grad():
            outs.append(gen.transformer(cond.model_input(noisy), torch.tensor([700.0]), text,
                                        reference_latent=cond.reference, object_features=cond.objects))
    assert torch.allclose(outs[0], outs[1], atol=1e-5)  # lr 0 and a zero map: the init model's function
    exported = load_file(str(tmp_path / "m.safetensors"))
    assert "transformer.object_binding.proj.weight" in exported
    assert "transformer.object_binding.nothing_key" in exported


def test_the_memory_measurement_runs_a_model_with_a_binding():
    from more4d_core.memory.estimate import strag_forward

    gen = build_generator(TINY_BIND, seed=0)
    with torch.no_grad():
        out = strag_forward(gen.transformer, 2, (9, 32, 32), torch.float32, "cpu")
    assert out.shape == (2, 12, 3, 8, 8)


def test_the_objective_trains_the_binding_on_captions_it_kept_only():
    from more4d_core.train.examples import collate
    from more4d_core.train.objective import FlowMatchingObjective

    gen = build_generator(TINY_BIND, seed=0)
    batch = collate([ProceduralExamples("train", 32, 32, 9, recipe="v3")[i] for i in range(4)])
    assert batch["mover_mask"].any()
    kept = FlowMatchingObjective(gen.transformer, gen.text_encoder, gen.codec, text_dropout=0.0, binding_weight=1.0)
    loss = kept(batch, torch.Generator().manual_seed(0))
    assert kept.terms["binding"] > 0.01
    loss.backward()
    assert gen.transformer.object_binding.query.weight.grad.abs().sum() > 0
    dropped = FlowMatchingObjective(gen.transformer, gen.text_encoder, gen.codec, text_dropout=1.0, binding_weight=1.0)
    dropped(batch, torch.Generator().manual_seed(0))
    assert dropped.terms["binding"] == 0.0  # every caption dropped: nothing the target could know


def test_the_binding_summary_gives_the_named_share_and_box_of_the_image():
    from more4d_core.sampling.prompt_binding import binding_summary, describe_binding

    prob = torch.zeros(4, 8)
    prob[1:3, 4:6] = 0.9  # 4 of 32 positions: x 4..6 of 8, y 1..3 of 4
    prob[0, 0] = 0.4  # below one half: in the share, not in the box
    summary = binding_summary(prob)
    assert summary["share_of_image"] == pytest.approx((4 * 0.9 + 0.4) / 32, abs=1e-4)
    assert summary["box"] == [0.5, 0.25, 0.75, 0.75]
    assert describe_binding(summary).startswith("the prompt names 12% of the image, at x 50-75%, y 25-75%")
    assert summary["peak"] == pytest.approx(0.9, abs=1e-4) and summary["likeliest_box"] is None
    weak = torch.full((4, 8), 0.02)
    weak[3, 0:2] = 0.3  # the peak: a weak reading at x 0..2 of 8, y 3..4 of 4
    weak[0, 7] = 0.1  # less than half the peak: not in the likeliest box
    summary = binding_summary(weak)
    assert summary["box"] is None and summary["likeliest_box"] == [0.0, 0.75, 0.25, 1.0]
    assert describe_binding(summary).startswith("the model finds what the prompt names only weakly (at most 30% sure), "
                                                "likeliest at x 0-25%, y 75-100%")
    nothing = binding_summary(torch.full((4, 8), 0.05))
    assert nothing["box"] is None and nothing["likeliest_box"] is None and "finds nothing" in describe_binding(nothing)


def test_a_generation_records_where_the_prompt_names_and_a_plain_model_records_nothing():
    gen = build_generator(TINY_BIND, seed=0)
    g = torch.Generator().manual_seed(2)
    image, depth = torch.rand(32, 32, 3, generator=g), torch.rand(32, 32, generator=g) + 1.0
    k = torch.tensor([[30.0, 0, 16], [0, 30.0, 16], [0, 0, 1]])
    with torch.no_grad():  # every position scores "the ball" above nothing; an empty prompt names nothing
        gen.transformer.object_binding.nothing_key.zero_()
        gen.transformer.object_binding.key.bias.zero_()
        gen.transformer.object_binding.query.bias.zero_()
        gen.transformer.object_binding.query.weight.zero_()
    named = gen.generate(image, depth, k, "the ball slides left", num_frames=9, steps=1).metadata["prompt_binding"]
    words = len(gen.read_prompt("the ball slides left").kept)  # equal scores: each word as likely as nothing
    assert named["share_of_image"] == pytest.approx(words / (words + 1), abs=1e-3)
    assert named["box"] == [0.0, 0.0, 1.0, 1.0]
    empty = gen.generate(image, depth, k, "", num_frames=9, steps=1).metadata["prompt_binding"]
    assert empty["share_of_image"] == 0.0 and empty["box"] is None and empty["likeliest_box"] is None
    plain = build_generator(MORE4D_TINY, seed=0).generate(image, depth, k, "the ball", num_frames=9, steps=1)
    assert "prompt_binding" not in plain.metadata


def test_the_runner_says_where_the_prompt_names_for_each_generate_node():
    from types import SimpleNamespace

    from more4d_core.run import _binding_summary

    doc = {"nodes": [{"id": 3, "type": "More4DGenerate"}, {"id": 1, "type": "LoadImage"}]}
    scene = SimpleNamespace(metadata={"prompt_binding": {"share_of_image": 0.08, "box": [0.5, 0.25, 0.75, 0.5]}})
    assert _binding_summary(doc, {3: (scene,), 1: (None,)}) == [
        "the prompt names 8% of the image, at x 50-75%, y 25-50% of the frame (from the left and the top)"]
    assert _binding_summary(doc, {3: (SimpleNamespace(metadata={}),)}) == []
