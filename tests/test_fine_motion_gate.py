"""The fine motion gate (motion_gate="fine"): the gate's judgement on the latent grid instead of the token grid,
from the object encoder's features and its own convolution of the image and depth planes; its config, shapes,
fit, command and use by the generator."""

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import GATE_INTRINSICS as K
from tiny_models import TINY_GATE
from tiny_models import force_gate as _force
from tiny_models import gate_inputs as _inputs

from more4d_core.errors import InputError
from more4d_core.generator import build_generator, load_generator
from more4d_core.models.config import STraGConfig
from more4d_core.models.motion_gate import FineMotionGate, MotionGate
from more4d_core.sampling.motion_gating import latent_probability
from more4d_core.train.binding_pretrain import fit_position_logits
from more4d_core.train.gate_fit import main

TINY_FINE = TINY_GATE.replace(motion_gate="fine", motion_gate_width=8)


def test_the_config_takes_a_fine_gate():
    assert STraGConfig.from_dict(TINY_FINE.to_dict()) == TINY_FINE
    assert TINY_FINE.to_dict()["config_version"] >= 11
    # its stride-2 steps reach the latent grid because the object encoder's power-of-two pixel stride
    # (spatial compression x patch) makes the spatial compression a power of two too
    with pytest.raises(InputError, match="power-of-two pixel stride"):
        TINY_FINE.replace(spatial_compression=3, patch_size=(1, 1, 1))
    with pytest.raises(InputError, match="needs object_encoder"):
        TINY_FINE.replace(object_encoder="none", object_binding="none")


def test_its_logits_lie_on_the_latent_grid_and_it_needs_the_planes():
    gate = FineMotionGate(TINY_FINE)
    feats, text = torch.randn(2, 16, 4, 4), torch.randn(2, 3, TINY_FINE.text_dim)  # 32x32 image: tokens 8 px
    planes = torch.randn(2, 4, 32, 32)
    assert gate(feats, text, planes).shape == (2, 8, 8)  # latents: 4 px (spatial compression 4)
    assert MotionGate(TINY_GATE)(feats, text).shape == (2, 4, 4)
    with pytest.raises(InputError, match="input planes"):
        gate(feats, text)
    with pytest.raises(InputError, match="multiple of the latent stride"):
        gate(feats, text, torch.randn(2, 4, 30, 30))
    p = torch.rand(1, 8, 8)
    assert torch.equal(latent_probability(p, (8, 8))[:, 0, 0], p)  # already on the latent grid: unchanged


def _cell_pattern_pool(n=64, seed=0):
    """Examples whose moving pixels are random 4x4 latent cells, marked in the depth plane (+1 moving, -1 still);
    the object features see only each 8x8 token's average of the marker, so a token-grid gate cannot resolve them."""
    g = torch.Generator().manual_seed(seed)
    cells = torch.rand(n, 8, 8, generator=g) < 0.5
    masks = cells.repeat_interleave(4, 1).repeat_interleave(4, 2).float()  # [n, 32, 32]
    planes = torch.zeros(n, 4, 32, 32)
    planes[:, 3] = masks * 2 - 1
    feats = torch.nn.functional.avg_pool2d(planes[:, 3:], 8).expand(-1, 16, -1, -1).contiguous()
    text = torch.zeros(n, 3, TINY_FINE.text_dim)
    text[:, 0] = torch.randn(TINY_FINE.text_dim, generator=g)  # one word, the rest padding
    return feats, text, planes, masks, cells


def _cell_accuracy(logits, cells):
    up = latent_probability(torch.sigmoid(logits), (8, 8))[:, 0, 0]
    return float(((up >= 0.5) == cells).float().mean())


def test_fitted_it_resolves_latent_cells_that_a_token_grid_gate_cannot():
    feats, text, planes, masks, cells = _cell_pattern_pool()
    torch.manual_seed(0)
    fine, coarse = FineMotionGate(TINY_FINE), MotionGate(TINY_GATE.replace(motion_gate_width=8))
    for gate, extra in ((fine, planes), (coarse, None)):
        fit_position_logits(gate, gate, feats, text, masks, steps=300, scenes=64, batch_size=16, lr=1e-2, seed=0,
                            label="test", planes=extra)
    with torch.no_grad():
        fine_acc = _cell_accuracy(fine(feats, text, planes), cells)
        coarse_acc = _cell_accuracy(coarse(feats, text), cells)
    # a token's four cells are drawn independently: knowing only their average, the best guess is their majority
    # (about 0.69 right); the fine gate reads each cell's marker
    assert fine_acc > 0.95 and coarse_acc < 0.85, (fine_acc, coarse_acc)


def test_the_generator_gates_with_it():
    gen = build_generator(TINY_FINE, seed=0)
    assert isinstance(gen.transformer.motion_gate, FineMotionGate)
    image, depth = _inputs()
    kw = dict(num_frames=9, steps=2, still_threshold=0.0)
    free = gen.generate(image, depth, K, "the ball slides left", motion_gate=False, **kw)
    _force(gen.transformer.motion_gate, -20.0)
    still = gen.generate(image, depth, K, "the ball slides left", **kw)
    assert torch.equal(still.points, still.points[:1].expand_as(still.points))
    _force(gen.transformer.motion_gate, 20.0)
    moving = gen.generate(image, depth, K, "the ball slides left", **kw)
    assert torch.equal(moving.points, free.points) and moving.metadata["motion_gate"]["moving_share"] == 1.0
    # a gate that lets only the left half of the latent grid move: the share the metadata reports is a half
    seen = {}
    original = gen.transformer.motion_gate.forward

    def left_half(features, text, planes=None):
        seen["planes"] = planes
        logits = original(features, text, planes)
        return torch.where(torch.arange(logits.shape[-1]) < logits.shape[-1] // 2, logits, -logits)

    gen.transformer.motion_gate.forward = left_half
    half = gen.generate(image, depth, K, "the ball slides left", **kw)
    assert half.metadata["motion_gate"]["moving_share"] == 0.5
    assert seen["planes"].shape == (1, 4, 32, 32)  # the generator hands the gate the encoder's planes


def test_the_command_fits_a_fine_gate_and_the_file_computes_it(tmp_path):
    from tiny_models import save_encoder_model

    src, out = tmp_path / "model.safetensors", tmp_path / "fine.safetensors"
    save_encoder_model(src, seed=4)
    assert main([str(src), "--out", str(out), "--steps", "3", "--scenes", "6", "--gate", "fine",
                 "--threshold", "0.3"]) == 0
    loaded = load_generator(out)
    assert loaded.config.motion_gate == "fine" and loaded.config.motion_gate_threshold == 0.3
    keys = {k for k in load_file(str(out)) if k.startswith("transformer.motion_gate.")}
    assert any(k.startswith("transformer.motion_gate.fine.") for k in keys)
    assert any(k.startswith("transformer.motion_gate.mix.") for k in keys)
    assert set(load_file(str(src))) == set(load_file(str(out))) - keys
    from more4d_core.checkpoints import bundle

    assert bundle.read_header(out).info["motion_gate_fit"]["gate"] == "fine"
    with pytest.raises(SystemExit):
        main([str(src), "--out", str(tmp_path / "x.safetensors"), "--gate", "pixel"])
    assert not (tmp_path / "x.safetensors").exists()
