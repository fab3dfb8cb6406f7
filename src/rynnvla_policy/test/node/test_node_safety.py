"""Safety layers: non-finite, position limits, first-target distance, velocity limit."""

from __future__ import annotations

import numpy as np
import pytest

from rynnvla_policy.node.safety import (
    SafetyLimits,
    UnsafeChunkError,
    limit_velocity,
    screen_chunk,
)

JOINTS = ("a", "b", "c")
LIMITS = SafetyLimits.from_lists(JOINTS, [-1, -1, 0], [1, 1, 2], [1.0, 2.0, 4.0], 0.3)


def test_clean_chunk_passes_unchanged():
    chunk = np.linspace([0, 0, 1], [0.2, -0.2, 1.2], 5)
    out, clips = screen_chunk(chunk, np.array([0.0, 0.0, 1.0]), LIMITS)
    np.testing.assert_array_equal(out, chunk)
    assert clips == 0


def test_non_finite_is_refused_with_joint_and_step():
    chunk = np.zeros((4, 3))
    chunk[2, 1] = np.nan
    chunk[3, 0] = np.inf
    with pytest.raises(
        UnsafeChunkError, match=r"non-finite target nan for b at step 2 \(2 non-finite"
    ):
        screen_chunk(chunk, np.zeros(3), LIMITS)


def test_limits_clip_and_count():
    chunk = np.array([[0.1, 0.0, 0.1], [1.5, -3.0, 2.5], [0.9, 0.0, -0.5]])
    out, clips = screen_chunk(chunk, np.array([0.0, 0.0, 0.2]), LIMITS)
    assert clips == 4
    assert out.max(axis=0).tolist() == [1.0, 0.0, 2.0]
    assert out.min(axis=0).tolist() == [0.1, -1.0, 0.0]


def test_first_target_too_far_is_refused():
    chunk = np.array([[0.0, 0.5, 1.0]])
    with pytest.raises(
        UnsafeChunkError, match=r"first target of b is 0.500, 0.500 from the current"
    ):
        screen_chunk(chunk, np.array([0.0, 0.0, 1.0]), LIMITS)


def test_non_finite_state_is_refused():
    with pytest.raises(UnsafeChunkError, match="current state is not finite"):
        screen_chunk(np.zeros((2, 3)), np.array([0.0, np.nan, 0.0]), LIMITS)


def test_velocity_limit_bounds_every_step_and_catches_up():
    step_s = 0.1  # max step per joint: 0.1, 0.2, 0.4
    target = np.array([[0.35, 0.0, 1.0]] * 6)  # joint a wants +0.35 at once
    out, clips = limit_velocity(target, np.array([0.0, 0.0, 1.0]), step_s, LIMITS)
    steps = np.diff(np.vstack([[0.0, 0.0, 1.0], out]), axis=0)
    assert np.all(np.abs(steps) <= LIMITS.max_velocity * step_s + 1e-12)
    np.testing.assert_allclose(out[:, 0], [0.1, 0.2, 0.3, 0.35, 0.35, 0.35])
    assert clips == 3


def test_velocity_limit_keeps_position_limits_when_starting_outside():
    out, _ = limit_velocity(np.tile([0.0, 0.0, 0.5], (3, 1)), np.array([1.5, 0, 0.5]), 0.1, LIMITS)
    assert out[:, 0].max() <= 1.0


def test_reordered_limits_follow_names():
    swapped = LIMITS.reordered(("c", "a", "b"))
    assert swapped.upper.tolist() == [2.0, 1.0, 1.0]
    assert swapped.max_velocity.tolist() == [4.0, 1.0, 2.0]


def test_first_target_distance_is_per_joint():
    limits = SafetyLimits.from_lists(JOINTS, [-1, -1, 0], [1, 1, 2], [1, 1, 1], [0.3, 0.3, 2.0])
    screen_chunk(np.array([[0.0, 0.0, 1.9]]), np.array([0.0, 0.0, 0.1]), limits)  # gripper jump
    with pytest.raises(
        UnsafeChunkError, match=r"first target of a .* \(max_first_target_distance 0.3\)"
    ):
        screen_chunk(np.array([[0.4, 0.0, 1.9]]), np.array([0.0, 0.0, 0.1]), limits)
