"""Aggregation of episode results: per-task table, latency percentiles, results JSON. Pure."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rynnvla_training.evaluate.episode import EpisodeResult


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50 / p90 / p99 / mean / max of `values` (milliseconds), 0 when empty."""
    if not len(values):
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "mean": 0.0, "max": 0.0, "count": 0}
    array = np.asarray(values, dtype=np.float64)
    return {
        "p50": round(float(np.percentile(array, 50)), 3),
        "p90": round(float(np.percentile(array, 90)), 3),
        "p99": round(float(np.percentile(array, 99)), 3),
        "mean": round(float(array.mean()), 3),
        "max": round(float(array.max()), 3),
        "count": int(array.size),
    }


@dataclass
class TaskSummary:
    task_id: str
    episodes: int
    successes: int
    mean_episode_s: float  # simulated seconds per episode (time to success, or the timeout)
    mean_time_to_success_s: float  # over successful episodes (-1 if none)
    errors: int

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0


@dataclass
class EvalReport:
    checkpoint: str
    episodes: list[EpisodeResult]
    settings: Mapping[str, Any] = field(default_factory=dict)
    startup_s: float = 0.0
    wall_s: float = 0.0
    videos: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ aggregates
    def tasks(self) -> dict[str, TaskSummary]:
        out: dict[str, TaskSummary] = {}
        for task in dict.fromkeys(e.task_id for e in self.episodes):
            runs = [e for e in self.episodes if e.task_id == task]
            wins = [e for e in runs if e.success]
            out[task] = TaskSummary(
                task_id=task,
                episodes=len(runs),
                successes=len(wins),
                mean_episode_s=round(float(np.mean([e.duration_s for e in runs])), 3),
                mean_time_to_success_s=(
                    round(float(np.mean([e.time_to_success_s for e in wins])), 3) if wins else -1.0
                ),
                errors=sum(1 for e in runs if e.error),
            )
        return out

    def success(self) -> dict[str, float]:
        return {task: round(s.success_rate, 4) for task, s in self.tasks().items()}

    def inference_ms(self) -> dict[str, float]:
        return percentiles([v for e in self.episodes for v in e.inference_ms])

    def end_to_end_ms(self) -> dict[str, float]:
        return percentiles([v for e in self.episodes for v in e.end_to_end_ms])

    def mean_episode_s(self) -> float:
        return (
            round(float(np.mean([e.duration_s for e in self.episodes])), 3)
            if self.episodes
            else 0.0
        )

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "settings": dict(self.settings),
            "success": self.success(),
            "tasks": {
                task: {
                    "episodes": s.episodes,
                    "successes": s.successes,
                    "success_rate": round(s.success_rate, 4),
                    "mean_episode_s": s.mean_episode_s,
                    "mean_time_to_success_s": s.mean_time_to_success_s,
                    "errors": s.errors,
                }
                for task, s in self.tasks().items()
            },
            "mean_episode_s": self.mean_episode_s(),
            "inference_ms": self.inference_ms(),
            "end_to_end_ms": self.end_to_end_ms(),
            "startup_s": round(self.startup_s, 2),
            "wall_s": round(self.wall_s, 2),
            "videos": list(self.videos),
            "episodes": [e.summary() for e in self.episodes],
        }

    def summary_line(self, results_path: str | Path | None = None) -> dict[str, Any]:
        """The one-line JSON summary (CLI's last line)."""
        latency = self.inference_ms()
        line = {
            "success": self.success(),
            "mean_episode_s": self.mean_episode_s(),
            "latency_p50_ms": latency["p50"],
            "latency_p99_ms": latency["p99"],
            "episodes": len(self.episodes),
            "wall_s": round(self.wall_s, 1),
        }
        if "mode" in self.settings:
            line["mode"] = self.settings["mode"]  # "ros" (deployment path) or "direct"
        if results_path is not None:
            line["results"] = str(results_path)
        return line

    def table(self) -> str:
        header = f"{'task':<20} {'episodes':>8} {'success':>8} {'rate':>6} {'mean s':>7} {'to success s':>12}"
        lines = [header, "-" * len(header)]
        for s in self.tasks().values():
            to_success = f"{s.mean_time_to_success_s:.2f}" if s.successes else "-"
            lines.append(
                f"{s.task_id:<20} {s.episodes:>8} {s.successes:>8} {s.success_rate:>6.0%} "
                f"{s.mean_episode_s:>7.2f} {to_success:>12}"
            )
        latency, e2e = self.inference_ms(), self.end_to_end_ms()
        lines.append(
            f"inference latency p50 {latency['p50']:.1f} ms, p99 {latency['p99']:.1f} ms; "
            f"observation -> chunk p50 {e2e['p50']:.1f} ms, p99 {e2e['p99']:.1f} ms "
            f"({latency['count']} chunks)"
        )
        return "\n".join(lines)

    def write_json(self, path: str | Path) -> Path:
        """results JSON, written to a temp file then moved (never half-written)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        os.replace(tmp, path)
        return path
