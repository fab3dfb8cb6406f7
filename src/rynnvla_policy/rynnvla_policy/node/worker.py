"""The inference thread: waits for fresh camera frames, runs one inference per period.

Inference never runs on the executor thread, so subscriptions, services, the watchdog and the
status timer keep running while the model works. Triggering is event driven: an inference
starts as soon as every camera has delivered a frame captured at or after the due time, so
the chunk's observation is as recent as possible and aligned to capture stamps (simulated time
included). When inference is slower than the period it runs back to back on the newest frames;
nothing queues up.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable

from rynnvla_policy.node.inputs import InputBuffers, Snapshot


class InferenceWorker:
    """Calls `run_once(snapshot)` at most once per period, on its own thread."""

    def __init__(
        self,
        buffers: InputBuffers,
        run_once: Callable[[Snapshot], None],
        now_ns: Callable[[], int],
        period_ns: int,
        step_ns: int,
        should_run: Callable[[], bool],
        on_crash: Callable[[str], None],
        name: str = "rynnvla_inference",
    ):
        self._buffers = buffers
        self._run_once = run_once
        self._now_ns = now_ns
        self._period_ns = period_ns
        # A frame up to half a step early still counts as on time (camera jitter).
        self._tolerance_ns = step_ns // 2
        self._should_run = should_run
        self._on_crash = on_crash
        self._stop = threading.Event()
        self._next_due_ns: int | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.iterations = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Ask the loop to end and wait for it (an inference in progress finishes first)."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def restart_schedule(self) -> None:
        """Run on the next fresh frame set instead of waiting for the due time."""
        self._next_due_ns = None

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        seen = self._buffers.sequences()
        while not self._stop.is_set():
            if not self._buffers.wait_for_new(seen, timeout_s=0.1):
                continue
            seen = self._buffers.sequences()
            if self._stop.is_set() or not self._should_run():
                continue
            snapshot = self._buffers.snapshot(self._now_ns())
            if not isinstance(snapshot, Snapshot) or not self._due(snapshot.stamp_ns):
                continue  # stale inputs are the watchdog's business
            self._next_due_ns = snapshot.stamp_ns + self._period_ns - self._tolerance_ns
            try:
                self._run_once(snapshot)
            except Exception:  # run_once handles its errors; this is the last line of defence
                self._on_crash(traceback.format_exc(limit=5))
            self.iterations += 1

    def _due(self, stamp_ns: int) -> bool:
        due = self._next_due_ns
        if due is None:
            return True
        if stamp_ns < due - 2 * self._period_ns:
            return True  # the clock jumped back (simulation reset): start a new schedule
        return stamp_ns >= due
