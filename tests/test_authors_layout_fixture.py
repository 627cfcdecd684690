"""A checkpoint in the authors' layout built from facts (tests/fixtures/authors_layout: their key
names, shapes and config.json, learned from their code), not written by our own key map: it must
load key-exact through our real loader and run, and the key map must agree with it name by name."""

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from more4d_core.checkpoints import keymap, load_transformer

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "authors_layout"
ROWS = json.loads((FIXTURE / "keys.json").read_text())["tensors"]
SIZES = json.loads((FIXTURE / "keys.json").read_text())["sizes"]
CONFIG = json.loads((FIXTURE / "config.json").read_text())


def _write_checkpoint(folder: Path, shards: int = 2) -> dict[str, torch.Tensor]:
    """Random tensors of the listed shapes, saved as the authors' zero_to_bf16.py saves them."""
    g = torch.Generator().manual_seed(0)
    tensors = {key: (torch.randn(shape, generator=g) * 0.05).to(torch.bfloat16) for key, shape, _ in ROWS}
    folder.mkdir()
    keys = list(tensors)
    per = -(-len(keys) // shards)
    weight_map = {}
    for i in range(shards):
        name = f"diffusion_pytorch_model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = keys[i * per:(i + 1) * per]
        save_file({k: tensors[k] for k in part}, str(folder / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in part})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2, sort_keys=True))
    (folder / "config.json").write_text(json.dumps(CONFIG))
    return tensors


def test_the_fixture_states_the_stale_in_dim():
    patch = next(shape for key, shape, _ in ROWS if key == "patch_embedding.weight")
    assert CONFIG["in_dim"] == 48 and CONFIG["in_channels"] == 48 and patch[1] == 64


def test_authors_checkpoint_loads_key_exact_and_runs(tmp_path):
    written = _write_checkpoint(tmp_path / "transformer")
    model, report = load_transformer(tmp_path / "transformer")  # config from their config.json + the shapes
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    dropped = [key for key, _, ours in ROWS if ours is None]
    assert sum(report.dropped.values()) == len(dropped)

    state = model.state_dict()
    expected = {ours: key for key, _, ours in ROWS if ours is not None}
    assert set(state) == set(expected), (sorted(set(state) - set(expected)), sorted(set(expected) - set(state)))
    for ours, key in expected.items():  # every tensor landed where the fixture says, unchanged
        assert torch.equal(state[ours], written[key].float()), f"{key} -> {ours}"

    cfg = model.cfg
    assert (cfg.dim, cfg.num_layers, cfg.num_heads, cfg.ffn_dim) == (CONFIG["dim"], CONFIG["num_layers"],
                                                                     CONFIG["num_heads"], CONFIG["ffn_dim"])
    assert cfg.in_channels == 64 and cfg.latent_channels == CONFIG["out_dim"]  # not the stale in_dim 48
    assert cfg.use_mpm and cfg.use_reference_tokens and cfg.image_dim == SIZES["clip_dim"]
    assert cfg.motion_encoder.embed_dim == SIZES["mae_embed_dim"] and cfg.motion_encoder.depth == SIZES["mae_depth"]

    g = torch.Generator().manual_seed(1)
    c = cfg.latent_channels
    with torch.no_grad():
        out = model(
            torch.randn(1, cfg.in_channels, 2, 4, 4, generator=g),
            torch.tensor([700.0]),
            torch.randn(1, CONFIG["text_len"], CONFIG["text_dim"], generator=g),
            image_tokens=torch.randn(1, 5, SIZES["clip_dim"], generator=g),
            reference_latent=torch.randn(1, c, 4, 4, generator=g),
            motion_features=model.encode_motion(torch.rand(1, 3, 32, 32, generator=g)),
        )
    assert out.shape == (1, c, 2, 4, 4) and torch.isfinite(out).all() and out.abs().sum() > 0


def test_key_map_agrees_with_the_fixture_name_by_name():
    wrong = []
    for key, _, ours in ROWS:
        if ours is None:
            if keymap.dropped_reason(key) is None:
                wrong.append(f"{key}: an MAE-pretraining part, should be dropped")
            continue
        if keymap.dropped_reason(key) is not None:
            wrong.append(f"{key}: dropped, should load as {ours}")
        if keymap.authors_to_ours(key) != ours:
            wrong.append(f"{key} -> {keymap.authors_to_ours(key)}, expected {ours}")
        try:
            back = keymap.ours_to_authors(ours)
        except KeyError:
            back = None
        if back != key:
            wrong.append(f"{ours} -> {back} (authors' name), expected {key}")
    assert not wrong, "\n".join(wrong)
