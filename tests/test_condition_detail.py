"""Sub-cell detail of the control and depth conditions (condition_detail="subcell", dct codec)."""

import pytest
import torch

from more4d_core.errors import InputError
from more4d_core.generator import build_generator
from more4d_core.models.config import MORE4D_TINY, STraGConfig
from more4d_core.sampling.condition_detail import detail_channels, zero_detail_weights
from more4d_core.sampling.conditioning import encode_conditions

# a dct configuration of the tiny model: 8 coefficients x 3 = 24 latent channels, 4x4 cells
DCT = MORE4D_TINY.replace(codec="dct", dct_coefficients=8, latent_channels=24, spatial_compression=4,
                          normalization="focal", depth_condition="max_ratio")


def test_detail_goes_to_the_channels_a_still_image_leaves_empty():
    # the codec's layout: channel c * K + k is coefficient k of colour c; k = 0 holds the image
    assert detail_channels(8, 4) == [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 17, 18]
    with pytest.raises(InputError, match="free channels"):
        detail_channels(4, 4)  # 9 free channels cannot hold 16 pixels
    with pytest.raises(InputError):
        detail_channels(8, 5)  # 3 colours x 7 free coefficients = 21 channels cannot hold 25 pixels


def test_configs_that_cannot_hold_the_detail_are_refused_and_old_files_have_none():
    with pytest.raises(InputError, match="subcell"):
        MORE4D_TINY.replace(condition_detail="subcell")  # patchify codec
    with pytest.raises(InputError, match="dct_coefficients"):
        DCT.replace(dct_coefficients=5, latent_channels=15, condition_detail="subcell")
    old = {**DCT.to_dict(), "config_version": 3}
    old.pop("condition_detail")
    assert STraGConfig.from_dict({**old, "name": "more4d-small"}).condition_detail == "none"


def _inputs():
    image = torch.zeros(1, 3, 32, 32)
    image[0, 0, 0, 1] = 1.0  # one red pixel at row 0, column 1 of the first 4x4 cell
    depth = torch.full((1, 32, 32), 4.0)
    depth[0, 2, 3] = 2.0  # one near pixel at row 2, column 3 of the same cell
    return image, depth


def test_the_detail_is_each_pixel_minus_its_cells_mean_and_the_means_stay():
    image, depth = _inputs()
    cfg = DCT.replace(condition_detail="subcell")
    gen = build_generator(cfg, seed=0)
    plain = encode_conditions(DCT, gen.codec, gen.transformer, image, depth, 9, with_motion=False)
    rich = encode_conditions(cfg, gen.codec, gen.transformer, image, depth, 9, with_motion=False)
    ch = detail_channels(8, 4)
    others = [c for c in range(24) if c not in ch]
    assert torch.equal(rich.control[:, others], plain.control[:, others])
    assert torch.equal(rich.depth[:, others], plain.depth[:, others])
    # by hand: image in [-1, 1] is -1 everywhere but the red pixel (1, -1, -1): luma -1 + 2 * 0.299
    luma_red = -1 + 2 * 0.299
    cell = torch.full((16,), -1.0)
    cell[1] = luma_red  # row 0, column 1 -> index 1 (row-major in the cell)
    assert torch.allclose(rich.control[0, ch, 0, 0, 0], cell - cell.mean(), atol=1e-6)
    assert torch.count_nonzero(rich.control[0, ch, 0, 0, 1:]) == 0  # other cells are flat
    # depth as 2 z / max z - 1: 1 everywhere, 0 at the near pixel (row 2, column 3 -> index 11)
    cell = torch.ones(16)
    cell[11] = 0.0
    assert torch.allclose(rich.depth[0, ch, 0, 0, 0], cell - cell.mean(), atol=1e-6)
    assert torch.count_nonzero(rich.depth[0, ch, 0, 1:, :]) == 0


def test_zeroed_detail_weights_give_the_function_of_the_model_without_detail():
    torch.manual_seed(0)
    image, depth = torch.rand(1, 3, 32, 32), torch.rand(1, 32, 32) + 1.0
    cfg = DCT.replace(condition_detail="subcell")
    gen = build_generator(cfg, seed=0)
    plain = encode_conditions(DCT, gen.codec, gen.transformer, image, depth, 9, with_motion=False)
    rich = encode_conditions(cfg, gen.codec, gen.transformer, image, depth, 9, with_motion=False)
    noisy = torch.randn(1, 24, 1, 8, 8)  # 32x32 pixels in 4x4 cells
    text = torch.randn(1, cfg.text_len, cfg.text_dim)

    def run(cond):
        with torch.no_grad():
            return gen.transformer(cond.model_input(noisy), torch.tensor([500.0]), text, reference_latent=cond.reference)

    assert not torch.allclose(run(rich), run(plain))  # random weights read the detail
    zero_detail_weights(gen.transformer.patch_embedding, 24, 8, 4)
    assert torch.allclose(run(rich), run(plain), atol=1e-6)


def test_a_warm_start_that_adds_detail_begins_with_zero_detail_weights(tmp_path):
    from safetensors.torch import load_file

    from more4d_core.train.loop import TrainArgs, train

    init = "more4d_core/weights/more4d-small.safetensors"  # trained without detail: random weights on those channels
    before = load_file(init)["transformer.patch_embedding.weight"].float()
    assert before[:, 24 + 1].abs().mean() > 0
    train(TrainArgs(config="more4d-small", out=str(tmp_path / "run"), steps=1, batch_size=1, warmup=1, lr=0.0,
                    recipe="v3", checkpoint_every=1, init=init, condition_detail="subcell"))
    after = load_file(str(tmp_path / "run" / "step-0000001" / "model.safetensors"))["transformer.patch_embedding.weight"]
    detail = [g * 24 + c for g in (1, 3) for c in detail_channels(8, 4)]
    rest = [c for c in range(96) if c not in detail]
    assert torch.count_nonzero(after[:, detail]) == 0
    assert torch.allclose(after[:, rest].float(), before[:, rest], atol=1e-3)  # lr 0: nothing else moved
