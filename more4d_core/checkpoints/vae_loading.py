"""Loading the Wan2.1 video VAE (diffusers ``AutoencoderKLWan``) and the trajectory adaptors.

VAE sources: a diffusers folder (``config.json`` + safetensors, or a Wan repository with a
``vae/`` sub-folder), the original ``Wan2.1_VAE.pth`` or the authors' fine-tuned VAE
(``vae/pytorch_model.bin``, keys prefixed ``model.``) — pickles only via ``weights_only=True``.
Adaptors: the authors' ``encoder_prompt/`` and ``decoder_prompt/`` folders (``pytorch_model.bin``)
or safetensors files with the same keys.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..errors import FormatError
from ..models.vae_adaptors import DecoderAdaptor, EncoderAdaptor
from .apply import load_into
from .io import PICKLE_SUFFIXES, read_weights


def _strip_model_prefix(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if weights and all(k.startswith("model.") for k in weights):
        return {k[len("model.") :]: v for k, v in weights.items()}
    return weights


def _weights_file(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def load_wan_vae(
    source: str | os.PathLike, *, config: dict | None = None, dtype: torch.dtype = torch.float32, device="cpu"
) -> nn.Module:
    """The Wan VAE from ``source``. Single weight files carry no config: they are loaded into the
    standard Wan2.1 VAE unless ``config`` (``AutoencoderKLWan`` arguments) says otherwise."""
    from diffusers import AutoencoderKLWan

    source = Path(source)
    if source.is_dir():
        if (source / "vae").is_dir():
            return load_wan_vae(source / "vae", config=config, dtype=dtype, device=device)
        if (source / "config.json").is_file():
            vae = AutoencoderKLWan.from_pretrained(source, torch_dtype=dtype, use_safetensors=True)
            return vae.to(device).eval()
        found = _weights_file(source, ("diffusion_pytorch_model.safetensors", "pytorch_model.bin", "Wan2.1_VAE.pth"))
        if found is None:
            raise FileNotFoundError(
                f"no Wan VAE in {source}: expected config.json + safetensors (diffusers), Wan2.1_VAE.pth or "
                "the authors' pytorch_model.bin"
            )
        source = found
    if not source.is_file():
        raise FileNotFoundError(f"Wan VAE not found: {source}")
    weights = _strip_model_prefix(read_weights(source))
    if any(k.startswith("encoder.downsamples.") or k.startswith("encoder.conv1.") for k in weights):
        from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

        weights = convert_wan_vae_to_diffusers(weights)  # original Wan naming -> diffusers
    kwargs = {k: v for k, v in dict(config or {}).items() if not k.startswith("_")}
    with torch.device("meta"):
        vae = AutoencoderKLWan(**kwargs)
    load_into(vae, weights.items(), source=str(source), dtype=dtype, device=device)
    return vae.eval()


def load_adaptor(source: str | os.PathLike, kind: str, channels: int = 128, *, dtype=torch.float32, device="cpu") -> nn.Module:
    """``kind`` is ``"encoder"`` or ``"decoder"``; ``source`` a file or an authors' ``*_prompt`` folder."""
    if kind not in ("encoder", "decoder"):
        raise ValueError("adaptor kind must be 'encoder' or 'decoder'")
    source = Path(source)
    if source.is_dir():
        found = _weights_file(source, ("model.safetensors", "diffusion_pytorch_model.safetensors", "pytorch_model.bin"))
        if found is None:
            raise FileNotFoundError(f"no adaptor weights in {source}: expected model.safetensors or pytorch_model.bin")
        source = found
    if source.suffix not in PICKLE_SUFFIXES + (".safetensors",):
        raise FormatError(f"{source}: adaptor weights must be .safetensors (or a legacy .bin)")
    weights = _strip_model_prefix(read_weights(source))
    with torch.device("meta"):
        module = EncoderAdaptor(channels) if kind == "encoder" else DecoderAdaptor(channels)
    load_into(module, weights.items(), source=str(source), dtype=dtype, device=device)
    return module.eval()
