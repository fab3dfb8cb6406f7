"""Fixtures of the policy-node tests: a tiny checkpoint, a synthetic robot, a node factory.

The synthetic robot is a real rclpy node publishing camera frames and joint states over DDS
with capture stamps from the shared clock, and recording everything the policy node sends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

SO100 = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
HOME = np.array([0.0, -0.4, 0.6, 0.3, 0.0, 0.2])


@pytest.fixture(scope="session")
def node_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    from rynnvla_policy.core.testing import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("node_tiny") / "ckpt", seed=0)


def base_params(checkpoint: Path, **overrides) -> dict:
    """Node parameters for tests: the tiny checkpoint, output on, quick warm-up."""
    return {
        "checkpoint_path": str(checkpoint),
        "output_enabled": True,
        "warmup_runs": 1,
        "warmup_image_shape": [96, 128],
        "instruction": "put the green block on the plate",
        "status_rate_hz": 5.0,
        # generous ages: 2 shared cores, the test executor also runs the publishers
        "camera_max_age_s": [0.5, 0.5],
        "joint_states_max_age_s": 0.5,
        **overrides,
    }


@dataclass
class Recorded:
    trajectories: list = field(default_factory=list)  # (receive_ns, JointTrajectory)
    chunks: list = field(default_factory=list)
    statuses: list = field(default_factory=list)
    diagnostics: list = field(default_factory=list)
    instructions: list = field(default_factory=list)


class SyntheticRobot:
    """Camera + joint-state publisher and recorder of the policy node's outputs."""

    def __init__(self, context, camera_rate_hz: float = 30.0):
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.node import Node
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CompressedImage, Image, JointState
        from std_msgs.msg import String
        from trajectory_msgs.msg import JointTrajectory

        from rynnvla_msgs.msg import ActionChunk, PolicyStatus

        self.node = Node("synthetic_robot", context=context)
        self.rec = Recorded()
        self.state = HOME.copy()
        self.joint_names = list(SO100)
        self.cameras_on = {"front": True, "wrist": True}
        self.joints_on = True
        self.image_override: dict[str, Callable] = {}  # camera -> fn(stamp_ns) -> msg
        self.joint_override: Callable | None = None
        self._lock = threading.Lock()
        self._rng = np.random.default_rng(0)
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        n = self.node
        self._image_cls, self._joint_cls = Image, JointState
        self.camera_pubs = {
            cam: n.create_publisher(Image, f"/camera/{cam}/image_raw", 5)
            for cam in ("front", "wrist")
        }
        self.compressed_pubs = {
            cam: n.create_publisher(CompressedImage, f"/camera/{cam}/image_raw/compressed", 5)
            for cam in ("front", "wrist")
        }
        self._compressed_cls = CompressedImage
        self.joint_pub = n.create_publisher(JointState, "/joint_states", 5)
        n.create_subscription(
            JointTrajectory, "/arm_controller/joint_trajectory", self._on_trajectory, reliable
        )
        n.create_subscription(
            ActionChunk, "/rynnvla_policy/action_chunk", self.rec.chunks.append, reliable
        )
        n.create_subscription(
            PolicyStatus, "/rynnvla_policy/status", self.rec.statuses.append, reliable
        )
        n.create_subscription(
            DiagnosticArray, "/diagnostics", self.rec.diagnostics.append, reliable
        )
        n.create_subscription(String, "/instruction", self.rec.instructions.append, latched)
        n.create_timer(1.0 / camera_rate_hz, self._publish_cameras)
        n.create_timer(0.01, self._publish_joints)
        # simulated time: stamps and /clock run this far behind the wall clock
        self.clock_offset_ns = 0
        from rosgraph_msgs.msg import Clock

        self._clock_pub = n.create_publisher(Clock, "/clock", 10)
        self._clock_cls = Clock
        n.create_timer(0.005, self._publish_clock)

    # ---------------------------------------------------------------- publishing
    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds - self.clock_offset_ns

    def _publish_clock(self) -> None:
        if self.clock_offset_ns:
            from rynnvla_policy.conversions import ns_to_stamp

            msg = self._clock_cls()
            msg.clock = ns_to_stamp(self.now_ns(), type(msg.clock))
            self._clock_pub.publish(msg)

    def frame(self, stamp_ns: int, encoding: str = "rgb8"):
        """A random camera frame; encoding "jpeg"/"png" gives a CompressedImage."""
        from rynnvla_policy.conversions import rgb_to_compressed_image, rgb_to_image

        rgb = self._rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
        if encoding in ("jpeg", "png"):
            return rgb_to_compressed_image(
                rgb, self._compressed_cls, fmt=encoding, stamp_ns=stamp_ns
            )
        return rgb_to_image(rgb, self._image_cls, encoding=encoding, stamp_ns=stamp_ns)

    def _publish_cameras(self) -> None:
        stamp = self.now_ns()
        for cam, pub in self.camera_pubs.items():
            if not self.cameras_on[cam]:
                continue
            msg = self.image_override.get(cam, self.frame)(stamp)
            if isinstance(msg, self._compressed_cls):
                pub = self.compressed_pubs[cam]
            pub.publish(msg)

    def joint_msg(self, stamp_ns: int):
        from rynnvla_policy.conversions import ns_to_stamp

        msg = self._joint_cls()
        msg.header.stamp = ns_to_stamp(stamp_ns, type(msg.header.stamp))
        # extra joints and another order: the node must pick its joints by name
        msg.name = ["extra_joint", *reversed(self.joint_names)]
        with self._lock:
            msg.position = [9.9, *reversed(self.state.tolist())]
        return msg

    def _publish_joints(self) -> None:
        if not self.joints_on:
            return
        stamp = self.now_ns()
        make = self.joint_override or self.joint_msg
        self.joint_pub.publish(make(stamp))

    def _on_trajectory(self, msg) -> None:
        self.rec.trajectories.append((self.now_ns(), msg))  # receive time on the robot's clock

    # ---------------------------------------------------------------- queries
    def last_status(self):
        return self.rec.statuses[-1] if self.rec.statuses else None

    def status_where(self, predicate) -> bool:
        status = self.last_status()
        return status is not None and predicate(status)

    def destroy(self) -> None:
        self.node.destroy_node()


@pytest.fixture
def robot(ros_context) -> Iterator[SyntheticRobot]:
    robot = SyntheticRobot(ros_context)
    yield robot
    robot.destroy()


@pytest.fixture
def node_params(node_checkpoint):
    """node_params(**overrides) -> the test parameters of the policy node, as a dict."""
    return lambda **overrides: base_params(node_checkpoint, **overrides)


@pytest.fixture
def make_node(ros_context, node_checkpoint):
    """make_node(**param_overrides) -> PolicyNode (unconfigured); destroyed after the test."""
    from rclpy.parameter import Parameter

    from rynnvla_policy.node.policy_node import PolicyNode

    nodes = []

    def _make(**overrides):
        params = base_params(node_checkpoint, **overrides)
        node = PolicyNode(
            context=ros_context,
            parameter_overrides=[Parameter(k, value=v) for k, v in params.items()],
        )
        nodes.append(node)
        return node

    yield _make
    for node in nodes:
        node.safe_stop()
        node.destroy_node()


@pytest.fixture
def executor(ros_context):
    from rclpy.executors import SingleThreadedExecutor

    ex = SingleThreadedExecutor(context=ros_context)
    yield ex
    ex.shutdown()
