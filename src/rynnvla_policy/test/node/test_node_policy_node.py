"""The policy node on real rclpy / DDS with a tiny checkpoint and a synthetic robot."""

from __future__ import annotations

import numpy as np
import pytest

SO100 = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")

pytestmark = pytest.mark.ros

NS = 1_000_000_000


def stamp_ns(stamp) -> int:
    return stamp.sec * NS + stamp.nanosec


def activate(node, executor, robot, spin_until):
    from rclpy.lifecycle import TransitionCallbackReturn

    executor.add_node(node)
    executor.add_node(robot.node)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS


def test_trajectories_have_joints_times_velocities_and_observation_stamps(
    make_node, robot, executor, spin_until
):
    node = make_node()
    activate(node, executor, robot, spin_until)
    assert spin_until(executor, lambda: len(robot.rec.trajectories) >= 3, 30.0)
    step = 1 / 30
    limits = np.array(node.params.joint_velocity_limits)
    for receive_ns, msg in robot.rec.trajectories:
        assert list(msg.joint_names) == list(SO100)
        times = np.array([stamp_ns(p.time_from_start) for p in msg.points]) / NS
        assert len(times) == 20
        np.testing.assert_allclose(times, step * np.arange(1, 21), atol=1e-6)
        positions = np.array([p.positions for p in msg.points])  # (20, 6)
        velocities = np.array([p.velocities for p in msg.points])
        assert np.all(velocities[-1] == 0.0)  # Jazzy+ controllers refuse anything else
        assert np.all(np.abs(np.diff(positions, axis=0)) <= limits * step + 1e-9)
        # stamped with the observation's capture time: in the past, by the latency
        stamp = stamp_ns(msg.header.stamp)
        assert 0 < receive_ns - stamp < 2 * NS
    # each trajectory matches an action chunk from the same observation
    traj_stamps = {stamp_ns(m.header.stamp) for _, m in robot.rec.trajectories[:3]}
    assert spin_until(
        executor,
        lambda: traj_stamps <= {stamp_ns(c.header.stamp) for c in robot.rec.chunks},
        10.0,
    )
    chunk = robot.rec.chunks[0]
    assert chunk.horizon == 20 and len(chunk.positions) == 120
    assert list(chunk.joint_names) == list(SO100)
    assert chunk.instruction == "put the green block on the plate"
    assert 0 < chunk.inference_latency <= chunk.end_to_end_latency


def test_drop_due_points_mode_keeps_only_future_targets(make_node, robot, executor, spin_until):
    node = make_node(
        latency_compensation="drop_due_points",
        overlap_policy="latest",
        joint_velocity_limits=[20.0] * 6,  # no velocity clipping: kept targets equal the chunk's
    )
    activate(node, executor, robot, spin_until)
    assert spin_until(executor, lambda: len(robot.rec.trajectories) >= 2, 30.0)
    trajectories = [m for _, m in robot.rec.trajectories[:2]]
    assert spin_until(executor, lambda: len(robot.rec.chunks) >= 2, 10.0)  # sent after each
    chunks = robot.rec.chunks
    step_ns = NS / 30
    for msg in trajectories:
        publish = stamp_ns(msg.header.stamp)

        # the chunk this trajectory came from: its end-to-end latency (observation stamp to
        # just after the publish) ends at this publish stamp (taken just before the publish)
        def gap(c, publish=publish):
            return publish - stamp_ns(c.header.stamp) - c.end_to_end_latency * NS

        chunk = min(chunks, key=lambda c: abs(gap(c)))
        assert -50e6 < gap(chunk) <= 0
        obs = stamp_ns(chunk.header.stamp)
        targets = obs + step_ns * np.arange(1, 21)  # absolute time of every chunk target
        due = int(np.count_nonzero(targets <= publish))
        assert len(msg.points) == 20 - due  # exactly the targets already due were dropped
        absolute = publish + np.array([stamp_ns(p.time_from_start) for p in msg.points])
        np.testing.assert_allclose(absolute, targets[due:], atol=2)  # same absolute times
        assert 0 < stamp_ns(msg.points[0].time_from_start) <= step_ns + 1
        full = np.array(chunk.positions).reshape(20, 6)
        np.testing.assert_allclose(msg.points[0].positions, full[due], atol=1e-9)


def test_lifecycle_transitions_over_the_lifecycle_services(
    make_node, robot, executor, spin_until, ros_context
):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    node = make_node()
    executor.add_node(node)
    executor.add_node(robot.node)
    change = robot.node.create_client(ChangeState, "/rynnvla_policy/change_state")
    get = robot.node.create_client(GetState, "/rynnvla_policy/get_state")

    def call(client, request):
        future = client.call_async(request)
        assert spin_until(executor, future.done, 60.0)
        return future.result()

    def transition(tid):
        return call(change, ChangeState.Request(transition=Transition(id=tid))).success

    def state():
        return call(get, GetState.Request()).current_state.label

    assert spin_until(executor, lambda: robot.status_where(lambda s: s.lifecycle_state), 10.0)
    assert robot.last_status().lifecycle_state == "unconfigured"
    assert state() == "unconfigured"
    assert transition(Transition.TRANSITION_CONFIGURE)
    assert state() == "inactive"
    assert spin_until(executor, lambda: robot.last_status().lifecycle_state == "inactive", 10.0)
    assert robot.rec.trajectories == []  # inactive: nothing commanded
    assert transition(Transition.TRANSITION_ACTIVATE)
    assert spin_until(executor, lambda: len(robot.rec.trajectories) >= 1, 30.0)
    assert spin_until(
        executor, lambda: robot.status_where(lambda s: s.control_state_label == "running"), 10.0
    )
    assert transition(Transition.TRANSITION_DEACTIVATE)
    # the last command is a hold at the measured position (a chunk may still be in flight)
    assert spin_until(executor, lambda: len(robot.rec.trajectories[-1][1].points) == 1, 10.0)
    hold = robot.rec.trajectories[-1][1]
    np.testing.assert_allclose(hold.points[0].positions, robot.state)
    assert spin_until(
        executor,
        lambda: robot.status_where(
            lambda s: s.lifecycle_state == "inactive" and s.control_state_label == "holding"
        ),
        10.0,
    )
    count = len(robot.rec.trajectories)
    # no more commands while inactive, though inputs keep flowing
    spin_until(executor, lambda: False, 1.0)
    assert len(robot.rec.trajectories) == count
    assert transition(Transition.TRANSITION_CLEANUP)
    assert state() == "unconfigured"
    assert transition(Transition.TRANSITION_CONFIGURE)  # configure again after cleanup
    assert transition(Transition.TRANSITION_ACTIVATE)
    assert spin_until(executor, lambda: len(robot.rec.trajectories) > count, 30.0)
    assert transition(Transition.TRANSITION_ACTIVE_SHUTDOWN)
    assert state() == "finalized"


def test_auto_activate_starts_control_without_a_lifecycle_manager(
    make_node, robot, executor, spin_until
):
    node = make_node(auto_activate=True)
    executor.add_node(node)
    executor.add_node(robot.node)
    assert spin_until(executor, lambda: len(robot.rec.trajectories) >= 1, 30.0)
    assert spin_until(
        executor, lambda: robot.status_where(lambda s: s.lifecycle_state == "active"), 10.0
    )


def test_status_and_diagnostics_at_least_1_hz(make_node, robot, executor, spin_until):
    node = make_node(status_rate_hz=1.0)
    activate(node, executor, robot, spin_until)
    assert spin_until(executor, lambda: len(robot.rec.chunks) >= 2, 30.0)
    start = len(robot.rec.statuses)
    start_diag = len(robot.rec.diagnostics)
    spin_until(executor, lambda: False, 2.6)
    assert len(robot.rec.statuses) - start >= 2
    assert len(robot.rec.diagnostics) - start_diag >= 2
    status = robot.last_status()
    assert status.lifecycle_state == "active" and status.output_enabled
    assert status.latency_mean_ms > 0 and status.end_to_end_p50_ms >= status.latency_last_ms * 0
    assert status.achieved_rate_hz > 0
    names = {s.name for s in robot.rec.diagnostics[-1].status}
    assert names >= {
        "rynnvla_policy: control",
        "rynnvla_policy: input front",
        "rynnvla_policy: input wrist",
        "rynnvla_policy: input joint_states",
    }


@pytest.mark.parametrize(
    ("front", "wrist"), [("jpeg", "png"), ("bgr8", "mono16"), ("yuv422", "rgba8")]
)
def test_cameras_in_any_common_encoding_or_compressed(
    front, wrist, make_node, robot, executor, spin_until
):
    compressed = [front in ("jpeg", "png"), wrist in ("jpeg", "png")]
    topics = [
        f"/camera/{cam}/image_raw" + ("/compressed" if c else "")
        for cam, c in zip(("front", "wrist"), compressed, strict=True)
    ]
    node = make_node(camera_compressed=compressed, camera_topics=topics)
    robot.image_override["front"] = lambda stamp: robot.frame(stamp, front)
    robot.image_override["wrist"] = lambda stamp: robot.frame(stamp, wrist)
    activate(node, executor, robot, spin_until)
    assert spin_until(executor, lambda: len(robot.rec.trajectories) >= 1, 30.0)
    assert spin_until(executor, lambda: robot.status_where(lambda s: s.chunks_published), 10.0)
    assert robot.last_status().dropped_inputs == 0
    image = node.buffers.latest("front").value
    assert image.shape == (96, 128, 3) and image.dtype == np.uint8


def test_simulated_time_drives_ages_and_stamps(make_node, robot, executor, spin_until):
    """With use_sim_time the node ages inputs and stamps chunks on /clock, not the wall clock."""
    robot.clock_offset_ns = 3600 * NS  # simulated time is an hour behind the wall clock
    node = make_node(use_sim_time=True)
    executor.add_node(robot.node)
    executor.add_node(node)
    assert spin_until(
        executor, lambda: 0 < node.get_clock().now().nanoseconds < robot.now_ns() + NS, 10.0
    )
    from rclpy.lifecycle import TransitionCallbackReturn

    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert spin_until(executor, lambda: len(robot.rec.trajectories) >= 1, 30.0)
    receive, msg = robot.rec.trajectories[0]
    assert 0 < receive - stamp_ns(msg.header.stamp) < 2 * NS  # stamped in simulated time
    assert spin_until(executor, lambda: len(robot.rec.chunks) >= 1, 10.0)
    assert 0 < robot.rec.chunks[0].end_to_end_latency < 2.0
