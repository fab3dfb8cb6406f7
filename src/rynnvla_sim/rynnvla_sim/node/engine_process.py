"""The sim node's engine process: physics and cameras with a GIL of their own.

``SimEngine`` (engine.py) starts ``serve`` in a child process. Why a process: the physics thread
needs the GIL ~100 times a second, and CPython hands the GIL badly to a thread that has just
woken up; next to even one busy Python thread (an executor loop, a policy's inference) the
physics thread of a shared process got a few percent of real time (docs/simulation.md). Here
it shares the GIL only with the render thread and the command loop below.

Threads: physics (``PhysicsLoop``), rendering (``RenderWorker``), an event sender, and the main
thread answering the parent's commands. What they produce (joint states, /clock ticks, frames,
overruns, errors) goes to the parent as events; the parent publishes. No rclpy.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from rynnvla_sim.config import SimConfig
from rynnvla_sim.env import ArmSimEnv
from rynnvla_sim.node.params import SimParamsError
from rynnvla_sim.node.physics import PhysicsCallbacks, PhysicsLoop
from rynnvla_sim.node.render import RenderWorker
from rynnvla_sim.rendering import GLBackendError
from rynnvla_sim.stepper import ControlledArm
from rynnvla_sim.trajectory import FollowerConfig

# Events waiting for the pipe beyond this are dropped in real time (a parent that does not read
# must not stop physics); as fast as possible, physics waits for the parent instead.
EVENT_QUEUE_SIZE = 256
COMMANDS = ("start", "submit", "reset", "status", "stop")  # Engine methods the parent may call
_STOP = object()


@dataclass(frozen=True)
class EngineSpec:
    """What the engine process builds (picklable; the node fills it from its parameters)."""

    follower: FollowerConfig
    task_id: str
    seed: int
    distractors: bool
    control_rate_hz: float
    real_time_factor: float
    joint_state_rate_hz: float
    camera_rate_hz: float
    clock_rate_hz: float | None  # None: no /clock
    cameras: tuple[str, ...]
    image_width: int
    image_height: int
    render_queue_size: int


class EventSender:
    """Sends events to the parent on its own thread, so producers never wait on the pipe."""

    def __init__(self, conn: Connection):
        self._conn = conn
        self._queue: queue.Queue = queue.Queue(maxsize=EVENT_QUEUE_SIZE)
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="sim_events", daemon=True)
        self._thread.start()

    def send(self, event: tuple, block: bool = False) -> None:
        try:
            self._queue.put(event, block=block)
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(5.0)

    def _run(self) -> None:
        while (event := self._queue.get()) is not _STOP:
            try:
                self._conn.send(event)
            except OSError:  # the parent is gone: nothing to deliver to
                return


class Engine:
    """The arm, its physics thread and its camera thread; commands come from ``serve``."""

    def __init__(self, spec: EngineSpec, events: EventSender):
        self.spec = spec
        self.events = events
        self.arm = _build_arm(spec)
        self.lock = threading.Lock()
        self.renderer = RenderWorker(
            self.arm.env.model,
            spec.image_width,
            spec.image_height,
            spec.cameras,
            lambda stamp_ns, camera, rgb: events.send(("frame", stamp_ns, camera, rgb), self._wait),
            queue_size=spec.render_queue_size,
            on_error=lambda exc: self._failed("render", exc),
        )
        clock = None
        if spec.clock_rate_hz is not None:
            clock = lambda stamp_ns: events.send(("clock", stamp_ns), self._wait)  # noqa: E731
        self.physics = PhysicsLoop(
            self.arm,
            self.lock,
            PhysicsCallbacks(
                joint_state=lambda t, q, qd: events.send(("joint_state", t, q, qd), self._wait),
                clock=clock,
                capture=lambda t, qpos: self.renderer.submit(t, qpos, block=self._wait),
                error=lambda exc: self._failed("physics", exc),
                overrun=lambda lag_s: events.send(("overrun", lag_s)),
            ),
            real_time_factor=spec.real_time_factor,
            joint_state_rate_hz=spec.joint_state_rate_hz,
            camera_rate_hz=spec.camera_rate_hz,
            clock_rate_hz=spec.clock_rate_hz or 100.0,
        )

    @property
    def _wait(self) -> bool:
        """As fast as possible, producers wait instead of dropping (every frame is wanted)."""
        return self.spec.real_time_factor == 0

    def _failed(self, thread: str, exc: BaseException) -> None:
        self.events.send(("error", f"sim {thread} thread died: {type(exc).__name__}: {exc}"))

    # ---- commands (from the parent, on the main thread) --------------------------------------

    def start(self) -> None:
        """Cameras (GLBackendError without a GL backend), then physics on the wall clock."""
        self.renderer.start()
        # stamps = wall clock from now on in real time (start-up time is not a lag)
        self.physics.start(epoch_ns=time.time_ns() // 1_000_000 * 1_000_000)

    def submit(self, msg: Any) -> tuple[bool, str, int]:
        """A trajectory arriving now: (accepted, reason, arrival time on the sim clock)."""
        with self.lock:
            arrival_ns = self.arm.now_ns
            result = self.arm.submit(msg)
        return result.accepted, result.reason, arrival_ns

    def reset(self, task_id: str, seed: int, distractors: bool) -> dict:
        """New episode (task_id "" keeps the task); ValueError/KeyError name what is wrong."""
        with self.lock:
            return self.arm.reset_episode(
                task_id or self.arm.env.task_id, seed, distractors=distractors
            )

    def status(self) -> dict:
        with self.lock:
            arm, env, follower = self.arm, self.arm.env, self.arm.follower
            status = {
                "task_id": env.task_id,
                "instruction": env.instruction,
                "elapsed_s": arm.elapsed_s,
                "success": bool(env.success()),
                "time_to_success_s": float(arm.time_to_success_s),
                "now_ns": arm.now_ns,
                "accepted_trajectories": follower.accepted_count,
                "rejected_trajectories": follower.rejected_count,
                "last_rejection": follower.last_rejection,
            }
        physics, renderer = self.physics, self.renderer
        status.update(
            physics_running=physics.running,
            ticks=physics.ticks,
            lag_s=physics.lag_s,
            max_lag_s=physics.max_lag_s,
            overruns=physics.overruns,
            skipped_s=physics.skipped_s,
            late_captures=physics.late_captures,
            frames_rendered=renderer.frames_rendered,
            frames_dropped=renderer.frames_dropped,
            events_dropped=self.events.dropped,
        )
        return status

    def stop(self) -> None:
        self.physics.stop()
        self.renderer.stop()


def _build_arm(spec: EngineSpec) -> ControlledArm:
    """The arm at the spec's episode; bad values raise SimParamsError naming the parameter."""
    names = spec.follower.joint_names
    try:
        config = SimConfig(
            joint_names=names, image_width=spec.image_width, image_height=spec.image_height
        )
    except ValueError as exc:
        raise SimParamsError([str(exc)]) from exc
    env = ArmSimEnv(config)
    try:
        env.reset(spec.task_id, spec.seed, distractors=spec.distractors)
    except ValueError as exc:
        raise SimParamsError([f"task_id={spec.task_id!r}: {exc}"]) from exc
    try:
        return ControlledArm(env, spec.follower, spec.control_rate_hz)
    except ValueError as exc:
        raise SimParamsError([str(exc)]) from exc


def _reply_to(exc: BaseException) -> tuple:
    if isinstance(exc, SimParamsError):
        return ("params", exc.problems)
    if isinstance(exc, GLBackendError):
        return ("gl", str(exc))
    if isinstance(exc, ValueError | KeyError):  # a refused request (bad task, seed ...)
        return ("refused", str(exc))
    return ("error", f"{type(exc).__name__}: {exc}")


def serve(spec: EngineSpec, commands: Connection, events: Connection) -> None:
    """Build the engine, answer ``(name, args)`` commands until stop (or the parent is gone)."""
    sender = EventSender(events)
    try:
        engine = Engine(spec, sender)
    except BaseException as exc:
        commands.send(_reply_to(exc))
        sender.close()
        return
    commands.send(("ok", None))
    try:
        while True:
            try:
                name, args = commands.recv()
            except (EOFError, OSError):  # the parent exited without stopping us
                return
            try:
                if name not in COMMANDS:
                    raise RuntimeError(f"unknown engine command {name!r}")
                reply = ("ok", getattr(engine, name)(*args))
            except Exception as exc:  # reported to the caller, which raises it there
                reply = _reply_to(exc)
            commands.send(reply)
            if name == "stop":
                return
    finally:
        engine.stop()
        sender.close()


def main(argv: list[str]) -> None:
    """``python -m rynnvla_sim.node.engine_process CMD_FD EVENTS_FD`` (started by SimEngine)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    commands, events = (Connection(int(fd)) for fd in argv)
    try:
        spec = commands.recv()
    except (EOFError, OSError):
        return
    serve(spec, commands, events)


if __name__ == "__main__":
    main(sys.argv[1:])
