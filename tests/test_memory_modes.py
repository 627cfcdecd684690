"""Memory modes: the device-memory tracker on analytic cases, block streaming (same outputs, at most
two streamed blocks on the device), and the 14B estimate against the issue's targets."""

import json

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from more4d_core.bench.__main__ import main as bench_main
from more4d_core.memory.estimate import estimate, trace_strag, transformer_estimate
from more4d_core.memory.modes import MODES, MemoryMode
from more4d_core.memory.streaming import BlockStreamer
from more4d_core.memory.tracker import DeviceMemoryTracker, FlashAttentionMemory
from more4d_core.models.config import MORE4D_TINY
from more4d_core.models.dit import STraGTransformer


def test_the_tracker_counts_storages_once_and_releases_them():
    with FakeTensorMode():
        tracker = DeviceMemoryTracker("meta")
        with tracker:
            a = torch.empty(1000, device="meta")  # 4000 bytes
            view = a.view(10, 100)  # shares a's storage: nothing more
            b = view * 2  # 4000 more
            assert tracker.trace.total() == 8000
            del b
            assert tracker.trace.total() == 4000
            c = torch.empty(250, dtype=torch.float64, device="meta")  # 2000
            on_cpu = torch.empty(10**6)  # another device: not counted
        assert tracker.trace.peak == 8000 and tracker.trace.total() == 6000
        del a, view, c, on_cpu


def test_attention_is_counted_as_a_fused_kernel_allocates_it():
    heads, length, dim = 8, 4096, 64
    with FakeTensorMode():
        q = torch.empty(1, heads, length, dim, dtype=torch.bfloat16, device="meta")
        tracker = DeviceMemoryTracker("meta")
        with tracker, FlashAttentionMemory():
            out = torch.nn.functional.scaled_dot_product_attention(q, q, q)
    assert out.shape == q.shape
    # the output (bf16) and one float32 log-sum-exp per query row; the score matrix would be 4096^2 x 8 heads
    assert tracker.trace.peak == heads * length * dim * 2 + heads * length * 4


def _tiny(seed=0):
    torch.manual_seed(seed)
    m = STraGTransformer.from_stgconfig(MORE4D_TINY.replace(num_layers=5)).eval()
    for blk in m.blocks:
        blk.spatial_guidance_self.gate.data.normal_()
        blk.spatial_guidance_ffn.gate.data.normal_()
    return m


def _forward(m):
    from more4d_core.memory.estimate import strag_forward

    torch.manual_seed(1)
    with torch.no_grad():
        return strag_forward(m, 1, (9, 32, 32), torch.float32, "cpu")


def test_streaming_computes_the_same_and_holds_at_most_two_streamed_blocks():
    plain, streamed = _tiny(), _tiny()
    streamer = BlockStreamer(streamed.blocks, "cpu", resident=2).attach()
    seen = []
    for blk in streamed.blocks:
        blk.register_forward_hook(lambda *a: seen.append(streamer.device_blocks()))
    expected = _forward(plain)
    assert torch.equal(_forward(streamed), expected)
    assert torch.equal(_forward(streamed), expected)
    assert max(seen) <= 2 and streamer.transfers >= 2 * 3  # 3 streamed blocks, each copied in every forward
    streamer.detach()
    assert torch.equal(_forward(streamed), expected)
    with pytest.raises(Exception, match="resident blocks"):
        BlockStreamer(streamed.blocks, "cpu", resident=9)


def test_streamed_blocks_leave_the_device_weights_and_come_back_as_buffers():
    cfg = MORE4D_TINY.replace(num_layers=6)
    block_bytes = sum(p.numel() * 4 for p in STraGTransformer.from_stgconfig(cfg).blocks[0].parameters())
    resident = MODES["bf16"]
    streamed = MemoryMode("test", "bf16", 2, False, True)
    with FakeTensorMode(allow_non_fake_inputs=True):
        full = trace_strag(cfg, resident, batch=1, size=(9, 32, 32), dtype=torch.float32)
        part = trace_strag(cfg, streamed, batch=1, size=(9, 32, 32), dtype=torch.float32)
    # 4 of 6 blocks leave the resident weights; at most two of them are on the device at once
    assert full.weights - part.weights == 4 * block_bytes
    assert 0 < part.trace.at_peak.get("streaming", 0) <= 2 * block_bytes


def test_the_14b_modes_meet_their_targets_in_the_estimate(tmp_path):
    out = tmp_path / "memory.json"
    assert bench_main(["memory", "--models", "strag", "--modes", "24gb,16gb", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["strag"]["24gb"]["peak_gib"] <= 22.0 and data["strag"]["16gb"]["peak_gib"] <= 14.0
    stages = data["strag"]["16gb"]["stages"]
    assert stages["denoise"]["streaming_gib"] > 0 and set(stages) == {"text", "image", "denoise", "decode"}
    # float8 blocks: the 24gb transformer holds about half the bf16 weights of 4D-STraG's 17.1 B parameters
    bf16_gib = 17.1e9 * 2 / 2**30
    assert 0.45 * bf16_gib < data["strag"]["24gb"]["stages"]["denoise"]["weights_gib"] < 0.6 * bf16_gib
    # encoders leave the device in 24gb: a stage's resident weights are its own model's
    assert all(st["model_weights_gib"] == st["weights_gib"] for st in data["strag"]["24gb"]["stages"].values())


def test_each_models_bf16_weights_sum_to_the_resident_weights():
    r = estimate("strag", "bf16")
    own = {s.name: s.model_weights for s in r.stages}
    assert all(s.weights == sum(own.values()) for s in r.stages)  # every model stays: all of them are resident
    # umT5-XXL's encoder: 5.68 B parameters in bf16 (its published size), the VAE about 127 M
    assert own["text"] / 2**30 == pytest.approx(5.68e9 * 2 / 2**30, rel=0.02)
    assert own["decode"] / 2**30 == pytest.approx(127e6 * 2 / 2**30, rel=0.05)


def test_vism_16gb_fits():
    assert estimate("vism", "16gb").peak <= 14 * 2**30


def test_the_gpu_check_runs_its_code_path_at_toy_size(tmp_path):
    out = tmp_path / "gpu.json"
    assert bench_main(["gpu", "--tiny", "--device", "cpu", "--steps", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(data) == {"strag", "vism"} and all(set(v) == set(MODES) for v in data.values())
    assert all(row["seconds_per_step"] > 0 for v in data.values() for row in v.values())


def test_one_failing_mode_of_the_gpu_check_does_not_hide_the_others(tmp_path, monkeypatch, capsys):
    from more4d_core.bench import gpu_bench

    real_build = gpu_bench._build

    def build(model, tiny, device):
        if model == "vism":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore detail")
        return real_build(model, tiny, device)

    monkeypatch.setattr(gpu_bench, "_build", build)
    out = tmp_path / "gpu.json"
    assert bench_main(["gpu", "--tiny", "--device", "cpu", "--steps", "1", "--modes", "bf16,16gb", "--json", str(out)]) == 1
    data = json.loads(out.read_text())
    assert all(row["seconds_per_step"] > 0 for row in data["strag"].values())
    assert data["vism"] == {m: {"error": "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"}
                            for m in ("bf16", "16gb")}
    assert "vism   16gb  failed: OutOfMemoryError" in capsys.readouterr().out


def test_the_gpu_check_names_an_unknown_mode(capsys):
    assert bench_main(["gpu", "--tiny", "--device", "cpu", "--modes", "bf16,12gb"]) == 2
    assert "12gb" in capsys.readouterr().out


def test_the_gpu_checks_memory_cap_needs_a_cuda_device(capsys):
    assert bench_main(["gpu", "--tiny", "--device", "cpu", "--cap-gib", "14"]) == 2
    assert "--cap-gib caps a CUDA device's memory" in capsys.readouterr().out


def test_the_transformer_estimate_is_the_pipeline_stage_without_the_other_models():
    # bf16 keeps umT5, CLIP and the VAE resident beside the transformer; the GPU check builds the transformer alone
    whole = next(s for s in estimate("strag", "bf16").stages if s.name == "denoise")
    alone = transformer_estimate("strag", "bf16")
    others = whole.weights - whole.model_weights
    assert alone.peak == whole.peak - others and alone.model_weights == whole.model_weights
    # 4D-STraG 14B: 17.1 B parameters in bf16 (the params benchmark's count), float32 norms aside
    assert alone.model_weights / 2**30 == pytest.approx(17.1e9 * 2 / 2**30, rel=0.03)


def test_auto_takes_the_fastest_mode_that_fits_and_estimates_no_further(monkeypatch):
    import types

    from more4d_core.errors import InputError
    from more4d_core.memory import estimate as estimate_module
    from more4d_core.memory.placement import choose_mode

    peaks_gib = {"bf16": 46.2, "24gb": 18.6, "16gb": 10.4}
    asked = []

    def fake_estimate(pipeline, mode):
        asked.append(mode.name)
        return types.SimpleNamespace(peak=peaks_gib[mode.name] * 2**30)

    monkeypatch.setattr(estimate_module, "estimate", fake_estimate)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (int(22 * 2**30), int(24 * 2**30)))
    mode, why = choose_mode("auto", torch.device("cuda"))
    # 90% of 22 GiB free is 19.8 GiB: bf16 (46.2) does not fit, 24gb (18.6) does; 16gb is never traced
    assert mode.name == "24gb" and asked == ["bf16", "24gb"] and "22.0 GiB free" in why
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (int(8 * 2**30), int(8 * 2**30)))
    with pytest.raises(InputError, match="no memory mode fits 8.0 GiB"):
        choose_mode("auto", torch.device("cuda"))
    assert choose_mode("auto", torch.device("cpu"))[0].name == "bf16"
