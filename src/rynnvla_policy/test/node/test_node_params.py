"""Parameter validation: every problem named with its value; the shipped YAML is valid."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rynnvla_policy.node.params import ParamsError, PolicyNodeParams

CONFIG = Path(__file__).resolve().parents[2] / "config" / "policy_node.yaml"


def valid(**overrides):
    return PolicyNodeParams.from_mapping({"checkpoint_path": "/ckpt", **overrides})


def problems_of(**overrides) -> str:
    with pytest.raises(ParamsError) as info:
        valid(**overrides)
    return str(info.value)


def test_defaults_are_valid_once_a_checkpoint_is_given():
    params = valid()
    assert params.camera_topic_map == {
        "front": "/camera/front/image_raw",
        "wrist": "/camera/wrist/image_raw",
    }
    assert params.output_enabled is False  # hardware-safe default


def test_missing_checkpoint_is_reported():
    with pytest.raises(ParamsError, match="checkpoint_path=''"):
        PolicyNodeParams.from_mapping({})


def test_unknown_parameter_named_with_value_and_suggestion():
    text = problems_of(execution_horizn=5)
    assert "execution_horizn=5: unknown parameter (did you mean 'execution_horizon'?)" in text


def test_ros_builtin_parameters_are_not_unknown():
    params = valid(use_sim_time=True, **{"qos_overrides./clock.subscription.depth": 1})
    assert params.checkpoint_path == "/ckpt"


def test_wrong_types_are_reported():
    text = problems_of(execution_horizon=2.5, output_enabled="yes", camera_topics="/a")
    assert "execution_horizon=2.5: expected an integer" in text
    assert "output_enabled='yes': expected true/false" in text
    assert "camera_topics='/a': expected a list" in text


def test_integers_accepted_for_float_parameters():
    assert valid(control_rate_hz=30).control_rate_hz == 30.0


def test_all_problems_reported_at_once():
    with pytest.raises(ParamsError) as info:
        valid(overlap_policy="avg", camera_topics=["/a"], joint_velocity_limits=[1.0] * 6 + [2.0])
    text = str(info.value)
    assert len(info.value.problems) == 3
    assert "overlap_policy='avg': must be one of ['latest', 'blend', 'ensemble']" in text
    assert "camera_topics=['/a']: expected 2 entries" in text
    assert "joint_velocity_limits=" in text and "expected 6 entries" in text


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"joint_lower_limits": [0.0] * 6, "joint_upper_limits": [0.0] * 6}, "lower 0.0 >= upper"),
        ({"joint_velocity_limits": [1, 1, 1, 1, 1, 0]}, "values must be > 0"),
        ({"camera_max_age_s": [0.1, -1.0]}, "ages must be > 0"),
        ({"status_rate_hz": 0.5}, "status_rate_hz=0.5: must be >= 1"),
        ({"execution_horizon": 0}, "execution_horizon=0"),
        ({"latency_compensation": "magic"}, "latency_compensation='magic'"),
        ({"end_velocity": "free"}, "end_velocity='free'"),
        ({"blend_shape": "cubic"}, "blend_shape='cubic': must be one of ['linear', 'smooth']"),
        ({"camera_names": ["front", "front"]}, "names must be unique"),
        ({"warmup_image_shape": [480]}, "expected [height, width]"),
        ({"instruction": "x" * 20, "max_instruction_chars": 10}, "20 characters"),
        ({"joint_lower_limits": [float("nan")] * 6}, "values must be finite"),
    ],
)
def test_invalid_values(overrides, fragment):
    assert fragment in problems_of(**overrides)


def test_shipped_yaml_is_complete_and_valid():
    data = yaml.safe_load(CONFIG.read_text())
    values = data["rynnvla_policy"]["ros__parameters"]
    assert set(values) == set(PolicyNodeParams.names())
    params = PolicyNodeParams.from_mapping({**values, "checkpoint_path": "/ckpt"})
    assert params == valid()  # the YAML documents the defaults
