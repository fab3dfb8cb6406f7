"""Recovery demonstrations: a policy leads in, the expert takes over, only the expert is recorded."""

from __future__ import annotations

import numpy as np
import pytest
from test_collect import JOINTS, TRAJ, read_bag

from rynnvla_sim.collect import main
from rynnvla_sim.env import ArmSimEnv, SimConfig
from rynnvla_sim.expert import ScriptedExpert
from rynnvla_sim.lead_in import LeadInSpec
from rynnvla_sim.recording import EpisodeRecorder, RecordSpec, episode_epoch_ns
from rynnvla_sim.trajectory import NS_PER_S

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def env():
    env = ArmSimEnv(SimConfig(image_width=64, image_height=48))
    yield env
    env.close()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from rynnvla_policy.core.testing import make_tiny_checkpoint

    return make_tiny_checkpoint(
        tmp_path_factory.mktemp("lead_in") / "ckpt", seed=2, image_size=(48, 64)
    )


def test_only_the_expert_after_the_lead_in_is_recorded(env, checkpoint, tmp_path):
    lead_in = LeadInSpec(str(checkpoint), min_s=1.0, max_s=1.0, horizon=5)
    spec = RecordSpec(image_width=64, image_height=48, max_episode_s=4.0, lead_in=lead_in)
    env.reset("block_to_plate", 3)
    start_pose = env.joint_positions()
    bag_path = tmp_path / "bag"
    result = EpisodeRecorder(env, spec, "mcap").record("block_to_plate", 3, bag_path)

    assert result.lead_in["planned_s"] == pytest.approx(1.0)
    assert result.lead_in["policy_s"] >= 1.0
    assert result.lead_in["chunks"] == 6  # 1 s of 5-step chunks at 30 Hz
    bag = read_bag(bag_path)
    handover_ns = episode_epoch_ns("block_to_plate", 3) + round(
        result.lead_in["policy_s"] * NS_PER_S
    )
    first_state = bag["/joint_states"][0][1]
    assert first_state.header.stamp.sec * NS_PER_S + first_state.header.stamp.nanosec == (
        handover_ns
    )
    assert tuple(first_state.name) == JOINTS
    # the policy moved the arm: the recording starts where it left it, not at the start pose
    assert np.abs(np.asarray(first_state.position) - start_pose).max() > 1e-3
    # the policy's multi-point chunks are not in the bag; the expert's one-point commands are
    assert all(len(msg.points) == 1 for _, msg in bag[TRAJ])
    assert min(t for topic, rows in bag.items() if topic != "__types__" for t, _ in rows) >= (
        handover_ns
    )
    assert result.duration_s == pytest.approx(4.0 - result.lead_in["policy_s"], abs=0.01)


def test_the_expert_takes_over_an_arm_that_holds_the_object(env):
    env.reset("block_to_plate", 5)
    first = ScriptedExpert(env)
    while first.phase != "move":  # picked and lifted by a first expert
        env.set_joint_targets(first.act(env))
        env.step(1 / 30)
        assert env.time < 10, f"the first expert never reached 'move' (phase {first.phase})"
    second = ScriptedExpert(env)  # a new expert, as after a policy's lead-in
    assert second.phase == "move"
    while not (second.done and env.success()) and env.time < 20:
        env.set_joint_targets(second.act(env))
        env.step(1 / 30)
    assert env.success(), "the taking-over expert did not put the held block on the plate"


def test_lead_in_spec_errors_name_the_field_and_value(checkpoint, tmp_path):
    with pytest.raises(ValueError, match="no checkpoint directory at"):
        LeadInSpec(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=r"min_s=3.0, max_s=1.0"):
        LeadInSpec(str(checkpoint), min_s=3.0, max_s=1.0)
    with pytest.raises(ValueError, match="horizon must be an int >= 1, got 0"):
        LeadInSpec(str(checkpoint), horizon=0)


def test_a_checkpoint_for_other_joints_is_refused(env, tmp_path):
    from rynnvla_policy.core.testing import make_tiny_checkpoint

    other = make_tiny_checkpoint(
        tmp_path / "other", joint_names=("a", "b", "c", "d", "e", "f"), image_size=(48, 64)
    )
    spec = RecordSpec(image_width=64, image_height=48, lead_in=LeadInSpec(str(other)))
    with pytest.raises(ValueError, match=r"controls joints \['a', 'b'"):
        EpisodeRecorder(env, spec, "mcap").record("block_to_plate", 3, None)


def test_cli_rejects_a_bad_lead_in_range(checkpoint, tmp_path, capsys):
    args = ["--task", "block_to_plate", "--episodes", "1", "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit):
        main([*args, "--lead-in-policy", str(checkpoint), "--lead-in-s", "5"])
    assert "expected MIN:MAX seconds like 0.5:5, got '5'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "--lead-in-policy", str(checkpoint), "--lead-in-s", "4:1"])
    assert "min_s=4.0, max_s=1.0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
