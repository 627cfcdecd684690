"""Small movers weighed up in the motion gate's fit: the weights, the weighted loss, and that the fit uses them.
Expected values are analytic (areas of blocks laid on the grid, the closed-form optimum of a one-parameter fit)."""

import math

import pytest
import torch
from torch import nn

from more4d_core.errors import InputError
from more4d_core.train.binding_pretrain import fit_position_logits
from more4d_core.train.gate_balance import moving_areas, reference_area, small_mover_weights
from more4d_core.train.mover_head import mover_cross_entropy

GRID = (12, 16)  # 8 x 8 pixel positions on a 96 x 128 image


def block(rows: int, cols: int) -> torch.Tensor:
    """A 96 x 128 mask with a block of rows x cols pixels at the top left (aligned to the 8 x 8 positions)."""
    m = torch.zeros(96, 128)
    m[:rows, :cols] = 1.0
    return m


def test_moving_areas_count_positions_and_fractions_of_them():
    masks = torch.stack([block(16, 16), block(8, 4), torch.zeros(96, 128), torch.ones(96, 128)])
    assert moving_areas(masks, GRID).tolist() == pytest.approx([4.0, 0.5, 0.0, 192.0])


def test_reference_is_the_median_of_object_examples_only():
    areas = torch.tensor([0.0, 4.0, 16.0, 32.0, 192.0, 150.0])  # none moving, three objects, two camera moves
    assert reference_area(areas, 192) == 16.0
    assert reference_area(torch.tensor([0.0, 192.0]), 192) is None


def test_weights_price_small_movers_up_to_the_cap():
    masks = torch.stack([block(16, 16), block(32, 32), block(32, 64), torch.zeros(96, 128), torch.ones(96, 128)])
    # areas 4, 16, 32, 0, 192 positions: reference 16
    assert small_mover_weights(masks, GRID, 8.0).tolist() == pytest.approx([4.0, 1.0, 1.0, 1.0, 1.0])
    assert small_mover_weights(masks, GRID, 2.0).tolist() == pytest.approx([2.0, 1.0, 1.0, 1.0, 1.0])
    assert small_mover_weights(masks, GRID, 1.0).tolist() == [1.0] * 5


@pytest.mark.parametrize("cap", [0.5, 0.0, float("nan")])
def test_a_cap_below_one_is_refused(cap):
    with pytest.raises(InputError, match="at least 1"):
        small_mover_weights(torch.zeros(2, 96, 128), GRID, cap)


def test_the_weight_multiplies_only_the_moving_term():
    torch.manual_seed(0)
    logits = torch.randn(3, *GRID)
    masks = torch.stack([block(16, 16), block(40, 24), torch.zeros(96, 128)])
    w = torch.tensor([4.0, 1.5, 3.0])
    share = torch.nn.functional.adaptive_avg_pool2d(masks.unsqueeze(1), GRID)[:, 0]
    p = torch.sigmoid(logits)
    manual = -(w.view(-1, 1, 1) * share * torch.log(p) + (1 - share) * torch.log(1 - p)).mean(dim=(1, 2))
    assert mover_cross_entropy(logits, masks, w) == pytest.approx(manual.tolist(), rel=1e-5)
    assert mover_cross_entropy(logits, masks, torch.ones(3)).tolist() == pytest.approx(
        mover_cross_entropy(logits, masks).tolist(), rel=1e-6)


class OneBias(nn.Module):
    """Every position's logit is one learned number."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(()))

    def fitted_parameters(self):
        return [self.bias]

    def __call__(self, feats, text):
        return self.bias.expand(len(feats), *GRID)


@pytest.mark.parametrize("weight", [1.0, 4.0])
def test_the_fit_reaches_the_weighted_optimum(weight):
    # one bias for every position: the weighted cross-entropy is least where sigmoid(b) = w p / (w p + 1 - p),
    # p the mean moving share of the pool (0.021 for w = 1, 0.077 for w = 4: far apart next to the tolerance)
    masks = torch.stack([block(16, 16)] * 4)  # p = 4 / 192
    p = 4 / 192
    module = OneBias()
    feats, text = torch.zeros(4, 1), torch.zeros(4, 1)
    fit_position_logits(module, module, feats, text, masks, steps=1500, scenes=4, batch_size=4, lr=0.05, seed=0,
                        label="test", positive_weight=torch.full((4,), weight))
    expected = weight * p / (weight * p + 1 - p)
    assert float(torch.sigmoid(module.bias)) == pytest.approx(expected, rel=0.1)  # AdamW's decay and steps: near it
    assert math.isclose(expected, p) == (weight == 1.0)


def test_the_gate_fit_weighs_small_movers_and_the_command_records_the_weight(tmp_path, capsys):
    from tiny_models import TINY_GATE, save_encoder_model

    from more4d_core.checkpoints import bundle
    from more4d_core.generator import build_generator
    from more4d_core.train.examples import ProceduralExamples
    from more4d_core.train.gate_fit import add_motion_gate, fit_motion_gate, main

    data = ProceduralExamples("train", 32, 32, 9, recipe="v3")
    first = {}
    for cap in (1.0, 8.0):
        gen = build_generator(TINY_GATE, seed=0)  # the same gate and the same pool: only the weights differ
        first[cap] = fit_motion_gate(gen.transformer, gen.text_encoder, data, steps=1, scenes=16, batch_size=16,
                                     small_mover_weight=cap).first_loss
    assert first[8.0] > first[1.0]  # the pool has movers below its median area: their moving terms count more
    src, out = tmp_path / "model.safetensors", tmp_path / "gated.safetensors"
    save_encoder_model(src, seed=4)
    assert main([str(src), "--out", str(out), "--steps", "2", "--scenes", "8", "--small-mover-weight", "4"]) == 0
    assert bundle.read_header(out).info["motion_gate_fit"]["small_mover_weight"] == 4.0
    with pytest.raises(ValueError, match="at least 1"):
        add_motion_gate(src, tmp_path / "x.safetensors", steps=1, scenes=2, small_mover_weight=0.5)
    assert not (tmp_path / "x.safetensors").exists()
    with pytest.raises(SystemExit):  # the command says so in one line, without a traceback
        main([str(src), "--out", str(tmp_path / "x.safetensors"), "--small-mover-weight", "0.5"])
    assert "at least 1" in capsys.readouterr().err and not (tmp_path / "x.safetensors").exists()
