"""Task layouts and success detection (placed + released + still, held for a moment)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rynnvla_sim import tasks
from rynnvla_sim.env import ArmSimEnv
from rynnvla_sim.expert import ScriptedExpert
from rynnvla_sim.scenes.table import scene_objects


@pytest.fixture(scope="module")
def env():
    env = ArmSimEnv()
    yield env
    env.close()


def _quat_about_y(angle: float) -> tuple[float, float, float, float]:
    return (math.cos(angle / 2), 0.0, math.sin(angle / 2), 0.0)


@pytest.mark.parametrize("task_id", sorted(tasks.TASKS))
def test_layouts_do_not_overlap_and_stay_in_reach(task_id):
    scene = scene_objects()
    task = tasks.get_task(task_id)
    for seed in range(200):
        layout = tasks.sample_layout(task, np.random.default_rng(seed), scene, n_distractors=2)
        assert len(layout) == 4
        items = list(layout.items())
        for i, (name_a, a) in enumerate(items):
            for name_b, b in items[i + 1 :]:
                gap = math.hypot(a.x - b.x, a.y - b.y)
                assert gap > scene.specs[name_a].footprint + scene.specs[name_b].footprint
        obj, target = layout[task.object_name], layout[task.target_name]
        assert task.object_radius[0] <= math.hypot(obj.x, obj.y) <= task.object_radius[1]
        assert task.target_radius[0] <= math.hypot(target.x, target.y) <= task.target_radius[1]


def test_unknown_task_error_lists_the_known_ones():
    with pytest.raises(ValueError, match="block_to_plate"):
        tasks.get_task("fold_towel")


def test_block_resting_on_plate_succeeds_after_the_hold_time(env):
    env.reset("block_to_plate", 0)
    plate, _ = env.object_pose("plate")
    env.set_object_pose("green_block", plate + np.array([0.01, -0.01, 0.005 + 0.015 + 0.002]))
    env.step(0.1)
    assert env.placed() and not env.success()  # not yet held for SUCCESS_HOLD_S
    env.step(0.4)
    assert env.success()


def test_block_beside_the_plate_fails(env):
    env.reset("block_to_plate", 0)
    plate, _ = env.object_pose("plate")
    env.set_object_pose("green_block", plate + np.array([0.0, 0.08, -0.005 + 0.015]))
    env.step(0.6)
    assert not env.placed() and not env.success()


def test_block_on_plate_still_gripped_fails_until_released(env):
    env.reset("block_to_plate", 1)
    plate, _ = env.object_pose("plate")
    env.set_object_pose("green_block", plate + np.array([0.0, 0.0, 0.005 + 0.015 + 0.001]))
    expert = ScriptedExpert(env)
    while expert.phase != "lift":  # the expert grasps the block where it lies: on the plate
        env.set_joint_targets(expert.act(env))
        env.step(1 / 30)
    env.step(0.6)  # hold the closed grip
    assert env.placed() and env.object_touches_arm("green_block")
    assert not env.success()
    env.set_joint_targets(np.append(env.joint_targets()[:5], 1.3))  # open the gripper
    env.step(0.8)
    assert not env.object_touches_arm("green_block") and env.success()


def test_strawberry_in_bowl_succeeds_and_on_table_fails(env):
    env.reset("strawberry_to_bowl", 4)
    bowl, _ = env.object_pose("bowl")
    env.set_object_pose("strawberry", bowl + np.array([0.005, 0.0, 0.006 + 0.014 + 0.002]))
    env.step(0.6)
    assert env.success()
    env.set_object_pose("strawberry", bowl + np.array([0.0, 0.09, 0.014]))
    env.step(0.6)
    assert not env.success()


def test_pen_upright_in_holder_succeeds_and_lying_pen_fails(env):
    env.reset("pen_to_holder", 2)
    holder, _ = env.object_pose("pen_holder")
    geometry = env.container("pen_holder")
    # Tip 10 degrees off vertical so it settles leaning on the wall, like a dropped pen.
    env.set_object_pose(
        "pen", holder + np.array([0.008, 0.0, geometry.floor_top + 0.071]), _quat_about_y(-1.4)
    )
    env.step(1.0)
    assert env.placed() and env.success()
    env.reset("pen_to_holder", 2)
    env.step(0.6)
    assert not env.placed() and not env.success()
