"""What the node commands, and when: the control state machine. Pure (no ROS).

The inference worker hands every model chunk to `ChunkController.on_chunk`; the node's watchdog
reports stale inputs; services stop, resume and toggle output. Every command leaves through the
`send` callable under one lock, so a hold can never be overtaken by a chunk computed before it.

States (rynnvla_msgs/PolicyStatus): IDLE (nothing commanded yet), RUNNING (chunks flowing; in a
dry run they are computed but not sent), HOLDING (stopped or deactivated), STALE (an input is too
old: holding until it returns), ERROR (inference failed or a chunk was refused: holding until a
good chunk arrives).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from rynnvla_policy.node.chunks import (
    NS,
    ChunkExpiredError,
    OverlapMerger,
    Plan,
    TrajectoryData,
    finite_difference_velocities,
    hold_points,
    trajectory_points,
)
from rynnvla_policy.node.safety import SafetyLimits, UnsafeChunkError, limit_velocity, screen_chunk


class ControlState(IntEnum):
    IDLE = 0
    RUNNING = 1
    HOLDING = 2
    STALE = 3
    ERROR = 4

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass
class Counters:
    chunks_published: int = 0  # chunks sent to the controller
    dropped_inputs: int = 0  # malformed / undecodable input messages
    stale_inputs: int = 0  # watchdog ticks with a stale or missing input while active
    joint_limit_clips: int = 0
    velocity_clips: int = 0
    rejected_chunks: int = 0  # refused by safety or already expired


@dataclass(frozen=True)
class ChunkOutcome:
    sent: TrajectoryData | None  # what went to the controller (None: dry run or refused)
    plan: Plan | None  # the plan after overlap merging and safety (None: refused)
    error: str = ""


class ChunkController:
    """Turns chunks into controller commands under the safety rules; thread-safe."""

    def __init__(
        self,
        limits: SafetyLimits,
        step_s: float,
        merger: OverlapMerger,
        latency_mode: str,
        zero_last_velocity: bool,
        send: Callable[[TrajectoryData], None],
        output_enabled: bool = False,
    ):
        self.limits = limits
        self.step_s = step_s
        self.merger = merger
        self.latency_mode = latency_mode
        self.zero_last_velocity = zero_last_velocity
        self._send = send
        self._lock = threading.RLock()
        self.counters = Counters()
        self.state = ControlState.IDLE
        self.output_enabled = output_enabled
        self.stopped = False  # ~/stop: no commands until output is enabled again
        self.last_error = ""
        self._commanding = False  # a chunk was sent since the last hold
        self._stale_since_ns = 0  # when the current STALE period began

    # ------------------------------------------------------------------ chunks
    def on_chunk(
        self,
        positions: np.ndarray,
        obs_stamp_ns: int,
        state: np.ndarray,
        now_ns: int,
        taken_ns: int | None = None,
    ) -> ChunkOutcome:
        """Filter, merge and (unless dry run or stopped) send one model chunk (T, D).

        taken_ns: when the observation was taken from the input buffers (default: its stamp).
        A chunk observed before the inputs went stale is dropped: it must not overtake the hold.
        """
        with self._lock:
            if self.stopped:
                return ChunkOutcome(None, None, "stopped")
            observed = obs_stamp_ns if taken_ns is None else taken_ns
            if self.state == ControlState.STALE and observed <= self._stale_since_ns:
                return ChunkOutcome(None, None, "observed before the inputs went stale")
            try:
                clipped, limit_clips = screen_chunk(positions, state, self.limits)
            except UnsafeChunkError as exc:
                self.counters.rejected_chunks += 1
                self._fail(ControlState.ERROR, f"chunk refused: {exc}", state, now_ns)
                return ChunkOutcome(None, None, str(exc))
            self.counters.joint_limit_clips += limit_clips
            plan = self._merged_plan(clipped, obs_stamp_ns, state, now_ns)
            try:
                # one step of lead: the trajectory must still end in the future on arrival
                data = trajectory_points(
                    plan,
                    now_ns,
                    self.latency_mode,
                    self.zero_last_velocity,
                    min_lead_ns=round(self.step_s * NS),
                )
            except ChunkExpiredError as exc:
                self.counters.rejected_chunks += 1
                self.last_error = f"chunk dropped: {exc}"
                return ChunkOutcome(None, None, str(exc))
            self.merger.commit(
                Plan(plan.times_ns, plan.positions, finite_difference_velocities(plan, False))
            )
            self.state = ControlState.RUNNING
            if not self.output_enabled:
                return ChunkOutcome(None, plan)
            self._send(data)
            self._commanding = True
            self.counters.chunks_published += 1
            return ChunkOutcome(data, plan)

    def _merged_plan(
        self, clipped: np.ndarray, obs_stamp_ns: int, state: np.ndarray, now_ns: int
    ) -> Plan:
        step_ns = round(self.step_s * NS)
        # one step of delivery margin, as for expiry: the hand-over starts after arrival
        merged = self.merger.merge(Plan.from_chunk(clipped, obs_stamp_ns, step_ns), now_ns, step_ns)
        limited, velocity_clips = limit_velocity(merged.positions, state, self.step_s, self.limits)
        self.counters.velocity_clips += velocity_clips
        return Plan(merged.times_ns, limited)

    # ------------------------------------------------------------------ faults
    def on_inference_error(self, message: str, hold_at: np.ndarray | None, now_ns: int) -> None:
        with self._lock:
            self._fail(ControlState.ERROR, f"inference failed: {message}", hold_at, now_ns)

    def on_stale(self, description: str, hold_at: np.ndarray | None, now_ns: int) -> None:
        """Inputs are stale: count the tick, hold once on entering STALE."""
        with self._lock:
            self.counters.stale_inputs += 1
            self.last_error = f"stale inputs: {description}"
            if self.state == ControlState.STALE:
                return  # already holding
            if self.state == ControlState.HOLDING and not self._commanding:
                return  # stopped or deactivated: stays HOLDING
            self._stale_since_ns = now_ns
            self._fail(ControlState.STALE, self.last_error, hold_at, now_ns)

    def on_fresh(self) -> None:
        """Inputs are fresh again; STALE clears when the next chunk is running."""
        with self._lock:
            if self.state == ControlState.STALE and not self._commanding:
                self.state = ControlState.IDLE if not self.stopped else ControlState.HOLDING

    def _fail(
        self, state: ControlState, message: str, hold_at: np.ndarray | None, now_ns: int
    ) -> None:
        self.state = state
        self.last_error = message
        self._hold_locked(hold_at, now_ns)

    # ------------------------------------------------------------------ commands
    def hold(
        self, hold_at: np.ndarray | None, now_ns: int, state: ControlState = ControlState.HOLDING
    ) -> bool:
        """Command a hold of `hold_at` (if anything was commanded) and forget queued chunks.

        Returns whether a hold command was sent.
        """
        with self._lock:
            self.state = state
            return self._hold_locked(hold_at, now_ns)

    def _hold_locked(self, hold_at: np.ndarray | None, now_ns: int) -> bool:
        self.merger.reset()
        if not self._commanding:
            return False
        self._commanding = False
        if hold_at is None:
            # Never seen a joint state: nothing to hold at. The controller finishes the last
            # chunk, whose final point has zero velocity, and holds there.
            return False
        self._send(self.hold_data(hold_at))
        return True

    def hold_data(self, hold_at: np.ndarray) -> TrajectoryData:
        """A one-point trajectory to `hold_at` (clipped to the limits), reached in one step."""
        clipped = np.clip(hold_at, self.limits.lower, self.limits.upper)
        return hold_points(clipped, round(self.step_s * NS))

    def stop(self, hold_at: np.ndarray | None, now_ns: int) -> None:
        """~/stop: hold now and send nothing until output is enabled again."""
        with self._lock:
            self.stopped = True
            self.output_enabled = False
            self.hold(hold_at, now_ns)

    def set_output_enabled(self, enabled: bool, hold_at: np.ndarray | None, now_ns: int) -> None:
        """Dry-run switch. Disabling holds first (the controller would finish the last chunk);
        enabling also lifts a ~/stop."""
        with self._lock:
            if not enabled:
                self._hold_locked(hold_at, now_ns)
                self.output_enabled = False
                return
            self.output_enabled = True
            if self.stopped:
                self.stopped = False
                self.state = ControlState.IDLE

    def reset(self) -> None:
        """Forget queued chunks (the next chunk is used as predicted)."""
        with self._lock:
            self.merger.reset()

    def restart(self) -> None:
        """Back to IDLE after (re)activation, keeping counters."""
        with self._lock:
            self.merger.reset()
            self.state = ControlState.IDLE
            self.stopped = False
            self._commanding = False
