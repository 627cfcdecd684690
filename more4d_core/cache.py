"""The shared model cache: every loaded model lives here, once, between runs.

Models are keyed by what identifies their weights and how they were loaded (kind, source files with
their modification times, config, dtype, device). Nodes pass :class:`ModelHandle` objects — a key
into this cache — never modules. A :class:`MemoryManager` decides where models sit: the default one
keeps them on their device; inside ComfyUI the node layer installs one that asks ComfyUI's model
management to free memory before a load, moves idle models to the offload device, and drops them
when ComfyUI needs the memory.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import InputError

HANDLE_VERSION = 1


@dataclass(frozen=True)
class ModelHandle:
    """A reference to a model in the cache. ``kind`` says what it is ("trajectory", "completion", ...)."""

    kind: str
    key: tuple
    description: str
    options: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    version: int = HANDLE_VERSION

    def __repr__(self) -> str:
        return f"ModelHandle({self.kind}: {self.description})"


def source_fingerprint(*paths: str | os.PathLike | None) -> tuple:
    """(path, mtime, size) of every given file (folders: their newest file), so edited weights reload."""
    out = []
    for p in paths:
        if p is None:
            out.append(None)
            continue
        path = Path(p)
        if path.is_dir():
            files = [f for f in path.rglob("*") if f.is_file()]
            newest = max((f.stat().st_mtime for f in files), default=0.0)
            out.append((str(path.resolve()), newest, sum(f.stat().st_size for f in files)))
        elif path.is_file():
            st = path.stat()
            out.append((str(path.resolve()), st.st_mtime, st.st_size))
        else:
            out.append((str(path), None, None))
    return tuple(out)


def module_bytes(model) -> int:
    """Bytes of a module's (or a wrapper's) parameters and buffers."""
    buffers = list(model.buffers()) if hasattr(model, "buffers") else []
    return sum(t.numel() * t.element_size() for t in list(model.parameters()) + buffers)


class MemoryManager:
    """Where cached models live. The default keeps every model on the device it was loaded to."""

    def before_load(self, nbytes: int, device: torch.device) -> None:
        """Called before a model of about ``nbytes`` is loaded onto ``device``."""

    def activate(self, entry: CacheEntry) -> None:
        """Make ``entry.model`` ready to run on ``entry.device``."""

    def release(self, entry: CacheEntry) -> None:
        """``entry`` is idle (a node finished with it)."""

    def forget(self, entry: CacheEntry) -> None:
        """``entry`` is leaving the cache."""


@dataclass
class CacheEntry:
    handle: ModelHandle
    model: Any
    device: torch.device
    nbytes: int
    extra: dict[str, Any] = field(default_factory=dict)


class ModelCache:
    def __init__(self, manager: MemoryManager | None = None, max_entries: int = 8):
        self.manager = manager or MemoryManager()
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, CacheEntry] = OrderedDict()
        self._lock = threading.RLock()
        self.loads = 0
        self.hits = 0

    def set_manager(self, manager: MemoryManager) -> None:
        self.manager = manager

    def handle(self, kind: str, key: tuple, description: str, loader: Callable[[], Any], *,
               device: torch.device | str = "cpu", estimated_bytes: int = 0, options: dict | None = None) -> ModelHandle:
        """The handle for ``key``, loading the model with ``loader()`` only if it is not cached."""
        handle = ModelHandle(kind, (kind,) + tuple(key), description, dict(options or {}))
        with self._lock:
            if handle.key in self._entries:
                self._entries.move_to_end(handle.key)
                self.hits += 1
                return self._entries[handle.key].handle
            dev = torch.device(device)
            self.manager.before_load(estimated_bytes, dev)
            model = loader()
            nbytes = module_bytes(model) if hasattr(model, "parameters") else estimated_bytes
            self._entries[handle.key] = CacheEntry(handle, model, dev, nbytes)
            self.loads += 1
            while len(self._entries) > self.max_entries:
                _, old = self._entries.popitem(last=False)
                self.manager.forget(old)
            return handle

    def entry(self, handle: ModelHandle) -> CacheEntry:
        if not isinstance(handle, ModelHandle):
            raise InputError(f"expected a model handle from a MoRe4D loader node, got {type(handle).__name__}")
        with self._lock:
            found = self._entries.get(handle.key)
        if found is None:
            raise InputError(f"{handle.description} is no longer loaded (memory was freed); run the loader node again")
        return found

    def use(self, handle: ModelHandle):
        """Context manager giving the model ready on its device; marks it idle afterwards."""
        return _Use(self, self.entry(handle))

    def drop(self, handle: ModelHandle | None = None) -> int:
        """Remove one model (or all with None); returns how many were dropped."""
        with self._lock:
            keys = [handle.key] if handle is not None else list(self._entries)
            dropped = 0
            for k in keys:
                entry = self._entries.pop(k, None)
                if entry is not None:
                    self.manager.forget(entry)
                    dropped += 1
        if dropped and torch.cuda.is_available():
            torch.cuda.empty_cache()
        return dropped

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> dict[str, int]:
        return {"loaded_models": len(self._entries), "loads": self.loads, "hits": self.hits}


class _Use:
    def __init__(self, cache: ModelCache, entry: CacheEntry):
        self.cache, self.entry = cache, entry

    def __enter__(self):
        self.cache.manager.activate(self.entry)
        return self.entry.model

    def __exit__(self, *exc):
        self.cache.manager.release(self.entry)
        return False


MODEL_CACHE = ModelCache()
