"""What `record.launch.py` records: exactly the topics the converter's mapping reads.

The mapping is `rynnvla_training/config/convert_default.yaml` unless another is given (the same
file `rynnvla-convert --config` takes). Only the fields that name topics are read here, so a
robot computer needs no training dependencies to record; a test checks that the result equals
the converter's own parsing (`ConvertConfig`). No ROS imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rynnvla_bringup.params import ParamsLayerError, package_share, read_yaml

TRAINING_PACKAGE = "rynnvla_training"
DEFAULT_MAPPING = "config/convert_default.yaml"
STORAGE = "mcap"


def default_mapping_path() -> Path:
    path = package_share(TRAINING_PACKAGE) / DEFAULT_MAPPING
    if not path.is_file():
        raise ParamsLayerError(f"converter default mapping {path} does not exist")
    return path


def converter_topics(mapping: str | Path | None = None) -> list[str]:
    """Topics of a converter mapping, in mapping order, without duplicates.

    A stream may list candidate topics ("first present wins" in the converter); the first
    candidate is the one recorded.
    """
    path = Path(mapping) if mapping else default_mapping_path()
    data = read_yaml(path)
    topics: list[str] = []
    for name, camera in (data.get("cameras") or {}).items():
        topics.append(_first_topic(camera, f"{path}: cameras.{name}"))
    for section in ("state", "action"):
        if data.get(section) is not None:
            topics.append(_first_topic(data[section], f"{path}: {section}"))
    instruction = data.get("instruction") or {}
    if instruction.get("topic"):
        topics.append(_first_topic(instruction, f"{path}: instruction"))
    if not topics:
        raise ParamsLayerError(f"{path}: the mapping names no topics")
    return list(dict.fromkeys(topics))


def _first_topic(stream: object, where: str) -> str:
    if not isinstance(stream, dict) or not stream.get("topic"):
        raise ParamsLayerError(f"{where}: expected a mapping with a `topic:`")
    topic = stream["topic"]
    first = topic[0] if isinstance(topic, list) and topic else topic
    if not isinstance(first, str) or not first.startswith("/"):
        raise ParamsLayerError(f"{where}.topic={topic!r}: expected an absolute topic name")
    return first


def record_command(
    topics: Sequence[str], output: str = "", storage: str = STORAGE, extra: Sequence[str] = ()
) -> list[str]:
    """`ros2 bag record` of exactly `topics` (Jazzy and newer: `--topics`)."""
    cmd = ["ros2", "bag", "record", "--storage", storage]
    if output:
        cmd += ["--output", output]
    return [*cmd, *extra, "--topics", *topics]
