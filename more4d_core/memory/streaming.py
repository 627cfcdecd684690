"""Block streaming: a transformer whose blocks do not all fit on the device runs with the first N
blocks resident and the others kept in (pinned) CPU memory, each copied in just before it runs and
dropped after. On a CUDA device the copy of the next streamed block runs on a side stream while the
current block computes, so the transfers hide behind the compute; elsewhere (and on the fake tensors
of the memory estimate) the copies are plain ``.to(device)``.

At most two streamed blocks are on the device at any time (the running one and the prefetched one):
resident weights = non-block weights + N blocks, streaming buffers = 2 blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import InputError


def _slots(module: nn.Module, recurse: bool = True) -> list[tuple[nn.Module, str, bool]]:
    """``(owner, name, is_parameter)`` of every parameter and buffer under ``module`` (its own only
    without ``recurse``)."""
    out = []
    for mod in (module.modules() if recurse else [module]):
        out += [(mod, n, True) for n, p in mod._parameters.items() if p is not None]
        out += [(mod, n, False) for n, b in mod._buffers.items() if b is not None]
    return out


def _get(slot) -> torch.Tensor:
    mod, name, is_param = slot
    return (mod._parameters if is_param else mod._buffers)[name].detach()


def _set(slot, tensor: torch.Tensor) -> None:
    mod, name, is_param = slot
    if is_param:
        mod._parameters[name] = nn.Parameter(tensor, requires_grad=False)
    else:
        mod._buffers[name] = tensor


def _raw(slot):
    mod, name, is_param = slot
    return (mod._parameters if is_param else mod._buffers)[name]


def _put(slot, tensor) -> None:
    mod, name, is_param = slot
    (mod._parameters if is_param else mod._buffers)[name] = tensor


def move(module: nn.Module, device: torch.device | str) -> None:
    """Put an inference module's parameters and buffers on ``device`` (new tensors in the same slots;
    unlike ``Module.to`` this also moves the fake tensors of the memory estimate). Tied weights stay tied."""
    moved: dict[int, torch.Tensor] = {}
    for slot in _slots(module):
        old = _raw(slot)
        if id(old) in moved:
            _put(slot, moved[id(old)])
        else:
            _set(slot, _get(slot).to(device))
            moved[id(old)] = _raw(slot)


def _real_cuda(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_available()


class BlockStreamer:
    """Streams ``blocks[resident:]`` through ``device`` (see the module docstring). Use as
    ``BlockStreamer(model.blocks, device, resident).attach()``; :meth:`detach` removes the hooks and
    leaves the streamed blocks in CPU memory."""

    def __init__(self, blocks: Sequence[nn.Module], device: torch.device | str, resident: int, *,
                 pin_memory: bool = True):
        self.blocks = list(blocks)
        if not 0 <= resident <= len(self.blocks):
            raise InputError(f"resident blocks must be within 0..{len(self.blocks)}, got {resident}")
        self.device = torch.device(device)
        self.resident = int(resident)
        self.streamed = self.blocks[self.resident:]
        self._pin = pin_memory and _real_cuda(self.device)
        self._host: dict[int, list[tuple[tuple, torch.Tensor]]] = {}
        self._loaded: dict[int, bool] = {}
        self._events: dict[int, torch.cuda.Event] = {}
        self._stream = torch.cuda.Stream(self.device) if _real_cuda(self.device) else None
        self._handles: list = []
        self.transfers = 0  # blocks copied to the device so far

    # -- placement ---------------------------------------------------------------------------------
    def attach(self) -> BlockStreamer:
        for block in self.blocks[: self.resident]:
            move(block, self.device)
        for i, block in enumerate(self.streamed):
            pairs = []
            for slot in _slots(block):
                host = _get(slot).to("cpu")
                if self._pin:
                    host = host.pin_memory()
                _set(slot, host)
                pairs.append((slot, host))
            self._host[i] = pairs
            self._loaded[i] = False
            self._handles.append(block.register_forward_pre_hook(self._before(i)))
            self._handles.append(block.register_forward_hook(self._after(i)))
        return self

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for i in self._host:
            self._unload(i)

    def _load(self, i: int) -> None:
        if self._loaded[i]:
            return
        if self._stream is not None:
            self._stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self._stream):
                for slot, host in self._host[i]:
                    _set(slot, host.to(self.device, non_blocking=True))
                event = torch.cuda.Event()
                event.record(self._stream)
            self._events[i] = event
        else:
            for slot, host in self._host[i]:
                _set(slot, host.to(self.device))
        self._loaded[i] = True
        self.transfers += 1

    def _unload(self, i: int) -> None:
        for slot, host in self._host[i]:
            _set(slot, host)
        self._loaded[i] = False

    # -- hooks -----------------------------------------------------------------------------------
    def _before(self, i: int):
        def hook(module, args):
            self._load(i)
            event = self._events.pop(i, None)
            if event is not None:
                compute = torch.cuda.current_stream(self.device)
                compute.wait_event(event)
                for slot, _ in self._host[i]:  # allocated on the copy stream, used on this one
                    _get(slot).record_stream(compute)
            if len(self.streamed) > 1:  # the next streamed block's copy overlaps this block's compute
                self._load((i + 1) % len(self.streamed))
        return hook

    def _after(self, i: int):
        def hook(module, args, output):
            self._unload(i)
        return hook

    def device_blocks(self) -> int:
        """Streamed blocks whose weights are on the device now."""
        return sum(self._loaded.values())


def stream_blocks(model: nn.Module, device: torch.device | str, resident: int) -> BlockStreamer:
    """Everything of a transformer but its ``blocks`` on ``device`` (its own parameters and buffers and
    its other sub-modules), the blocks streamed with ``resident`` of them kept there."""
    for name, child in model.named_children():
        if name != "blocks":
            move(child, device)
    for slot in _slots(model, recurse=False):
        _set(slot, _get(slot).to(device))
    return BlockStreamer(model.blocks, device, resident).attach()

