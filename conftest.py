"""Rules every test process follows, applied here so callers cannot forget them.

- DDS discovery stays on this machine (loopback only): ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
  for Jazzy and newer, ROS_LOCALHOST_ONLY=1 for older distros.
- Each pytest run gets its own ROS_DOMAIN_ID so parallel runs never see each other's nodes.
These are set before any test module imports rclpy.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_LOCALHOST_ONLY"] = "1"
# Domain ids 1..100 stay inside the port range every DDS vendor accepts on Linux.
os.environ["ROS_DOMAIN_ID"] = str(1 + (os.getpid() * 7919 + int(time.time())) % 100)
os.environ.setdefault("MUJOCO_GL", "egl")
# Tests run on 2 cores next to DDS threads: keep torch from oversubscribing them.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Idle OpenMP threads sleep instead of spinning: busy-waiting threads of one process starve
# the DDS and physics threads of the others on a 2-core machine (seen: 88 ms -> 1.3 s per infer).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture
def ros_context() -> Iterator[object]:
    """A fresh rclpy context for one test, shut down afterwards."""
    rclpy = pytest.importorskip("rclpy", reason="rclpy is not importable (run `make setup`)")
    context = rclpy.context.Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        if context.ok():
            rclpy.shutdown(context=context)


@pytest.fixture
def spin_until() -> Callable[..., bool]:
    """spin_until(executor, predicate, timeout_s) -> bool: spin until predicate() or deadline."""

    def _spin_until(executor, predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            executor.spin_once(timeout_sec=0.05)
        return predicate()

    return _spin_until
