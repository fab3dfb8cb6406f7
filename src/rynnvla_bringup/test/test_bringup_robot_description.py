"""The generated URDF: the MuJoCo arm's kinematics, the profile's limits, one ros2_control
block whose hardware plugin follows the `hardware` choice."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from rynnvla_bringup.params import controllers_path, policy_layers
from rynnvla_bringup.robot_description import (
    CHAIN,
    GAZEBO_SYSTEM,
    MOCK_SYSTEM,
    SO100_HOME,
    RobotDescriptionError,
    parse_hardware_params,
    urdf,
)


def parse(text: str) -> ET.Element:
    return ET.fromstring(text.split("?>", 1)[1])


@pytest.fixture(scope="module")
def mujoco_arm():
    """The compiled MuJoCo model of the simulated arm."""
    from rynnvla_sim.config import SimConfig
    from rynnvla_sim.env import ArmSimEnv

    return ArmSimEnv(SimConfig()).model


def test_joint_origins_and_axes_are_the_mujoco_arms(mujoco_arm):
    import mujoco

    from rynnvla_sim.scenes.arm import JOINT_NAMES

    robot = parse(urdf(policy_layers("sim_arm").merged(), "mock"))
    joints = {j.get("name"): j for j in robot.findall("joint")}
    for _spec, name in zip(CHAIN, JOINT_NAMES, strict=True):
        joint_id = mujoco.mj_name2id(mujoco_arm, mujoco.mjtObj.mjOBJ_JOINT, name)
        body = mujoco_arm.jnt_bodyid[joint_id]
        origin = [float(v) for v in joints[name].find("origin").get("xyz").split()]
        axis = [float(v) for v in joints[name].find("axis").get("xyz").split()]
        np.testing.assert_allclose(origin, mujoco_arm.body_pos[body], atol=1e-6, err_msg=name)
        np.testing.assert_allclose(axis, mujoco_arm.jnt_axis[joint_id], atol=1e-6, err_msg=name)
        assert np.allclose(mujoco_arm.jnt_pos[joint_id], 0), f"{name}: joint off its body origin"


def test_home_pose_is_the_sims():
    from rynnvla_sim.scenes.arm import HOME_QPOS

    np.testing.assert_allclose(SO100_HOME, HOME_QPOS)


@pytest.mark.parametrize("robot", ["sim_arm", "so100", "generic_6dof"])
def test_limits_and_names_come_from_the_profile(robot):
    profile = policy_layers(robot).merged()
    root = parse(urdf(profile, "mock"))
    revolute = [j for j in root.findall("joint") if j.get("type") == "revolute"]
    assert [j.get("name") for j in revolute] == profile["joint_names"]
    for j, lo, hi, vel in zip(
        revolute,
        profile["joint_lower_limits"],
        profile["joint_upper_limits"],
        profile["joint_velocity_limits"],
        strict=True,
    ):
        limit = j.find("limit")
        assert float(limit.get("lower")) == pytest.approx(lo)
        assert float(limit.get("upper")) == pytest.approx(hi)
        assert float(limit.get("velocity")) == pytest.approx(vel)
    control = root.find("ros2_control")
    joints = control.findall("joint")
    assert [j.get("name") for j in joints] == profile["joint_names"]
    for joint in joints:
        assert [c.get("name") for c in joint.findall("command_interface")] == ["position"]
        assert [s.get("name") for s in joint.findall("state_interface")] == [
            "position",
            "velocity",
        ]


def test_one_argument_picks_the_hardware_plugin():
    profile = policy_layers("sim_arm").merged()
    controllers = str(controllers_path())
    gazebo = parse(urdf(profile, "gazebo", controllers_file=controllers))
    assert gazebo.find("ros2_control/hardware/plugin").text == GAZEBO_SYSTEM
    plugin = gazebo.find("gazebo/plugin")
    assert plugin.get("filename") == "gz_ros2_control-system"
    assert plugin.find("parameters").text == controllers
    mock = parse(urdf(profile, "mock"))
    assert mock.find("ros2_control/hardware/plugin").text == MOCK_SYSTEM
    assert mock.find("gazebo") is None
    real = parse(
        urdf(
            profile,
            "real",
            driver_plugin="so_arm_driver/SOArmSystem",
            hardware_params=parse_hardware_params("port=/dev/ttyACM0; baud=1000000"),
        )
    )
    hardware = real.find("ros2_control/hardware")
    assert hardware.find("plugin").text == "so_arm_driver/SOArmSystem"
    assert {p.get("name"): p.text for p in hardware.findall("param")} == {
        "port": "/dev/ttyACM0",
        "baud": "1000000",
    }
    # the joints and interfaces do not depend on the hardware: one controller YAML fits all
    strip = lambda root: ET.tostring(root.find("ros2_control")).strip()  # noqa: E731
    assert strip(mock).replace(MOCK_SYSTEM.encode(), b"X") == strip(gazebo).replace(
        GAZEBO_SYSTEM.encode(), b"X"
    )


def test_bad_choices_are_named():
    profile = policy_layers("sim_arm").merged()
    with pytest.raises(RobotDescriptionError, match="hardware_plugin"):
        urdf(profile, "real")
    with pytest.raises(RobotDescriptionError, match="hardware='sim'"):
        urdf(profile, "sim")
    with pytest.raises(RobotDescriptionError, match="controllers_file"):
        urdf(profile, "gazebo")
    with pytest.raises(RobotDescriptionError, match=r"7 entries|6 joints"):
        urdf({**profile, "joint_names": [*profile["joint_names"], "extra"]}, "mock")
    with pytest.raises(RobotDescriptionError, match="key=value"):
        parse_hardware_params("port")


def test_initial_positions_are_home_inside_the_limits():
    profile = policy_layers("sim_arm").merged()
    root = parse(urdf(profile, "mock"))
    initial = [
        float(j.find("state_interface/param").text) for j in root.findall("ros2_control/joint")
    ]
    np.testing.assert_allclose(initial, SO100_HOME)
