"""The inference thread's schedule: one run per period, on fresh frames, never queueing."""

from __future__ import annotations

import threading
import time

import numpy as np

from rynnvla_policy.node.inputs import NS, InputBuffers
from rynnvla_policy.node.worker import InferenceWorker

STEP = NS // 30


class FakeClock:
    """Stamps advance by one camera period per published frame set."""

    def __init__(self):
        self.now = 10 * NS

    def __call__(self) -> int:
        return self.now


def publish(buffers, clock, frames):
    for _ in range(frames):
        clock.now += STEP
        for cam in ("front", "wrist"):
            buffers.put(cam, np.zeros((2, 2, 3), np.uint8), clock.now)
        buffers.put("joint_states", np.zeros(6), clock.now)


def run_worker(run_once, period_steps=10, should_run=lambda: True):
    clock = FakeClock()
    buffers = InputBuffers({"front": 1.0, "wrist": 1.0}, "joint_states", 1.0)
    crashes = []
    worker = InferenceWorker(
        buffers, run_once, clock, period_steps * STEP, STEP, should_run, crashes.append
    )
    worker.start()
    return worker, buffers, clock, crashes


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def test_one_inference_per_period_aligned_to_frame_stamps():
    seen = []
    worker, buffers, clock, _ = run_worker(lambda snap: seen.append(snap.stamp_ns))
    try:
        for _ in range(35):
            publish(buffers, clock, 1)
            time.sleep(0.01)
        assert wait_for(lambda: len(seen) >= 3)
        time.sleep(0.05)
        gaps = np.diff(seen) / STEP
        # one run per 10 frames: never sooner; later only if the thread woke late (loaded CI)
        assert np.all(gaps >= 10) and np.all(gaps <= 12), gaps
        assert len(seen) <= 4
    finally:
        assert worker.stop()


def test_slow_inference_takes_the_newest_frame_without_queueing():
    seen = []
    release = threading.Event()

    def slow(snapshot):
        seen.append(snapshot.stamp_ns)
        release.wait(5.0)

    worker, buffers, clock, _ = run_worker(slow, period_steps=1)
    try:
        publish(buffers, clock, 1)
        assert wait_for(lambda: len(seen) == 1)
        publish(buffers, clock, 20)  # 20 frames while the model is busy
        newest = clock.now
        release.set()
        assert wait_for(lambda: len(seen) == 2)
        assert seen[1] == newest  # the latest frame, not the 19 in between
        time.sleep(0.05)
        assert len(seen) == 2
    finally:
        release.set()
        assert worker.stop()


def test_paused_worker_does_not_run_and_clock_reset_restarts_schedule():
    seen = []
    enabled = threading.Event()
    worker, buffers, clock, _ = run_worker(lambda s: seen.append(s.stamp_ns), 10, enabled.is_set)
    try:
        publish(buffers, clock, 5)
        time.sleep(0.1)
        assert seen == []
        enabled.set()
        publish(buffers, clock, 1)
        assert wait_for(lambda: len(seen) == 1)
        clock.now = 1 * NS  # simulation restarted: time jumped back
        publish(buffers, clock, 1)
        assert wait_for(lambda: len(seen) == 2)
    finally:
        assert worker.stop()


def test_a_crashing_step_is_reported_and_the_loop_goes_on():
    calls = []

    def explode(snapshot):
        calls.append(1)
        raise RuntimeError("boom")

    worker, buffers, clock, crashes = run_worker(explode, period_steps=1)
    try:
        publish(buffers, clock, 1)
        assert wait_for(lambda: len(crashes) == 1)
        publish(buffers, clock, 1)
        assert wait_for(lambda: len(calls) == 2)
        assert "RuntimeError: boom" in crashes[0]
        assert worker.alive
    finally:
        assert worker.stop()
