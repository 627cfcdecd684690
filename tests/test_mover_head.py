"""The training-only mover head: its target, its gradient into the transformer, resume, export."""

import pytest
import torch
from safetensors.torch import load_file

from more4d_core.data.procedural.scene_generator import generate_sample
from more4d_core.generator import build_generator
from more4d_core.models.config import MORE4D_TINY
from more4d_core.train.examples import ProceduralExamples, collate, mirror_example
from more4d_core.train.loop import TrainArgs, fit_latent_scale, train
from more4d_core.train.mover_head import MoverHead
from more4d_core.train.objective import FlowMatchingObjective


def test_the_mask_marks_exactly_the_pixels_of_the_objects_that_move():
    ds = ProceduralExamples("train", 32, 32, 9, recipe="v3", mirror_prob=0.0)
    seen_mover = seen_still = False
    for i in range(12):
        ex = ds[i]
        s = generate_sample(i, "train", 32, 32, 9, with_visibility=False, recipe="v3")
        # ground truth from the generator's own description: a pixel's object moves when its motion kind is not still
        kinds = [o["motion"]["kind"] for o in s.params["objects"]]
        truth = torch.tensor([kinds[j] != "still" for j in s.object_id[0].flatten().tolist()]).view(32, 32)
        assert torch.equal(ex["mover_mask"], truth), i
        seen_mover |= bool(truth.any())
        seen_still |= not bool(truth.any())
    assert seen_mover and seen_still


def test_a_mirrored_example_mirrors_its_mask():
    ex = ProceduralExamples("train", 32, 32, 9, recipe="v3", mirror_prob=0.0)[3]
    assert torch.equal(mirror_example(ex)["mover_mask"], ex["mover_mask"].flip(-1))


def test_the_head_reads_the_last_block_and_its_loss_reaches_the_transformer():
    torch.manual_seed(0)
    gen = build_generator(MORE4D_TINY, seed=0)
    fit_latent_scale(gen.codec, ProceduralExamples("train", 32, 32, 9), MORE4D_TINY, 4)
    objective = FlowMatchingObjective(gen.transformer, gen.text_encoder, gen.codec, text_dropout=0.0, mover_weight=1.0)
    batch = collate([ProceduralExamples("train", 32, 32, 9, recipe="v3")[i] for i in range(4)])
    head = objective.mover_head
    # a zero-initialized head predicts 1/2 everywhere: its loss is the BCE of p = 0.5, ln 2, whatever the target
    objective(batch, torch.Generator().manual_seed(0))
    assert objective.terms["mover"] == pytest.approx(torch.log(torch.tensor(2.0)).item(), abs=1e-6)
    assert head._tokens is None  # forgotten after the step (a deep copy of the objective must work)
    head.proj.weight.data.normal_(0, 0.1)
    probe = gen.transformer.blocks[0].attn2.to_q.weight  # text -> regions: what the head is there to teach
    objective(batch, torch.Generator().manual_seed(0)).backward()
    with_head = probe.grad.clone()
    assert objective.terms["mover"] != pytest.approx(0.6931, abs=1e-4)
    probe.grad = None
    flow_only = FlowMatchingObjective(gen.transformer, gen.text_encoder, gen.codec, text_dropout=0.0)
    flow = flow_only(batch, torch.Generator().manual_seed(0))
    assert float(flow) == pytest.approx(objective.terms["flow"], rel=1e-5)  # same flow term, same noise
    flow.backward()
    assert (with_head - probe.grad).abs().sum() > 1e-3 * probe.grad.abs().sum()


def test_the_head_learns_a_token_grid_mask():
    torch.manual_seed(0)
    gen = build_generator(MORE4D_TINY, seed=0)
    head = MoverHead(gen.transformer)
    tokens = torch.randn(2, 5 * 16, MORE4D_TINY.dim)  # reference frame + 4 frames of a 4x4 token grid
    head._latent_thw, head._has_ref, head._tokens = (4, 8, 8), True, tokens
    mask = torch.zeros(2, 32, 32)
    mask[:, :16] = 1.0  # the top half of the image moves: the top two token rows have share 1
    assert head.logits().shape == (2, 4, 4)
    # an analytic case: a head that outputs +20 on rows 0-1 and -20 on rows 2-3 has a loss near 0
    with torch.no_grad():
        video = tokens[:, 16:].reshape(2, 4, 16, -1).mean(1)
        direction = torch.linalg.lstsq(video.reshape(32, -1), (torch.arange(16) < 8).float().repeat(2)[:, None] * 40 - 20).solution
        head.proj.weight.copy_(direction.T)
    assert float(head.loss(mask)) < 0.05


def test_resume_with_the_head_is_bit_exact_and_the_export_has_no_head(tmp_path):
    def args(out, **kw):
        return TrainArgs(config="more4d-tiny", out=str(out), steps=4, batch_size=2, warmup=2, lr=1e-3, recipe="v3",
                         checkpoint_every=2, log_every=1, scale_samples=4, mover_weight=0.5, **kw)

    train(args(tmp_path / "straight", export=str(tmp_path / "m.safetensors")))
    train(args(tmp_path / "resumed", stop_after=2))
    train(args(tmp_path / "resumed"))
    for name in ("model.safetensors", "ema.safetensors", "optimizer.safetensors"):
        a = load_file(str(tmp_path / "straight" / "step-0000004" / name))
        b = load_file(str(tmp_path / "resumed" / "step-0000004" / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert any(k.startswith("mover_head.") for k in load_file(str(tmp_path / "straight" / "step-0000004" / "model.safetensors")))
    assert not any(k.startswith("mover_head.") for k in load_file(str(tmp_path / "m.safetensors")))
    log = (tmp_path / "straight" / "metrics.jsonl").read_text()
    assert '"loss_mover"' in log and '"loss_flow"' in log


def test_sample_weights_restrict_the_loss_to_the_chosen_samples():
    gen = build_generator(MORE4D_TINY, seed=0)
    head = MoverHead(gen.transformer)
    head._latent_thw, head._has_ref = (4, 8, 8), False
    head._tokens = torch.zeros(2, 4 * 16, MORE4D_TINY.dim)
    with torch.no_grad():
        head.proj.bias.fill_(3.0)  # p = sigmoid(3) everywhere
    mask = torch.stack([torch.ones(32, 32), torch.zeros(32, 32)])  # sample 0 all movers, sample 1 none
    on, off = -torch.log(torch.sigmoid(torch.tensor(3.0))), -torch.log(1 - torch.sigmoid(torch.tensor(3.0)))
    assert float(head.loss(mask, torch.tensor([1.0, 0.0]))) == pytest.approx(float(on), rel=1e-5)
    assert float(head.loss(mask, torch.tensor([0.0, 1.0]))) == pytest.approx(float(off), rel=1e-5)
    assert float(head.loss(mask)) == pytest.approx(float(on + off) / 2, rel=1e-5)
    assert float(head.loss(mask, torch.zeros(2))) == 0.0


def test_a_min_sigma_above_every_draw_switches_the_mover_loss_off():
    gen = build_generator(MORE4D_TINY, seed=0)
    fit_latent_scale(gen.codec, ProceduralExamples("train", 32, 32, 9), MORE4D_TINY, 4)
    batch = collate([ProceduralExamples("train", 32, 32, 9, recipe="v3")[i] for i in range(4)])
    objective = FlowMatchingObjective(gen.transformer, gen.text_encoder, gen.codec, text_dropout=0.0,
                                      mover_weight=1.0, mover_min_sigma=1.01)
    objective(batch, torch.Generator().manual_seed(0))
    assert objective.terms["mover"] == 0.0
    objective.mover_min_sigma = 0.0
    objective(batch, torch.Generator().manual_seed(0))
    assert objective.terms["mover"] == pytest.approx(0.6931, abs=1e-4)
