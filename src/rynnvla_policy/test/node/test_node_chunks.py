"""Chunks on the absolute time axis: latency compensation, overlap policies, velocities."""

from __future__ import annotations

import numpy as np
import pytest

from rynnvla_policy.node.chunks import (
    NS,
    ChunkExpiredError,
    OverlapMerger,
    Plan,
    finite_difference_velocities,
    hold_points,
    trajectory_points,
)

STEP = NS // 30  # 30 Hz
T0 = 100 * NS


def ramp_chunk(start=0.0, slope=1.0, steps=20, joints=2):
    t = np.arange(1, steps + 1) * STEP / NS
    return np.stack([start + slope * t * (j + 1) for j in range(joints)], axis=1)  # (T, D)


def test_plan_times_follow_observation_stamp():
    plan = Plan.from_chunk(ramp_chunk(), T0, STEP)
    assert plan.times_ns[0] == T0 + STEP
    assert np.all(np.diff(plan.times_ns) == STEP)


def test_velocities_are_finite_differences_with_zero_end():
    plan = Plan.from_chunk(ramp_chunk(slope=0.5), T0, STEP)
    vel = finite_difference_velocities(plan, zero_last=True)
    np.testing.assert_allclose(vel[:-1], [[0.5, 1.0]] * 19, rtol=1e-6)
    assert np.all(vel[-1] == 0)
    assert np.allclose(finite_difference_velocities(plan, zero_last=False)[-1], [0.5, 1.0])


def test_stamp_observation_keeps_all_points_stamped_at_observation():
    plan = Plan.from_chunk(ramp_chunk(), T0, STEP)
    data = trajectory_points(plan, now_ns=T0 + 5 * STEP + 1, mode="stamp_observation")
    assert data.stamp_ns == T0
    assert data.time_from_start_ns[0] == STEP
    assert len(data.time_from_start_ns) == 20
    assert np.all(np.diff(data.time_from_start_ns) > 0)


def test_drop_due_points_keeps_absolute_times():
    plan = Plan.from_chunk(ramp_chunk(), T0, STEP)
    now = T0 + 5 * STEP + STEP // 2  # 5.5 steps of latency: points 0..4 are due
    data = trajectory_points(plan, now_ns=now, mode="drop_due_points")
    assert data.stamp_ns == now
    assert len(data.positions) == 15
    np.testing.assert_array_equal(data.positions, plan.positions[5:])
    assert data.time_from_start_ns[0] == T0 + 6 * STEP - now  # half a step ahead
    np.testing.assert_array_equal(data.time_from_start_ns + now, plan.times_ns[5:])


def test_naive_mode_ignores_latency():
    plan = Plan.from_chunk(ramp_chunk(), T0, STEP)
    data = trajectory_points(plan, now_ns=T0 + 50 * STEP, mode="none")
    assert data.stamp_ns == 0
    assert data.time_from_start_ns.tolist() == [(i + 1) * STEP for i in range(20)]


@pytest.mark.parametrize("mode", ["stamp_observation", "drop_due_points"])
def test_never_a_chunk_entirely_in_the_past(mode):
    plan = Plan.from_chunk(ramp_chunk(), T0, STEP)
    with pytest.raises(ChunkExpiredError, match=r"last target is due \+0.0 ms from now"):
        trajectory_points(plan, now_ns=T0 + 20 * STEP, mode=mode)
    with pytest.raises(ChunkExpiredError, match=r"due -1000.0 ms from now"):
        trajectory_points(plan, now_ns=T0 + 20 * STEP + NS, mode=mode)


@pytest.mark.parametrize("mode", ["stamp_observation", "drop_due_points"])
def test_a_chunk_ending_within_the_delivery_lead_is_refused(mode):
    plan = Plan.from_chunk(ramp_chunk(), T0, STEP)
    now = T0 + 19 * STEP + STEP // 2  # last target half a step ahead, lead one step
    with pytest.raises(ChunkExpiredError, match=r"\+16.7 ms from now \(needs more than 33 ms"):
        trajectory_points(plan, now_ns=now, mode=mode, min_lead_ns=STEP)
    assert len(trajectory_points(plan, now_ns=now, mode="drop_due_points").positions) == 1


def test_latest_policy_uses_the_new_chunk():
    merger = OverlapMerger("latest")
    first = Plan.from_chunk(np.zeros((20, 2)), T0, STEP)
    merger.commit(merger.merge(first, T0))
    second = Plan.from_chunk(np.ones((20, 2)), T0 + 10 * STEP, STEP)
    np.testing.assert_array_equal(merger.merge(second, T0 + 10 * STEP).positions, np.ones((20, 2)))


def test_blend_hands_over_continuously_from_the_switch_time():
    merger = OverlapMerger("blend", blend_steps=4)
    first = Plan.from_chunk(np.zeros((20, 2)), T0, STEP)
    merger.commit(merger.merge(first, T0))
    second = Plan.from_chunk(np.ones((20, 2)), T0 + 10 * STEP, STEP)
    now = T0 + 11 * STEP + STEP // 2  # 1.5 steps of latency: the first target is due
    merged = merger.merge(second, now)
    # weight of the new chunk: 0 until now, then linear to 1 over 4 steps
    expected = np.clip((second.times_ns - now) / (4 * STEP), 0, 1)
    np.testing.assert_allclose(merged.positions[:, 0], expected, atol=1e-9)
    assert merged.positions[0, 0] == 0.0 and merged.positions[6, 0] == 1.0
    np.testing.assert_array_equal(merged.times_ns, second.times_ns)


def test_smooth_blend_has_no_velocity_step_where_the_hand_over_starts_or_ends():
    step_s = STEP / NS
    runs = {}
    for shape in ("linear", "smooth"):
        merger = OverlapMerger("blend", blend_steps=8, blend_shape=shape)
        merger.commit(merger.merge(Plan.from_chunk(np.zeros((20, 1)), T0, STEP), T0))
        second = Plan.from_chunk(np.ones((20, 1)), T0 + 2 * STEP, STEP)
        merged = merger.merge(second, T0 + 3 * STEP).positions[:, 0]  # (20,) switch at target 0
        runs[shape] = np.diff(merged) / step_s  # (19,) velocity between targets
    # the hand-over runs from target 0 (weight 0) to target 8 (weight 1) either way
    for velocity in runs.values():
        assert velocity[:8].sum() * step_s == pytest.approx(1.0) and not velocity[8:].any()
    linear, smooth = runs["linear"], runs["smooth"]
    np.testing.assert_allclose(linear[:8], 1.0 / (8 * step_s))  # steps to 3.75 rad/s at once
    # smoothstep: slow first and last segments, the peak in the middle
    assert smooth[0] < 0.4 * linear[0] and smooth[7] < 0.4 * linear[7]
    assert smooth.argmax() in (3, 4) and smooth.max() < 1.5 * linear.max()


def test_unknown_blend_shape_is_refused():
    with pytest.raises(ValueError, match="blend shape 'cubic'"):
        OverlapMerger("blend", blend_shape="cubic")


def test_hand_over_follows_the_executed_cubic_not_the_chord():
    times = T0 + np.arange(1, 4) * STEP
    executing = Plan(times, np.array([[0.0], [1.0], [0.0]]), np.array([[0.0], [0.0], [0.0]]))
    at = np.array([T0 + STEP + STEP // 2])
    cubic, inside = executing.sample(at)
    assert inside.all() and cubic[0, 0] == pytest.approx(0.5, abs=1e-6)
    quarter = np.array([T0 + STEP + STEP // 4])
    assert executing.sample(quarter)[0][0, 0] == pytest.approx(0.15625, abs=1e-6)  # h01(0.25)
    linear = Plan(times, executing.positions)
    assert linear.sample(quarter)[0][0, 0] == pytest.approx(0.25, abs=1e-6)


def test_blend_without_overlap_is_the_new_chunk():
    merger = OverlapMerger("blend", blend_steps=4)
    merger.commit(Plan.from_chunk(np.zeros((20, 2)), T0, STEP))
    late = Plan.from_chunk(np.ones((20, 2)), T0 + 40 * STEP, STEP)
    np.testing.assert_array_equal(merger.merge(late, T0 + 40 * STEP).positions, np.ones((20, 2)))


def test_ensemble_averages_overlapping_chunks_in_time():
    merger = OverlapMerger("ensemble", ensemble_decay=0.0)
    merger.merge(Plan.from_chunk(np.zeros((20, 1)), T0, STEP), T0)
    merged = merger.merge(Plan.from_chunk(np.ones((20, 1)), T0 + 10 * STEP, STEP), T0 + 10 * STEP)
    # times 11..20 steps after T0 are covered by both (equal weights), the rest only by the new
    np.testing.assert_allclose(merged.positions[:10, 0], 0.5)
    np.testing.assert_allclose(merged.positions[10:, 0], 1.0)


def test_ensemble_decay_weights_older_chunks_more():
    merger = OverlapMerger("ensemble", ensemble_decay=np.log(3.0))  # weights 1, 1/3
    merger.merge(Plan.from_chunk(np.zeros((20, 1)), T0, STEP), T0)
    merged = merger.merge(Plan.from_chunk(np.ones((20, 1)), T0 + 10 * STEP, STEP), T0 + 10 * STEP)
    np.testing.assert_allclose(merged.positions[0, 0], (1 / 3) / (1 + 1 / 3))


def test_ensemble_forgets_chunks_that_ended():
    merger = OverlapMerger("ensemble", ensemble_decay=0.0)
    merger.merge(Plan.from_chunk(np.zeros((20, 1)), T0, STEP), T0)
    late = T0 + 30 * STEP
    merged = merger.merge(Plan.from_chunk(np.ones((20, 1)), late, STEP), late)
    np.testing.assert_allclose(merged.positions, 1.0)


def test_reset_forgets_history():
    merger = OverlapMerger("blend", blend_steps=4)
    merger.commit(Plan.from_chunk(np.zeros((20, 2)), T0, STEP))
    merger.reset()
    second = Plan.from_chunk(np.ones((20, 2)), T0 + 10 * STEP, STEP)
    np.testing.assert_array_equal(merger.merge(second, T0 + 10 * STEP).positions, np.ones((20, 2)))


def test_hold_is_one_point_with_zero_velocity():
    data = hold_points(np.array([0.1, 0.2]), STEP)
    assert data.stamp_ns == 0  # start on arrival: a late hold never ends in the past
    assert data.time_from_start_ns.tolist() == [STEP]
    assert data.velocities.tolist() == [[0.0, 0.0]]


def test_ensemble_is_handed_over_to_from_the_executing_plan():
    merger = OverlapMerger("ensemble", blend_steps=4, ensemble_decay=0.0)
    first = Plan.from_chunk(np.zeros((20, 1)), T0, STEP)
    merger.commit(merger.merge(first, T0))
    now = T0 + 11 * STEP
    merged = merger.merge(Plan.from_chunk(np.ones((20, 1)), T0 + 10 * STEP, STEP), now)
    assert merged.positions[0, 0] == 0.0  # at the switch: still the executing plan
    np.testing.assert_allclose(merged.positions[4:10, 0], 0.5)  # then the ensemble (0 + 1) / 2
    np.testing.assert_allclose(merged.positions[10:, 0], 1.0)  # only the new chunk covers these


def test_hand_over_waits_for_the_delivery_lead():
    merger = OverlapMerger("blend", blend_steps=4)
    merger.commit(Plan.from_chunk(np.zeros((20, 1)), T0, STEP))
    now = T0 + 11 * STEP
    merged = merger.merge(Plan.from_chunk(np.ones((20, 1)), T0 + 10 * STEP, STEP), now, STEP)
    assert merged.positions[1, 0] == 0.0  # T0 + 12 steps = now + lead: still executing plan
    np.testing.assert_allclose(merged.positions[2:7, 0], [0.25, 0.5, 0.75, 1.0, 1.0])
