"""The control state machine: what is sent, when, and how it recovers (no ROS)."""

from __future__ import annotations

import numpy as np
import pytest

from rynnvla_policy.node.chunks import NS, OverlapMerger
from rynnvla_policy.node.controller import ChunkController, ControlState
from rynnvla_policy.node.safety import SafetyLimits

JOINTS = ("a", "b")
STEP_S = 1 / 30
T0 = 50 * NS
LIMITS = SafetyLimits.from_lists(JOINTS, [-2, -2], [2, 2], [3.0, 3.0], 0.3)


def make(output=True, policy="latest", mode="stamp_observation"):
    sent = []
    ctrl = ChunkController(
        LIMITS, STEP_S, OverlapMerger(policy), mode, True, sent.append, output_enabled=output
    )
    return ctrl, sent


def chunk(start=0.0):
    return start + np.linspace(0.01, 0.2, 20)[:, None] * np.ones((1, 2))  # (20, 2)


def test_chunk_is_sent_and_counted():
    ctrl, sent = make()
    outcome = ctrl.on_chunk(chunk(), T0, np.zeros(2), T0 + 30_000_000)
    assert ctrl.state == ControlState.RUNNING
    assert len(sent) == 1 and sent[0] is outcome.sent
    assert sent[0].stamp_ns == T0  # stamped at the observation
    assert ctrl.counters.chunks_published == 1


def test_dry_run_computes_but_sends_nothing():
    ctrl, sent = make(output=False)
    outcome = ctrl.on_chunk(chunk(), T0, np.zeros(2), T0)
    assert outcome.plan is not None and outcome.sent is None
    assert sent == [] and ctrl.state == ControlState.RUNNING


def test_refused_chunk_holds_and_recovers():
    ctrl, sent = make()
    ctrl.on_chunk(chunk(), T0, np.zeros(2), T0)
    state = np.array([0.05, 0.05])
    far = chunk(start=1.0)
    ctrl.on_chunk(far, T0 + NS, state, T0 + NS)
    assert ctrl.state == ControlState.ERROR
    assert "first target of a" in ctrl.last_error
    assert ctrl.counters.rejected_chunks == 1
    hold = sent[-1]
    assert len(hold.positions) == 1 and np.allclose(hold.positions[0], state)
    ctrl.on_chunk(chunk(0.05), T0 + 2 * NS, state, T0 + 2 * NS)
    assert ctrl.state == ControlState.RUNNING and len(sent) == 3


def test_nan_chunk_is_refused():
    ctrl, sent = make()
    bad = chunk()
    bad[3, 1] = np.nan
    ctrl.on_chunk(bad, T0, np.zeros(2), T0)
    assert ctrl.state == ControlState.ERROR and sent == []  # nothing commanded yet: no hold
    assert "non-finite target nan for b at step 3" in ctrl.last_error


def test_expired_chunk_is_dropped_without_sending():
    ctrl, sent = make()
    outcome = ctrl.on_chunk(chunk(), T0, np.zeros(2), T0 + NS)  # 1 s late, chunk spans 0.67 s
    assert outcome.plan is None and sent == []
    assert ctrl.counters.rejected_chunks == 1
    assert "last target is due" in ctrl.last_error


def test_stale_holds_once_then_recovers():
    ctrl, sent = make()
    ctrl.on_chunk(chunk(), T0, np.zeros(2), T0)
    for _ in range(3):
        ctrl.on_stale("front: last sample 300 ms old", np.array([0.1, 0.1]), T0 + NS)
    assert ctrl.state == ControlState.STALE
    assert ctrl.counters.stale_inputs == 3
    assert len(sent) == 2  # the chunk and ONE hold
    assert sent[1].positions.tolist() == [[0.1, 0.1]]
    ctrl.on_fresh()
    assert ctrl.state == ControlState.IDLE
    ctrl.on_chunk(chunk(0.1), T0 + 2 * NS, np.array([0.1, 0.1]), T0 + 2 * NS)
    assert ctrl.state == ControlState.RUNNING


def test_stop_holds_and_blocks_until_output_enabled():
    ctrl, sent = make()
    ctrl.on_chunk(chunk(), T0, np.zeros(2), T0)
    ctrl.stop(np.array([0.02, 0.02]), T0 + 10_000_000)
    assert ctrl.state == ControlState.HOLDING and not ctrl.output_enabled
    assert len(sent) == 2
    assert ctrl.on_chunk(chunk(), T0 + NS, np.zeros(2), T0 + NS).sent is None
    ctrl.set_output_enabled(True, None, T0 + NS)
    assert ctrl.on_chunk(chunk(), T0 + NS, np.zeros(2), T0 + NS).sent is not None


def test_disabling_output_holds_first():
    ctrl, sent = make()
    ctrl.on_chunk(chunk(), T0, np.zeros(2), T0)
    ctrl.set_output_enabled(False, np.array([0.03, 0.03]), T0 + 5_000_000)
    assert len(sent) == 2 and sent[1].positions.tolist() == [[0.03, 0.03]]
    ctrl.on_chunk(chunk(), T0 + NS, np.zeros(2), T0 + NS)
    assert len(sent) == 2  # dry run now


def test_hold_without_known_position_sends_nothing():
    ctrl, sent = make()
    ctrl.on_chunk(chunk(), T0, np.zeros(2), T0)
    ctrl.hold(None, T0 + NS)
    assert len(sent) == 1 and ctrl.state == ControlState.HOLDING


@pytest.mark.parametrize("policy", ["latest", "blend", "ensemble"])
def test_sent_plans_respect_velocity_limits(policy):
    ctrl, sent = make(policy=policy)
    rng = np.random.default_rng(0)
    state = np.zeros(2)
    for k in range(6):
        obs = T0 + k * 10 * round(STEP_S * NS)
        noisy = state + np.cumsum(rng.normal(0, 0.2, (20, 2)), axis=0)
        noisy[0] = state + 0.05
        ctrl.on_chunk(noisy, obs, state, obs + 20_000_000)
        state = sent[-1].positions[9]
    for data in sent:
        times = data.time_from_start_ns / NS
        assert np.all(np.diff(times) > 0)
        steps = np.abs(np.diff(data.positions, axis=0))
        assert np.all(steps <= LIMITS.max_velocity * STEP_S + 1e-9)
    assert ctrl.counters.velocity_clips > 0


def test_a_chunk_observed_before_inputs_went_stale_never_overtakes_the_hold():
    ctrl, sent = make()
    ctrl.on_chunk(chunk(), T0, np.zeros(2), T0)
    stale_at = T0 + 300_000_000
    ctrl.on_stale("wrist: last sample 300 ms old", np.zeros(2), stale_at)
    assert len(sent) == 2  # chunk, hold
    # the inference that was running when the inputs went stale finishes now
    late = ctrl.on_chunk(chunk(), T0 + 250_000_000, np.zeros(2), T0 + 320_000_000, T0 + 250_000_000)
    assert late.sent is None and len(sent) == 2 and ctrl.state == ControlState.STALE
    # an observation taken after the inputs returned runs again
    fresh = ctrl.on_chunk(
        chunk(), T0 + 400_000_000, np.zeros(2), T0 + 450_000_000, T0 + 400_000_000
    )
    assert fresh.sent is not None and ctrl.state == ControlState.RUNNING
