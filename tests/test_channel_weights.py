"""Flow loss weighted per latent channel by what the channel's error moves (train/channel_weights.py)."""

import pytest
import torch

from more4d_core.errors import InputError
from more4d_core.generator import build_generator
from more4d_core.models.config import MORE4D_TINY
from more4d_core.train.channel_weights import channel_weights
from more4d_core.train.examples import ProceduralExamples, collate
from more4d_core.train.loop import TrainArgs, train
from more4d_core.train.objective import FlowMatchingObjective

DCT_TINY = MORE4D_TINY.replace(codec="dct", dct_coefficients=4, temporal_compression=1)


def test_weights_follow_the_squared_scale_with_a_uniform_share():
    # scales 2 and 0: squared 4 and 0, mean 2 -> 0.9 * (2, 0) + 0.1
    assert torch.allclose(channel_weights(torch.tensor([2.0, 0.0]), "displacement"), torch.tensor([1.9, 0.1]))
    # scales 1, 2, 3: squared 1, 4, 9, mean 14/3 -> half of (3/14, 12/14, 27/14) + 0.5
    got = channel_weights(torch.tensor([1.0, 2.0, 3.0]), "displacement", uniform_share=0.5)
    assert torch.allclose(got, torch.tensor([0.5 + 1.5 / 14, 0.5 + 6 / 14, 0.5 + 13.5 / 14]))
    assert torch.allclose(channel_weights(torch.full((6,), 0.03), "displacement"), torch.ones(6))
    assert channel_weights(torch.tensor([1.0, 2.0]), "uniform") is None


@pytest.mark.parametrize("scale, mode", [(torch.ones(3), "metric"), (torch.zeros(3), "displacement"),
                                         (torch.tensor([1.0, float("nan")]), "displacement")])
def test_bad_weightings_are_refused(scale, mode):
    with pytest.raises(InputError):
        channel_weights(scale, mode)


@pytest.fixture(scope="module")
def dct_batch():
    ds = ProceduralExamples("train", DCT_TINY.height, DCT_TINY.width, DCT_TINY.num_frames)
    return collate([ds[i] for i in range(2)])


def _loss(gen, batch, mode):
    objective = FlowMatchingObjective(gen.transformer, gen.text_encoder, gen.codec, text_dropout=0.0,
                                      channel_weighting=mode)
    with torch.no_grad():
        return float(objective(batch, torch.Generator().manual_seed(0)))


def test_the_loss_applies_the_weights_per_latent_channel(dct_batch, monkeypatch):
    gen = build_generator(DCT_TINY, seed=0)
    uniform = _loss(gen, dct_batch, "uniform")
    gen.codec.latent_scale.fill_(0.05)  # equal scales: weights all one, the plain MSE
    assert _loss(gen, dct_batch, "displacement") == pytest.approx(_loss(gen, dct_batch, "uniform"), rel=1e-6)

    channels = gen.codec.latent_scale.numel()
    seen = []

    def one_hot(index):
        def weights(scale, mode):
            seen.append(scale)
            w = torch.zeros(channels)
            for i in index:
                w[i] = channels / len(index)
            return w
        return weights

    import more4d_core.train.objective as objective_module
    losses = []
    for index in ((0,), (1,), (0, 1)):
        monkeypatch.setattr(objective_module, "channel_weights", one_hot(index))
        losses.append(_loss(gen, dct_batch, "displacement"))
    first, second, both = losses
    # the loss is the weighted mean of per-channel errors: channel 0 alone, channel 1 alone, and the two
    # at half weight each average exactly; a weighting ignored or put on another axis breaks this
    assert first != pytest.approx(second, rel=1e-3) and first != pytest.approx(uniform, rel=1e-3)
    assert both == pytest.approx((first + second) / 2, rel=1e-5)
    assert all(s is gen.codec.latent_scale for s in seen)  # the codec's scale as it is at the step


def test_a_run_records_its_weighting_and_an_unknown_one_fails_before_training(tmp_path):
    args = dict(config="more4d-small", steps=1, batch_size=1, warmup=1, checkpoint_every=1, log_every=1, scale_samples=2)
    with pytest.raises(InputError, match="channel weighting"):
        train(TrainArgs(out=str(tmp_path / "bad"), channel_weights="metric", **args))
    assert not (tmp_path / "bad" / "step-0000001").exists()
    dct = build_generator(DCT_TINY, seed=0)  # the objective refuses the name itself, before any step
    with pytest.raises(InputError, match="channel weighting must be one of"):
        FlowMatchingObjective(dct.transformer, dct.text_encoder, dct.codec, channel_weighting="metric")
    tiny = build_generator(MORE4D_TINY, seed=0)  # the patchify codec has no per-channel scale
    with pytest.raises(InputError, match="per-channel latent scale"):
        FlowMatchingObjective(tiny.transformer, tiny.text_encoder, tiny.codec, channel_weighting="displacement")
