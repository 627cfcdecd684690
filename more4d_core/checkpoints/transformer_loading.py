"""Loading the trajectory transformer from any of the layouts users have.

(a) the authors' layout: a folder of (sharded) safetensors with original Wan key names, a Wan
    ``config.json`` (``dim``, ``num_heads``, ``in_dim`` ...) and the MoRe4D keys, or a single file
    of such weights (config given by name or inferred from tensor shapes);
(b) a diffusers-format folder written by ``STraGTransformer.save_pretrained``;
(c) our single-file model (:mod:`.bundle`).

The model is built on the meta device and materialized by assigning the loaded tensors.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import torch
from diffusers.models.transformers.transformer_wan import WanRotaryPosEmbed

from ..errors import FormatError, InputError
from ..models.config import MORE4D_14B, NAMED_CONFIGS, MotionEncoderConfig, STraGConfig, get_config
from ..models.dit import STraGTransformer
from ..models.fp8 import in_blocks, quantize_linears, quantize_on_load
from ..models.motion_encoder import sinusoid_table
from . import bundle, keymap
from .apply import LoadReport, load_into
from .io import iter_weights, read_weights

log = logging.getLogger("more4d")

_STRIP_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "module.", "transformer.")


def _strip(key: str) -> str:
    for prefix in _STRIP_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def config_from_wan_json(data: dict, base: STraGConfig = MORE4D_14B) -> STraGConfig:
    """Our config from an original-Wan / VideoX-Fun transformer ``config.json``."""
    changes: dict = {}
    for ours, theirs in (("dim", "dim"), ("num_heads", "num_heads"), ("num_layers", "num_layers"),
                         ("ffn_dim", "ffn_dim"), ("freq_dim", "freq_dim"), ("eps", "eps"),
                         ("text_len", "text_len"), ("text_dim", "text_dim")):
        if theirs in data:
            changes[ours] = type(getattr(base, ours))(data[theirs])
    if "patch_size" in data:
        changes["patch_size"] = tuple(data["patch_size"])
    out_dim = data.get("out_dim")
    if out_dim:
        changes["latent_channels"] = int(out_dim)
    model_type = data.get("model_type")
    if model_type is not None:
        changes["image_dim"] = 1280 if model_type == "i2v" else None
    if "add_ref_conv" in data:
        changes["use_reference_tokens"] = bool(data["add_ref_conv"])
    if "use_omnimae_guidance" in data:
        changes["use_mpm"] = bool(data["use_omnimae_guidance"])
    return base.replace(name=base.name, **changes)


# Head counts are not stored in weights. Those of the architectures we know, by (width, depth):
# Wan2.1 14B and 1.3B (their config.json: 5120 wide, 40 blocks, 40 heads; 1536, 30, 12) and OmniMAE ViT-B
# (768 wide, 12 blocks, 12 heads), plus our named configurations.
_KNOWN_DIT_HEADS = {(5120, 40): 40, (1536, 30): 12}
_KNOWN_VIT_HEADS = {(768, 12): 12}


def _known_heads(what: str, width: int, depth: int, base_entry: tuple[int, int, int], known: dict,
                 named: list[tuple[int, int, int]], given: int | None) -> int:
    """The head count of a (width, depth) network: given, else ``base``'s when it has that size, else a
    known architecture's; never a guess."""
    if given:
        if width % given:
            raise InputError(f"num_heads={given} does not divide the {what} width {width}")
        return int(given)
    for w, d, heads in (base_entry, *((w, d, h) for (w, d), h in known.items()), *named):
        if (w, d) == (width, depth):
            return heads
    raise InputError(
        f"cannot tell the head count of this {what} ({width} wide, {depth} blocks): it is not stored in the weights "
        "and matches no architecture we know. Put the model's config.json (from the repository it came from) beside "
        "the weights, or pass num_heads= to load_transformer."
    )


def config_from_weights(shapes: dict[str, torch.Size], base: STraGConfig, num_heads: int | None = None) -> STraGConfig:
    """Infer the architecture from tensor shapes (authors' key names). Head counts are not stored in
    weights: ``num_heads`` when given, else ``base``'s or a known architecture's of the same width
    and depth (DiT and motion ViT); an unknown size is an error, not a guess."""
    def shape(key):
        if key not in shapes:
            raise FormatError(f"cannot infer the model size: the checkpoint has no {key!r}")
        return shapes[key]

    pe = shape("patch_embedding.weight")
    dim, in_ch = int(pe[0]), int(pe[1])
    patch = tuple(int(v) for v in pe[2:])
    layers = 1 + max(int(m.group(1)) for k in shapes if (m := re.match(r"blocks\.(\d+)\.", k)))
    out = int(shape("head.head.weight")[0]) // (patch[0] * patch[1] * patch[2])
    heads = _known_heads("transformer", dim, layers, (base.dim, base.num_layers, base.num_heads), _KNOWN_DIT_HEADS,
                         [(c.dim, c.num_layers, c.num_heads) for c in NAMED_CONFIGS.values()], num_heads)
    changes = dict(
        dim=dim,
        num_heads=heads,
        num_layers=layers,
        ffn_dim=int(shape("blocks.0.ffn.0.weight")[0]),
        freq_dim=int(shape("time_embedding.0.weight")[1]),
        text_dim=int(shape("text_embedding.0.weight")[1]),
        patch_size=patch,
        latent_channels=out,
        image_dim=int(shapes["img_emb.proj.0.weight"][0]) if "img_emb.proj.0.weight" in shapes else None,
        use_reference_tokens="ref_conv.weight" in shapes,
        use_mpm="blocks.0.spatial_guidance_self.gate" in shapes,
    )
    if in_ch not in (4 * out, 3 * out):
        raise FormatError(f"patch embedding takes {in_ch} channels; expected {4 * out} (or {3 * out} before depth widening)")
    if changes["use_mpm"]:
        conv = shape("omnimae_extractor.trunk.patch_embed.proj.1.weight")
        depth = 1 + max(int(m.group(1)) for k in shapes if (m := re.match(r"omnimae_extractor\.trunk\.blocks\.(\d+)\.", k)))
        embed = int(conv[0])
        me = base.motion_encoder
        vit_heads = _known_heads("motion ViT", embed, depth, (me.embed_dim, me.depth, me.num_heads), _KNOWN_VIT_HEADS,
                                 [(c.motion_encoder.embed_dim, c.motion_encoder.depth, c.motion_encoder.num_heads)
                                  for c in NAMED_CONFIGS.values()], None)
        changes["motion_encoder"] = MotionEncoderConfig(
            embed_dim=embed, depth=depth, num_heads=vit_heads,
            mlp_ratio=shape("omnimae_extractor.trunk.blocks.0.mlp.fc1.weight")[0] / embed,
            patch_size=int(conv[-1]), tubelet=int(conv[2]), image_size=me.image_size, pos_frames=me.pos_frames,
        )
    return base.replace(**changes)


def _widen_input(name: str, tensor: torch.Tensor, want: torch.Size) -> torch.Tensor | None:
    """Fun-Control checkpoints have 48 input channels; MoRe4D adds 16 depth channels, zero-initialized
    (as the authors' training does; their inference script fills them with noise instead)."""
    if name != "patch_embedding.weight" or tensor.ndim != 5 or tensor.shape[0] != want[0] or tensor.shape[1] >= want[1]:
        return None
    log.info("MoRe4D: widening the patch embedding from %d to %d input channels (zeros)", tensor.shape[1], want[1])
    wide = torch.zeros(want, dtype=tensor.dtype)
    wide[:, : tensor.shape[1]] = tensor
    return wide


def rebuild_rope(model, device) -> None:
    """Wan rotary tables are not stored in checkpoints: build them on the device after loading."""
    rope = model.rope
    if any(b.is_meta for b in rope.buffers()):
        model.rope = WanRotaryPosEmbed(rope.attention_head_dim, rope.patch_size, rope.max_seq_len).to(device)


def rebuild_buffers(model: STraGTransformer, device: torch.device) -> None:
    """Recreate non-persistent / derived buffers after meta-device loading."""
    cfg = model.cfg
    rebuild_rope(model, device)
    if cfg.use_mpm:
        trunk = model.omnimae_extractor.trunk
        if trunk.pos_embed.is_meta:
            positions = trunk.pos_embed.shape[1]
            trunk.pos_embed = sinusoid_table(positions, cfg.motion_encoder.embed_dim).to(device)


def detect_layout(source: str | os.PathLike) -> str:
    """``"bundle"``, ``"diffusers"`` or ``"authors"`` for a transformer source."""
    source = Path(source)
    if source.is_file():
        return "bundle" if bundle.is_bundle(source) else "authors"
    if not source.is_dir():
        raise FileNotFoundError(f"transformer weights not found: {source}")
    cfg_file = source / "config.json"
    if cfg_file.is_file():
        data = json.loads(cfg_file.read_text())
        if data.get("_class_name") == STraGTransformer.__name__:
            return "diffusers"
    return "authors"


def load_transformer(
    source: str | os.PathLike,
    *,
    config: STraGConfig | str | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    strict: bool = True,
    num_heads: int | None = None,
    base: STraGConfig = MORE4D_14B,
    fp8: bool = False,
) -> tuple[STraGTransformer, LoadReport]:
    """Build the transformer described by (or given for) ``source`` and load its weights.

    ``fp8``: the linear layers of the transformer blocks hold float8 weights with per-tensor scales
    (:mod:`..models.fp8`), quantized layer by layer as they are read and computed in ``dtype`` — half
    the resident weights of bf16.

    ``config`` fixes the architecture; without it the layout's own config is used (bundle,
    diffusers ``config.json``) or, for the authors' layout, ``base`` updated from their Wan
    ``config.json`` and the tensor shapes.
    """
    if isinstance(config, str):
        config = get_config(config)
    source = Path(source)
    layout = detect_layout(source)
    if layout == "bundle":
        header = bundle.read_header(source)
        cfg = config or header.config
        weights = bundle.iter_component(source, "transformer")
        rename, dropped = None, None
    elif layout == "diffusers":
        data = json.loads((source / "config.json").read_text())
        cfg = config or STraGConfig.from_dict(data["stgconfig"])
        weights = iter_weights(source)
        rename, dropped = None, None
    else:
        all_weights = {_strip(k): v for k, v in read_weights(source).items()}
        if not keymap.looks_like_authors_layout(all_weights):
            raise FormatError(
                f"{source}: the tensor names are neither the authors' Wan layout nor ours "
                f"(first keys: {', '.join(list(all_weights)[:4])})"
            )
        cfg = config
        cfg_file = source / "config.json" if source.is_dir() else None
        if cfg is None:
            if cfg_file is not None and cfg_file.is_file():
                base = config_from_wan_json(json.loads(cfg_file.read_text()), base)
            cfg = config_from_weights({k: v.shape for k, v in all_weights.items()}, base, num_heads)
        weights = all_weights.items()
        rename, dropped = keymap.authors_to_ours, keymap.dropped_reason
    with torch.device("meta"):
        model = STraGTransformer.from_stgconfig(cfg)
    expand = None
    if fp8:
        quantize_linears(model, dtype, where=in_blocks)
        expand = quantize_on_load(model)
    report = load_into(
        model,
        weights,
        source=str(source),
        dtype=dtype,
        device=device,
        rename=rename,
        dropped=dropped,
        adapt=_widen_input,
        strict=strict,
        rebuild=rebuild_buffers,
        keep_fp32=STraGTransformer._keep_in_fp32_modules,
        expand=expand,
    )
    if not strict and report.missing:
        log.warning("MoRe4D: %s left %d tensors at their initial values", source, len(report.missing))
    model.eval()
    return model, report


def save_authors_layout(model: STraGTransformer, folder: str | os.PathLike, *, shards: int = 1) -> Path:
    """Write ``model`` with the authors' key names as sharded safetensors + a Wan ``config.json``
    (what the tests use to build checkpoints in the reference layout)."""
    from safetensors.torch import save_file

    from ..export.atomic import atomic_folder

    cfg = model.cfg
    state = {keymap.ours_to_authors(k): v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    keys = sorted(state)
    per = max(1, -(-len(keys) // shards))
    folder = Path(folder)
    with atomic_folder(folder, overwrite=True) as tmp:
        weight_map = {}
        for i in range(0, len(keys), per):
            name = f"diffusion_pytorch_model-{i // per + 1:05d}-of-{shards:05d}.safetensors"
            save_file({k: state[k] for k in keys[i : i + per]}, str(tmp / name))
            weight_map.update({k: name for k in keys[i : i + per]})
        (tmp / "diffusion_pytorch_model.safetensors.index.json").write_text(
            json.dumps({"metadata": {}, "weight_map": weight_map}, indent=1)
        )
        wan = {
            "dim": cfg.dim, "num_heads": cfg.num_heads, "num_layers": cfg.num_layers, "ffn_dim": cfg.ffn_dim,
            "freq_dim": cfg.freq_dim, "eps": cfg.eps, "text_len": cfg.text_len, "text_dim": cfg.text_dim,
            "in_dim": cfg.in_channels, "out_dim": cfg.latent_channels, "patch_size": list(cfg.patch_size),
            "model_type": "i2v" if cfg.image_dim is not None else "t2v", "add_ref_conv": cfg.use_reference_tokens,
            "use_omnimae_guidance": cfg.use_mpm,
        }
        (tmp / "config.json").write_text(json.dumps(wan, indent=1))
    return folder



def load_motion_encoder(model: STraGTransformer, source: str | os.PathLike) -> LoadReport:
    """Replace the frozen ViT of the Motion Perception Module with weights from a local file, e.g.
    OmniMAE's ``vitb_pretrain.torch`` (read with ``weights_only=True``) or a safetensors copy.
    Keys may be ``trunk.*`` or ``omnimae_extractor.trunk.*``; the MAE decoder and head are skipped.
    Note that the authors' checkpoints carry their own (re-initialized) copy of these weights."""
    if not model.cfg.use_mpm:
        raise FormatError(f"model {model.cfg.name} has no Motion Perception Module to load weights into")
    encoder = model.omnimae_extractor
    device = next(encoder.parameters()).device
    dtype = next(encoder.parameters()).dtype

    def rename(key: str) -> str | None:
        key = key.removeprefix("omnimae_extractor.")
        return key if key.startswith("trunk.") else None

    def dropped(key: str) -> str | None:
        return keymap.dropped_reason(key if key.startswith("omnimae_extractor.") else f"omnimae_extractor.{key}")

    return load_into(encoder, iter_weights(source), source=str(source), dtype=dtype, device=device,
                     rename=rename, dropped=dropped)
