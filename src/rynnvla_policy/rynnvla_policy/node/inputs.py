"""Latest-sample buffers for the policy's input streams, with capture stamps and age checks.

Each stream (one per camera, plus the joint state) keeps only its newest decoded sample and the
capture stamp from the message header. A snapshot is taken only when every stream is present and
younger than its max_age at that moment: a fresh frame is never paired with a stale one.
Thread-safe: subscriptions write from the executor, the inference worker reads. No ROS here.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

NS = 1_000_000_000


@dataclass(frozen=True)
class Sample:
    value: np.ndarray
    stamp_ns: int  # capture time (header.stamp), node clock domain
    sequence: int  # per-stream counter, increments with every accepted sample
    decode_s: float = 0.0  # time spent converting the message (node overhead accounting)


@dataclass(frozen=True)
class Snapshot:
    """One consistent observation: every stream fresh at `taken_ns`."""

    images: dict[str, np.ndarray]  # camera -> (H, W, 3) uint8
    state: np.ndarray  # (D,) float64
    stamps_ns: dict[str, int]  # stream -> capture stamp
    taken_ns: int
    decode_s: float = 0.0  # conversion time of the samples in this snapshot

    @property
    def stamp_ns(self) -> int:
        """Observation time: the newest camera capture stamp (as-of time of the frame set)."""
        return max(self.stamps_ns[name] for name in self.images)


@dataclass(frozen=True)
class StaleInputs:
    """Why no snapshot could be taken: stream -> reason."""

    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def streams(self) -> list[str]:
        return sorted(self.reasons)

    def describe(self) -> str:
        return "; ".join(f"{name}: {why}" for name, why in sorted(self.reasons.items()))


class StampError(ValueError):
    """A message stamp that cannot be a capture time (zero, or ahead of our clock)."""


class InputBuffers:
    """Newest sample of each named stream and the age rules for pairing them."""

    def __init__(
        self,
        camera_max_age_s: Mapping[str, float],
        state_stream: str,
        state_max_age_s: float,
        max_future_stamp_s: float = 0.5,
    ):
        self.camera_names = tuple(camera_max_age_s)
        self.state_stream = state_stream
        self._max_age_ns = {name: int(age * NS) for name, age in camera_max_age_s.items()}
        self._max_age_ns[state_stream] = int(state_max_age_s * NS)
        self._max_future_ns = int(max_future_stamp_s * NS)
        self._lock = threading.Lock()
        self._samples: dict[str, Sample] = {}
        self._dropped: dict[str, str] = {}  # stream -> why its last message was refused
        self._new_sample = threading.Condition(self._lock)

    @property
    def stream_names(self) -> tuple[str, ...]:
        return (*self.camera_names, self.state_stream)

    def check_stamp(self, stream: str, stamp_ns: int, now_ns: int) -> None:
        """Raise StampError for a stamp that is zero or too far in the future."""
        if stamp_ns <= 0:
            raise StampError(f"{stream}: header.stamp is zero; capture time is required")
        ahead = stamp_ns - now_ns
        if ahead > self._max_future_ns:
            raise StampError(
                f"{stream}: header.stamp is {ahead / 1e9:.3f} s ahead of this node's clock "
                "(do publisher and node use the same clock / use_sim_time?)"
            )

    def put(self, stream: str, value: np.ndarray, stamp_ns: int, decode_s: float = 0.0) -> None:
        """Store the newest sample of `stream`.

        A sample slightly older than the stored one (out-of-order delivery) is ignored; one much
        older (more than the stream's max_age: a clock reset, e.g. a restarted simulation) is
        taken, so the buffer never sticks to a stamp from before the reset.
        """
        with self._lock:
            previous = self._samples.get(stream)
            if (
                previous is not None
                and 0 < previous.stamp_ns - stamp_ns <= self._max_age_ns[stream]
            ):
                return
            sequence = previous.sequence + 1 if previous else 1
            self._dropped.pop(stream, None)
            self._samples[stream] = Sample(value, stamp_ns, sequence, decode_s)
            self._new_sample.notify_all()

    def note_dropped(self, stream: str, reason: str) -> None:
        """Remember why a message of `stream` was refused, for the stale report."""
        with self._lock:
            self._dropped[stream] = reason

    def latest(self, stream: str) -> Sample | None:
        with self._lock:
            return self._samples.get(stream)

    def clear(self) -> None:
        with self._lock:
            self._samples.clear()
            self._dropped.clear()

    def wait_for_new(self, after: Mapping[str, int], timeout_s: float) -> bool:
        """Block until every camera has a sample with sequence > after[name], or timeout."""
        with self._lock:
            return self._new_sample.wait_for(lambda: self._cameras_newer(after), timeout_s)

    def sequences(self) -> dict[str, int]:
        with self._lock:
            return {name: s.sequence for name, s in self._samples.items()}

    def _cameras_newer(self, after: Mapping[str, int]) -> bool:
        for name in self.camera_names:
            sample = self._samples.get(name)
            if sample is None or sample.sequence <= after.get(name, 0):
                return False
        return True

    def stale(self, now_ns: int) -> StaleInputs:
        """Streams that are missing or older than their max_age at now_ns (empty = all fresh)."""
        with self._lock:
            return self._stale_locked(now_ns)

    def _stale_locked(self, now_ns: int) -> StaleInputs:
        reasons = {}
        for name in self.stream_names:
            sample = self._samples.get(name)
            if sample is None:
                reasons[name] = "no message received yet"
                continue
            age_ns = now_ns - sample.stamp_ns
            if age_ns > self._max_age_ns[name]:
                reasons[name] = (
                    f"last sample {age_ns / 1e6:.0f} ms old (max_age {self._max_age_ns[name] / 1e6:.0f} ms)"
                )
        for name in reasons:
            if name in self._dropped:
                reasons[name] += f"; its last message was refused: {self._dropped[name]}"
        return StaleInputs(reasons)

    def snapshot(self, now_ns: int) -> Snapshot | StaleInputs:
        """A consistent observation at now_ns, or the reasons there is none."""
        with self._lock:
            stale = self._stale_locked(now_ns)
            if stale.reasons:
                return stale
            samples = dict(self._samples)
        used = {name: samples[name] for name in self.stream_names}
        return Snapshot(
            images={name: used[name].value for name in self.camera_names},
            state=used[self.state_stream].value,
            stamps_ns={name: s.stamp_ns for name, s in used.items()},
            taken_ns=now_ns,
            decode_s=sum(s.decode_s for s in used.values()),
        )
