"""Training: the loss goes down, resuming is bit-exact on the CPU, codec gradients, CLI."""

import json

import pytest
import torch
from safetensors.torch import load_file

from more4d_core.generator import build_generator
from more4d_core.models.config import MORE4D_TINY
from more4d_core.train.__main__ import main as train_main
from more4d_core.train.examples import ProceduralExamples, collate
from more4d_core.train.loop import TrainArgs, fit_latent_scale, train
from more4d_core.train.objective import CodecObjective, FlowMatchingObjective


@pytest.fixture(scope="module")
def batch():
    ds = ProceduralExamples("train", MORE4D_TINY.height, MORE4D_TINY.width, MORE4D_TINY.num_frames)
    return collate([ds[i] for i in range(4)])


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(batch):
    gen = build_generator(MORE4D_TINY, seed=0)
    fit_latent_scale(gen.codec, ProceduralExamples("train", 32, 32, 9), MORE4D_TINY, 8)
    objective = FlowMatchingObjective(gen.transformer, gen.text_encoder, gen.codec, text_dropout=0.0)
    opt = torch.optim.AdamW([p for p in objective.parameters() if p.requires_grad], lr=2e-3)

    def loss_at(seed):
        with torch.no_grad():
            return float(objective(batch, torch.Generator().manual_seed(seed)))

    before = sum(loss_at(s) for s in range(4))
    for step in range(40):
        loss = objective(batch, torch.Generator().manual_seed(step % 4))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = sum(loss_at(s) for s in range(4))
    assert after < 0.7 * before, (before, after)


def _args(out, steps, **kw):
    kw = {"lr": 1e-3, **kw}
    return TrainArgs(config="more4d-tiny", out=str(out), steps=steps, batch_size=2, warmup=2,
                     checkpoint_every=2, log_every=1, scale_samples=4, **kw)


def test_resume_continues_bit_exactly(tmp_path):
    train(_args(tmp_path / "straight", 4))
    train(_args(tmp_path / "resumed", 4, stop_after=2))  # interrupted after step 2
    train(_args(tmp_path / "resumed", 4))  # picks up step-0000002
    for name in ("model.safetensors", "ema.safetensors", "optimizer.safetensors"):
        a = load_file(str(tmp_path / "straight" / "step-0000004" / name))
        b = load_file(str(tmp_path / "resumed" / "step-0000004" / name))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    log = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [1, 2, 3, 4]
    straight = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert [e["loss"] for e in log] == [e["loss"] for e in straight]
    assert [e["loss_avg"] for e in log] == [e["loss_avg"] for e in straight]
    info = json.loads((tmp_path / "straight" / "step-0000004" / "trainer.json").read_text())
    assert info["step"] == 4 and info["config"] == "more4d-tiny" and info["git_revision"]


def test_export_and_cli(tmp_path):
    out = tmp_path / "run"
    assert train_main(["--config", "more4d-tiny", "--steps", "2", "--batch-size", "2", "--out", str(out),
                       "--checkpoint-every", "2", "--scale-samples", "4", "--export", str(tmp_path / "m.safetensors")]) == 0
    from more4d_core.checkpoints.bundle import read_header

    header = read_header(tmp_path / "m.safetensors")
    assert header.info["weights"] == "EMA" and header.info["dtype"] == "float16" and header.info["steps"] == 2
    assert header.config.name == "more4d-tiny" and header.config.still_threshold == 0.0
    # the same command on a finished run only exports again, here with a still hold chosen afterwards
    assert train_main(["--config", "more4d-tiny", "--steps", "2", "--batch-size", "2", "--out", str(out),
                       "--checkpoint-every", "2", "--scale-samples", "4", "--export", str(tmp_path / "m.safetensors"),
                       "--still-threshold", "0.004"]) == 0
    again = read_header(tmp_path / "m.safetensors")
    assert again.config.still_threshold == 0.004 and again.info["wall_time_s"] == header.info["wall_time_s"]
    assert all(v.dtype == torch.float16 for v in load_file(str(tmp_path / "m.safetensors")).values() if v.is_floating_point())


def test_codec_objective_trains_the_encoder_adaptor(batch):
    from diffusers import AutoencoderKLWan

    from more4d_core.models.config import MORE4D_14B
    from more4d_core.models.trajectory_codec import build_codec

    vae = AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 1, 1, 1], latents_mean=[0.0] * 4, latents_std=[1.0] * 4)
    codec = build_codec(MORE4D_14B.replace(adaptor_channels=8), vae=vae)
    vae.requires_grad_(False)
    objective = CodecObjective(codec, "reference")
    objective(batch).backward()
    grads = [p.grad for p in codec.encoder_adaptor.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert all(p.grad is not None for p in codec.decoder_adaptor.parameters())


def test_warm_start_begins_from_the_given_model(tmp_path):
    from more4d_core.checkpoints.bundle import save_bundle

    init = build_generator(MORE4D_TINY, seed=123)
    init.codec.motion_scale.fill_(0.37)  # a latent scale the run must keep, not refit
    path = tmp_path / "init.safetensors"
    save_bundle(path, MORE4D_TINY, {"transformer": init.transformer, "codec": init.codec, "text_encoder": init.text_encoder})
    out = train(_args(tmp_path / "warm", 1, init=str(path), recipe="v3", motion_weight=3.0, depth_noise=0.5,
                      text_dropout=0.0, lr=0.0))
    state = load_file(str(out / "step-0000001" / "model.safetensors"))
    reference = init.transformer.state_dict()
    assert all(torch.equal(state[f"transformer.{k}"].float(), v.float()) for k, v in reference.items())  # lr 0
    assert float(state["codec.motion_scale"]) == pytest.approx(0.37)
    info = json.loads((out / "step-0000001" / "trainer.json").read_text())
    assert info["train_args"]["init"] == str(path) and "v3" in info["data_recipe"] and "perturbed" in info["data_recipe"]


def test_a_run_stopped_early_exports_the_step_it_stopped_at(tmp_path):
    from more4d_core.checkpoints.bundle import read_header

    train(_args(tmp_path / "run", 4, stop_after=2, export=str(tmp_path / "m.safetensors")))
    header = read_header(tmp_path / "m.safetensors")
    assert header.info["steps"] == 2 and header.info["scheduled_steps"] == 4
    assert header.info["train_args"]["stop_after"] == 2


def test_cli_options_without_a_default_get_their_annotated_type(tmp_path):
    out = tmp_path / "run"
    assert train_main(["--config", "more4d-tiny", "--steps", "2", "--stop-after", "1", "--batch-size", "2",
                       "--out", str(out), "--scale-samples", "4", "--still-threshold", "0.004",
                       "--export", str(tmp_path / "m.safetensors")]) == 0
    from more4d_core.checkpoints.bundle import read_header

    header = read_header(tmp_path / "m.safetensors")
    assert header.info["train_args"]["stop_after"] == 1 and header.info["train_args"]["still_threshold"] == 0.004
    assert header.config.still_threshold == 0.004 and header.info["steps"] == 1


def test_the_ema_follows_the_model_to_the_device_the_trainer_puts_it_on():
    # the trainer makes the EMA before accelerate moves the model (to a GPU); the first update on an H200
    # failed with "Expected all tensors to be on the same device". The meta device stands in for the GPU.
    from torch import nn

    from more4d_core.train.ema import EMA

    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    ema = EMA(layer, decay=0.5)
    start = layer.weight.detach().clone()
    layer.to("meta")
    ema.update(layer, step=0)
    assert ema.shadow["weight"].device.type == "meta"
    layer.to_empty(device="cpu")
    with torch.no_grad():
        layer.weight.copy_(start + 1.0)
        layer.bias.zero_()
    ema.shadow = {n: torch.zeros_like(t, device="cpu") for n, t in ema.shadow.items()}
    ema.update(layer, step=100)  # back on the CPU: decay 0.5, so the average is half the weights
    assert torch.allclose(ema.state_dict()["weight"], 0.5 * (start + 1.0))
    assert all(t.device.type == "cpu" for t in ema.state_dict().values())
