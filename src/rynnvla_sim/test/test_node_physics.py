"""The sim node's physics thread alone (no ROS): pacing, catching up, skipping ahead.

A real arm and a real thread on the wall clock. A stall is made by holding the state lock,
as a long callback or a process that gets no CPU would.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from rynnvla_sim.config import SimConfig
from rynnvla_sim.env import ArmSimEnv
from rynnvla_sim.node.physics import (
    CAPTURE_MAX_LAG_S,
    MAX_LAG_S,
    PhysicsCallbacks,
    PhysicsLoop,
)
from rynnvla_sim.stepper import ControlledArm
from rynnvla_sim.trajectory import FollowerConfig

MS = 1_000_000


class Recorder:
    """A PhysicsLoop with callbacks that record (stamp, wall clock at emission)."""

    def __init__(self, camera_rate_hz: float = 30.0):
        env = ArmSimEnv(SimConfig(image_width=32, image_height=24))
        env.reset("block_to_plate", 0)
        self.arm = ControlledArm(env, FollowerConfig(env.joint_names), 500.0)
        self.lock = threading.Lock()
        self.states: list[tuple[int, int]] = []  # (stamp_ns, wall_ns)
        self.frames: list[int] = []
        self.errors: list[BaseException] = []
        self.loop = PhysicsLoop(
            self.arm,
            self.lock,
            PhysicsCallbacks(
                joint_state=lambda t, q, qd: self.states.append((t, time.time_ns())),
                clock=None,
                capture=lambda t, qpos: self.frames.append(t),
                error=self.errors.append,
            ),
            real_time_factor=1.0,
            joint_state_rate_hz=100.0,
            camera_rate_hz=camera_rate_hz,
        )

    def start(self) -> None:
        self.loop.start(epoch_ns=time.time_ns())

    def state_stamps(self) -> np.ndarray:
        """Joint state stamps after the first (which comes with the first tick, off the grid)."""
        return np.array([s for s, _ in self.states[1:]])

    def wait_until(self, predicate, timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not predicate():
            time.sleep(0.01)
        return predicate()

    def caught_up(self) -> bool:
        """The latest joint state is within 50 ms of the wall clock (the sim started on it)."""
        return bool(self.states) and time.time_ns() - self.states[-1][0] < 50 * MS

    def stall(self, seconds: float) -> None:
        """Hold the state lock: physics cannot tick meanwhile."""
        with self.lock:
            time.sleep(seconds)


@pytest.fixture
def recorder():
    made: list[Recorder] = []

    def make(**kwargs) -> Recorder:
        made.append(Recorder(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.loop.stop()
        assert not r.errors, r.errors


def test_joint_states_are_never_stamped_in_the_future_and_wakeups_follow_outputs(recorder):
    r = recorder()
    r.start()
    assert r.wait_until(lambda: len(r.states) >= 50)
    r.loop.stop()
    assert np.all(np.diff(r.state_stamps()) == 10 * MS)  # 100 Hz on the 2 ms control grid
    # a state is emitted once the wall clock has reached its stamp, not a tick before
    early_ms = max((s - wall) / MS for s, wall in r.states)
    assert early_ms <= 0.0, f"a joint state went out {early_ms:.2f} ms before its stamp"
    # the thread sleeps until the next output (states, frames), not after every 2 ms tick
    outputs = len(r.states) + len(r.frames) + r.loop.late_captures
    assert 0 < r.loop.wakeups <= outputs, (r.loop.wakeups, outputs)
    assert r.loop.ticks >= 3 * r.loop.wakeups, (r.loop.ticks, r.loop.wakeups)


def test_a_short_stall_is_caught_up_and_late_frames_are_dropped(recorder):
    r = recorder()
    r.start()
    assert r.wait_until(lambda: len(r.states) >= 10 and r.caught_up())
    n_frames = len(r.frames)
    assert MAX_LAG_S > 0.5
    r.stall(0.5)  # below MAX_LAG_S: every missed tick is simulated afterwards
    assert r.wait_until(r.caught_up)
    assert r.loop.overruns == 0 and r.loop.skipped_s == 0.0
    assert r.loop.max_lag_s >= 0.4
    assert np.all(np.diff(r.state_stamps()) == 10 * MS)  # no joint state was skipped
    # frames that would have been rendered more than CAPTURE_MAX_LAG_S late were not: ~0.4 s
    # of the 0.5 s at 30 Hz; the camera goes on once caught up
    assert CAPTURE_MAX_LAG_S < 0.2
    assert r.loop.late_captures >= 0.3 * 30, r.loop.late_captures
    assert r.wait_until(lambda: len(r.frames) >= n_frames + 3)


def test_a_stall_longer_than_max_lag_skips_the_sim_clock_ahead(recorder):
    r = recorder(camera_rate_hz=5.0)
    r.start()
    assert r.wait_until(lambda: len(r.states) >= 10 and r.caught_up())
    ticks_before = r.loop.ticks
    r.stall(MAX_LAG_S + 0.5)
    # the sim clock is back on the wall clock at once, without simulating the stall
    assert r.wait_until(r.caught_up, timeout_s=1.0)
    assert r.loop.overruns == 1
    assert MAX_LAG_S <= r.loop.skipped_s <= MAX_LAG_S + 1.0, r.loop.skipped_s
    gaps = np.diff(r.state_stamps())
    # one gap, the skipped interval; the stream stays on its 10 ms grid
    assert gaps.max() >= MAX_LAG_S * 1e9
    assert np.sum(gaps != 10 * MS) == 1 and np.all(gaps % (10 * MS) == 0), gaps[gaps != 10 * MS]
    assert r.loop.ticks - ticks_before < 0.5 * (MAX_LAG_S + 0.5) * 500  # not simulated
