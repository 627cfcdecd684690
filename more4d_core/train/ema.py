"""Exponential moving average of trainable parameters (kept in float32)."""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    def __init__(self, module: nn.Module, decay: float = 0.999):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.names = [n for n, p in module.named_parameters() if p.requires_grad]
        params = dict(module.named_parameters())
        self.shadow = {n: params[n].detach().float().clone() for n in self.names}

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        """Blend the current weights in; the effective decay warms up as ``(1 + step) / (10 + step)``."""
        decay = min(self.decay, (1 + step) / (10 + step))
        params = dict(module.named_parameters())
        self._follow(params)
        shadow = [self.shadow[n] for n in self.names]
        current = [params[n].detach().float() for n in self.names]
        torch._foreach_lerp_(shadow, current, 1.0 - decay)

    def _follow(self, params: dict[str, torch.Tensor]) -> None:
        """Keep the averages on the parameters' device: the EMA is made before the trainer moves the model
        (to a GPU, say), and an update must not mix devices."""
        if self.names and self.shadow[self.names[0]].device != params[self.names[0]].device:
            device = params[self.names[0]].device
            self.shadow = {n: t.to(device) for n, t in self.shadow.items()}

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        params = dict(module.named_parameters())
        for n in self.names:
            params[n].copy_(self.shadow[n].to(params[n].dtype))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averages in CPU memory (a checkpoint is written and resumed from there, whatever the device)."""
        return {n: t.to("cpu") for n, t in self.shadow.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(self.names) - set(state)
        if missing:
            raise KeyError(f"EMA state lacks {sorted(missing)[:5]}")
        for n in self.names:
            self.shadow[n].copy_(state[n])
