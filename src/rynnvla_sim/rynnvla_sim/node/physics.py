"""The physics thread of the sim node: steps the arm in real time (or faster) and emits events.

Each control tick (under the node's state lock): sample the trajectory, command the actuators,
step physics. Then, outside the lock: joint states and /clock are emitted when due, and camera
snapshots are handed to the render thread. Pacing: with ``real_time_factor`` r > 0, sim time
advances r times as fast as the wall clock; a short lag is caught up by running faster, a lag
of more than ``MAX_LAG_S`` is given up (pacing restarts from now, the overrun is reported). r = 0 runs as fast as
possible and then waits for the renderer instead of dropping frames. No rclpy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rynnvla_sim.stepper import ControlledArm, PeriodicSchedule
from rynnvla_sim.trajectory import NS_PER_S

MAX_LAG_S = 1.0


@dataclass
class PhysicsCallbacks:
    """Where the physics thread sends what it produces (all called outside the state lock)."""

    joint_state: Callable[[int, np.ndarray, np.ndarray], None]  # stamp_ns, q (6,), qd (6,)
    clock: Callable[[int], None] | None  # stamp_ns, at clock_rate_hz
    capture: Callable[[int, np.ndarray], None]  # stamp_ns, qpos snapshot
    error: Callable[[BaseException], None]
    overrun: Callable[[float], None] | None = None  # seconds behind when giving up catching up


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
        self.overruns = 0  # times the sim fell more than MAX_LAG_S behind and resynchronised
        self.ticks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim_physics", daemon=True)

    def start(self, epoch_ns: int | None = None) -> None:
        """Start ticking; ``epoch_ns`` first moves the sim clock there (e.g. the wall clock)."""
        if epoch_ns is not None:
            with self.lock:
                self.arm.rebase_clock(epoch_ns)
                self.joint_states.restart(epoch_ns)
                self.cameras.restart(epoch_ns)
                self.clock_ticks.restart(epoch_ns)
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
            self._loop()
        except BaseException as exc:  # a dead physics thread must be reported, not silent
            self.callbacks.error(exc)

    def _loop(self) -> None:
        wall0, sim0 = time.monotonic(), self.arm.now_ns
        while not self._stop.is_set():
            with self.lock:
                self.arm.tick()
                now = self.arm.now_ns
                js_due = self.joint_states.due(now)
                cam_due = self.cameras.due(now)
                clock_due = self.clock_ticks.due(now)
                q, qd = self.arm.state() if js_due else (None, None)
                qpos = self.arm.env.data.qpos.copy() if cam_due else None
            self.ticks += 1
            if clock_due and self.callbacks.clock is not None:
                self.callbacks.clock(now)
            if js_due:
                self.callbacks.joint_state(now, q, qd)
            if cam_due:
                self.callbacks.capture(now, qpos)
            if self.real_time_factor > 0:
                wall0, sim0 = self._pace(wall0, sim0, now)

    def _pace(self, wall0: float, sim0: int, now_ns: int) -> tuple[float, int]:
        """Sleep until the wall clock catches up with sim time; resync after a large lag."""
        target = wall0 + (now_ns - sim0) / NS_PER_S / self.real_time_factor
        delay = target - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)
        elif -delay > MAX_LAG_S:
            self.overruns += 1
            if self.callbacks.overrun is not None:
                self.callbacks.overrun(-delay)
            return time.monotonic(), now_ns
        return wall0, sim0
