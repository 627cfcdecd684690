"""The training-only kind head: its target, its loss, which blocks it reaches, checkpoints and export."""

import math

import pytest
import torch
from safetensors.torch import load_file

from more4d_core.data.procedural.scene_generator import generate_sample
from more4d_core.generator import build_generator
from more4d_core.models.config import MORE4D_TINY
from more4d_core.train.examples import ProceduralExamples, collate, mirror_example
from more4d_core.train.kind_head import KindHead
from more4d_core.train.loop import TrainArgs, fit_latent_scale, train
from more4d_core.train.objective import FlowMatchingObjective

CLASS_OF = {"ball": 1, "box": 2, "card": 3, "disc": 4}  # the order KindHead documents; walls and floor are 0


def test_the_kind_map_names_each_pixels_object_kind():
    ds = ProceduralExamples("train", 32, 32, 9, recipe="v3", mirror_prob=0.0)
    seen = set()
    for i in range(10):
        s = generate_sample(i, "train", 32, 32, 9, with_visibility=False, recipe="v3")
        # the caption's nouns are the objects' names (a disc is drawn as a round card: its shape kind is "card")
        truth = torch.tensor([CLASS_OF.get(s.params["objects"][j]["name"], 0) for j in s.object_id[0].flatten().tolist()])
        assert torch.equal(ds[i]["kind_map"], truth.view(32, 32)), i
        seen |= set(truth.unique().tolist())
    assert seen == {0, 1, 2, 3, 4}


def test_a_mirrored_example_mirrors_its_kind_map():
    ex = ProceduralExamples("train", 32, 32, 9, recipe="v3", mirror_prob=0.0)[2]
    assert torch.equal(mirror_example(ex)["kind_map"], ex["kind_map"].flip(-1))


def test_the_loss_is_the_cross_entropy_against_each_tokens_kind_shares():
    gen = build_generator(MORE4D_TINY, seed=0)
    head = KindHead(gen.transformer)
    head._latent_thw, head._has_ref = (1, 8, 8), False
    head._tokens = torch.zeros(1, 16, MORE4D_TINY.dim)  # one frame of a 4x4 token grid, 8x8 pixels each
    kinds = torch.zeros(1, 32, 32, dtype=torch.long)
    # a zero-initialized head predicts 1/5 for every class: ln 5 whatever the target
    assert float(head.loss(kinds)) == pytest.approx(math.log(5), rel=1e-6)
    with torch.no_grad():
        head.proj.bias.copy_(torch.tensor([0.0, 2.0, 0.0, 0.0, 0.0]))
    kinds[:, :4] = 1  # half of the top token row's pixels are a sphere
    log_p = torch.log_softmax(torch.tensor([0.0, 2.0, 0.0, 0.0, 0.0]), 0)
    top_row = -(0.5 * log_p[0] + 0.5 * log_p[1])
    expected = (4 * top_row - 12 * log_p[0]) / 16
    assert float(head.loss(kinds)) == pytest.approx(float(expected), rel=1e-5)


def test_the_head_reads_a_middle_block_and_only_the_blocks_up_to_it_learn_from_it():
    torch.manual_seed(0)
    cfg = MORE4D_TINY.replace(num_layers=4)
    gen = build_generator(cfg, seed=0)
    fit_latent_scale(gen.codec, ProceduralExamples("train", 32, 32, 9), cfg, 4)
    batch = collate([ProceduralExamples("train", 32, 32, 9, recipe="v3")[i] for i in range(4)])
    objective = FlowMatchingObjective(gen.transformer, gen.text_encoder, gen.codec, text_dropout=0.0, kind_weight=1.0)
    objective(batch, torch.Generator().manual_seed(0))
    assert objective.terms["kind"] == pytest.approx(math.log(5), abs=1e-5)
    assert objective.kind_head._tokens is None  # forgotten after the step
    objective.kind_head.proj.weight.data.normal_(0, 0.1)
    flow_only = FlowMatchingObjective(gen.transformer, gen.text_encoder, gen.codec, text_dropout=0.0)
    grads = {}
    for name, obj in (("with", objective), ("flow", flow_only)):
        gen.transformer.zero_grad(set_to_none=True)
        obj(batch, torch.Generator().manual_seed(0)).backward()
        grads[name] = {i: gen.transformer.blocks[i].ffn.net[0].proj.weight.grad.clone() for i in range(4)}
    # 4 blocks: the head reads block 1 (the middle, before the later cross-attention)
    for i in (0, 1):
        assert (grads["with"][i] - grads["flow"][i]).abs().sum() > 1e-3 * grads["flow"][i].abs().sum(), i
    for i in (2, 3):
        assert torch.allclose(grads["with"][i], grads["flow"][i], rtol=1e-4, atol=1e-7), i


def test_checkpoints_keep_the_head_and_the_export_drops_it(tmp_path):
    args = TrainArgs(config="more4d-tiny", out=str(tmp_path / "run"), steps=2, batch_size=2, warmup=1, lr=1e-3,
                     recipe="v3", checkpoint_every=2, log_every=1, scale_samples=4, kind_weight=0.5,
                     export=str(tmp_path / "m.safetensors"))
    train(args)
    assert any(k.startswith("kind_head.") for k in load_file(str(tmp_path / "run" / "step-0000002" / "model.safetensors")))
    assert not any(k.startswith("kind_head.") for k in load_file(str(tmp_path / "m.safetensors")))
    assert '"loss_kind"' in (tmp_path / "run" / "metrics.jsonl").read_text()


def test_the_probes_score_counts_object_tokens_and_their_confusion():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("kind_probe", Path(__file__).resolve().parents[1] / "tools" / "kind_probe.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    kinds = torch.zeros(1, 16, 16, dtype=torch.long)  # a 2x2 token grid of 8x8 pixels
    kinds[0, :8, :8] = 1  # token (0, 0): all ball
    kinds[0, :8, 8:] = 4  # token (0, 1): all disc
    kinds[0, 8:, :3] = 2  # token (1, 0): 3/8 box, mostly background: not an object token
    logits = torch.zeros(1, 5, 2, 2)
    logits[0, 1, 0, 0] = 5.0  # ball predicted as ball
    logits[0, 3, 0, 1] = 5.0  # disc predicted as card
    logits[0, 0, :, :] += 9.0  # background scores highest everywhere: the probe compares object classes only
    accuracy, tokens, confusion = probe.score(logits, kinds)
    assert (accuracy, tokens) == (0.5, 2)
    expected = torch.zeros(4, 4, dtype=torch.int64)
    expected[0, 0] = 1
    expected[3, 2] = 1
    assert torch.equal(confusion, expected)
