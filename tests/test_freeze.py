"""Training with parts of the generator frozen (``--freeze``): the frozen parts leave the run bit for bit as they
came in, the rest trains, and a warm start from a gated model whose gate inputs are frozen keeps its gate."""

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import save_encoder_model

from more4d_core.checkpoints import bundle
from more4d_core.train.freeze import parse_freeze
from more4d_core.train.gate_fit import add_motion_gate
from more4d_core.train.loop import TrainArgs, train

RUN = dict(config="more4d-tiny", steps=2, batch_size=2, warmup=1, lr=1e-2, checkpoint_every=2)


def _part(tensors: dict, prefix: str) -> dict:
    found = {k: v for k, v in tensors.items() if k.startswith(prefix)}
    assert found, prefix
    return found


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_option_names_parts_and_refuses_others():
    assert parse_freeze("") == ()
    assert parse_freeze(" text_encoder,object_encoder ,text_encoder") == ("object_encoder", "text_encoder")
    with pytest.raises(ValueError, match="decoder is not one of"):
        parse_freeze("object_encoder,decoder")


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gated")
    save_encoder_model(folder / "model.safetensors", seed=6)
    add_motion_gate(folder / "model.safetensors", folder / "gated.safetensors", steps=2, scenes=2, threshold=0.3,
                    log=None)
    return folder / "gated.safetensors"


def test_freezing_the_gate_inputs_keeps_them_and_carries_the_gate_over(gated, tmp_path, capsys):
    out = tmp_path / "continued.safetensors"
    train(TrainArgs(out=str(tmp_path / "run"), init=str(gated), freeze="object_encoder,text_encoder", export=str(out),
                    **RUN))
    said = capsys.readouterr().out
    assert "motion gate is carried over unchanged" in said and "frozen: object_encoder, text_encoder" in said
    before, after = load_file(str(gated)), load_file(str(out))
    for prefix in ("transformer.object_encoder.", "text_encoder.", "transformer.motion_gate."):
        assert _same(_part(before, prefix), _part(after, prefix)), prefix
    assert not _same(_part(before, "transformer.blocks."), _part(after, "transformer.blocks."))  # the rest trained
    cfg = bundle.read_header(out).config
    assert (cfg.motion_gate, cfg.motion_gate_threshold) == ("attention", 0.3)
    from more4d_core.checkpoints.average import average_models

    average_models([gated, out], tmp_path / "soup.safetensors")  # same tensors: the continuation averages with its init
    soup = load_file(str(tmp_path / "soup.safetensors"))
    assert _same(_part(before, "transformer.motion_gate."), _part(soup, "transformer.motion_gate."))


def test_freezing_one_gate_input_trains_the_other_and_leaves_the_gate_behind(gated, tmp_path, capsys):
    out = tmp_path / "continued.safetensors"
    train(TrainArgs(out=str(tmp_path / "run"), init=str(gated), freeze="text_encoder", export=str(out), **RUN))
    assert "its motion gate is not carried over" in capsys.readouterr().out
    before, after = load_file(str(gated)), load_file(str(out))
    assert _same(_part(before, "text_encoder."), _part(after, "text_encoder."))
    assert not _same(_part(before, "transformer.object_encoder."), _part(after, "transformer.object_encoder."))
    assert not any(k.startswith("transformer.motion_gate.") for k in after)
    assert bundle.read_header(out).config.motion_gate == "none"


def test_freezing_a_part_the_model_lacks_is_an_error(gated, tmp_path):
    with pytest.raises(ValueError, match="no object_binding"):
        train(TrainArgs(out=str(tmp_path / "run"), init=str(gated), freeze="object_binding", **RUN))
    with pytest.raises(ValueError, match="not one of"):
        train(TrainArgs(out=str(tmp_path / "run2"), freeze="everything", **RUN))
