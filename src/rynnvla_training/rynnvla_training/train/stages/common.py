"""Helpers several stages share: opening robot datasets, statistics, state-dict prefixes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rynnvla_policy.core.actions import ActionStatistics, compute_statistics
from rynnvla_training.data.lerobot import LeRobotEpisodes


def open_robot_datasets(roots: tuple[str, ...], split: str) -> list[LeRobotEpisodes]:
    """Every root as an episode source; all must share joints and fps."""
    if not roots:
        raise ValueError("data.lerobot_roots is empty: name at least one LeRobot v3 dataset")
    sources = [LeRobotEpisodes(root, split=split or None) for root in roots]
    first = sources[0]
    for source in sources[1:]:
        if source.joint_names != first.joint_names or source.fps != first.fps:
            raise ValueError(
                f"{source.root} has joints {source.joint_names} at {source.fps} fps but "
                f"{first.root} has {first.joint_names} at {first.fps} fps"
            )
    return sources


def robot_statistics(
    sources: list[LeRobotEpisodes],
    chunk_length: int,
    absolute_dims: tuple[int, ...],
    recompute: bool,
) -> ActionStatistics:
    """One dataset: its stats.json block when it matches the chunking; several: computed."""
    if len(sources) == 1:
        return sources[0].statistics(chunk_length, absolute_dims, recompute=recompute)
    episodes = ((s.arrays(e)) for s in sources for e in range(len(s)))
    return compute_statistics(episodes, chunk_length, absolute_dims, progress=False)


def all_episode_arrays(sources: list[LeRobotEpisodes]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [source.arrays(e) for source in sources for e in range(len(source))]


def strip_prefix(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Keys under `prefix` (e.g. "vae.") without it; other keys are dropped."""
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    return json.loads(path.read_text())
