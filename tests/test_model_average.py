"""checkpoints.average: the weighted mean of model files of one architecture (a model soup)."""

import json

import pytest
import torch
from safetensors import safe_open

from more4d_core.checkpoints.average import average_models, main
from more4d_core.checkpoints.bundle import file_sha256, read_header, save_bundle, write_bundle
from more4d_core.errors import InputError
from more4d_core.generator import build_generator, load_generator
from more4d_core.models.config import MORE4D_TINY

COMPONENTS = ["transformer", "codec", "text_encoder"]


def _save(path, seed, cfg=MORE4D_TINY, dtype=None):
    gen = build_generator(cfg, seed=seed)
    save_bundle(path, cfg, {c: getattr(gen, c) for c in COMPONENTS}, {"seed": seed}, dtype=dtype)
    return path


def _tensors(path):
    with safe_open(str(path), framework="pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}


def test_the_mean_is_the_weighted_sum_of_the_members_and_loads_as_a_model(tmp_path):
    a, b = _save(tmp_path / "a.safetensors", 0), _save(tmp_path / "b.safetensors", 1)
    out = average_models([a, b], tmp_path / "soup.safetensors", weights=[1.0, 3.0])
    ta, tb, tout = _tensors(a), _tensors(b), _tensors(out)
    assert tout.keys() == ta.keys()
    differ = 0
    for key, t in tout.items():
        assert t.dtype == torch.float32
        torch.testing.assert_close(t, 0.25 * ta[key] + 0.75 * tb[key], rtol=0, atol=1e-6)
        differ += int(not torch.equal(ta[key], tb[key]))
    assert differ > 10  # the members really differ, so the check above sees the weights
    gen = load_generator(out)
    assert gen.config == MORE4D_TINY


def test_equal_weights_by_default_and_the_members_are_recorded(tmp_path):
    a, b, c = (_save(tmp_path / f"{n}.safetensors", s) for n, s in (("a", 0), ("b", 1), ("c", 2)))
    out = average_models([a, b, c], tmp_path / "soup.safetensors")
    ta, tb, tc, tout = _tensors(a), _tensors(b), _tensors(c), _tensors(out)
    for key, t in tout.items():
        torch.testing.assert_close(t, (ta[key] + tb[key] + tc[key]) / 3, rtol=0, atol=1e-6)
    info = read_header(out).info
    assert info["seed"] == 0  # the first member's provenance is kept
    assert [m["path"] for m in info["averaged_from"]] == [str(a), str(b), str(c)]
    assert [m["sha256"] for m in info["averaged_from"]] == [file_sha256(p) for p in (a, b, c)]
    assert [m["weight"] for m in info["averaged_from"]] == pytest.approx([1 / 3] * 3)


def test_half_precision_members_are_averaged_in_float32_and_stored_in_half(tmp_path):
    a = _save(tmp_path / "a.safetensors", 0, dtype=torch.float16)
    b = _save(tmp_path / "b.safetensors", 1, dtype=torch.float16)
    out = average_models([a, b], tmp_path / "soup.safetensors")
    ta, tb, tout = _tensors(a), _tensors(b), _tensors(out)
    for key, t in tout.items():
        assert t.dtype == torch.float16
        assert torch.equal(t, ((ta[key].float() + tb[key].float()) / 2).half())
    # the mean of a model with itself is the model, bit for bit
    same = average_models([a, a], tmp_path / "same.safetensors")
    assert all(torch.equal(t, ta[k]) for k, t in _tensors(same).items())


def test_generation_defaults_may_differ_and_come_from_the_first_member(tmp_path):
    a = _save(tmp_path / "a.safetensors", 0, MORE4D_TINY.replace(sample_average=4, steps=7))
    b = _save(tmp_path / "b.safetensors", 1, MORE4D_TINY.replace(still_threshold=0.02, guidance_scale=2.0))
    config = read_header(average_models([a, b], tmp_path / "soup.safetensors")).config
    assert (config.sample_average, config.steps, config.still_threshold) == (4, 7, 0.0)
    assert config.guidance_scale == MORE4D_TINY.guidance_scale


def test_models_of_other_architectures_are_refused_and_nothing_is_written(tmp_path):
    a = _save(tmp_path / "a.safetensors", 0)
    wider = _save(tmp_path / "wide.safetensors", 1, MORE4D_TINY.replace(dim=MORE4D_TINY.dim * 2))
    with pytest.raises(InputError, match="architecture.*dim"):
        average_models([a, wider], tmp_path / "soup.safetensors")
    assert not (tmp_path / "soup.safetensors").exists()


def _raw(path, tensors):
    return write_bundle(path, MORE4D_TINY, tensors, COMPONENTS, {})


def test_other_tensors_shapes_or_integer_values_are_refused(tmp_path):
    base = {"transformer.w": torch.ones(2, 3), "transformer.n": torch.tensor([1, 2])}
    a = _raw(tmp_path / "a.safetensors", base)
    cases = {
        "extra": ({**base, "transformer.motion_gate.k": torch.ones(1)}, "different tensors.*gate_fit"),
        "shape": ({**base, "transformer.w": torch.ones(3, 2)}, r"transformer.w is \(3, 2\)"),
        "int": ({**base, "transformer.n": torch.tensor([1, 3])}, "transformer.n .* differs"),
    }
    for name, (tensors, message) in cases.items():
        b = _raw(tmp_path / f"{name}.safetensors", tensors)
        with pytest.raises(InputError, match=message):
            average_models([a, b], tmp_path / "soup.safetensors")
        assert not (tmp_path / "soup.safetensors").exists()
    # equal integer tensors are kept as they are
    out = average_models([a, _raw(tmp_path / "a2.safetensors", base)], tmp_path / "soup.safetensors")
    assert torch.equal(_tensors(out)["transformer.n"], torch.tensor([1, 2]))


@pytest.mark.parametrize("weights,message", [([1.0], "one weight per model"), ([1.0, -1.0], "non-negative"),
                                             ([0.0, 0.0], "not all zero"), ([1.0, float("nan")], "finite"),
                                             ([1.0, float("inf")], "finite")])
def test_bad_weights_are_refused(tmp_path, weights, message):
    a = _raw(tmp_path / "a.safetensors", {"transformer.w": torch.ones(2)})
    with pytest.raises(InputError, match=message):
        average_models([a, a], tmp_path / "soup.safetensors", weights=weights)


def test_one_member_or_an_output_over_a_member_is_refused(tmp_path):
    a = _raw(tmp_path / "a.safetensors", {"transformer.w": torch.ones(2)})
    b = _raw(tmp_path / "b.safetensors", {"transformer.w": torch.zeros(2)})
    before = a.read_bytes()
    with pytest.raises(InputError, match="at least two"):
        average_models([a], tmp_path / "soup.safetensors")
    with pytest.raises(InputError, match="not over one of them"):
        average_models([a, b], a)
    assert a.read_bytes() == before


def test_the_command_writes_the_mean_and_reports_errors_plainly(tmp_path, capsys):
    a = _raw(tmp_path / "a.safetensors", {"transformer.w": torch.ones(2)})
    b = _raw(tmp_path / "b.safetensors", {"transformer.w": torch.zeros(2)})
    out = tmp_path / "soup.safetensors"
    assert main([str(a), str(b), "--out", str(out), "--weights", "3", "1"]) == 0
    assert torch.equal(_tensors(out)["transformer.w"], torch.full((2,), 0.75))
    assert json.loads(safe_open(str(out), framework="pt").metadata()["info"])["averaged_from"][0]["weight"] == 0.75
    with pytest.raises(SystemExit) as exc:  # OUT exists: refused, not replaced
        main([str(a), str(b), "--out", str(out)])
    assert exc.value.code == 2 and "exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a missing member
        main([str(a), str(tmp_path / "missing.safetensors"), "--out", str(tmp_path / "x.safetensors")])
    assert "no such model file" in capsys.readouterr().err and not (tmp_path / "x.safetensors").exists()
