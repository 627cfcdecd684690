"""Depth-guided decoding of the small codec: motion edges stay on depth edges."""

import copy

import pytest
import torch

from more4d_core.data.procedural.scene_generator import generate_sample
from more4d_core.eval.metrics import moving_points, score
from more4d_core.eval.protocol import codec_round_trip, metric_factors
from more4d_core.generator import build_generator
from more4d_core.models.config import MORE4D_SMALL, STraGConfig
from more4d_core.models.guided_upsampling import guided_upsample


def test_a_constant_field_stays_constant():
    coarse = torch.full((1, 2, 4, 5), 0.25)
    guide = torch.randn(1, 16, 20)  # any depth
    assert torch.allclose(guided_upsample(coarse, guide), torch.full((1, 2, 16, 20), 0.25), atol=1e-6)


def test_an_object_moving_in_front_of_a_wall_keeps_a_sharp_edge():
    # 8x8 blocks of 4x4 pixels; the object covers blocks [2:6, 2:6] exactly and sits at depth 2 before a wall at 6
    coarse = torch.zeros(1, 1, 8, 8)
    coarse[..., 2:6, 2:6] = 1.0  # the object's blocks move by 1, the wall's by 0
    depth = torch.full((1, 32, 32), 6.0)
    depth[:, 8:24, 8:24] = 2.0
    fine = guided_upsample(coarse, depth.log())[0, 0]
    obj = depth[0] == 2.0
    assert (fine[obj] - 1).abs().max() < 1e-3 and fine[~obj].abs().max() < 1e-3
    bilinear = torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False)[0, 0]
    assert (bilinear[obj] - 1).abs().max() > 0.2  # what the guide prevents: motion bleeding across the edge


def test_configs_choose_the_decoder_and_older_files_decode_bilinearly():
    assert MORE4D_SMALL.decode_guide == "depth"
    d = MORE4D_SMALL.to_dict()
    d.pop("decode_guide")
    d["config_version"] = 2
    assert STraGConfig.from_dict(d).decode_guide == "none"
    with pytest.raises(Exception, match="decode_guide"):
        MORE4D_SMALL.replace(decode_guide="sideways")


def test_the_guided_codec_reproduces_true_motion_better_on_procedural_scenes():
    h, w = 96, 128
    guided = build_generator(MORE4D_SMALL)
    plain = copy.deepcopy(guided)
    plain.codec.decode_guide = "none"
    better = 0
    for seed in range(3):
        s = generate_sample(seed, "heldout", h, w, 13)
        if s.params["camera"]["phrase"]:
            continue
        f = metric_factors(s.intrinsics, (h, w))
        moving = moving_points(s.tracks, s.intrinsics, pixel_scale=4)
        a = score(codec_round_trip(guided, s.tracks, (h, w), s.intrinsics), s.tracks, s.visibility, s.intrinsics, f,
                  pixel_scale=4, points=moving).within_avg
        b = score(codec_round_trip(plain, s.tracks, (h, w), s.intrinsics), s.tracks, s.visibility, s.intrinsics, f,
                  pixel_scale=4, points=moving).within_avg
        assert a > b, (seed, a, b)
        better += 1
    assert better >= 1
