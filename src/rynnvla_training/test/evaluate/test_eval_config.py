"""EvalConfig validation and the --episodes syntax."""

from __future__ import annotations

import pytest

from rynnvla_training.evaluate.config import (
    DEFAULT_TASKS,
    EvalConfig,
    EvalConfigError,
    parse_episodes,
)


def make(tmp_path, **overrides) -> EvalConfig:
    values = {"checkpoint": tmp_path, "episodes": {"block_to_plate": 2}, "out_dir": tmp_path}
    return EvalConfig(**{**values, **overrides})


def test_seeds_are_consecutive_from_seed_start(tmp_path):
    config = make(tmp_path, episodes={"block_to_plate": 3, "pen_to_holder": 1}, seed_start=10)
    assert config.seeds("block_to_plate") == [10, 11, 12]
    assert config.seeds("pen_to_holder") == [10]
    assert config.total_episodes == 4


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("episodes", {"block_to_plate": 0}, r"episodes\['block_to_plate'\]=0"),
        ("episodes", {}, "at least one task"),
        ("timeout_s", -1.0, "timeout_s=-1.0"),
        ("real_time_factor", 0.0, "real_time_factor=0.0"),
        ("seed_start", -3, "seed_start=-3"),
        ("videos_per_task", -1, "videos_per_task=-1"),
        ("video_fps", float("nan"), "video_fps=nan"),
    ],
)
def test_bad_settings_name_the_field_and_value(tmp_path, field, value, message):
    with pytest.raises(EvalConfigError, match=message):
        make(tmp_path, **{field: value})


def test_missing_checkpoint(tmp_path):
    with pytest.raises(EvalConfigError, match="no such directory"):
        make(tmp_path, checkpoint=tmp_path / "nope")


def test_episode_syntax():
    assert parse_episodes("4") == dict.fromkeys(DEFAULT_TASKS, 4)
    assert parse_episodes("block_to_plate=50, pen_to_holder=5") == {
        "block_to_plate": 50,
        "pen_to_holder": 5,
    }
    with pytest.raises(EvalConfigError, match="task=integer"):
        parse_episodes("block_to_plate=many")
    with pytest.raises(EvalConfigError, match="integer"):
        parse_episodes("lots")
