"""The physics thread of the sim node: steps the arm in real time (or faster) and emits events.

It runs in the node's engine process (engine_process.py). Each control tick (under the
engine's state lock): sample the trajectory, command the actuators,
step physics. Then, outside the lock: joint states and /clock are emitted when due, and camera
snapshots are handed to the render thread. No rclpy.

Pacing with ``real_time_factor`` r > 0 (sim time advances r times as fast as the wall clock):
the thread sleeps until the next *output* (joint state, camera frame, /clock) is due, then runs
every control tick up to that instant back to back (about 60 us each), so it never runs ahead
of the wall clock and wakes ~100 times a second, not once per 2 ms tick. Why: the thread needs
the GIL after every sleep, and a Python thread that is busy elsewhere in the process hands it
over only every ``sys.getswitchinterval()`` (5 ms): one wake-up per tick made physics wait for
the GIL 500 times a second. A lag (the process did not
get the CPU or the GIL for a while) is caught up by running the missed ticks in one burst;
camera frames whose capture instant is more than ``CAPTURE_MAX_LAG_S`` in the past are not
rendered (the camera rate drops before physics does). A lag of more than ``MAX_LAG_S`` is not
simulated: the sim clock skips ahead to the wall clock (the arm stood still meanwhile, like a
stalled real controller) so that stamps keep tracking the wall clock; the overrun is reported.

r = 0 runs as fast as possible and waits for the renderer instead of dropping frames.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rynnvla_sim.stepper import ControlledArm, PeriodicSchedule
from rynnvla_sim.trajectory import NS_PER_S

MAX_LAG_S = 1.0  # behind the wall clock by more than this: skip ahead instead of catching up
CAPTURE_MAX_LAG_S = 0.1  # frames captured this late are dropped (they would arrive stale)


@dataclass
class PhysicsCallbacks:
    """Where the physics thread sends what it produces (all called outside the state lock)."""

    joint_state: Callable[[int, np.ndarray, np.ndarray], None]  # stamp_ns, q (6,), qd (6,)
    clock: Callable[[int], None] | None  # stamp_ns, at clock_rate_hz
    capture: Callable[[int, np.ndarray], None]  # stamp_ns, qpos snapshot
    error: Callable[[BaseException], None]
    overrun: Callable[[float], None] | None = None  # seconds behind when skipping ahead


class WallPacer:
    """Maps sim time to the wall clock (``time.monotonic``) at ``real_time_factor``."""

    def __init__(self, real_time_factor: float, sim_ns: int, wall_s: float):
        self.real_time_factor = real_time_factor
        self._wall0 = wall_s  # time.monotonic() at which the sim clock read sim_ns
        self._sim0 = int(sim_ns)

    def sim_now_ns(self) -> int:
        """The sim time the wall clock has reached."""
        return self._sim0 + int((time.monotonic() - self._wall0) * self.real_time_factor * 1e9)

    def seconds_until(self, sim_ns: int) -> float:
        """Wall seconds until the wall clock reaches sim time ``sim_ns`` (<= 0: already)."""
        wall = self._wall0 + (sim_ns - self._sim0) / NS_PER_S / self.real_time_factor
        return wall - time.monotonic()


class PhysicsLoop:
    """Runs ``ControlledArm.tick`` on a dedicated thread with wall-clock pacing."""

    def __init__(
        self,
        arm: ControlledArm,
        lock: threading.Lock,
        callbacks: PhysicsCallbacks,
        *,
        real_time_factor: float,
        joint_state_rate_hz: float,
        camera_rate_hz: float,
        clock_rate_hz: float = 100.0,
    ):
        self.arm = arm
        self.lock = lock
        self.callbacks = callbacks
        self.real_time_factor = float(real_time_factor)
        self.joint_states = PeriodicSchedule(joint_state_rate_hz, arm.now_ns)
        self.cameras = PeriodicSchedule(camera_rate_hz, arm.now_ns)
        self.clock_ticks = PeriodicSchedule(clock_rate_hz, arm.now_ns)
        # Health figures (read from other threads; written only by the physics thread).
        self.ticks = 0
        self.wakeups = 0  # sleeps ended (real time only)
        self.lag_s = 0.0  # wall seconds the sim was behind at the last wake-up
        self.max_lag_s = 0.0
        self.overruns = 0  # times the sim fell more than MAX_LAG_S behind and skipped ahead
        self.skipped_s = 0.0  # sim seconds skipped by those overruns
        self.late_captures = 0  # camera captures dropped for being more than CAPTURE_MAX_LAG_S late
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim_physics", daemon=True)
        self._started_at = 0.0

    def start(self, epoch_ns: int | None = None) -> None:
        """Start ticking; ``epoch_ns`` first moves the sim clock there (e.g. the wall clock)."""
        if epoch_ns is not None:
            with self.lock:
                self.arm.rebase_clock(epoch_ns)
                self.joint_states.restart(epoch_ns)
                self.cameras.restart(epoch_ns)
                self.clock_ticks.restart(epoch_ns)
        self._started_at = time.monotonic()  # a thread that starts late has a lag to catch up
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            if self.real_time_factor > 0:
                self._run_paced()
            else:
                while not self._stop.is_set():
                    self._tick(capture=True)
        except BaseException as exc:  # a dead physics thread must be reported, not silent
            self.callbacks.error(exc)

    def _run_paced(self) -> None:
        pacer = WallPacer(self.real_time_factor, self.arm.now_ns, self._started_at)
        period = self.arm.period_ns
        planned = self.arm.now_ns  # the tick the wall clock should have reached by now
        while not self._stop.is_set():
            target = pacer.sim_now_ns()
            self.lag_s = max(0, target - planned) / NS_PER_S / self.real_time_factor
            self.max_lag_s = max(self.max_lag_s, self.lag_s)
            if self.lag_s > MAX_LAG_S:
                lag_ns = target - self.arm.now_ns
                self._skip_ahead(lag_ns - lag_ns % period)
            # every tick the wall clock has reached, in one burst (mj_step keeps the GIL)
            while self.arm.now_ns + period <= target and not self._stop.is_set():
                late_s = (target - self.arm.now_ns - period) / NS_PER_S / self.real_time_factor
                self._tick(capture=late_s <= CAPTURE_MAX_LAG_S)
            # caught up: sleep until the tick at which the next output is due
            planned = self._next_output_tick_ns()
            delay = pacer.seconds_until(planned)
            if delay > 0:
                if self._stop.wait(delay):
                    return
                self.wakeups += 1

    def _next_output_tick_ns(self) -> int:
        """Sim time of the first tick at which a joint state, frame or /clock is due."""
        due = min(self.joint_states.next_ns, self.cameras.next_ns)
        if self.callbacks.clock is not None:
            due = min(due, self.clock_ticks.next_ns)
        now, period = self.arm.now_ns, self.arm.period_ns
        return now + period * max(1, -(-(due - now) // period))  # ceil, at least one tick

    def _tick(self, capture: bool) -> None:
        with self.lock:
            self.arm.tick()
            now = self.arm.now_ns
            js_due = self.joint_states.due(now)
            cam_due = self.cameras.due(now)
            clock_due = self.clock_ticks.due(now)
            q, qd = self.arm.state() if js_due else (None, None)
            qpos = self.arm.env.data.qpos.copy() if cam_due and capture else None
        self.ticks += 1
        if clock_due and self.callbacks.clock is not None:
            self.callbacks.clock(now)
        if js_due:
            self.callbacks.joint_state(now, q, qd)
        if cam_due and not capture:
            self.late_captures += 1
        elif cam_due:
            self.callbacks.capture(now, qpos)

    def _skip_ahead(self, skip_ns: int) -> None:
        """Move the sim clock forward without simulating (the arm holds still meanwhile)."""
        self.overruns += 1
        self.skipped_s += skip_ns / NS_PER_S
        if self.callbacks.overrun is not None:
            self.callbacks.overrun(self.lag_s)
        with self.lock:
            self.arm.skip_clock(skip_ns)
            for schedule in (self.joint_states, self.cameras, self.clock_ticks):
                schedule.skip(self.arm.now_ns + 1)  # the next event comes from a simulated tick
