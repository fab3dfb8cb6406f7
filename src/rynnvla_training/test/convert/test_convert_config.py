"""Mapping config: shipped YAML = defaults, overrides, errors that name field and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from rynnvla_training.convert.config import ConfigError, ConvertConfig

DEFAULT_YAML = Path(__file__).resolve().parents[2] / "config" / "convert_default.yaml"


def test_shipped_yaml_equals_the_dataclass_defaults():
    assert ConvertConfig.from_yaml(DEFAULT_YAML) == ConvertConfig()


def test_yaml_overrides_only_named_fields(tmp_path):
    path = tmp_path / "robot.yaml"
    path.write_text(
        "fps: 15\n"
        "cameras:\n  top: {topic: [/top/image_raw, /top/image_raw/compressed], max_age_s: 0.2}\n"
        "action: {source: next_state}\n"
    )
    config = ConvertConfig.from_yaml(path)
    assert config.fps == 15
    assert list(config.cameras) == ["top"]  # a YAML that names cameras lists all of them
    assert config.cameras["top"].topics == ("/top/image_raw", "/top/image_raw/compressed")
    assert config.action.source == "next_state"
    assert config.state == ConvertConfig().state
    assert config.fingerprint() != ConvertConfig().fingerprint()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"fps": 0}, "fps = 0"),
        ({"fps": 29.97}, "fps = 29.97"),
        ({"time_source": "wall"}, "time_source = 'wall'"),
        ({"state": {"joint_names": ["a", "a"]}}, "state.joint_names"),
        ({"state": {"topic": "joint_states"}}, "state.topic = 'joint_states'"),
        ({"cameras": {"f": {"topic": "/f", "max_age_s": -1}}}, "cameras.f.max_age_s = -1"),
        ({"action": {"source": "policy"}}, "action.source = 'policy'"),
        ({"timing": {"min_match_rate": 2}}, "timing.min_match_rate = 2"),
        ({"video": {"codec": "vp9"}}, "video.codec = 'vp9'"),
        ({"video": {"pix_fmt": "rgb24"}}, "video.pix_fmt = 'rgb24'"),
        ({"video": {"codec": "av1", "pix_fmt": "yuv444p"}}, "video.pix_fmt = 'yuv444p'"),
        ({"statistics": {"absolute_dims": [7]}}, "statistics.absolute_dims"),
        ({"typestore": "ros2_rolling"}, "typestore = 'ros2_rolling'"),
        ({"split": {"val_fraction": 1.0}}, "split.val_fraction = 1.0"),
    ],
)
def test_bad_values_name_field_and_value(data, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        ConvertConfig.from_dict(data)


def test_unknown_keys_get_a_near_miss_suggestion(tmp_path):
    with pytest.raises(
        ConfigError, match=r"unknown field timing.max_gap; did you mean 'max_gap_s'"
    ):
        ConvertConfig.from_dict({"timing": {"max_gap": 1}})
    path = tmp_path / "bad.yaml"
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        ConvertConfig.from_yaml(path)
