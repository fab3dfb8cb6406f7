"""`SystemClient`: an rclpy node that drives the sim + policy system through its public
interfaces (services and topics of docs/architecture.md), as an operator or evaluator would.

Calls block the CALLING thread with a deadline while another thread spins the executor (the
composed runner's); the client never spins by itself. Every wait has a timeout and raises
`SystemCallError` / `TimeoutError` naming what did not happen.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from sensor_msgs.msg import Image
from std_srvs.srv import SetBool, Trigger

from rynnvla_msgs.msg import ActionChunk, EpisodeStatus, PolicyStatus
from rynnvla_msgs.srv import ResetEpisode, SetInstruction

POLICY = "/rynnvla_policy"
LATCHED = QoSProfile(
    depth=1,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
RELIABLE = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)


class SystemCallError(RuntimeError):
    """A service refused the request or could not be reached; the message says which."""


@dataclass(frozen=True)
class Frame:
    """A camera image received during recording."""

    stamp_ns: int
    rgb: Any  # (H, W, 3) uint8


class SystemClient(Node):
    """Service clients and the latest messages of the sim and the policy node."""

    def __init__(self, context=None, name: str = "rynnvla_system_client", policy_ns: str = POLICY):
        super().__init__(name, context=context)
        self._cond = threading.Condition()
        self.episode: EpisodeStatus | None = None
        self.policy_status: PolicyStatus | None = None
        self.chunks: deque[ActionChunk] = deque(maxlen=5000)
        self.last_chunk: ActionChunk | None = None
        self.frames: list[Frame] = []
        self._record_camera: str | None = None
        self._frame_stride_ns = 0
        self._reset_cli = self.create_client(ResetEpisode, "/sim/reset_episode")
        self._instruction_cli = self.create_client(SetInstruction, f"{policy_ns}/set_instruction")
        self._enable_cli = self.create_client(SetBool, f"{policy_ns}/enable_output")
        self._reset_policy_cli = self.create_client(Trigger, f"{policy_ns}/reset")
        self.create_subscription(EpisodeStatus, "/sim/episode_status", self._on_episode, LATCHED)
        self.create_subscription(PolicyStatus, f"{policy_ns}/status", self._on_status, RELIABLE)
        self.create_subscription(ActionChunk, f"{policy_ns}/action_chunk", self._on_chunk, RELIABLE)
        self._camera_sub = None

    # ------------------------------------------------------------------ subscriptions
    def _on_episode(self, msg: EpisodeStatus) -> None:
        with self._cond:
            self.episode = msg
            self._cond.notify_all()

    def _on_status(self, msg: PolicyStatus) -> None:
        with self._cond:
            self.policy_status = msg
            self._cond.notify_all()

    def _on_chunk(self, msg: ActionChunk) -> None:
        with self._cond:
            self.chunks.append(msg)
            self.last_chunk = msg
            self._cond.notify_all()

    def _on_image(self, msg: Image) -> None:
        from rynnvla_policy.conversions import image_to_rgb, stamp_to_ns

        stamp = stamp_to_ns(msg.header.stamp)
        with self._cond:
            if self._record_camera is None:
                return
            if self.frames and stamp - self.frames[-1].stamp_ns < self._frame_stride_ns:
                return
        rgb = image_to_rgb(msg)
        with self._cond:
            if self._record_camera is not None:
                self.frames.append(Frame(stamp, rgb))

    # ------------------------------------------------------------------ recording frames
    def start_recording(self, topic: str, fps: float) -> None:
        """Keep camera frames of `topic` (sensor_msgs/Image) at up to `fps` until stopped."""
        with self._cond:
            self.frames = []
            self._record_camera = topic
            self._frame_stride_ns = int(1e9 / fps * 0.9) if fps > 0 else 0
        if self._camera_sub is None or self._camera_sub.topic_name != topic:
            if self._camera_sub is not None:
                self.destroy_subscription(self._camera_sub)
            self._camera_sub = self.create_subscription(
                Image, topic, self._on_image, qos_profile_sensor_data
            )

    def stop_recording(self) -> list[Frame]:
        with self._cond:
            self._record_camera = None
            frames, self.frames = self.frames, []
        return frames

    # ------------------------------------------------------------------ waiting
    def wait_for(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Block until predicate() holds (re-checked on every message); TimeoutError names `what`."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{what}: not within {timeout_s:.1f} s")
                self._cond.wait(min(left, 0.2))

    def chunks_since(self, sequence: int) -> list[ActionChunk]:
        with self._cond:
            return [c for c in self.chunks if c.sequence > sequence]

    # ------------------------------------------------------------------ services
    def call(self, client, request, timeout_s: float = 10.0):
        """Call a service and wait for the response (the executor runs in another thread)."""
        name = client.srv_name
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise SystemCallError(f"service {name} is not available after {timeout_s:.0f} s")
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout_s):
            client.remove_pending_request(future)
            raise TimeoutError(f"service {name}: no response within {timeout_s:.0f} s")
        if future.exception() is not None:
            raise SystemCallError(f"service {name} failed: {future.exception()!r}")
        return future.result()

    def reset_episode(self, task_id: str, seed: int, distractors: bool = False) -> str:
        """Start an episode on the sim; returns its instruction."""
        request = ResetEpisode.Request(task_id=task_id, seed=int(seed), distractors=distractors)
        response = self.call(self._reset_cli, request)
        if not response.success:
            raise SystemCallError(f"/sim/reset_episode {task_id} seed {seed}: {response.message}")
        return response.instruction

    def set_instruction(self, text: str, reset_history: bool = True) -> None:
        request = SetInstruction.Request(instruction=text, reset_history=reset_history)
        response = self.call(self._instruction_cli, request)
        if not response.accepted:
            raise SystemCallError(f"set_instruction {text!r} refused: {response.message}")

    def enable_output(self, enabled: bool) -> None:
        response = self.call(self._enable_cli, SetBool.Request(data=enabled))
        if not response.success:
            raise SystemCallError(f"enable_output {enabled}: {response.message}")

    def reset_policy(self) -> None:
        response = self.call(self._reset_policy_cli, Trigger.Request())
        if not response.success:
            raise SystemCallError(f"policy reset: {response.message}")
