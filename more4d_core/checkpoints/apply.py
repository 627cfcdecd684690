"""Putting weights into a model built on the meta device, with every mismatch reported by name.

The model skeleton costs no memory; each tensor read from disk is converted to the target dtype,
moved to the target device and *assigned* as the parameter, so a 14B model is never allocated
twice. Non-persistent buffers (rotary tables) are rebuilt afterwards on the target device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import FormatError
from ..models.fp8 import FLOAT8

MAX_LISTED = 12


class CheckpointMismatchError(FormatError):
    """The checkpoint does not fit the model: lists missing, unexpected and wrongly shaped keys."""


@dataclass
class LoadReport:
    loaded: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count of intentionally skipped keys

    def summary(self) -> str:
        parts = [f"{self.loaded} tensors loaded"]
        if self.dropped:
            parts.append("skipped " + ", ".join(f"{n} x {why}" for why, n in self.dropped.items()))
        return "; ".join(parts)


def _listing(title: str, keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_LISTED])
    more = f" ... and {len(keys) - MAX_LISTED} more" if len(keys) > MAX_LISTED else ""
    return f"{title} ({len(keys)}): {shown}{more}"


def kept_in_fp32(name: str, keep: Iterable[str]) -> bool:
    """Whether the tensor or module at the dotted ``name`` lies inside a module named in ``keep`` (a model's
    ``_keep_in_fp32_modules``: any part of the name): such tensors load as float32 whatever the model's dtype."""
    return not set(keep).isdisjoint(name.split("."))


def _placed(name: str, tensor: torch.Tensor, dtype: torch.dtype | None, device: torch.device, keep: set) -> torch.Tensor:
    """A checkpoint tensor in the dtype and on the device it will have in the model."""
    target_dtype = tensor.dtype
    stored_as_is = tensor.dtype in FLOAT8 or name.endswith("scale_weight")
    if dtype is not None and tensor.is_floating_point() and not stored_as_is:
        target_dtype = torch.float32 if kept_in_fp32(name, keep) else dtype
    tensor = tensor.to(device=device, dtype=target_dtype)
    if tensor.device.type == "cpu" and tensor.data_ptr() % 64:
        # safetensors hands out tensors at arbitrary offsets; BLAS picks other kernels for
        # unaligned data (slower, and not bit-identical to a freshly built model)
        tensor = tensor.clone()
    return tensor


def load_into(
    model: nn.Module,
    weights: Iterable[tuple[str, torch.Tensor]],
    *,
    source: str,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    rename: Callable[[str], str | None] | None = None,
    dropped: Callable[[str], str | None] | None = None,
    adapt: Callable[[str, torch.Tensor, torch.Size], torch.Tensor | None] | None = None,
    strict: bool = True,
    rebuild: Callable[[nn.Module, torch.device], None] | None = None,
    keep_fp32: Iterable[str] = (),
    expand: Callable[[str, torch.Tensor], Iterable[tuple[str, torch.Tensor]]] | None = None,
) -> LoadReport:
    """Load ``weights`` into ``model`` (usually on the meta device) and return a report.

    ``rename`` maps checkpoint keys to model keys (None = unknown key); ``dropped`` names keys that
    are skipped on purpose; ``adapt(key, tensor, expected_shape)`` may reshape a tensor of another
    shape (e.g. widen an input conv) or return None to report a mismatch; ``rebuild`` recreates
    non-persistent state on the device; tensors inside modules named in ``keep_fp32`` stay float32
    whatever ``dtype`` is (norms, modulation tables, time embedding); ``expand(name, tensor)`` turns one
    renamed tensor into the model tensors it stands for (e.g. a bf16 weight into a float8 weight and
    its scale, see :mod:`..models.fp8`). float8 tensors and scales keep their dtype. Raises
    :class:`CheckpointMismatchError` on shape mismatches, and on missing or unexpected keys when ``strict``.
    """
    device = torch.device(device)
    keep = set(keep_fp32)
    expected = {k: v for k, v in model.state_dict(keep_vars=True).items()}
    report = LoadReport()
    state: dict[str, torch.Tensor] = {}
    for key, tensor in weights:
        why = dropped(key) if dropped else None
        if why is not None:
            report.dropped[why] = report.dropped.get(why, 0) + 1
            continue
        name = rename(key) if rename else key
        if name is None or name not in expected:
            report.unexpected.append(key)
            continue
        want = expected[name].shape
        if tensor.shape != want:
            fixed = adapt(name, tensor, want) if adapt else None
            if fixed is None:
                report.mismatched.append(f"{key}: checkpoint {list(tensor.shape)} vs model {list(want)}")
                continue
            tensor = fixed
        for part, value in (expand(name, tensor) if expand else ((name, tensor),)):
            state[part] = _placed(part, value, dtype, device, keep)
    report.loaded = len(state)
    for name, tensor in state.items():
        if name in expected and tensor.shape != expected[name].shape:
            report.mismatched.append(f"{name}: checkpoint {list(tensor.shape)} vs model {list(expected[name].shape)}")
    report.missing = sorted(k for k in expected if k not in state)

    problems = []
    if report.mismatched:
        problems.append(_listing("shape mismatches", report.mismatched))
    if strict and report.missing:
        problems.append(_listing("missing from the checkpoint", report.missing))
    if strict and report.unexpected:
        problems.append(_listing("unexpected in the checkpoint", report.unexpected))
    if problems:
        raise CheckpointMismatchError(
            f"{source} does not match the model ({getattr(model, 'cfg', None) and model.cfg.name or type(model).__name__}): "
            + "; ".join(problems)
            + ". Check that the checkpoint and the chosen config belong together."
        )
    # a meta skeleton takes the loaded tensors as they are; a live model (optimizer and hooks hold
    # its parameters) is updated in place
    skeleton = any(t.is_meta for t in expected.values())
    model.load_state_dict(state, strict=False, assign=skeleton)
    if rebuild is not None:
        rebuild(model, device)
    leftovers = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if leftovers:
        raise CheckpointMismatchError(_listing(f"{source}: these tensors were never loaded", leftovers))
    return report
