"""A byte-bounded LRU cache for decoded episodes / clips (one per DataLoader worker process).

Decoding a video is the expensive part of loading a sample; a sample decodes its episode once
and neighbouring samples of the same episode (common with short datasets and many epochs)
reuse it. The budget is per process: total memory is about budget x (workers + 1).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

import numpy as np

V = TypeVar("V")


def nbytes(value: Any) -> int:
    """Bytes held by numpy arrays inside `value` (dicts, lists, tuples, dataclass-free)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(nbytes(v) for v in value)
    if hasattr(value, "__dict__"):
        return nbytes(vars(value))
    return 0


class LruCache(Generic[V]):
    def __init__(self, budget_bytes: int) -> None:
        if budget_bytes < 0:
            raise ValueError(f"budget_bytes={budget_bytes}: must be >= 0")
        self.budget_bytes = budget_bytes
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, load: Callable[[], V]) -> V:
        if key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key][0]
        self.misses += 1
        value = load()
        size = nbytes(value)
        if size <= self.budget_bytes:
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.budget_bytes:
                _, (_, evicted) = self._items.popitem(last=False)
                self._bytes -= evicted
        return value

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)
