"""Sliding-window latency and rate statistics for status reports (pure)."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np


class Window:
    """The last `size` values of a measurement; thread-safe."""

    def __init__(self, size: int = 200):
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, value: float) -> None:
        with self._lock:
            self._values.append(float(value))

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def values(self) -> np.ndarray:
        with self._lock:
            return np.array(self._values, dtype=np.float64)

    def last(self) -> float:
        with self._lock:
            return self._values[-1] if self._values else 0.0

    def mean(self) -> float:
        values = self.values()
        return float(values.mean()) if values.size else 0.0

    def percentile(self, q: float) -> float:
        values = self.values()
        return float(np.percentile(values, q)) if values.size else 0.0

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)


class RateMeter:
    """Events per second over the last `horizon_s` seconds (monotonic clock given by caller)."""

    def __init__(self, horizon_s: float = 5.0):
        self.horizon_s = horizon_s
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now_s: float) -> None:
        with self._lock:
            self._times.append(now_s)
            self._trim(now_s)

    def rate(self, now_s: float) -> float:
        with self._lock:
            self._trim(now_s)
            if len(self._times) < 2:
                return 0.0
            span = now_s - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self, now_s: float) -> None:
        while self._times and now_s - self._times[0] > self.horizon_s:
            self._times.popleft()
