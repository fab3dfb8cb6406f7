"""`EvalConfig`: one closed-loop evaluation run, validated on construction (errors name the
field and the value). No rclpy here."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Task ids of the simulated arm (rynnvla_sim.tasks.TASKS); checked against it at run time.
DEFAULT_TASKS = ("block_to_plate", "strawberry_to_bowl", "pen_to_holder")
# Held-out layouts: `rynnvla-sim-collect` draws training demonstrations from seed 0 upwards.
DEFAULT_SEED_START = 100_000


class EvalConfigError(ValueError):
    """An evaluation setting is invalid; the message names the field and the value."""


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate and how.

    checkpoint: policy checkpoint directory.
    episodes: task id -> number of seeded episodes (seeds seed_start, seed_start + 1, ...).
    timeout_s: simulated seconds an episode may take before it counts as a failure.
    real_time_factor: simulated seconds per wall second (1 = real time, as deployed).
    videos_per_task: rollout videos written for the first episodes of each task.
    chunk_timeout_s: wall seconds to wait for the policy's first chunks of an episode; after
        3 such broken episodes in a row the evaluation stops (EvalAbortedError).
    out_dir: where results.json and the videos go.
    policy_overrides / sim_overrides: last parameter layer of the nodes (ROS names).
    shard_index / shard_count: this process runs every shard_count-th seed of each task,
        starting at the shard_index-th (`rynnvla-eval --workers`, evaluate/shards.py).
    """

    checkpoint: Path
    episodes: Mapping[str, int]
    out_dir: Path
    seed_start: int = DEFAULT_SEED_START
    timeout_s: float = 30.0
    real_time_factor: float = 1.0
    videos_per_task: int = 1
    video_fps: float = 15.0
    video_camera: str = "front"
    robot: str = "sim_arm"
    distractors: bool = False
    # Wall seconds an episode waits for the policy's first chunks before it counts as broken.
    chunk_timeout_s: float = 30.0
    policy_overrides: Mapping[str, Any] = field(default_factory=dict)
    sim_overrides: Mapping[str, Any] = field(default_factory=dict)
    progress: bool = True
    shard_index: int = 0
    shard_count: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoint", Path(self.checkpoint))
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        object.__setattr__(self, "episodes", dict(self.episodes))
        if not self.checkpoint.is_dir():
            raise EvalConfigError(f"checkpoint={str(self.checkpoint)!r}: no such directory")
        if not self.episodes:
            raise EvalConfigError("episodes={}: give at least one task")
        for task, count in self.episodes.items():
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise EvalConfigError(f"episodes[{task!r}]={count!r}: expected an integer >= 1")
        _positive(self, "timeout_s")
        _positive(self, "video_fps")
        _positive(self, "chunk_timeout_s")
        if not (math.isfinite(self.real_time_factor) and self.real_time_factor > 0):
            raise EvalConfigError(
                f"real_time_factor={self.real_time_factor!r}: expected a number > 0 (the policy "
                "must keep up with the sim, so 'as fast as possible' (0) is not offered)"
            )
        if not isinstance(self.seed_start, int) or self.seed_start < 0:
            raise EvalConfigError(f"seed_start={self.seed_start!r}: expected an integer >= 0")
        if not isinstance(self.videos_per_task, int) or self.videos_per_task < 0:
            raise EvalConfigError(f"videos_per_task={self.videos_per_task!r}: expected >= 0")
        if not isinstance(self.shard_count, int) or self.shard_count < 1:
            raise EvalConfigError(f"shard_count={self.shard_count!r}: expected an integer >= 1")
        if not isinstance(self.shard_index, int) or not 0 <= self.shard_index < self.shard_count:
            raise EvalConfigError(
                f"shard_index={self.shard_index!r}: expected an integer in [0, {self.shard_count})"
            )

    def seeds(self, task: str) -> list[int]:
        """This shard's layout seeds of `task` (all of them when there is one shard)."""
        seeds = range(self.seed_start, self.seed_start + self.episodes[task])
        return list(seeds[self.shard_index :: self.shard_count])

    @property
    def total_episodes(self) -> int:
        return sum(len(self.seeds(task)) for task in self.episodes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (paths as strings): what a shard process is started with."""
        out = asdict(self)
        out["checkpoint"], out["out_dir"] = str(self.checkpoint), str(self.out_dir)
        return out


def _positive(config: EvalConfig, name: str) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise EvalConfigError(f"{name}={value!r}: expected a number > 0")
    if not math.isfinite(value):
        raise EvalConfigError(f"{name}={value!r}: expected a finite number")


def parse_episodes(text: str, default_tasks: tuple[str, ...] = DEFAULT_TASKS) -> dict[str, int]:
    """`10` (every default task) or `block_to_plate=50,pen_to_holder=5` -> {task: count}."""
    text = text.strip()
    if not text:
        raise EvalConfigError("episodes='': give a count or task=count pairs")
    if "=" not in text:
        try:
            count = int(text)
        except ValueError:
            raise EvalConfigError(f"episodes={text!r}: expected an integer") from None
        return dict.fromkeys(default_tasks, count)
    out: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        task, _, count = item.partition("=")
        try:
            out[task.strip()] = int(count)
        except ValueError:
            raise EvalConfigError(f"episodes item {item!r}: expected task=integer") from None
    return out
