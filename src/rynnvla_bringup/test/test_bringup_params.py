"""The parameter layering shared by the launch files and `rynnvla-run`, and the YAML it reads:
robot profiles, node defaults, controller YAML, recorded topics."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from rynnvla_bringup import params
from rynnvla_bringup.params import (
    ParamsLayerError,
    parse_bool,
    parse_list,
    parse_override,
    policy_layers,
    policy_overrides_from_args,
    robot_profiles,
    sim_layers,
)

PROFILES = ("sim_arm", "so100", "so101", "generic_6dof")
SO100_LAYOUT = ("sim_arm", "so100", "so101")


def test_every_shipped_profile_is_there():
    assert set(PROFILES) <= set(robot_profiles())


def test_policy_layers_are_defaults_then_profile_then_overrides():
    layers = policy_layers("so100", {"device": "cuda", "joint_velocity_limits": [1.0] * 6})
    assert [p.name for p in layers.files] == ["policy_node.yaml", "so100.yaml"]
    assert layers.files[0].parent.parent.name == "rynnvla_policy"
    merged = layers.merged()
    profile = yaml.safe_load(layers.files[1].read_text())["rynnvla_policy"]["ros__parameters"]
    defaults = yaml.safe_load(layers.files[0].read_text())["rynnvla_policy"]["ros__parameters"]
    assert merged["joint_upper_limits"] == profile["joint_upper_limits"]  # profile beats defaults
    assert merged["joint_velocity_limits"] == [1.0] * 6  # overrides beat the profile
    assert merged["device"] == "cuda"
    assert merged["status_rate_hz"] == defaults["status_rate_hz"]  # untouched default
    assert layers.cli_args() == [
        "--ros-args",
        "--params-file",
        str(layers.files[0]),
        "--params-file",
        str(layers.files[1]),
    ]
    assert layers.launch_parameters() == [*map(str, layers.files), dict(layers.overrides)]


def test_extra_parameter_files_come_after_the_profile(tmp_path):
    extra = tmp_path / "mine.yaml"
    extra.write_text("rynnvla_policy:\n  ros__parameters:\n    execution_horizon: 7\n")
    layers = policy_layers("sim_arm", extra_files=[extra])
    assert layers.files[-1] == extra
    assert layers.merged()["execution_horizon"] == 7
    with pytest.raises(ParamsLayerError, match=r"nope\.yaml"):
        policy_layers("sim_arm", extra_files=[tmp_path / "nope.yaml"])


@pytest.mark.parametrize("robot", PROFILES)
def test_every_profile_is_valid_for_the_policy_node(robot):
    from rynnvla_policy.node.params import PolicyNodeParams

    values = {**policy_layers(robot).merged(), "checkpoint_path": "/some/checkpoint"}
    PolicyNodeParams.from_mapping(values)  # raises ParamsError naming any bad entry


def test_sim_arm_limits_are_the_mujoco_models():
    from rynnvla_sim.scenes.arm import JOINT_LIMITS, JOINT_NAMES, VELOCITY_LIMITS

    merged = policy_layers("sim_arm").merged()
    assert tuple(merged["joint_names"]) == JOINT_NAMES
    np.testing.assert_allclose(merged["joint_lower_limits"], JOINT_LIMITS[:, 0])
    np.testing.assert_allclose(merged["joint_upper_limits"], JOINT_LIMITS[:, 1])
    np.testing.assert_allclose(merged["joint_velocity_limits"], VELOCITY_LIMITS)


def test_sim_arm_profile_matches_the_sim_nodes_topics_and_images():
    from rynnvla_sim.node.params import SimNodeParams

    policy = policy_layers("sim_arm").merged()
    sim = SimNodeParams.from_mapping(sim_layers().merged())
    assert policy["output_enabled"] is True
    assert tuple(policy["joint_names"]) == sim.joint_names
    assert policy["controller_topic"] == sim.trajectory_topic
    assert policy["camera_topics"] == [sim.camera_topic(c) for c in policy["camera_names"]]
    assert policy["camera_compressed"] == [sim.compressed] * len(sim.cameras)
    assert policy["warmup_image_shape"] == [sim.image_height, sim.image_width]


@pytest.mark.parametrize("robot", ("so100", "so101", "generic_6dof"))
def test_hardware_profiles_start_in_dry_run(robot):
    assert policy_layers(robot).merged()["output_enabled"] is False


def test_controller_yaml_is_a_jazzy_trajectory_controller_on_the_profiles_joints():
    data = params.read_yaml(params.controllers_path())
    manager = data["controller_manager"]["ros__parameters"]
    assert manager["arm_controller"]["type"] == (
        "joint_trajectory_controller/JointTrajectoryController"
    )
    assert manager["joint_state_broadcaster"]["type"] == (
        "joint_state_broadcaster/JointStateBroadcaster"
    )
    arm = data["arm_controller"]["ros__parameters"]
    assert arm["allow_nonzero_velocity_at_trajectory_end"] is False
    assert arm["command_interfaces"] == ["position"]
    assert arm["state_interfaces"] == ["position", "velocity"]
    for robot in SO100_LAYOUT:
        merged = policy_layers(robot).merged()
        assert arm["joints"] == merged["joint_names"], robot
        assert merged["controller_topic"] == "/arm_controller/joint_trajectory"


def test_unknown_robot_names_the_shipped_profiles():
    with pytest.raises(ParamsLayerError, match=r"so1000.*so100"):
        policy_layers("so1000")


def test_a_profile_by_path_and_a_malformed_one(tmp_path):
    good = tmp_path / "arm.yaml"
    good.write_text("rynnvla_policy:\n  ros__parameters:\n    device: cuda:1\n")
    assert policy_layers(str(good)).merged()["device"] == "cuda:1"
    bad = tmp_path / "bad.yaml"
    bad.write_text("rynnvla_policy:\n  joint_names: [a]\n")  # no ros__parameters
    with pytest.raises(ParamsLayerError, match=r"bad.yaml.*ros__parameters"):
        policy_layers(str(bad)).merged()
    broken = tmp_path / "broken.yaml"
    broken.write_text("rynnvla_policy: [\n")
    with pytest.raises(ParamsLayerError, match=r"broken\.yaml is not valid YAML"):
        policy_layers(str(broken)).merged()


def test_wildcard_blocks_apply_before_the_nodes_own(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "/**:\n  ros__parameters:\n    use_sim_time: true\n    device: cpu\n"
        "rynnvla_policy:\n  ros__parameters:\n    device: cuda\n"
        "other_node:\n  ros__parameters:\n    device: tpu\n"
    )
    values = params.node_params_in(params.read_yaml(path), "rynnvla_policy", str(path))
    assert values == {"use_sim_time": True, "device": "cuda"}


def test_overrides_and_launch_argument_strings():
    assert parse_override("execution_horizon:=8") == ("execution_horizon", 8)
    assert parse_override("camera_topics:=[/a, /b]") == ("camera_topics", ["/a", "/b"])
    assert parse_override("device=cuda") == ("device", "cuda")
    with pytest.raises(ParamsLayerError, match="name:=value"):
        parse_override("nothing")
    assert parse_list("[/a, '/b' ]") == ["/a", "/b"]
    assert parse_bool("True", "x") is True and parse_bool("off", "x") is False
    with pytest.raises(ParamsLayerError, match="output_enabled='maybe'"):
        parse_bool("maybe", "output_enabled")
    out = policy_overrides_from_args(
        {
            "checkpoint": "/ckpt",
            "camera_topics": "/c1,/c2",
            "camera_compressed": "true, false",
            "output_enabled": "",
            "auto_activate": "true",
            "device": "",
        }
    )
    assert out == {
        "checkpoint_path": "/ckpt",
        "camera_topics": ["/c1", "/c2"],
        "camera_compressed": [True, False],
        "auto_activate": True,
    }
