"""float8 weights: linear layers stored as ``float8_e4m3fn`` with a per-tensor scale, computed in bf16.

The format is ComfyUI's "fp8_scaled": each quantized layer keeps ``weight`` in float8 (e4m3fn, finite
range +-448) and ``scale_weight``, a float32 scalar, with ``W = weight.to(bf16) * scale_weight``.
A plain float8 file (no scales) is the same with a scale of 1. Quantizing a bf16 / fp32 layer picks
``scale = max|W| / 448``, so the largest weight maps to the largest finite float8 value and no weight
saturates. Only the weight matrix is stored in float8 (bias, norms and embeddings keep their dtype);
the product is computed in the compute dtype, so any device that can multiply bf16 can run it, and
the float8 copy halves the resident weight memory of a bf16 model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

FP8 = torch.float8_e4m3fn
FLOAT8 = (torch.float8_e4m3fn, torch.float8_e5m2)  # the float8 dtypes a checkpoint may hold
FP8_MAX = float(torch.finfo(FP8).max)  # 448


def quantize(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(float8 weight, float32 scale)`` with ``weight ~= q.float() * scale``."""
    w = weight.detach().float()
    scale = (w.abs().amax() / FP8_MAX).clamp(min=1e-12)
    return (w / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8), scale.reshape(())


class FP8Linear(nn.Module):
    """``nn.Linear`` with a float8 weight and a per-tensor scale (state dict: ``weight``, ``scale_weight``,
    ``bias``; ComfyUI's fp8_scaled names)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 compute_dtype: torch.dtype = torch.bfloat16, device=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.compute_dtype = compute_dtype
        self.weight = nn.Parameter(torch.empty(out_features, in_features, dtype=FP8, device=device), requires_grad=False)
        self.scale_weight = nn.Parameter(torch.ones((), dtype=torch.float32, device=device), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=compute_dtype, device=device),
                                 requires_grad=False) if bias else None

    @classmethod
    def from_linear(cls, linear: nn.Linear, compute_dtype: torch.dtype = torch.bfloat16) -> FP8Linear:
        """Quantize a linear layer (its weight on its own device; the bias cast to ``compute_dtype``)."""
        out = cls(linear.in_features, linear.out_features, linear.bias is not None, compute_dtype=compute_dtype,
                  device="meta")
        q, scale = quantize(linear.weight)
        out.weight = nn.Parameter(q, requires_grad=False)
        out.scale_weight = nn.Parameter(scale.to(q.device), requires_grad=False)
        if linear.bias is not None:
            out.bias = nn.Parameter(linear.bias.detach().to(compute_dtype), requires_grad=False)
        return out

    def dequantized(self) -> torch.Tensor:
        return self.weight.to(self.compute_dtype) * self.scale_weight.to(self.compute_dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(self.compute_dtype)
        out = F.linear(x.to(self.compute_dtype), self.dequantized(), bias)
        return out if x.dtype in FLOAT8 else out.to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, float8 e4m3fn"


def quantize_linears(module: nn.Module, compute_dtype: torch.dtype = torch.bfloat16, *,
                     where: Callable[[str, nn.Linear], bool] | None = None) -> list[str]:
    """Replace the ``nn.Linear`` layers of ``module`` (those ``where(name, layer)`` accepts; default:
    all) by :class:`FP8Linear`, in place; returns the replaced names."""
    replaced = []
    for name, child in list(module.named_modules()):
        for child_name, layer in list(child.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(layer, nn.Linear) and (where is None or where(full, layer)):
                setattr(child, child_name, FP8Linear.from_linear(layer, compute_dtype))
                replaced.append(full)
    return replaced


def in_blocks(name: str, layer: nn.Linear) -> bool:
    """The layers worth quantizing in a DiT: the linear layers of its transformer blocks (attention,
    cross-attention, feed-forward, MAdaNorm), which hold nearly all its weights."""
    return name.startswith("blocks.")


def in_umt5_blocks(name: str, layer: nn.Linear) -> bool:
    """The umT5 encoder's block layers, except the FFN output ``wo``: transformers casts that layer's
    input to its weight's dtype (a float8 cast of the activations, with no scale)."""
    return name.startswith("encoder.block.") and not name.endswith(".wo")


def fp8_layers(module: nn.Module) -> Iterable[tuple[str, FP8Linear]]:
    return ((n, m) for n, m in module.named_modules() if isinstance(m, FP8Linear))


def quantize_on_load(model: nn.Module) -> Callable[[str, torch.Tensor], Iterable[tuple[str, torch.Tensor]]]:
    """A ``load_into`` expander for a model whose layers are already :class:`FP8Linear`: a checkpoint's
    bf16 / fp32 weight of such a layer arrives as its float8 weight and scale, one layer at a time (a
    14B checkpoint is never held in bf16 as a whole); float8 weights (with their scales) pass as they are."""
    layers = {f"{name}.weight": name for name, _ in fp8_layers(model)}

    def expand(name: str, tensor: torch.Tensor) -> Iterable[tuple[str, torch.Tensor]]:
        if name in layers and tensor.dtype not in FLOAT8:
            q, scale = quantize(tensor)
            return ((name, q), (layers[name] + ".scale_weight", scale))
        return ((name, tensor),)

    return expand
