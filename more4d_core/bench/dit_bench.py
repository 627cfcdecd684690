"""Trajectory DiT: one denoising step with MAdaNorm + reference tokens against stock diffusers.

Times one CFG-batched forward (batch 2) of our transformer and of diffusers'
``WanTransformer3DModel`` with the same width and depth, in one process, and prints the overhead
at equal token count (the stock model gets one more latent frame, as many tokens as our
reference frame adds) and at equal latent size.
"""

from __future__ import annotations

import argparse
import time

import torch

from ..models.config import get_config
from ..models.dit import STraGTransformer

TARGET_OVERHEAD = 0.15


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="more4d-small", help="named config (default more4d-small)")
    parser.add_argument("--height", type=int, default=None, help="pixel grid height (default: the config's)")
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])


def _stock(cfg, device, dtype):
    from diffusers import WanTransformer3DModel

    model = WanTransformer3DModel(
        patch_size=cfg.patch_size, num_attention_heads=cfg.num_heads, attention_head_dim=cfg.head_dim,
        in_channels=cfg.in_channels, out_channels=cfg.latent_channels, text_dim=cfg.text_dim, freq_dim=cfg.freq_dim,
        ffn_dim=cfg.ffn_dim, num_layers=cfg.num_layers, cross_attn_norm=cfg.cross_attn_norm, eps=cfg.eps,
        image_dim=cfg.image_dim, added_kv_proj_dim=cfg.dim if cfg.image_dim else None,
    )
    return _cast(model, device, dtype)


def _cast(model, device, dtype):
    model = model.to(device)
    # mixed precision the way the loaders do it: fp32 norms / modulation tables, the rest in dtype
    if dtype != torch.float32:
        keep = set(model._keep_in_fp32_modules or [])
        for name, param in model.named_parameters():
            if not keep.intersection(name.split(".")):
                param.data = param.data.to(dtype)
    return model.eval()


def _best(fn, repeats: int, device: torch.device) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def run(args: argparse.Namespace) -> int:
    cfg = get_config(args.config)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    h, w, frames = args.height or cfg.height, args.width or cfg.width, args.frames or cfg.num_frames
    cfg.check_size(h, w, frames)
    tl, lh, lw = cfg.latent_frames(frames), h // cfg.spatial_compression, w // cfg.spatial_compression
    torch.manual_seed(0)
    ours = _cast(STraGTransformer.from_stgconfig(cfg), device, dtype)
    if cfg.use_mpm:
        for blk in ours.blocks:  # a trained-looking module, not the zero-gate identity
            blk.spatial_guidance_self.gate.data.normal_()
            blk.spatial_guidance_ffn.gate.data.normal_()
    stock = _stock(cfg, device, dtype)
    g = torch.Generator().manual_seed(0)
    c = cfg.latent_channels

    def rand(*shape):
        return torch.randn(*shape, generator=g).to(device, dtype)

    x = rand(2, 4 * c, tl, lh, lw)
    x_more = rand(2, 4 * c, tl + 1, lh, lw)
    t = torch.tensor([800.0, 800.0], device=device)
    text = rand(2, cfg.text_len, cfg.text_dim)
    img = rand(2, cfg.image_tokens, cfg.image_dim) if cfg.image_dim else None
    ref = rand(2, c, lh, lw) if cfg.use_reference_tokens else None
    with torch.no_grad():
        motion = ours.encode_motion(torch.rand(2, 3, h, w, generator=g).to(device, dtype)) if cfg.use_mpm else None

        def ours_full():
            return ours(x, t, text, image_tokens=img, reference_latent=ref, motion_features=motion)

        def ours_plain():
            return ours(x, t, text, image_tokens=img)

        def stock_same_latent():
            return stock(x, t, text, encoder_hidden_states_image=img, return_dict=False)

        def stock_same_tokens():
            return stock(x_more, t, text, encoder_hidden_states_image=img, return_dict=False)

        times = {name: _best(fn, args.repeats, device) for name, fn in (
            ("ours", ours_full), ("ours_plain", ours_plain), ("stock", stock_same_latent), ("stock_tokens", stock_same_tokens))}

    p_t, p_h, p_w = cfg.patch_size
    tokens = tl * (lh // p_h) * (lw // p_w)
    ref_tokens = (lh // p_h) * (lw // p_w) if cfg.use_reference_tokens else 0
    where = f"{device.type} ({torch.get_num_threads()} threads)" if device.type == "cpu" else torch.cuda.get_device_name(device)
    print(f"config     : {cfg.name} (dim {cfg.dim}, {cfg.num_layers} blocks, {cfg.num_heads} heads), {args.dtype}, {where}")
    print(f"workload   : batch 2 (CFG), {frames} frames {w}x{h} -> latent {tl}x{lh}x{lw}, "
          f"{tokens} video tokens + {ref_tokens} reference tokens")
    print(f"ours       : {times['ours']:.4f} s per step (MAdaNorm lambda=1 + reference tokens)")
    print(f"ours plain : {times['ours_plain']:.4f} s per step (no MPM, no reference tokens)")
    print(f"stock      : {times['stock']:.4f} s at equal latent size, {times['stock_tokens']:.4f} s at equal token count "
          f"({tokens + (lh // p_h) * (lw // p_w)} tokens)")
    overhead = times["ours"] / times["stock_tokens"] - 1
    verdict = "meets" if overhead <= TARGET_OVERHEAD else "MISSES"
    print(f"overhead   : {overhead * 100:+.1f}% vs stock at equal token count ({verdict} the <= "
          f"{TARGET_OVERHEAD * 100:.0f}% target); {(times['ours'] / times['stock'] - 1) * 100:+.1f}% vs stock at "
          f"equal latent size (the reference frame's extra tokens included); plain path "
          f"{(times['ours_plain'] / times['stock'] - 1) * 100:+.1f}% vs stock")
    return 0
