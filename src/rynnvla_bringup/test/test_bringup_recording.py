"""record.launch.py records exactly the topics the converter's default mapping reads."""

from __future__ import annotations

import pytest

from rynnvla_bringup.params import ParamsLayerError
from rynnvla_bringup.recording import converter_topics, default_mapping_path, record_command


def test_topics_are_the_converters_default_mapping():
    from rynnvla_training.convert.config import ConvertConfig

    config = ConvertConfig.from_yaml(default_mapping_path())
    expected = [c.topics[0] for c in config.cameras.values()]
    expected += [config.state.topics[0], config.action.topics[0], config.instruction.topic]
    assert converter_topics() == expected
    assert converter_topics() == [
        "/camera/front/image_raw",
        "/camera/wrist/image_raw",
        "/joint_states",
        "/arm_controller/joint_trajectory",
        "/instruction",
    ]


def test_a_custom_mapping_with_candidates_and_no_instruction(tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "cameras:\n  top:\n    topic: [/top/image_raw/compressed, /top/image_raw]\n"
        "state:\n  topic: /robot/joint_states\n"
        "action:\n  topic: /robot/arm_controller/joint_trajectory\n"
        "instruction:\n  topic: null\n"
    )
    assert converter_topics(mapping) == [
        "/top/image_raw/compressed",
        "/robot/joint_states",
        "/robot/arm_controller/joint_trajectory",
    ]
    mapping.write_text("cameras:\n  top:\n    topic: relative/name\n")
    with pytest.raises(ParamsLayerError, match=r"cameras.top.topic='relative/name'"):
        converter_topics(mapping)


def test_record_command_is_mcap_of_exactly_the_topics():
    cmd = record_command(["/a", "/b"], output="bags/ep1")
    assert cmd[:3] == ["ros2", "bag", "record"]
    assert cmd[cmd.index("--storage") + 1] == "mcap"
    assert cmd[cmd.index("--output") + 1] == "bags/ep1"
    assert cmd[cmd.index("--topics") + 1 :] == ["/a", "/b"]
    assert "-a" not in cmd and "--all" not in cmd
