"""ArmSimEnv: configuration, determinism, limits, stepping and rendering."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from rynnvla_sim.env import JOINT_NAMES, TASKS, ArmSimEnv, SimConfig


@pytest.fixture(scope="module")
def env():
    env = ArmSimEnv(SimConfig())
    yield env
    env.close()


def test_exports_follow_the_architecture_contract():
    assert JOINT_NAMES == (
        "shoulder_pan",
        "shoulder_lift",
        "elbow_flex",
        "wrist_flex",
        "wrist_roll",
        "gripper",
    )
    assert TASKS == {
        "block_to_plate": "put the green block on the plate",
        "strawberry_to_bowl": "put the strawberry in the bowl",
        "pen_to_holder": "put the pen in the pen holder",
    }


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("joint_names", ("a", "b", "c"), "('a', 'b', 'c')"),
        ("joint_names", ("a", "b", "c", "d", "e", "e"), "unique"),
        ("joint_names", ("a", "b", "c", "d", "e", "9bad"), "'9bad'"),
        ("image_width", 8, "8"),
        ("image_height", 96.5, "96.5"),
        ("physics_timestep", 0.02, "0.02"),
        ("camera_rate_hz", -1.0, "-1.0"),
        ("control_rate_hz", 1000.0, "1000.0"),
        ("n_distractors", 7, "7"),
    ],
)
def test_config_rejects_bad_values_naming_field_and_value(field, value, shown):
    with pytest.raises(ValueError, match=field) as info:
        SimConfig(**{field: value})
    assert shown in str(info.value)


def test_custom_joint_names_are_used_by_the_model():
    names = ("j1", "j2", "j3", "j4", "j5", "jaw")
    env = ArmSimEnv(SimConfig(joint_names=names))
    env.reset("block_to_plate", seed=0)
    assert env.joint_names == names
    assert env.model.joint("jaw").id >= 0 and env.model.actuator("j3").id >= 0


def test_reset_returns_episode_info_and_rejects_unknown_task(env):
    info = env.reset("strawberry_to_bowl", seed=5)
    assert info["instruction"] == "put the strawberry in the bowl"
    assert (info["task_id"], info["seed"]) == ("strawberry_to_bowl", 5)
    assert env.instruction == info["instruction"] and env.task_id == "strawberry_to_bowl"
    with pytest.raises(ValueError, match="unknown task_id 'stack_cups'"):
        env.reset("stack_cups", seed=0)
    with pytest.raises(ValueError, match="seed"):
        env.reset("block_to_plate", seed=-1)


def _rollout(env, task, seed, distractors=False):
    info = env.reset(task, seed, distractors=distractors)
    target = env.joint_positions() + np.array([0.3, 0.2, -0.2, 0.1, 0.5, 0.4])
    env.set_joint_targets(target)
    env.step(0.3)
    return info, env.joint_positions(), env.object_pose(env.task.object_name)[0]


def test_same_seed_gives_identical_episode(env):
    info_a, q_a, obj_a = _rollout(env, "pen_to_holder", 11, distractors=True)
    info_b, q_b, obj_b = _rollout(env, "pen_to_holder", 11, distractors=True)
    assert info_a == info_b
    np.testing.assert_array_equal(q_a, q_b)
    np.testing.assert_array_equal(obj_a, obj_b)
    info_c, _, _ = _rollout(env, "pen_to_holder", 12, distractors=True)
    assert info_c["objects"] != info_a["objects"]


def test_distractors_are_placed_only_when_asked(env):
    plain = env.reset("block_to_plate", 3)
    assert set(plain["objects"]) == {"green_block", "plate"}
    busy = env.reset("block_to_plate", 3, distractors=True)
    assert len(busy["objects"]) == 2 + env.config.n_distractors


def test_targets_are_clipped_to_limits_and_counted(env):
    env.reset("block_to_plate", 0)
    limits = env.joint_limits
    assert limits.shape == (6, 2) and np.all(limits[:, 0] < limits[:, 1])
    assert env.velocity_limits.shape == (6,) and np.all(env.velocity_limits > 0)
    env.set_joint_targets(np.array([5.0, 0.0, 0.5, -5.0, 0.0, 9.0]))
    assert env.target_clip_count == 3
    np.testing.assert_allclose(env.joint_targets()[[0, 3, 5]], limits[[0, 3, 5], [1, 0, 1]])
    env.step(1.5)
    q = env.joint_positions()
    assert np.all(q >= limits[:, 0] - 0.02) and np.all(q <= limits[:, 1] + 0.02)
    with pytest.raises(ValueError, match="shape"):
        env.set_joint_targets(np.zeros(5))
    with pytest.raises(ValueError, match="finite"):
        env.set_joint_targets(np.array([0, 0, np.nan, 0, 0, 0]))


def test_position_servos_reach_their_targets(env):
    env.reset("block_to_plate", 0)
    target = np.array([0.4, 0.3, 1.6, 1.0, -0.5, 1.2])
    env.set_joint_targets(target)
    env.step(1.5)
    np.testing.assert_allclose(env.joint_positions(), target, atol=0.03)
    assert np.all(np.abs(env.joint_velocities()) < 0.05)


def test_step_advances_whole_timesteps_and_keeps_lockstep(env):
    env.reset("block_to_plate", 0)
    assert env.time == 0.0
    steps = [env.step(1 / 30) for _ in range(30)]
    assert set(steps) == {16, 17}  # 16.67 physics steps per 1/30 s tick
    assert env.time == pytest.approx(1.0, abs=env.timestep)
    with pytest.raises(ValueError, match="duration_s"):
        env.step(-0.1)


def test_render_both_cameras(env):
    env.reset("strawberry_to_bowl", 2)
    for camera in ("front", "wrist"):
        image = env.render(camera)
        assert image.shape == (96, 128, 3) and image.dtype == np.uint8
        assert image.std() > 5  # a scene, not a blank frame
    assert not np.array_equal(env.render("front"), env.render("wrist"))
    with pytest.raises(ValueError, match="unknown camera 'top'"):
        env.render("top")


def test_wrist_camera_moves_with_the_gripper(env):
    env.reset("block_to_plate", 0)
    before = env.render("wrist").astype(int)
    front_before = env.render("front").astype(int)
    env.set_joint_targets(env.joint_positions() + np.array([0.5, 0, 0, 0, 0, 0]))
    env.step(1.0)
    assert np.abs(env.render("wrist").astype(int) - before).mean() > 5
    assert np.abs(env.render("front").astype(int) - front_before).mean() < 10


def test_unusable_gl_backend_fails_with_a_clear_message():
    code = "from rynnvla_sim.env import ArmSimEnv; e = ArmSimEnv(); e.reset('block_to_plate', 0); e.render('front')"
    environ = {**os.environ, "MUJOCO_GL": "osmesa"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=120
    )
    if result.returncode == 0:
        pytest.skip("OSMesa is installed here, so MUJOCO_GL=osmesa works")
    assert "GLBackendError" in result.stderr
    assert "MUJOCO_GL='osmesa'" in result.stderr and "MUJOCO_GL=egl" in result.stderr
