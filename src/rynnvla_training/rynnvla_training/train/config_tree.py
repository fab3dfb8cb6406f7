"""Overrides on frozen config dataclasses: nested dicts (YAML files) and `key.path=value` strings.

Configs are frozen dataclasses; this module only builds modified copies. Every key is checked
against the dataclass fields (unknown keys are errors with a near-miss suggestion) and every
value is coerced to the declared field type (errors name the full key path and the value).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config key or value is invalid; the message names the key path and the value."""


def to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict (tuples become lists) for YAML / JSON dumps."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return plain(config)


def apply_overrides(config: T, updates: Mapping[str, Any], path: str = "") -> T:
    """Copy of `config` with the nested `updates` applied (validated by the dataclass)."""
    if not dataclasses.is_dataclass(config):
        raise ConfigError(f"{path or 'config'}: cannot apply {dict(updates)!r} to a non-config")
    fields = {f.name: f for f in dataclasses.fields(config)}
    hints = typing.get_type_hints(type(config))
    changes: dict[str, Any] = {}
    for key, value in updates.items():
        key_path = f"{path}.{key}" if path else str(key)
        if key not in fields:
            raise ConfigError(_unknown_key_message(key_path, str(key), fields))
        current = getattr(config, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            changes[key] = apply_overrides(current, value, key_path)
        else:
            changes[key] = coerce(value, hints[key], key_path)
    try:
        return dataclasses.replace(config, **changes)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{path or 'config'}: {error}") from error


def parse_assignment(text: str) -> dict[str, Any]:
    """`"optim.lr=1e-4"` -> `{"optim": {"lr": 1e-4}}` (the value is parsed as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not of the form key.path=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({error})") from error
    nested: dict[str, Any] = {}
    parts = [p.strip() for p in key.strip().split(".")]
    cursor = nested
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[parts[-1]] = value
    return nested


def merge_nested(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge of two override dicts; `extra` wins."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_nested(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def coerce(value: Any, hint: Any, path: str) -> Any:
    """Convert a YAML value to the declared field type or raise ConfigError naming the path."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, typing.get_args(hint), path)
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(f"{path}: {value!r} is not one of {list(typing.get_args(hint))}")
        return value
    if origin is tuple:
        return _coerce_tuple(value, typing.get_args(hint), path)
    if hint is type(None):
        if value is not None:
            raise ConfigError(f"{path}: expected null, got {value!r}")
        return None
    return _coerce_scalar(value, hint, path)


def _coerce_union(value: Any, options: tuple[Any, ...], path: str) -> Any:
    if value is None and type(None) in options:
        return None
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return coerce(value, option, path)
        except ConfigError as error:
            errors.append(str(error))
    raise ConfigError("; ".join(errors) or f"{path}: invalid value {value!r}")


def _coerce_tuple(value: Any, args: tuple[Any, ...], path: str) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{path}: expected a list, got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
    if len(args) != len(value):
        raise ConfigError(f"{path}: expected {len(args)} values, got {len(value)}: {value!r}")
    return tuple(
        coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
    )


def _coerce_scalar(value: Any, hint: Any, path: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):
            value = _float_text(value, path)  # YAML 1.1 reads "1e-4" (no dot) as a string
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return apply_overrides(hint(), value, path)
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    raise ConfigError(f"{path}: cannot use {value!r} for a field of type {hint}")


def _float_text(text: str, path: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{path}: expected a number, got {text!r}") from None


def _unknown_key_message(key_path: str, key: str, fields: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(fields), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {sorted(fields)}"
    return f"unknown config key {key_path!r}{hint}"
