"""Growing a trained transformer deeper (``--grow-layers``): where the new blocks go, that the grown model
starts as the trained model's function, that the new blocks then learn, and that a grown file continues."""

import pytest
import torch
from safetensors.torch import load_file

from more4d_core.checkpoints.bundle import read_header, save_bundle
from more4d_core.errors import InputError
from more4d_core.generator import build_generator, load_generator
from more4d_core.models.config import MORE4D_TINY
from more4d_core.sampling.conditioning import encode_conditions
from more4d_core.train.grow import grown_layout, grown_weights
from more4d_core.train.loop import TrainArgs, train


def test_new_blocks_are_spread_evenly_after_trained_blocks():
    # (trained block the weights come from, is new), in the grown model's order
    assert grown_layout(6, 3) == [(0, False), (1, False), (1, True), (2, False), (3, False), (3, True),
                                  (4, False), (5, False), (5, True)]
    assert grown_layout(6, 1) == [(i, False) for i in range(6)] + [(5, True)]
    assert grown_layout(2, 3) == [(0, False), (0, True), (0, True), (1, False), (1, True)]
    assert grown_layout(4, 0) == [(i, False) for i in range(4)]
    with pytest.raises(InputError, match="0 or more"):
        grown_layout(4, -1)


def test_grown_weights_renumber_copy_and_zero_only_the_output_projections():
    rest = ("attn1.to_q.weight", "attn1.to_out.0.weight", "attn2.to_out.0.bias", "ffn.net.0.proj.weight",
            "ffn.net.2.weight", "ffn.net.2.bias", "scale_shift_table")
    weights = [("proj_out.weight", torch.full((2,), 7.0))]
    weights += [(f"blocks.{b}.{r}", torch.full((2,), float(10 * b + i + 1))) for b in range(2) for i, r in enumerate(rest)]
    grown = dict(grown_weights(weights, 2, 1))
    assert torch.equal(grown["proj_out.weight"], torch.full((2,), 7.0))
    for r in rest:  # blocks 0 and 1 keep their weights; block 2 is the new copy of block 1
        assert torch.equal(grown[f"blocks.0.{r}"], dict(weights)[f"blocks.0.{r}"])
        assert torch.equal(grown[f"blocks.1.{r}"], dict(weights)[f"blocks.1.{r}"])
    zeroed = {"attn1.to_out.0.weight", "attn2.to_out.0.bias", "ffn.net.2.weight", "ffn.net.2.bias"}
    for i, r in enumerate(rest):
        expected = torch.zeros(2) if r in zeroed else torch.full((2,), float(10 + i + 1))
        assert torch.equal(grown[f"blocks.2.{r}"], expected), r
    assert len(grown) == 1 + 3 * len(rest)
    with pytest.raises(InputError, match="blocks 0..2"):
        dict(grown_weights(weights, 3, 1))  # a block missing from the file


def _velocity(gen, seed=1):
    g = torch.Generator().manual_seed(seed)
    image, depth = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 32, 32, generator=g) + 1.0
    noisy = torch.randn(1, 12, 3, 8, 8, generator=g)
    cond = encode_conditions(gen.transformer.cfg, gen.codec, gen.transformer, image, depth, 9)
    with torch.no_grad():
        return gen.transformer(cond.model_input(noisy), torch.tensor([600.0]), gen.text_encoder(["the ball bounces"]),
                               reference_latent=cond.reference, motion_features=cond.motion)


def _init_file(path, seed=3):
    gen = build_generator(MORE4D_TINY, seed=seed)
    with torch.no_grad():  # non-zero output projections everywhere, as after training
        for block in gen.transformer.blocks:
            for lin in (block.attn1.to_out[0], block.attn2.to_out[0], block.ffn.net[2]):
                lin.weight.normal_(0, 0.2)
    save_bundle(path, MORE4D_TINY, {"transformer": gen.transformer, "codec": gen.codec,
                                    "text_encoder": gen.text_encoder}, {})
    return gen


def test_a_grown_warm_start_computes_the_init_function_then_its_new_blocks_learn(tmp_path):
    init = tmp_path / "init.safetensors"
    src = _init_file(init)
    layers = MORE4D_TINY.num_layers
    common = dict(config="more4d-tiny", steps=3, batch_size=2, warmup=1, checkpoint_every=1, init=str(init),
                  grow_layers=2, text_dropout=0.0)
    train(TrainArgs(out=str(tmp_path / "still"), lr=0.0, **common))
    still = load_generator(tmp_path / "still" / "step-0000001" / "model.safetensors")
    assert len(still.transformer.blocks) == layers + 2
    assert torch.allclose(_velocity(src), _velocity(still), atol=1e-5)  # lr 0: the init model's function

    train(TrainArgs(out=str(tmp_path / "run"), lr=1e-2, export=str(tmp_path / "m.safetensors"), **common))
    assert read_header(tmp_path / "m.safetensors").config.num_layers == layers + 2
    trained = load_file(str(tmp_path / "run" / "step-0000003" / "model.safetensors"))
    new = [i for i, (_, is_new) in enumerate(grown_layout(layers, 2)) if is_new]
    for i in new:  # the new blocks' output projections left zero: they learn
        assert trained[f"transformer.blocks.{i}.ffn.net.2.weight"].abs().max() > 0
        assert trained[f"transformer.blocks.{i}.attn1.to_out.0.weight"].abs().max() > 0
    assert not torch.allclose(_velocity(src), _velocity(load_generator(tmp_path / "m.safetensors")), atol=1e-4)


def test_a_grown_file_continues_at_its_depth_and_growing_needs_an_init(tmp_path):
    init = tmp_path / "init.safetensors"
    _init_file(init)
    grown = tmp_path / "grown.safetensors"
    base = dict(config="more4d-tiny", steps=1, batch_size=2, warmup=1, lr=0.0, checkpoint_every=1)
    train(TrainArgs(out=str(tmp_path / "a"), init=str(init), grow_layers=1, export=str(grown), **base))
    # a later warm start from the grown file keeps its blocks (the named config has fewer)
    train(TrainArgs(out=str(tmp_path / "b"), init=str(grown), export=str(tmp_path / "c.safetensors"), **base))
    assert read_header(tmp_path / "c.safetensors").config.num_layers == MORE4D_TINY.num_layers + 1
    with pytest.raises(ValueError, match="needs --init"):
        train(TrainArgs(out=str(tmp_path / "d"), grow_layers=1, **base))
    with pytest.raises(ValueError, match="0 or more"):
        train(TrainArgs(out=str(tmp_path / "e"), init=str(init), grow_layers=-1, **base))
    assert not (tmp_path / "d").exists() and not (tmp_path / "e").exists()
