"""Message builders (no node, no spinning)."""

from __future__ import annotations

import numpy as np

from rynnvla_policy.conversions import stamp_to_ns
from rynnvla_policy.conversions import trajectory_points as read_trajectory
from rynnvla_policy.node import messages
from rynnvla_policy.node.chunks import NS, Plan, trajectory_points
from rynnvla_policy.node.controller import ControlState, Counters

JOINTS = ("a", "b", "c")


def test_joint_trajectory_round_trips_through_the_conversions_reader():
    plan = Plan.from_chunk(np.arange(60, dtype=float).reshape(20, 3) / 100, 5 * NS, NS // 30)
    data = trajectory_points(plan, 5 * NS, "stamp_observation")
    msg = messages.joint_trajectory(data, JOINTS)
    assert stamp_to_ns(msg.header.stamp) == 5 * NS
    positions, times = read_trajectory(msg, JOINTS)
    np.testing.assert_allclose(positions, plan.positions)
    np.testing.assert_array_equal(times, data.time_from_start_ns)
    assert list(msg.points[-1].velocities) == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(msg.points[3].velocities, [0.9, 0.9, 0.9])  # 0.03 per 1/30 s


def test_action_chunk_fields():
    record = messages.ChunkRecord(
        positions=np.ones((20, 3)),
        latent=np.zeros(8, np.float32),
        obs_stamp_ns=7 * NS + 5,
        step_ns=NS // 30,
        instruction="put the pen in the pen holder",
        inference_s=0.04,
        end_to_end_s=0.05,
        sequence=3,
    )
    msg = messages.action_chunk(record, JOINTS)
    assert stamp_to_ns(msg.header.stamp) == 7 * NS + 5
    assert msg.horizon == 20 and len(msg.positions) == 60 and len(msg.latent) == 8
    assert stamp_to_ns(msg.step_duration) == NS // 30
    assert (msg.sequence, msg.instruction) == (3, "put the pen in the pen holder")


def report(state=ControlState.STALE, stale=("wrist",)):
    return messages.StatusReport(
        stamp_ns=NS,
        lifecycle_state="active",
        control_state=state,
        output_enabled=True,
        active_instruction="put",
        latency_last_ms=40.0,
        latency_mean_ms=41.0,
        latency_p99_ms=60.0,
        end_to_end_p50_ms=45.0,
        end_to_end_p99_ms=70.0,
        overhead_p50_ms=1.5,
        overhead_p99_ms=3.0,
        achieved_rate_hz=3.0,
        counters=Counters(chunks_published=5, stale_inputs=2),
        stale_streams=stale,
        stream_ages_ms={"front": 10.0, "wrist": 400.0, "joint_states": float("inf")},
        last_error="stale inputs: wrist: last sample 400 ms old",
    )


def test_policy_status_fields():
    msg = messages.policy_status(report())
    assert (msg.control_state, msg.control_state_label) == (3, "stale")
    assert msg.chunks_published == 5 and msg.stale_inputs == 2
    assert list(msg.stale_streams) == ["wrist"]


def test_diagnostics_levels_and_streams():
    from diagnostic_msgs.msg import DiagnosticStatus

    array = messages.diagnostics(report(), "rynnvla_policy")
    by_name = {s.name: s for s in array.status}
    control = by_name["rynnvla_policy: control"]
    assert control.level == DiagnosticStatus.WARN
    assert control.message.startswith("stale: stale inputs")
    values = {kv.key: kv.value for kv in control.values}
    assert values["overhead_p50_ms"] == "1.500" and values["chunks_published"] == "5"
    assert by_name["rynnvla_policy: input wrist"].level == DiagnosticStatus.WARN
    assert by_name["rynnvla_policy: input front"].level == DiagnosticStatus.OK
    joint_values = {kv.key: kv.value for kv in by_name["rynnvla_policy: input joint_states"].values}
    assert joint_values["age_ms"] == "none received"
    error = messages.diagnostics(report(ControlState.ERROR, ()), "rynnvla_policy")
    assert error.status[0].level == DiagnosticStatus.ERROR
