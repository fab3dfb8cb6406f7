"""YAML / --set overrides on frozen config dataclasses."""

from __future__ import annotations

import pytest

from rynnvla_training.train.config import OptimConfig, TrainConfig
from rynnvla_training.train.config_tree import (
    ConfigError,
    apply_overrides,
    merge_nested,
    parse_assignment,
    to_dict,
)
from rynnvla_training.train.registry import Registry


def _config() -> TrainConfig:
    return TrainConfig(stage="vae", model={}, data={})


def test_nested_override_coerces_types_and_keeps_the_rest():
    config = apply_overrides(_config(), {"optim": {"lr": 1, "betas": [0.8, 0.9]}})
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    assert config.optim.betas == (0.8, 0.9)
    assert config.optim.weight_decay == OptimConfig().weight_decay


def test_set_assignment_parses_yaml_values():
    assert parse_assignment("loop.max_steps=20") == {"loop": {"max_steps": 20}}
    assert parse_assignment("dist.strategy=fsdp") == {"dist": {"strategy": "fsdp"}}
    assert parse_assignment("log.tensorboard=false") == {"log": {"tensorboard": False}}
    with pytest.raises(ConfigError, match=r"key\.path=value"):
        parse_assignment("loop.max_steps")


def test_unknown_key_suggests_the_near_miss():
    with pytest.raises(ConfigError, match=r"optim.lrr.*did you mean 'lr'"):
        apply_overrides(_config(), {"optim": {"lrr": 1e-3}})


def test_wrong_type_names_path_and_value():
    with pytest.raises(ConfigError, match=r"loop.max_steps: expected an integer, got 'ten'"):
        apply_overrides(_config(), {"loop": {"max_steps": "ten"}})


def test_validation_error_names_field_and_value():
    with pytest.raises(ConfigError, match=r"optim.lr=-1.0: must be > 0"):
        apply_overrides(_config(), {"optim": {"lr": -1}})
    with pytest.raises(ConfigError, match=r"dist.strategy='zero3'"):
        apply_overrides(_config(), parse_assignment("dist.strategy=zero3"))


def test_merge_and_dump_round_trip():
    merged = merge_nested({"optim": {"lr": 1e-3}}, {"optim": {"warmup_steps": 5}})
    config = apply_overrides(_config(), merged)
    dumped = to_dict(config)
    assert dumped["optim"]["lr"] == 1e-3 and dumped["optim"]["warmup_steps"] == 5
    assert dumped["optim"]["betas"] == [0.9, 0.95]


def test_registry_rejects_duplicates_and_suggests_names():
    registry: Registry[int] = Registry("preset")
    registry.register("stage3-tiny", 1)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("stage3-tiny", 2)
    with pytest.raises(KeyError, match="did you mean 'stage3-tiny'"):
        registry.get("stage3-tine")


def test_exponent_without_a_dot_is_a_float():
    # PyYAML (YAML 1.1) reads "1e-4" as a string; a float field still accepts it.
    config = apply_overrides(_config(), parse_assignment("optim.lr=1e-4"))
    assert config.optim.lr == 1e-4
    with pytest.raises(ConfigError, match=r"optim\.lr: expected a number, got 'fast'"):
        apply_overrides(_config(), parse_assignment("optim.lr=fast"))
