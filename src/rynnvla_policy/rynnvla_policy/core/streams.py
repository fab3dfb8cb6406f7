"""Two CPU streams: the calling thread and one worker thread, side by side.

The tiny model's kernels are small (matrices of ~190 x 192, 8x10-pixel convolutions): with two
intra-op threads most of them either stay on one thread (MKL's small-GEMM heuristics) or spend
their time waking and joining OpenMP workers. An inference step, though, splits into two nearly
independent halves (the cameras; the two halves of the prompt, layer-pipelined), so on a CPU
with two or more intra-op threads each half gets its own thread and half the intra-op threads:
the halves run in parallel and never synchronise inside a kernel.

Intra-op thread counts are process-wide in PyTorch: ``run`` lowers them for its duration and
restores them, one ``run`` at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

A = TypeVar("A")
B = TypeVar("B")


class StreamAborted(RuntimeError):
    """The other stream failed, so this one stopped waiting for it."""


class LayerHandoff:
    """Per-layer signals from the stream computing a prompt's first chunk to the stream
    computing the rest: chunk one's keys/values of layer ``i`` are in the cache."""

    def __init__(self, layers: int) -> None:
        self._done = [threading.Event() for _ in range(layers)]
        self._aborted = False

    def done(self, layer: int) -> None:
        self._done[layer].set()

    def abort(self) -> None:
        """Release every waiter with ``StreamAborted`` (the first chunk failed)."""
        self._aborted = True
        for event in self._done:
            event.set()

    def wait(self, layer: int) -> None:
        self._done[layer].wait()
        if self._aborted:
            raise StreamAborted(f"the first prompt chunk failed before layer {layer}")


class TwoStreams:
    """``run(mine, theirs)``: ``mine`` on the calling thread, ``theirs`` on a worker thread."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @staticmethod
    def worthwhile(device: torch.device) -> bool:
        """Two streams pay off on a CPU with at least two intra-op threads."""
        return device.type == "cpu" and torch.get_num_threads() >= 2

    def run(
        self,
        mine: Callable[[], A],
        theirs: Callable[[], B],
        on_mine_failed: Callable[[], None] = lambda: None,
    ) -> tuple[A, B]:
        """Both results; each side runs with half the intra-op threads. When ``mine`` raises,
        ``on_mine_failed`` runs (to release a ``theirs`` waiting on it), the worker is joined
        and ``mine``'s exception propagates; otherwise ``theirs``' exception does."""
        threads = torch.get_num_threads()
        half = max(1, threads // 2)
        with self._lock:
            torch.set_num_threads(half)
            try:
                future = self._worker().submit(_with_threads, theirs, half)
                try:
                    result = mine()
                except BaseException:
                    on_mine_failed()
                    future.exception()  # joined; its error is a consequence of ours
                    raise
                return result, future.result()
            finally:
                torch.set_num_threads(threads)

    def close(self) -> None:
        """Stop the worker thread (a later ``run`` starts a new one)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _worker(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rynnvla-stream")
        return self._pool


def _with_threads(fn: Callable[[], B], threads: int) -> B:
    # OpenMP's and MKL's thread counts are per thread: set them in the worker too.
    torch.set_num_threads(threads)
    return fn()
