"""Stages and training presets: two named registries.

A stage is a model block type, a data block type and a `build` function that turns a resolved
`TrainConfig` into `TrainingParts` for the one trainer. A preset is a complete, validated
`TrainConfig` named `<stage>-<size>` (e.g. `stage3-tiny`); YAML files and `--set` override it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rynnvla_training.train.config import TrainConfig
from rynnvla_training.train.config_tree import (
    ConfigError,
    apply_overrides,
    merge_nested,
    parse_assignment,
)
from rynnvla_training.train.distributed import DistContext
from rynnvla_training.train.parts import TrainingParts
from rynnvla_training.train.registry import Registry


@dataclass(frozen=True)
class Stage:
    name: str
    summary: str  # one line for --help
    model_config: type  # dataclass of TrainConfig.model
    data_config: type  # dataclass of TrainConfig.data
    build: Callable[[TrainConfig, DistContext], TrainingParts]


STAGES: Registry[Stage] = Registry("stage")
PRESETS: Registry[TrainConfig] = Registry("training preset")


def register_stage(stage: Stage) -> Stage:
    return STAGES.register(stage.name, stage)


def register_preset(size: str, config: TrainConfig) -> TrainConfig:
    """Register `config` as `<config.stage>-<size>` after checking its blocks' types."""
    stage = STAGES.get(config.stage)
    for block, expected in (("model", stage.model_config), ("data", stage.data_config)):
        value = getattr(config, block)
        if not isinstance(value, expected):
            raise TypeError(
                f"preset {config.stage}-{size}: {block} must be {expected.__name__}, "
                f"got {type(value).__name__}"
            )
    return PRESETS.register(f"{config.stage}-{size}", config)


def preset_sizes(stage: str) -> list[str]:
    prefix = f"{stage}-"
    return [name.removeprefix(prefix) for name in PRESETS.names() if name.startswith(prefix)]


def load_yaml_overrides(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return dict(data)


def resolve_config(
    stage: str,
    preset: str | None = None,
    files: Sequence[str | Path] = (),
    assignments: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """Preset, then each YAML file in order, then `extra`, then `--set` assignments.

    A YAML file may name the preset (`preset: tiny`); an explicit `preset` argument wins.
    It may also name the stage (`stage: stage3`), which must then match.
    """
    overrides: dict[str, Any] = {}
    for path in files:
        data = load_yaml_overrides(path)
        file_stage = data.pop("stage", stage)
        if file_stage != stage:
            raise ConfigError(f"{path}: is a config for stage {file_stage!r}, not {stage!r}")
        preset = preset or data.pop("preset", None)
        data.pop("preset", None)
        overrides = merge_nested(overrides, data)
    overrides = merge_nested(overrides, dict(extra or {}))
    for text in assignments:
        overrides = merge_nested(overrides, parse_assignment(text))
    if preset is None:
        sizes = preset_sizes(stage)
        preset = "tiny" if "tiny" in sizes else sizes[0]
    base = PRESETS.get(f"{stage}-{preset}")
    return apply_overrides(base, overrides)
