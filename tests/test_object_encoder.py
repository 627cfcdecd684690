"""The object encoder (object_encoder="conv"): its grid, how it reaches the tokens, warm starts,
its kind readout and its pretraining."""

import math

import pytest
import torch
from safetensors.torch import load_file

from more4d_core.errors import InputError
from more4d_core.generator import build_generator
from more4d_core.models.config import MORE4D_TINY, STraGConfig
from more4d_core.sampling.conditioning import encode_conditions
from more4d_core.train.encoder_pretrain import pretrain_object_encoder
from more4d_core.train.examples import ProceduralExamples
from more4d_core.train.kind_head import EncoderKindHead, KindHead, kind_head_for
from more4d_core.train.loop import TrainArgs, train

# the tiny model: 32x32 pixels, 4x4 codec cells, 2x2 patches -> one token per 8x8 pixels, a 4x4 token grid
TINY_OBJ = MORE4D_TINY.replace(object_encoder="conv", object_encoder_width=16)


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 32, 32, generator=g) + 1.0


def test_the_config_checks_the_encoder_and_old_files_have_none():
    with pytest.raises(InputError, match="object_encoder must be one of"):
        MORE4D_TINY.replace(object_encoder="vit")
    with pytest.raises(InputError, match="power-of-two"):
        MORE4D_TINY.replace(object_encoder="conv", spatial_compression=3)
    assert STraGConfig.from_dict(TINY_OBJ.to_dict()) == TINY_OBJ
    old = {**TINY_OBJ.to_dict(), "config_version": 4}
    old.pop("object_encoder")
    assert STraGConfig.from_dict(old).object_encoder == "none"


def test_the_features_lie_on_the_token_grid_and_start_adding_nothing():
    gen = build_generator(TINY_OBJ, seed=0)
    image, depth = _inputs()
    cond = encode_conditions(TINY_OBJ, gen.codec, gen.transformer, image, depth, 9, with_motion=False)
    assert cond.objects.shape == (1, 16, 4, 4)  # width 16 on 32 / 8 = 4 tokens a side
    assert torch.count_nonzero(gen.transformer.object_encoder.token_additions(cond.objects)) == 0
    plain = build_generator(MORE4D_TINY, seed=0)
    assert encode_conditions(MORE4D_TINY, plain.codec, plain.transformer, image, depth, 9).objects is None
    with pytest.raises(InputError, match="multiple of the token stride"):
        gen.transformer.encode_objects(torch.zeros(1, 4, 30, 32))


def _block0_input(transformer, cond, noisy, text):
    seen = {}

    def keep(module, args):
        seen["x"] = args[0].clone()

    handle = transformer.blocks[0].register_forward_pre_hook(keep)
    with torch.no_grad():
        out = transformer(cond.model_input(noisy), torch.tensor([500.0]), text, reference_latent=cond.reference,
                          object_features=cond.objects)
    handle.remove()
    return seen["x"], out


def test_each_token_gets_the_features_of_its_own_grid_position_in_every_frame():
    torch.manual_seed(0)
    gen = build_generator(TINY_OBJ, seed=0)
    image, depth = _inputs()
    cond = encode_conditions(TINY_OBJ, gen.codec, gen.transformer, image, depth, 9, with_motion=False)
    noisy = torch.randn(1, 12, 3, 8, 8)  # 9 frames -> 3 latent frames of 8x8 cells
    text = torch.randn(1, TINY_OBJ.text_len, TINY_OBJ.text_dim)
    before, out_before = _block0_input(gen.transformer, cond, noisy, text)
    proj = gen.transformer.object_encoder.proj
    with torch.no_grad():  # addition = feature channel 0 in model channel 0, 1 everywhere in channel 1
        proj.weight[0, 0] = 1.0
        proj.bias[1] = 1.0
    after, out_after = _block0_input(gen.transformer, cond, noisy, text)
    diff = (after - before).view(1, 4, 4, 4, TINY_OBJ.dim)  # reference frame + 3 video frames, 4x4 tokens
    for frame in range(4):
        assert torch.allclose(diff[0, frame, :, :, 0], cond.objects[0, 0], atol=1e-6), frame
        assert torch.allclose(diff[0, frame, :, :, 1], torch.ones(4, 4), atol=1e-6), frame
    assert torch.count_nonzero(diff[..., 2:].abs() > 1e-6) == 0
    assert not torch.allclose(out_after, out_before)


def test_a_model_with_an_encoder_refuses_to_run_without_its_features():
    gen = build_generator(TINY_OBJ, seed=0)
    image, depth = _inputs()
    cond = encode_conditions(TINY_OBJ, gen.codec, gen.transformer, image, depth, 9, with_motion=False)
    x = cond.model_input(torch.zeros(1, 12, 3, 8, 8))
    text = torch.zeros(1, TINY_OBJ.text_len, TINY_OBJ.text_dim)
    with pytest.raises(InputError, match="needs object-encoder features"):
        gen.transformer(x, torch.tensor([500.0]), text, reference_latent=cond.reference)
    with pytest.raises(InputError, match="do not match the token grid"):
        gen.transformer(x, torch.tensor([500.0]), text, reference_latent=cond.reference,
                        object_features=cond.objects[..., :2])


def test_generation_reads_the_encoder():
    gen = build_generator(TINY_OBJ, seed=0)
    image, depth = _inputs()
    k = torch.tensor([[30.0, 0, 16], [0, 30.0, 16], [0, 0, 1]])

    def points():
        scene = gen.generate(image[0].permute(1, 2, 0), depth[0], k, "the ball slides left", num_frames=9, steps=2)
        return torch.as_tensor(scene.points)

    zero = points()
    with torch.no_grad():
        gen.transformer.object_encoder.proj.weight.normal_(0, 0.5)
    read = points()
    assert torch.isfinite(read).all() and not torch.allclose(read, zero)


def test_a_warm_start_adds_an_encoder_to_a_model_without_one_and_keeps_its_function(tmp_path):
    from more4d_core.checkpoints.bundle import save_bundle
    from more4d_core.generator import load_generator

    plain = build_generator(MORE4D_TINY, seed=3)
    init = save_bundle(tmp_path / "init.safetensors", MORE4D_TINY, {"transformer": plain.transformer,
                       "codec": plain.codec, "text_encoder": plain.text_encoder}, {})
    train(TrainArgs(config="more4d-tiny", out=str(tmp_path / "run"), steps=1, batch_size=1, warmup=1, lr=0.0,
                    checkpoint_every=1, init=str(init), object_encoder="conv"))
    warm = load_generator(tmp_path / "run" / "step-0000001" / "model.safetensors")
    assert warm.transformer.cfg.object_encoder == "conv"
    image, depth = _inputs(1)
    text = torch.randn(1, MORE4D_TINY.text_len, MORE4D_TINY.text_dim)
    noisy = torch.randn(1, 12, 3, 8, 8)
    outs = []
    for gen, cfg in ((plain, MORE4D_TINY), (warm, warm.transformer.cfg)):
        cond = encode_conditions(cfg, gen.codec, gen.transformer, image, depth, 9, with_motion=False)
        with torch.no_grad():
            outs.append(gen.transformer(cond.model_input(noisy), torch.tensor([700.0]), text,
                                        reference_latent=cond.reference, object_features=cond.objects))
    assert torch.allclose(outs[0], outs[1], atol=1e-5)  # lr 0 and a zero map: the init model's function


def test_the_kind_readout_sits_on_the_encoder_and_starts_at_ln5():
    gen = build_generator(TINY_OBJ, seed=0)
    head = kind_head_for(gen.transformer)
    assert isinstance(head, EncoderKindHead)
    assert isinstance(kind_head_for(build_generator(MORE4D_TINY, seed=0).transformer), KindHead)
    with pytest.raises(RuntimeError, match="none has run"):
        head.grid_logits()
    image, depth = _inputs()
    encode_conditions(TINY_OBJ, gen.codec, gen.transformer, image, depth, 9, with_motion=False)
    assert head.grid_logits().shape == (1, 5, 4, 4)
    assert float(head.loss(torch.zeros(1, 32, 32, dtype=torch.long)).detach()) == pytest.approx(math.log(5), rel=1e-6)


def test_pretraining_teaches_the_kinds_and_leaves_the_generator_function_alone():
    gen = build_generator(TINY_OBJ, seed=0)
    head = EncoderKindHead(gen.transformer)
    others = {k: v.clone() for k, v in gen.transformer.state_dict().items() if not k.startswith("object_encoder.net.")}
    data = ProceduralExamples("train", 32, 32, 9, recipe="v3")
    report = pretrain_object_encoder(gen.transformer, head, data, steps=60, scenes=24, batch_size=8, lr=3e-3)
    assert report.first_loss == pytest.approx(math.log(5), rel=1e-5)  # the zero readout's first step
    assert report.last_loss < 0.8 * report.first_loss
    after = gen.transformer.state_dict()
    assert all(torch.equal(after[k], v) for k, v in others.items())  # the map into the tokens is still zero


def test_pretraining_needs_an_encoder_and_its_kind_loss(tmp_path):
    with pytest.raises(ValueError, match="--kind-weight"):
        train(TrainArgs(config="more4d-tiny", out=str(tmp_path / "a"), steps=1, batch_size=1, object_encoder="conv",
                        pretrain_encoder=5))
    with pytest.raises(ValueError, match="--object-encoder conv"):
        train(TrainArgs(config="more4d-tiny", out=str(tmp_path / "b"), steps=1, batch_size=1, kind_weight=0.5,
                        pretrain_encoder=5))


def test_a_pretrained_run_checkpoints_the_encoder_and_its_readout_and_exports_no_readout(tmp_path):
    args = TrainArgs(config="more4d-tiny", out=str(tmp_path / "run"), steps=1, batch_size=2, warmup=1, lr=1e-3,
                     recipe="v3", checkpoint_every=1, scale_samples=4, kind_weight=0.5, object_encoder="conv",
                     pretrain_encoder=3, pretrain_scenes=4, export=str(tmp_path / "m.safetensors"))
    train(args)
    ckpt = load_file(str(tmp_path / "run" / "step-0000001" / "model.safetensors"))
    assert "kind_head.proj.weight" in ckpt and ckpt["kind_head.proj.weight"].shape[:2] == (5, 96)
    exported = load_file(str(tmp_path / "m.safetensors"))
    assert "transformer.object_encoder.proj.weight" in exported
    assert not any(k.startswith("kind_head.") for k in exported)


def test_the_memory_measurement_runs_a_model_with_an_encoder():
    from more4d_core.memory.estimate import strag_forward

    gen = build_generator(TINY_OBJ, seed=0)
    with torch.no_grad():
        out = strag_forward(gen.transformer, 2, (9, 32, 32), torch.float32, "cpu")
    assert out.shape == (2, 12, 3, 8, 8)


def test_a_warm_start_from_a_model_with_an_encoder_keeps_it(tmp_path):
    from tiny_models import save_encoder_model

    from more4d_core.generator import load_generator

    init = tmp_path / "init.safetensors"
    src = save_encoder_model(init, seed=5)
    train(TrainArgs(config="more4d-tiny", out=str(tmp_path / "run"), steps=1, batch_size=1, warmup=1, lr=0.0,
                    checkpoint_every=1, init=str(init)))
    warm = load_generator(tmp_path / "run" / "step-0000001" / "model.safetensors").transformer
    assert warm.cfg.object_encoder == "conv"
    assert torch.equal(warm.object_encoder.proj.weight, src.transformer.object_encoder.proj.weight)
