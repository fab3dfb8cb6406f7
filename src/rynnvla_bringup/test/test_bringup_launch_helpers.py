"""declare_arguments turns a launch file's ARGUMENTS table into DeclareLaunchArgument actions
(needs ROS 2 launch; skipped where it is not importable)."""

from __future__ import annotations

import pytest

pytest.importorskip("launch.actions", reason="ROS 2 launch is not importable")

from rynnvla_bringup.launch_helpers import declare_arguments

TABLE = (
    ("checkpoint", None, "Checkpoint directory of the policy."),
    ("robot", "sim_arm", "Robot profile name or YAML path."),
)


def test_one_declaration_per_row_in_order_with_descriptions():
    declared = declare_arguments(TABLE)
    assert [d.name for d in declared] == ["checkpoint", "robot"]
    assert [d.description for d in declared] == [text for _, _, text in TABLE]


def test_none_default_makes_the_argument_required():
    checkpoint, robot = declare_arguments(TABLE)
    assert checkpoint.default_value is None
    assert [s.perform(None) for s in robot.default_value] == ["sim_arm"]
