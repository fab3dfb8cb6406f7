"""The sim node over real DDS: trajectories, joint states, cameras, reset service, /clock."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not importable (run `make setup`)")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import (  # noqa: E402
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image, JointState  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from rynnvla_msgs.msg import EpisodeStatus  # noqa: E402
from rynnvla_msgs.srv import ResetEpisode  # noqa: E402
from rynnvla_policy.conversions import image_to_rgb, stamp_to_ns  # noqa: E402
from rynnvla_sim.messages import joint_trajectory  # noqa: E402
from rynnvla_sim.node.params import SimNodeParams, SimParamsError  # noqa: E402
from rynnvla_sim.node.sim_node import RELIABLE_LATCHED, SimNode  # noqa: E402
from rynnvla_sim.tasks import TASKS  # noqa: E402

pytestmark = pytest.mark.ros
MS = 1_000_000
JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


# Sensor-data QoS (best effort, as the publishers) with a deep queue: the probe records every
# message; with depth 1 a burst (the sim catching up after the test process was descheduled)
# would lose all but the last, which says nothing about the node.
PROBE_SENSOR_QOS = QoSProfile(
    depth=200,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)


class Harness:
    """A SimNode and a probe node on one executor."""

    def __init__(self, context, spin_until, **params):
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        self.sim = SimNode(context=context, parameter_overrides=overrides)
        self.probe = rclpy.create_node("probe", context=context)
        # Single-threaded like the node's own main(): rclpy's MultiThreadedExecutor, spun with
        # spin_once in a loop, re-dispatches each ready callback until a worker starts it (seen:
        # ~9 dispatches per callback, the spinning thread holding the GIL in ~80% of the samples
        # where a thread held it), a load that belongs to the test process, not to the node.
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.sim)
        self.executor.add_node(self.probe)
        self._spin_until = spin_until
        self.sim.start()

    def collect(self, msg_type, topic, qos=PROBE_SENSOR_QOS) -> list:
        received: list = []
        self.probe.create_subscription(msg_type, topic, received.append, qos)
        return received

    def spin_until(self, predicate, timeout_s=10.0) -> bool:
        return self._spin_until(self.executor, predicate, timeout_s)

    def close(self):
        self.sim.stop()
        self.executor.shutdown()
        self.sim.destroy_node()
        self.probe.destroy_node()


@pytest.fixture
def harness(ros_context, spin_until):
    made: list[Harness] = []

    def make(**params) -> Harness:
        made.append(Harness(ros_context, spin_until, **params))
        return made[-1]

    yield make
    for h in made:
        h.close()


def positions_of(msg: JointState) -> np.ndarray:
    index = {name: i for i, name in enumerate(msg.name)}
    return np.array([msg.position[index[j]] for j in JOINTS])


def test_trajectory_is_followed_on_time(harness):
    h = harness(image_width=32, image_height=24, camera_rate_hz=5.0)
    states = h.collect(JointState, "/joint_states")
    pub = h.probe.create_publisher(JointTrajectory, "/arm_controller/joint_trajectory", 10)
    assert h.spin_until(lambda: len(states) >= 3 and pub.get_subscription_count() > 0)
    start = positions_of(states[-1])
    target = start + np.array([0.3, -0.2, 0.2, 0.25, 0.4, -0.3])
    # stamped 250 ms ahead on the sender's clock (the sim clock tracks it in real time):
    # a deferred start
    t_start = time.time_ns() + 250 * MS
    msg = joint_trajectory(
        JointTrajectory, JointTrajectoryPoint, JOINTS, [target], [400 * MS], stamp_ns=t_start
    )
    pub.publish(msg)
    t_end = t_start + 400 * MS

    def stamp(m):
        return stamp_to_ns(m.header.stamp)

    assert h.spin_until(lambda: states and stamp(states[-1]) > t_end + 500 * MS, 15.0)
    receipt = h.sim.last_trajectory
    assert receipt is not None and receipt.accepted, receipt
    lead_ms = (t_start - receipt.arrival_ns) / MS
    assert lead_ms > 0, f"the trajectory reached the sim {-lead_ms:.0f} ms after its stamp"
    before = [positions_of(m) for m in states if stamp(m) <= t_start - 20 * MS]
    middle = [positions_of(m) for m in states if abs(stamp(m) - (t_start + 200 * MS)) < 15 * MS]
    after = [positions_of(m) for m in states if stamp(m) >= t_end + 400 * MS]
    assert before and middle and after
    # nothing moves before the stamped start; halfway through the ramp the arm is about
    # halfway (servo lag allowed); 0.4 s after the end it is at the target
    np.testing.assert_allclose(before[-1], start, atol=0.01)
    progress = (middle[0] - start) / (target - start)  # (6,) 0 = start, 1 = target
    assert np.all((progress > 0.1) & (progress < 0.75)), progress  # gripper servo: slowest
    np.testing.assert_allclose(after[0], target, atol=0.03)
    assert h.sim.controller.accepted_count == 1
    velocities = np.array([m.velocity for m in states])
    assert velocities.shape[1] == 6 and np.abs(velocities).max() > 0.1


def test_physics_keeps_real_time_next_to_busy_python_threads(harness):
    # Busy Python threads in the node's process (an executor loop, a policy node composed with
    # the sim) once starved the physics thread of the GIL; physics now has its own process.
    h = harness(image_width=32, image_height=24, camera_rate_hz=5.0)
    assert h.spin_until(lambda: h.sim.engine.status()["ticks"] > 50)
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            sum(range(1000))

    threads = [threading.Thread(target=busy, daemon=True) for _ in range(2)]
    before, wall0 = h.sim.engine.status(), time.monotonic()
    for thread in threads:
        thread.start()
    try:
        h.spin_until(lambda: time.monotonic() - wall0 > 1.5, 3.0)
        after, wall = h.sim.engine.status(), time.monotonic() - wall0
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    simulated_s = (after["ticks"] - before["ticks"]) / 500  # control ticks of 2 ms
    assert after["overruns"] == before["overruns"], after
    assert simulated_s > 0.8 * wall, f"{simulated_s:.2f} s simulated in {wall:.2f} s: {after}"


def test_malformed_trajectory_is_rejected_and_the_arm_holds(harness):
    h = harness(image_width=32, image_height=24, camera_rate_hz=5.0)
    states = h.collect(JointState, "/joint_states")
    pub = h.probe.create_publisher(JointTrajectory, "/arm_controller/joint_trajectory", 10)
    assert h.spin_until(lambda: len(states) >= 3 and pub.get_subscription_count() > 0)
    start = positions_of(states[-1])
    wrong = ("shoulder_pan", "shoulder_lift", "elbow", "wrist_flex", "wrist_roll", "gripper")
    pub.publish(
        joint_trajectory(JointTrajectory, JointTrajectoryPoint, wrong, [start + 0.3], [200 * MS])
    )
    assert h.spin_until(lambda: h.sim.last_trajectory is not None)
    controller = h.sim.controller
    assert controller.rejected_count == 1 and controller.accepted_count == 0
    assert "['elbow']" in controller.last_rejection
    assert h.sim.last_trajectory.reason == controller.last_rejection
    n = len(states)
    assert h.spin_until(lambda: len(states) > n + 30)
    np.testing.assert_allclose(positions_of(states[-1]), start, atol=0.01)


def test_reset_service_and_episode_status(harness):
    h = harness(image_width=32, image_height=24, camera_rate_hz=5.0)
    statuses = h.collect(EpisodeStatus, "/sim/episode_status", RELIABLE_LATCHED)
    client = h.probe.create_client(ResetEpisode, "/sim/reset_episode")
    assert h.spin_until(lambda: client.service_is_ready() and statuses)
    assert statuses[-1].task_id == "block_to_plate" and statuses[-1].episode_index == 0

    def call(**fields):
        future = client.call_async(ResetEpisode.Request(**fields))
        assert h.spin_until(future.done)
        return future.result()

    response = call(task_id="strawberry_to_bowl", seed=7, distractors=True)
    assert response.success, response.message
    assert response.instruction == TASKS["strawberry_to_bowl"]

    def latest_is(seed):
        return statuses and statuses[-1].seed == seed

    assert h.spin_until(lambda: latest_is(7))
    status = statuses[-1]
    assert status.task_id == "strawberry_to_bowl" and status.episode_index == 1
    assert status.instruction == TASKS["strawberry_to_bowl"]
    assert not status.success and status.time_to_success == -1.0
    # elapsed grows with sim time; the status keeps coming at >= 2 Hz
    n = len(statuses)
    assert h.spin_until(lambda: len(statuses) >= n + 2, 3.0)
    assert statuses[-1].elapsed > status.elapsed
    # seed -1 = next seed; empty task = keep the task
    response = call(task_id="", seed=-1)
    assert response.success and "seed 8" in response.message
    assert h.spin_until(lambda: latest_is(8))
    assert statuses[-1].task_id == "strawberry_to_bowl"
    response = call(task_id="fly_to_moon", seed=1)
    assert not response.success and "fly_to_moon" in response.message


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_images_have_size_encoding_and_capture_stamps(harness, encoding):
    h = harness(image_width=64, image_height=48, image_encoding=encoding, camera_rate_hz=30.0)
    front = h.collect(Image, "/camera/front/image_raw")
    wrist = h.collect(Image, "/camera/wrist/image_raw")
    states = h.collect(JointState, "/joint_states")
    assert h.spin_until(lambda: len(front) >= 12 and len(wrist) >= 12 and states)
    for msg in front + wrist:
        assert (msg.width, msg.height, msg.encoding, msg.step) == (64, 48, encoding, 64 * 3)
        assert len(msg.data) == 64 * 48 * 3
    stamps = np.array([stamp_to_ns(m.header.stamp) for m in front])
    periods = np.diff(stamps) / 1e9
    assert np.all(periods > 0)
    # captures on the 2 ms control grid at 30 Hz: 32-34 ms apart (or a multiple: dropped frame)
    assert np.median(periods) == pytest.approx(1 / 30, abs=0.0025)
    # stamp = capture time on the sim clock, which tracks the wall clock in real time
    assert abs(stamps[-1] / 1e9 - time.time()) < 1.0
    front_rgb = image_to_rgb(front[-1])
    assert front_rgb.shape == (48, 64, 3) and front_rgb.std() > 5  # a scene, not a blank frame
    wrist_stamps = {stamp_to_ns(m.header.stamp) for m in wrist}
    assert wrist_stamps & set(stamps.tolist())  # both cameras captured at the same instants


def test_jpeg_images_go_to_the_compressed_topic(harness):
    h = harness(image_width=64, image_height=48, image_encoding="jpeg", camera_rate_hz=10.0)
    frames = h.collect(CompressedImage, "/camera/front/image_raw/compressed")
    assert h.spin_until(lambda: len(frames) >= 2)
    assert "jpeg" in frames[-1].format
    assert image_to_rgb(frames[-1]).shape == (48, 64, 3)


def test_faster_than_real_time_publishes_clock(harness):
    h = harness(
        real_time_factor=0.0,
        image_width=32,
        image_height=24,
        camera_rate_hz=10.0,
        cameras=["front"],
    )
    clock = h.collect(Clock, "/clock", 10)
    assert h.spin_until(lambda: len(clock) >= 2)
    sim0, wall0 = stamp_to_ns(clock[-1].clock), time.monotonic()
    assert h.spin_until(lambda: time.monotonic() - wall0 > 1.0)
    sim_elapsed = (stamp_to_ns(clock[-1].clock) - sim0) / 1e9
    assert sim_elapsed > 1.5, f"sim advanced {sim_elapsed:.2f} s in 1 s of wall time"


def test_parameters_are_validated_with_name_and_value(ros_context):
    with pytest.raises(SimParamsError, match=r"camera_rate_hz=-1\.0: must be a finite number > 0"):
        SimNodeParams(camera_rate_hz=-1.0)
    with pytest.raises(SimParamsError, match="image_encoding='yuv'"):
        SimNodeParams(image_encoding="yuv")
    with pytest.raises(SimParamsError, match=r"control_rate_hz=300\.0"):
        SimNode(
            context=ros_context, parameter_overrides=[Parameter("control_rate_hz", value=300.0)]
        )
    with pytest.raises(SimParamsError, match="task_id='nope'"):
        SimNode(context=ros_context, parameter_overrides=[Parameter("task_id", value="nope")])


def test_shipped_yaml_names_every_parameter_with_valid_values():
    import yaml

    path = Path(__file__).resolve().parents[1] / "config" / "sim_node.yaml"
    values = yaml.safe_load(path.read_text())["sim_node"]["ros__parameters"]
    assert set(values) == set(SimNodeParams.__dataclass_fields__)
    assert SimNodeParams.from_mapping(values) == SimNodeParams()  # the YAML documents defaults
