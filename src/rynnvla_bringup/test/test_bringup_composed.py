"""The composed runner: the sim node and the policy node in one process drive the simulated
arm through the real services and topics (DDS on localhost)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from rynnvla_bringup.params import policy_layers

pytest.importorskip("rclpy", reason="rclpy is not importable (run `make setup`)")
pytestmark = pytest.mark.ros

SYSTEM_THREADS = ("rynnvla_executor", "sim_physics", "sim_render", "rynnvla_inference")


@pytest.fixture(scope="module")
def system(tiny_checkpoint):
    from rynnvla_bringup.composed import ComposedConfig, ComposedSystem

    config = ComposedConfig(
        checkpoint=tiny_checkpoint, policy_overrides={"warmup_runs": 1, "instruction": ""}
    )
    with ComposedSystem(config) as running:
        yield running


def test_nodes_run_with_the_layered_parameters(system):
    profile = policy_layers("sim_arm").merged()
    params = system.policy.params
    assert list(params.joint_upper_limits) == profile["joint_upper_limits"]
    assert list(params.camera_topics) == profile["camera_topics"]
    assert params.output_enabled is True and params.warmup_runs == 1
    assert system.sim.params.real_time_factor == 1.0
    assert system.policy._lifecycle == "active"
    system.client.wait_for(
        lambda: {"sim_node", "rynnvla_policy"} <= set(system.client.get_node_names()),
        10.0,
        "both nodes visible on the ROS graph",
    )


def test_an_episode_runs_to_completion_through_the_services(system):
    from rynnvla_training.evaluate.episode import run_episode

    controller = system.sim.controller
    accepted = controller.accepted_count
    result, rollout = run_episode(
        system.client,
        "strawberry_to_bowl",
        11,
        timeout_s=4.0,
        record_topic="/camera/front/image_raw",
    )
    assert result.error == ""
    assert result.instruction == "put the strawberry in the bowl"
    assert result.chunks >= 3, result
    assert result.success or result.duration_s >= 4.0
    assert controller.accepted_count > accepted  # the policy's trajectories reached the arm
    assert system.sim.physics.running and system.policy._worker.alive
    assert len(rollout.frames) >= 0.5 * 15 * 4.0  # ~15 fps of front camera over the episode
    assert rollout.chunks and rollout.chunks[0].positions.shape == (20, 6)
    assert all(np.isfinite(c.positions).all() for c in rollout.chunks)
    status = system.client.policy_status
    assert status.lifecycle_state == "active" and status.dropped_inputs == 0, status


def test_refused_requests_raise_with_the_reason(system):
    from rynnvla_bringup.client import SystemCallError

    with pytest.raises(SystemCallError, match="empty"):
        system.client.set_instruction("   ")
    with pytest.raises(SystemCallError, match="fly_to_the_moon"):
        system.client.reset_episode("fly_to_the_moon", 0)


def test_close_holds_and_stops_every_thread(system):
    system.close()
    system.close()  # idempotent
    alive = [t.name for t in threading.enumerate() if t.name in SYSTEM_THREADS and t.is_alive()]
    assert not alive, alive
    assert not system.context.ok()


def _shipped_checkpoint():
    from rynnvla_bringup.demo import DemoError, find_checkpoint

    try:
        return find_checkpoint(None)
    except DemoError:
        pytest.skip(
            "the shipped checkpoint src/rynnvla_bringup/checkpoints/sim_policy does not exist "
            "yet (the lead trains it with `make train-sim`)"
        )


def _green_block_episodes(n: int, stop_on_success: bool) -> list:
    from rynnvla_bringup.composed import ComposedConfig, ComposedSystem
    from rynnvla_training.evaluate.config import DEFAULT_SEED_START
    from rynnvla_training.evaluate.episode import run_episode

    config = ComposedConfig(checkpoint=_shipped_checkpoint(), policy_overrides={"instruction": ""})
    results = []
    with ComposedSystem(config) as system:
        for seed in range(DEFAULT_SEED_START, DEFAULT_SEED_START + n):
            result, _ = run_episode(system.client, "block_to_plate", seed, timeout_s=25.0)
            results.append(result)
            if stop_on_success and result.success:
                break
    return results


def test_the_shipped_checkpoint_drives_the_simulated_arm():
    (result,) = _green_block_episodes(1, stop_on_success=False)
    assert not result.error, result.summary()
    # a new chunk every ~333 ms: the policy kept commanding the arm all episode long (which
    # ends at success or after 25 s)
    assert result.duration_s > 2.0 and result.chunks >= 2 * result.duration_s, result.summary()
    assert result.inference_ms and max(result.inference_ms) < 5000.0, result.summary()


# The shipped tiny policy succeeds on about half of the green-block layouts (train_sim.json
# inside it: 25/50 through the nodes); the first held-out seed it solved there is the third.
GREEN_BLOCK_TRIES = 8


def test_the_shipped_checkpoint_succeeds_on_the_green_block():
    results = _green_block_episodes(GREEN_BLOCK_TRIES, stop_on_success=True)
    assert any(r.success for r in results), [r.summary() for r in results]
