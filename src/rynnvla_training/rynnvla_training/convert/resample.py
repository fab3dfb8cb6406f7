"""Streaming "as-of" resampling of several message streams onto a fixed frame grid.

Frame ``k`` has time ``t_k = t_0 + k / fps``. For every stream its sample at ``t_k`` is the
latest message stamped at or before ``t_k`` - never a message from the future. ``t_0`` is the
first time every required stream has a message; frames stop at the last time every required
stream still has one (trimming).

Streaming with bounded memory: messages are pushed in bag (receive) order; a frame is final
once every required stream has shown a message later than ``t_k + reorder_window`` (so a
slightly out-of-order message still lands in the right frame), or once the newest message
of any stream is ``max_wait`` ahead of ``t_k`` (a stalled stream never blocks forever, and
at most ``max_wait`` of messages is buffered). Messages older than one already used are
dropped and counted (non-monotonic stamps).

Stale latched messages (a transient-local message recorded long before the live data) are
dropped: a stream's leading message followed by a gap longer than ``latched_gap`` is one.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from typing import Any

NS_PER_S = 1_000_000_000


@dataclasses.dataclass(frozen=True)
class StreamSpec:
    """A stream to resample.

    max_age_ns: a sample older than this is stale at a frame (None: never stale).
    required: frames exist only where this stream has data (``t_0`` waits for it).
    filter_latched: drop stale latched leading messages.
    sparse: an event stream (e.g. the instruction): its messages are rare, so it neither
        holds frames back nor ends the episode; it must arrive in receive-time order.
    """

    name: str
    max_age_ns: int | None
    required: bool = True
    filter_latched: bool = True
    sparse: bool = False


@dataclasses.dataclass(frozen=True)
class Sample:
    stamp_ns: int
    payload: Any


@dataclasses.dataclass(frozen=True)
class Frame:
    """One resampled frame: the as-of sample of every stream (None: stream has no data yet)."""

    index: int
    time_ns: int
    samples: dict[str, Sample | None]

    def age_ns(self, name: str) -> int | None:
        sample = self.samples[name]
        return None if sample is None else self.time_ns - sample.stamp_ns


@dataclasses.dataclass
class StreamCounters:
    """What happened to a stream's messages (for the sync report)."""

    received: int = 0
    used: int = 0  # became the as-of sample of at least one frame
    stale_latched: int = 0  # leading messages dropped as stale latched
    out_of_order: int = 0  # older than a message already used: dropped
    late: int = 0  # accepted, but after a frame that should have seen it was final


class _Stream:
    def __init__(self, spec: StreamSpec):
        self.spec = spec
        self.pending: list[tuple[int, int, Any]] = []  # heap of (stamp, seq, payload)
        self.leading: list[tuple[int, int, Any]] = []  # held until the latched check passes
        self.current: Sample | None = None
        self.current_used = False
        self.started = False
        self.first_stamp: int | None = None
        self.max_seen: int | None = None
        self.counters = StreamCounters()

    def start(self) -> None:
        self.started = True
        for item in self.leading:
            heapq.heappush(self.pending, item)
        self.first_stamp = min(item[0] for item in self.leading) if self.leading else None
        self.leading = []

    def sample_at(self, time_ns: int) -> Sample | None:
        while self.pending and self.pending[0][0] <= time_ns:
            stamp, _, payload = heapq.heappop(self.pending)
            self.current, self.current_used = Sample(stamp, payload), False
        if self.current is not None and not self.current_used:
            self.current_used = True
            self.counters.used += 1
        return self.current


class AsOfResampler:
    """Push messages in receive order, get final frames back (see the module docstring)."""

    def __init__(
        self,
        specs: list[StreamSpec],
        fps: int,
        *,
        reorder_window_ns: int = 50_000_000,
        latched_gap_ns: int = NS_PER_S,
        max_wait_ns: int = NS_PER_S,
    ):
        if not any(spec.required for spec in specs):
            raise ValueError("at least one stream must be required")
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"stream names must be unique, got {names}")
        self.fps = fps
        self.reorder_window_ns = reorder_window_ns
        self.latched_gap_ns = latched_gap_ns
        self.max_wait_ns = max(max_wait_ns, reorder_window_ns)
        self._streams = {spec.name: _Stream(spec) for spec in specs}
        self._required = [s for s in self._streams.values() if s.spec.required]
        self._gating = [s for s in self._required if not s.spec.sparse]
        if not self._gating:
            raise ValueError("at least one required stream must not be sparse")
        self._seq = itertools.count()
        self._t0: int | None = None
        self._next_index = 0
        self._last_frame_ns: int | None = None
        self._newest_ns: int | None = None

    # ------------------------------------------------------------------ public

    @property
    def counters(self) -> dict[str, StreamCounters]:
        return {name: stream.counters for name, stream in self._streams.items()}

    @property
    def start_ns(self) -> int | None:
        """t_0, once known."""
        return self._t0

    def frame_time(self, index: int) -> int:
        assert self._t0 is not None
        return self._t0 + (index * NS_PER_S) // self.fps

    def push(self, name: str, stamp_ns: int, payload: Any) -> list[Frame]:
        """Add one message; returns the frames that became final (in order)."""
        stream = self._streams[name]
        stream.counters.received += 1
        item = (stamp_ns, next(self._seq), payload)
        if not stream.started:
            self._push_leading(stream, item)
        elif stream.current is not None and stamp_ns < stream.current.stamp_ns:
            stream.counters.out_of_order += 1
            return []
        else:
            if self._last_frame_ns is not None and stamp_ns <= self._last_frame_ns:
                stream.counters.late += 1
            heapq.heappush(stream.pending, item)
        stream.max_seen = stamp_ns if stream.max_seen is None else max(stream.max_seen, stamp_ns)
        self._newest_ns = stamp_ns if self._newest_ns is None else max(self._newest_ns, stamp_ns)
        return self._emit(final=False)

    def finish(self) -> list[Frame]:
        """No more messages: the remaining frames up to the end of the shortest stream."""
        for stream in self._streams.values():
            if not stream.started and stream.leading:
                stream.start()  # a lone leading message: no evidence that it is stale
        return self._emit(final=True)

    def missing_streams(self) -> list[str]:
        """Required streams without any usable message (why no frame was produced)."""
        return [s.spec.name for s in self._required if not s.started]

    # ------------------------------------------------------------------ internals

    def _push_leading(self, stream: _Stream, item: tuple[int, int, Any]) -> None:
        if not stream.spec.filter_latched:
            stream.leading.append(item)
            stream.start()
            return
        if stream.leading:
            newest = max(entry[0] for entry in stream.leading)
            if item[0] - newest > self.latched_gap_ns:
                stream.counters.stale_latched += len(stream.leading)
                stream.leading = []
        stream.leading.append(item)
        if len(stream.leading) >= 2:
            stream.start()

    def _start_time(self) -> int | None:
        if any(not s.started or s.first_stamp is None for s in self._required):
            return None
        return max(s.first_stamp for s in self._required)

    def _ready(self, time_ns: int, final: bool) -> bool:
        if final:
            return all(s.max_seen is not None and s.max_seen >= time_ns for s in self._gating)
        if all(
            s.max_seen is not None and s.max_seen - self.reorder_window_ns >= time_ns
            for s in self._gating
        ):
            return True
        # a stalled stream: give up waiting once another stream is max_wait ahead
        return self._newest_ns is not None and self._newest_ns - self.max_wait_ns >= time_ns

    def _emit(self, final: bool) -> list[Frame]:
        if self._t0 is None:
            self._t0 = self._start_time()
            if self._t0 is None:
                return []
        frames = []
        while True:
            time_ns = self.frame_time(self._next_index)
            if not self._ready(time_ns, final):
                return frames
            samples = {
                name: stream.sample_at(time_ns) if stream.started else None
                for name, stream in self._streams.items()
            }
            frames.append(Frame(self._next_index, time_ns, samples))
            self._next_index += 1
            self._last_frame_ns = time_ns
