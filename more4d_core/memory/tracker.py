"""Live device memory of a traced computation, without a device: run it on fake tensors (torch's
``FakeTensorMode``: shapes, dtypes and devices, no data) and count every storage that comes into being
on the device until its last tensor dies.

Two corrections make the CPU trace say what a GPU would allocate:

* attention: on fake CUDA tensors ``scaled_dot_product_attention`` decomposes into the math path
  (a sequence x sequence matrix per head, GiBs at 10k tokens), which the flash / memory-efficient
  kernels a GPU runs never allocate. :class:`FlashAttentionMemory` replaces the call by what those
  kernels hold: the output and the float32 log-sum-exp per query row.
* storages are counted once, however many views share them, and released when the last view dies.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

GIB = 1024**3
_COPIES = (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default)


@dataclass
class MemoryTrace:
    """Bytes on the device by category; ``peak`` is the highest total seen and ``at_peak`` its split."""

    live: dict[str, int] = field(default_factory=dict)
    peak: int = 0
    at_peak: dict[str, int] = field(default_factory=dict)

    def add(self, category: str, nbytes: int) -> None:
        self.live[category] = self.live.get(category, 0) + nbytes
        total = sum(self.live.values())
        if total > self.peak:
            self.peak, self.at_peak = total, dict(self.live)

    def total(self) -> int:
        return sum(self.live.values())


class DeviceMemoryTracker(TorchDispatchMode):
    """Counts the storages created on ``device`` by every op run inside it (category ``"activations"``
    unless :meth:`category` says otherwise); :meth:`hold` registers tensors that already exist."""

    def __init__(self, device: str = "cuda", trace: MemoryTrace | None = None):
        super().__init__()
        self.device_type = torch.device(device).type
        self.trace = trace or MemoryTrace()
        self.current = "activations"
        self._seen: dict[int, tuple[str, int]] = {}

    def hold(self, tensors, category: str) -> None:
        for t in tensors:
            self._count(t, category)

    def _count(self, t, category: str) -> None:
        if not isinstance(t, torch.Tensor) or t.device.type != self.device_type:
            return
        storage = t.untyped_storage()
        key = storage._cdata
        if key in self._seen:
            return
        nbytes = storage.nbytes()
        self._seen[key] = (category, nbytes)
        self.trace.add(category, nbytes)
        weakref.finalize(storage, self._release, key)

    def _release(self, key: int) -> None:
        category, nbytes = self._seen.pop(key, (None, 0))
        if category is not None:
            self.trace.add(category, -nbytes)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        category = self.current
        if category == "activations" and func in _COPIES and isinstance(args[0], torch.Tensor) \
                and args[0].device.type == "cpu":
            category = "streaming"  # a host-to-device copy while the model runs: streamed weights
        for t in tree_flatten(out)[0]:
            self._count(t, category)
        return out


class FlashAttentionMemory(TorchFunctionMode):
    """``scaled_dot_product_attention`` as a fused GPU kernel allocates it: the output and the float32
    log-sum-exp of each query row (freed when the call returns), never the score matrix."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.scaled_dot_product_attention:
            q, v = (args[0] if args else kwargs["query"]), (args[2] if len(args) > 2 else kwargs["value"])
            lse = torch.empty(q.shape[:-1], dtype=torch.float32, device=q.device)
            out = torch.empty(*q.shape[:-1], v.shape[-1], dtype=q.dtype, device=q.device)
            del lse
            return out
        return func(*args, **kwargs)
