"""joint_trajectory_controller semantics of TrajectoryFollower, with plain message objects."""

from __future__ import annotations

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from rynnvla_sim.messages import joint_trajectory
from rynnvla_sim.trajectory import (
    NS_PER_S,
    FollowerConfig,
    TrajectoryFollower,
    TrajectoryRejected,
    parse_trajectory,
)

TYPES = get_typestore(Stores.ROS2_JAZZY).types
JointTrajectory = TYPES["trajectory_msgs/msg/JointTrajectory"]
JointTrajectoryPoint = TYPES["trajectory_msgs/msg/JointTrajectoryPoint"]
JOINTS = ("j1", "j2", "j3")
MS = 1_000_000
T0 = 100 * NS_PER_S  # "now" when messages arrive


def traj(positions, times_ms, *, names=JOINTS, velocities=None, stamp_ns=0):
    positions = np.asarray(positions, dtype=np.float64)
    vel = None if velocities is None else np.asarray(velocities, dtype=np.float64)
    return joint_trajectory(
        JointTrajectory,
        JointTrajectoryPoint,
        names,
        positions,
        [int(t * MS) for t in times_ms],
        velocities=vel,
        stamp_ns=stamp_ns,
    )


def follower(**kwargs) -> TrajectoryFollower:
    return TrajectoryFollower(FollowerConfig(JOINTS, **kwargs), np.zeros(3))


def test_chunk_is_executed_on_time():
    f = follower()
    chunk = np.outer(np.arange(1, 21), [0.01, -0.02, 0.03])  # (20, 3): a 20-step chunk
    assert f.submit(traj(chunk, [33.3 * (i + 1) for i in range(20)]), T0).accepted
    for i in range(20):
        t = T0 + int(33.3 * (i + 1) * MS)
        np.testing.assert_allclose(f.sample(t)[0], chunk[i], atol=1e-9)
    # halfway between two points (linear): the midpoint, with the segment's slope as velocity
    pos, vel = f.sample(T0 + int(33.3 * 5.5 * MS))
    np.testing.assert_allclose(pos, (chunk[4] + chunk[5]) / 2, atol=1e-9)
    np.testing.assert_allclose(vel, [0.01 / 0.0333, -0.02 / 0.0333, 0.03 / 0.0333], rtol=1e-6)
    # after the last point: hold it, zero velocity
    pos, vel = f.sample(T0 + 5 * NS_PER_S)
    np.testing.assert_allclose(pos, chunk[-1])
    np.testing.assert_array_equal(vel, 0.0)
    assert not f.is_active(T0 + 5 * NS_PER_S)


def test_first_segment_starts_from_the_held_state():
    f = TrajectoryFollower(FollowerConfig(JOINTS), [1.0, 1.0, 1.0])
    f.submit(traj([[3.0, 3.0, 3.0]], [100]), T0)
    np.testing.assert_allclose(f.sample(T0)[0], [1.0] * 3)
    np.testing.assert_allclose(f.sample(T0 + 50 * MS)[0], [2.0] * 3)
    np.testing.assert_allclose(f.sample(T0 + 100 * MS)[0], [3.0] * 3)


def test_replacement_splices_from_the_current_command():
    f = follower()
    f.submit(traj([[1.0, 1.0, 1.0]], [1000]), T0)  # 1 rad/s ramp
    before, _ = f.sample(T0 + 400 * MS)
    np.testing.assert_allclose(before, [0.4] * 3)
    # the new trajectory arrives at 0.5 s and goes to -1 in 0.5 s: no jump at the splice
    now = T0 + 500 * MS
    assert f.submit(traj([[-1.0, -1.0, -1.0]], [500]), now).accepted
    np.testing.assert_allclose(f.sample(now)[0], [0.5] * 3, atol=1e-9)
    np.testing.assert_allclose(f.sample(now + 250 * MS)[0], [-0.25] * 3, atol=1e-9)
    np.testing.assert_allclose(f.sample(now + 500 * MS)[0], [-1.0] * 3, atol=1e-9)
    # the old target is never reached
    np.testing.assert_allclose(f.sample(now + 2 * NS_PER_S)[0], [-1.0] * 3)


def test_splice_from_measured_state_when_configured():
    f = follower(interpolate_from_desired_state=False)
    f.submit(traj([[1.0, 1.0, 1.0]], [1000]), T0)
    f.sample(T0 + 400 * MS)
    now = T0 + 500 * MS
    f.submit(traj([[1.0, 1.0, 1.0]], [500]), now)
    measured = [0.2, 0.3, 0.4]  # the arm lags behind the 0.5 command
    np.testing.assert_allclose(f.sample(now, measured)[0], measured)
    np.testing.assert_allclose(f.sample(now + 250 * MS, measured)[0], [0.6, 0.65, 0.7])


def test_trajectory_ending_in_the_past_is_rejected_and_keeps_the_active_one():
    f = follower()
    f.submit(traj([[1.0, 1.0, 1.0]], [1000]), T0)
    stale = traj([[5.0, 5.0, 5.0]], [100], stamp_ns=T0 - NS_PER_S)  # ended 0.9 s ago
    result = f.submit(stale, T0 + 10 * MS)
    assert not result.accepted
    assert "ends in the past" in result.reason
    assert f.rejected_count == 1 and f.last_rejection == result.reason
    np.testing.assert_allclose(f.sample(T0 + 1000 * MS)[0], [1.0] * 3)


def test_past_points_are_dropped():
    f = follower()
    # stamped 100 ms ago (e.g. the observation time): points at 50 and 100 ms are already due
    stamp = T0 - 100 * MS
    chunk = [[9.0] * 3, [9.0] * 3, [2.0] * 3, [3.0] * 3]
    assert f.submit(traj(chunk, [50, 100, 200, 300], stamp_ns=stamp), T0).accepted
    # from the held zero state straight to the first point still ahead (2.0 at +100 ms)
    np.testing.assert_allclose(f.sample(T0)[0], [0.0] * 3)
    np.testing.assert_allclose(f.sample(T0 + 50 * MS)[0], [1.0] * 3)
    np.testing.assert_allclose(f.sample(T0 + 100 * MS)[0], [2.0] * 3)
    np.testing.assert_allclose(f.sample(T0 + 200 * MS)[0], [3.0] * 3)
    samples = [f.sample(T0 + k * MS)[0][0] for k in range(0, 300, 5)]
    assert max(samples) <= 3.0  # the dropped 9.0 points are never commanded


def test_deferred_start_keeps_the_active_trajectory_until_the_stamp():
    f = follower()
    f.submit(traj([[1.0, 1.0, 1.0]], [1000]), T0)
    start = T0 + 600 * MS
    assert f.submit(traj([[0.0, 0.0, 0.0]], [200], stamp_ns=start), T0 + 100 * MS).accepted
    assert f.is_active(T0 + 100 * MS)
    np.testing.assert_allclose(f.sample(T0 + 300 * MS)[0], [0.3] * 3)  # old ramp goes on
    np.testing.assert_allclose(f.sample(start)[0], [0.6] * 3)  # spliced at the stamp
    np.testing.assert_allclose(f.sample(start + 100 * MS)[0], [0.3] * 3)
    np.testing.assert_allclose(f.sample(start + 200 * MS)[0], [0.0] * 3)


def test_joint_order_may_differ_and_is_mapped():
    f = follower()
    f.submit(traj([[3.0, 1.0, 2.0]], [100], names=("j3", "j1", "j2")), T0)
    np.testing.assert_allclose(f.sample(T0 + 100 * MS)[0], [1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    ("names", "fragment"),
    [
        (("j1", "j2", "elbow"), "do not match"),
        (("j1", "j2"), "allow_partial_joints_goal is false"),
        (("j1", "j1", "j2"), "duplicate joint names"),
        ((), "empty joint_names"),
    ],
)
def test_wrong_joint_names_are_rejected(names, fragment):
    f = follower()
    positions = np.zeros((1, len(names)))
    result = f.submit(traj(positions, [100], names=names), T0)
    assert not result.accepted
    assert fragment in result.reason
    assert f.accepted_count == 0


def test_partial_goal_when_allowed_holds_the_other_joints():
    f = TrajectoryFollower(FollowerConfig(JOINTS, allow_partial_joints_goal=True), [0.5] * 3)
    assert f.submit(traj([[2.0]], [100], names=("j2",)), T0).accepted
    np.testing.assert_allclose(f.sample(T0 + 100 * MS)[0], [0.5, 2.0, 0.5])


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: traj([[0, 0, 0], [1, 1, 1]], [100, 100]), "not strictly increasing"),
        (lambda: traj([[0, 0, 0], [1, 1, 1]], [200, 100]), "not strictly increasing"),
        (lambda: traj([[0, 0, np.nan]], [100]), "non-finite positions"),
        (lambda: traj([[0, 0, 0]], [100], velocities=[[0, 0, np.inf]]), "non-finite velocities"),
        (lambda: traj([[0, 0, 0]], [100], velocities=[[0.5, 0, 0]]), "is not zero"),
        (lambda: traj(np.zeros((0, 3)), []), "no points"),
    ],
)
def test_malformed_messages_are_rejected_with_a_reason(build, fragment):
    result = follower().submit(build(), T0)
    assert not result.accepted
    assert fragment in result.reason, result.reason


def test_positions_length_must_match_joint_names():
    msg = traj([[0.0, 0.0, 0.0]], [100])
    msg.points[0].positions = np.zeros(2)
    with pytest.raises(TrajectoryRejected, match="point #0 has 2 positions for 3 joints"):
        parse_trajectory(msg, FollowerConfig(JOINTS), T0)


def test_nonzero_end_velocity_accepted_when_allowed():
    f = follower(allow_nonzero_velocity_at_trajectory_end=True)
    assert f.submit(traj([[1.0, 1.0, 1.0]], [100], velocities=[[1.0, 1.0, 1.0]]), T0).accepted


def test_cubic_uses_velocities_and_linear_does_not():
    positions = [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]
    linear, cubic = follower(), follower()
    linear.submit(traj(positions, [1000, 2000]), T0)
    cubic.submit(traj(positions, [1000, 2000], velocities=[[1.0] * 3, [0.0] * 3]), T0)
    for f in (linear, cubic):
        for t_ms, expected in ((1000, 1.0), (2000, 2.0)):
            np.testing.assert_allclose(f.sample(T0 + t_ms * MS)[0], [expected] * 3, atol=1e-9)
    # linear: constant slope inside a segment; cubic: hits the given knot velocities
    np.testing.assert_allclose(linear.sample(T0 + 1500 * MS)[0], [1.5] * 3)
    np.testing.assert_allclose(linear.sample(T0 + 1500 * MS)[1], [1.0] * 3)
    t_knot = T0 + 1000 * MS
    np.testing.assert_allclose(cubic.sample(t_knot)[1], [1.0] * 3, atol=1e-9)
    np.testing.assert_allclose(cubic.sample(T0 + 1999 * MS)[1], [0.0] * 3, atol=1e-2)
    # Hermite from (p=1, v=1) to (p=2, v=0) over 1 s: p(s) = 1 + s + s^2 - s^3, p(0.5) = 1.625
    np.testing.assert_allclose(cubic.sample(T0 + 1500 * MS)[0], [1.625] * 3, atol=1e-9)
    # the cubic velocity is continuous across the knot (linear's is not)
    v_before = cubic.sample(t_knot - 1 * MS)[1]
    assert np.allclose(v_before, [1.0] * 3, atol=5e-3)


def test_quintic_with_accelerations_meets_the_knot_accelerations():
    msg = traj([[1.0] * 3, [2.0] * 3], [1000, 2000], velocities=[[1.0] * 3, [0.0] * 3])
    msg.points[0].accelerations = np.full(3, 2.0)
    msg.points[1].accelerations = np.zeros(3)
    f = follower()
    assert f.submit(msg, T0).accepted
    knot = f.sample(T0 + 1000 * MS)
    np.testing.assert_allclose(knot[0], [1.0] * 3, atol=1e-9)
    np.testing.assert_allclose(knot[1], [1.0] * 3, atol=1e-9)
    # the acceleration at the knot is the given 2.0: velocity grows by ~2 * dt right after it
    after = f.sample(T0 + 1001 * MS)[1]
    np.testing.assert_allclose((after - knot[1]) / 0.001, [2.0] * 3, atol=0.05)
    np.testing.assert_allclose(f.sample(T0 + 2000 * MS)[0], [2.0] * 3, atol=1e-9)


def test_accelerations_without_velocities_are_rejected():
    msg = traj([[1.0] * 3], [100])
    msg.points[0].accelerations = np.zeros(3)
    result = follower().submit(msg, T0)
    assert not result.accepted and "accelerations given without velocities" in result.reason


def test_cubic_splice_keeps_velocity_continuous():
    f = follower()
    f.submit(traj([[1.0] * 3, [2.0] * 3], [500, 1000], velocities=[[2.0] * 3, [0.0] * 3]), T0)
    now = T0 + 500 * MS
    v_before = f.sample(now)[1]
    f.submit(traj([[1.5] * 3], [500], velocities=[[0.0] * 3]), now)
    np.testing.assert_allclose(f.sample(now)[1], v_before, atol=1e-9)


def test_hold_drops_every_trajectory():
    f = follower()
    f.submit(traj([[1.0, 1.0, 1.0]], [1000]), T0)
    f.hold([0.1, 0.2, 0.3])
    np.testing.assert_allclose(f.sample(T0 + 500 * MS)[0], [0.1, 0.2, 0.3])
    assert not f.is_active(T0 + 500 * MS)


def test_config_validates_itself():
    with pytest.raises(ValueError, match="duplicates"):
        FollowerConfig(("a", "a"))
    with pytest.raises(ValueError, match="must not be empty"):
        FollowerConfig(())


def test_rclpy_messages_are_accepted_too():
    msg_mod = pytest.importorskip("trajectory_msgs.msg")
    msg = joint_trajectory(
        msg_mod.JointTrajectory, msg_mod.JointTrajectoryPoint, JOINTS, [[1.0, 2.0, 3.0]], [100 * MS]
    )
    f = follower()
    assert f.submit(msg, T0).accepted
    np.testing.assert_allclose(f.sample(T0 + 100 * MS)[0], [1.0, 2.0, 3.0])
