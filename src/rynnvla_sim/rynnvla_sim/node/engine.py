"""``SimEngine``: the node's handle on its engine process (physics + cameras, engine_process.py).

The engine runs in a child process with a GIL of its own, so busy Python threads of the node's
process (executors, a policy node in the same process) cannot starve physics. The child is a
fresh interpreter (``python -m rynnvla_sim.node.engine_process``): no fork of a process with
DDS threads, and unlike multiprocessing's spawn it never re-imports the caller's main script.
Commands (start, submit, reset, status, stop) are synchronous calls over one socket; what the
engine produces arrives over a second one and is handed to ``EngineHandlers`` on a receiver
thread, which publishes. No rclpy.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import SimpleNamespace
from typing import Any

import numpy as np

from rynnvla_sim.node.engine_process import EngineSpec
from rynnvla_sim.node.params import SimParamsError
from rynnvla_sim.rendering import GLBackendError

__all__ = [
    "ControllerCounters",
    "EngineCallError",
    "EngineHandlers",
    "EngineSpec",
    "SimEngine",
    "TrajectoryReceipt",
]

STARTUP_TIMEOUT_S = 120.0  # spawning + importing mujoco on a loaded machine
CALL_TIMEOUT_S = 30.0


class EngineCallError(RuntimeError):
    """A command failed in the engine (``refused``: a bad request, e.g. an unknown task)."""

    def __init__(self, message: str, refused: bool = False):
        super().__init__(message)
        self.refused = refused


@dataclass
class EngineHandlers:
    """Where the engine's events go (called on the receiver thread)."""

    joint_state: Callable[[int, np.ndarray, np.ndarray], None]  # stamp_ns, q (6,), qd (6,)
    clock: Callable[[int], None]  # stamp_ns
    frame: Callable[[int, str, np.ndarray], None]  # stamp_ns, camera, rgb (H, W, 3) uint8
    overrun: Callable[[float], None]  # seconds behind when the sim clock skipped ahead
    error: Callable[[str], None]  # an engine thread died, or the process exited


@dataclass(frozen=True)
class TrajectoryReceipt:
    """What the controller did with a trajectory, and when (sim clock) it arrived."""

    accepted: bool
    reason: str
    arrival_ns: int


def plain_trajectory(msg: Any) -> SimpleNamespace:
    """A picklable copy of a JointTrajectory (rclpy or rosbags) with the fields the follower
    reads, so the engine process needs no ROS message packages."""

    def duration(d: Any) -> SimpleNamespace:
        return SimpleNamespace(sec=int(d.sec), nanosec=int(d.nanosec))

    points = [
        SimpleNamespace(
            positions=list(p.positions),
            velocities=list(p.velocities),
            accelerations=list(p.accelerations),
            effort=list(p.effort),
            time_from_start=duration(p.time_from_start),
        )
        for p in msg.points
    ]
    header = SimpleNamespace(stamp=duration(msg.header.stamp), frame_id=str(msg.header.frame_id))
    return SimpleNamespace(header=header, joint_names=list(msg.joint_names), points=points)


class SimEngine:
    """Starts the engine process (raises SimParamsError for bad settings) and talks to it."""

    def __init__(self, spec: EngineSpec, handlers: EngineHandlers):
        self._handlers = handlers
        parent_commands, child_commands = socket.socketpair()
        parent_events, child_events = socket.socketpair()
        fds = (child_commands.fileno(), child_events.fileno())
        self._process = subprocess.Popen(
            [sys.executable, "-m", "rynnvla_sim.node.engine_process", *map(str, fds)],
            pass_fds=fds,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C goes to this process, which stops the engine
        )
        child_commands.close()  # only the child holds these now: its exit reads as EOF here
        child_events.close()
        self._commands = Connection(parent_commands.detach())
        self._events = Connection(parent_events.detach())
        self._call_lock = threading.Lock()
        self._stopping = False
        self.failed = False
        try:
            self._commands.send(spec)
            self._reply(STARTUP_TIMEOUT_S)
        except BaseException:
            self._stopping = True
            self._end_process(5.0)
            raise
        self._receiver = threading.Thread(target=self._receive, name="sim_engine_events")
        self._receiver.daemon = True
        self._receiver.start()

    @property
    def running(self) -> bool:
        """The engine process is alive and none of its threads died."""
        return self._process.poll() is None and not self.failed and not self._stopping

    # ---- commands ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start cameras (GLBackendError without a GL backend), then physics on the wall clock
        (the sim clock reads the wall clock at that instant)."""
        self._call("start", timeout_s=STARTUP_TIMEOUT_S)

    def submit(self, msg: Any) -> TrajectoryReceipt:
        return TrajectoryReceipt(*self._call("submit", plain_trajectory(msg)))

    def reset(self, task_id: str, seed: int, distractors: bool) -> dict:
        """New episode (task_id "" keeps the task); EngineCallError(refused) if refused."""
        return self._call("reset", task_id, seed, distractors)

    def status(self) -> dict:
        """Episode (task, instruction, elapsed, success), controller and physics figures."""
        return self._call("status")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop physics and cameras and end the process (idempotent)."""
        if self._stopping:
            return
        self._stopping = True
        if self._process.poll() is None:
            with contextlib.suppress(EngineCallError):  # it died meanwhile, or hangs: see below
                self._call("stop", timeout_s=timeout_s)
        self._end_process(timeout_s)
        self._receiver.join(timeout_s)
        self._commands.close()
        self._events.close()

    def _end_process(self, timeout_s: float) -> None:
        try:
            self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5.0)

    def _call(self, name: str, *args: Any, timeout_s: float = CALL_TIMEOUT_S) -> Any:
        with self._call_lock:
            try:
                self._commands.send((name, args))
            except OSError as exc:
                raise EngineCallError(f"the sim engine process has exited ({exc})") from exc
            return self._reply(timeout_s, name)

    def _reply(self, timeout_s: float, name: str = "start-up") -> Any:
        try:
            if not self._commands.poll(timeout_s):
                raise EngineCallError(f"the sim engine did not answer {name!r} in {timeout_s} s")
            kind, value = self._commands.recv()
        except (EOFError, OSError) as exc:
            code = self._process.poll()
            raise EngineCallError(f"the sim engine process exited (code {code})") from exc
        if kind == "ok":
            return value
        if kind == "params":
            raise SimParamsError(value)
        if kind == "gl":
            raise GLBackendError(value)
        raise EngineCallError(value, refused=kind == "refused")

    # ---- events ------------------------------------------------------------------------------

    def _receive(self) -> None:
        handlers = self._handlers
        dispatch = {
            "joint_state": handlers.joint_state,
            "clock": handlers.clock,
            "frame": handlers.frame,
            "overrun": handlers.overrun,
        }
        while True:
            try:
                kind, *args = self._events.recv()
            except (EOFError, OSError):
                break
            if kind == "error":
                self.failed = True
                handlers.error(*args)
                continue
            try:
                dispatch[kind](*args)
            except Exception as exc:  # keep draining: a full pipe would stall the engine
                handlers.error(f"publishing {kind} failed: {type(exc).__name__}: {exc}")
        if not self._stopping:
            self.failed = True
            handlers.error(f"the sim engine process exited (code {self._process.poll()})")


class ControllerCounters:
    """The trajectory controller's counters, read live from the engine (each read asks it)."""

    def __init__(self, engine: SimEngine):
        self._engine = engine

    @property
    def accepted_count(self) -> int:
        return int(self._engine.status()["accepted_trajectories"])

    @property
    def rejected_count(self) -> int:
        return int(self._engine.status()["rejected_trajectories"])

    @property
    def last_rejection(self) -> str:
        return str(self._engine.status()["last_rejection"])
