"""``SimNode``: the MuJoCo arm as a ROS 2 node that behaves like an arm behind ros2_control.

Physics and cameras run in the node's engine process (``SimEngine``, engine.py), with a GIL of
their own: busy Python threads of this process (executors, a policy node composed with this
one) cannot starve physics. This process holds the ROS interfaces: a receiver thread publishes
what the engine produces; the executor's threads serve the trajectory subscription, the reset
service and the status timer by calling the engine.

Topics (defaults, see docs/architecture.md): publishes ``/joint_states``,
``/camera/<name>/image_raw`` (or ``.../compressed``), ``/sim/episode_status``, ``/clock``;
subscribes ``/<controller_name>/joint_trajectory``; serves ``/sim/reset_episode``.

Stamps are sim time: ``epoch (wall clock at start-up) + simulated seconds``. In real time this
tracks the wall clock, so nodes without ``use_sim_time`` see consistent stamps; faster than
real time, ``/clock`` carries it for nodes with ``use_sim_time:=true``.
"""

from __future__ import annotations

import threading
from typing import Any

from builtin_interfaces.msg import Time
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CompressedImage, Image, JointState
from trajectory_msgs.msg import JointTrajectory

from rynnvla_msgs.msg import EpisodeStatus
from rynnvla_msgs.srv import ResetEpisode
from rynnvla_policy.conversions import ns_to_stamp, rgb_to_compressed_image, rgb_to_image
from rynnvla_sim.messages import joint_state
from rynnvla_sim.node.engine import (
    ControllerCounters,
    EngineCallError,
    EngineHandlers,
    EngineSpec,
    SimEngine,
    TrajectoryReceipt,
)
from rynnvla_sim.node.params import SimNodeParams
from rynnvla_sim.trajectory import FollowerConfig

RELIABLE_LATCHED = QoSProfile(
    depth=1,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


def declare_params(node: Node) -> SimNodeParams:
    """Declare every SimNodeParams field as a ROS parameter and build the validated params."""
    defaults = SimNodeParams()
    values = {}
    for name in SimNodeParams.__dataclass_fields__:
        default = getattr(defaults, name)
        value = node.declare_parameter(
            name, list(default) if isinstance(default, tuple) else default
        )
        values[name] = value.value
    return SimNodeParams.from_mapping(values)


class SimNode(Node):
    """The simulated arm. ``start()`` after construction, ``stop()`` before destroy_node()."""

    def __init__(self, node_name: str = "sim_node", **kwargs: Any):
        super().__init__(node_name, **kwargs)
        self.params = p = declare_params(self)
        self._lock = threading.Lock()  # guards the episode bookkeeping
        self._episode = {"seed": p.seed, "index": 0, "distractors": p.distractors}
        self._next_seed = p.seed + 1
        self.last_trajectory: TrajectoryReceipt | None = None
        # raises SimParamsError (bad joint names, image size, task, control rate)
        self.engine = SimEngine(
            engine_spec(p),
            EngineHandlers(
                joint_state=self._publish_joint_state,
                clock=self._publish_clock,
                frame=self._publish_frame,
                overrun=self._overrun,
                error=self._engine_failed,
            ),
        )
        self.controller = ControllerCounters(self.engine)
        self._create_interfaces()

    @property
    def physics(self) -> SimEngine:
        """The engine (physics and cameras); ``.running`` says whether it still runs."""
        return self.engine

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start rendering (raises GLBackendError without a GL backend), then physics."""
        self.engine.start()
        self._publish_status()
        p = self.params
        self.get_logger().info(
            f"simulated arm up: task {p.task_id!r} seed {p.seed}, real_time_factor "
            f"{p.real_time_factor}, cameras {list(p.cameras)} {p.image_width}x{p.image_height} "
            f"{p.image_encoding} at {p.camera_rate_hz} Hz, trajectories on {p.trajectory_topic}"
        )

    def stop(self) -> None:
        """Stop physics and rendering, end the engine process (idempotent); the arm stops."""
        self.engine.stop()

    def _overrun(self, lag_s: float) -> None:
        self.get_logger().warning(
            f"simulation fell {lag_s:.2f} s behind the wall clock (real_time_factor "
            f"{self.params.real_time_factor}): the sim clock skipped ahead, the arm stood still "
            "meanwhile. The engine process got too little CPU: the machine is overloaded; "
            "lower camera_rate_hz / image size, or use real_time_factor < 1",
            throttle_duration_sec=5.0,
        )

    def _engine_failed(self, reason: str) -> None:
        if not self.context.ok():
            return  # Ctrl-C shut the context down under the publishing thread: a normal exit
        self.get_logger().fatal(f"simulation engine failed: {reason}")

    # ---- ROS interfaces ----------------------------------------------------------------------

    def _create_interfaces(self) -> None:
        p = self.params
        self._js_pub = self.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
        image_type = CompressedImage if p.compressed else Image
        self._image_pubs = {
            cam: self.create_publisher(image_type, p.camera_topic(cam), qos_profile_sensor_data)
            for cam in p.cameras
        }
        self._clock_pub = self.create_publisher(Clock, "/clock", 10) if p.publishes_clock else None
        self._status_pub = self.create_publisher(
            EpisodeStatus, "/sim/episode_status", RELIABLE_LATCHED
        )
        self.create_subscription(
            JointTrajectory,
            p.trajectory_topic,
            self._on_trajectory,
            10,
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        self.create_service(
            ResetEpisode,
            "/sim/reset_episode",
            self._on_reset,
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        self.create_timer(
            1.0 / p.status_rate_hz,
            self._publish_status,
            callback_group=MutuallyExclusiveCallbackGroup(),
        )

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        try:
            self.last_trajectory = receipt = self.engine.submit(msg)
        except EngineCallError as exc:
            self.get_logger().error(f"trajectory not delivered to the engine: {exc}")
            return
        if not receipt.accepted:
            self.get_logger().warning(f"rejected trajectory: {receipt.reason}")

    def _on_reset(self, request, response):
        with self._lock:
            seed = self._next_seed if request.seed < 0 else int(request.seed)
            try:
                info = self.engine.reset(request.task_id, seed, bool(request.distractors))
            except EngineCallError as exc:
                response.success = False
                response.message = f"reset refused: {exc}"
                response.instruction = self._status_or_empty().get("instruction", "")
                self.get_logger().warning(response.message)
                return response
            self._next_seed = seed + 1
            self._episode = {
                "seed": seed,
                "index": self._episode["index"] + 1,
                "distractors": bool(request.distractors),
            }
        response.success = True
        response.message = f"episode {self._episode['index']}: {info['task_id']} seed {seed}"
        response.instruction = info["instruction"]
        self.get_logger().info(response.message)
        self._publish_status()
        return response

    def _status_or_empty(self) -> dict:
        try:
            return self.engine.status()
        except EngineCallError:
            return {}

    # ---- publishing (called from the engine's receiver thread and the executor) -------------

    def _publish_joint_state(self, stamp_ns: int, q, qd) -> None:
        self._js_pub.publish(
            joint_state(JointState, self.params.joint_names, q, qd, stamp_ns=stamp_ns)
        )

    def _publish_clock(self, stamp_ns: int) -> None:
        self._clock_pub.publish(Clock(clock=ns_to_stamp(stamp_ns, Time)))

    def _publish_frame(self, stamp_ns: int, camera: str, rgb) -> None:
        p = self.params
        frame_id = f"{camera}_camera_optical_frame"
        if p.compressed:
            msg = rgb_to_compressed_image(
                rgb, CompressedImage, quality=p.jpeg_quality, stamp_ns=stamp_ns, frame_id=frame_id
            )
        else:
            msg = rgb_to_image(
                rgb, Image, encoding=p.image_encoding, stamp_ns=stamp_ns, frame_id=frame_id
            )
        self._image_pubs[camera].publish(msg)

    def _publish_status(self) -> None:
        try:
            status = self.engine.status()
        except EngineCallError as exc:
            if self.context.ok() and self.engine.running:
                self.get_logger().error(f"no episode status from the engine: {exc}")
            return
        with self._lock:
            episode = dict(self._episode)
        msg = EpisodeStatus(
            task_id=status["task_id"],
            instruction=status["instruction"],
            seed=int(episode["seed"]),
            episode_index=int(episode["index"]),
            elapsed=status["elapsed_s"],
            success=status["success"],
            time_to_success=status["time_to_success_s"],
        )
        msg.header.stamp = ns_to_stamp(status["now_ns"], Time)
        self._status_pub.publish(msg)


def engine_spec(p: SimNodeParams) -> EngineSpec:
    """What the engine process builds, from the node's parameters."""
    follower = FollowerConfig(
        p.joint_names,
        allow_partial_joints_goal=p.allow_partial_joints_goal,
        allow_nonzero_velocity_at_trajectory_end=p.allow_nonzero_velocity_at_trajectory_end,
        interpolate_from_desired_state=p.interpolate_from_desired_state,
    )
    return EngineSpec(
        follower=follower,
        task_id=p.task_id,
        seed=p.seed,
        distractors=p.distractors,
        control_rate_hz=p.control_rate_hz,
        real_time_factor=p.real_time_factor,
        joint_state_rate_hz=p.joint_state_rate_hz,
        camera_rate_hz=p.camera_rate_hz,
        clock_rate_hz=p.clock_rate_hz if p.publishes_clock else None,
        cameras=tuple(p.cameras),
        image_width=p.image_width,
        image_height=p.image_height,
        render_queue_size=p.render_queue_size,
    )
