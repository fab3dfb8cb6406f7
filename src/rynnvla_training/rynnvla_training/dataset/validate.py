"""Structural checks of a LeRobotDataset v3.0 directory (``rynnvla-dataset validate``).

Each check appends human-readable problems; an empty list means the dataset is sound.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from . import layout
from .reader import DatasetError, LeRobotV3Dataset
from .video import VideoDecodeError, decode_episode

REQUIRED_INFO_KEYS = (
    "codebase_version",
    "fps",
    "features",
    "total_episodes",
    "total_frames",
    "total_tasks",
    "chunks_size",
    "data_path",
    "video_path",
)
STAT_KEYS = ("min", "max", "mean", "std", "count", *layout.QUANTILE_KEYS)


def validate(root: str | Path, *, decode_videos: bool = False) -> list[str]:
    """Problems found in the dataset at ``root`` (empty: valid).

    decode_videos: also decode every episode's frames of every camera (slow, thorough).
    """
    root = Path(root)
    problems: list[str] = []
    try:
        info = json.loads((root / layout.INFO_PATH).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return [f"cannot read {layout.INFO_PATH}: {exc}"]
    problems += _check_info(info)
    if problems:
        return problems
    try:
        dataset = LeRobotV3Dataset(root, load_images=False)
    except (DatasetError, KeyError, ValueError) as exc:
        return [f"cannot load the dataset: {exc}"]
    problems += _check_tasks(root)
    problems += _check_episodes(dataset, info)
    problems += _check_frames(dataset)
    problems += _check_videos(dataset, decode_videos)
    problems += _check_stats(root, info)
    return problems


def _check_info(info: dict) -> list[str]:
    problems = [f"info.json lacks {key!r}" for key in REQUIRED_INFO_KEYS if key not in info]
    if problems:
        return problems
    if info["codebase_version"] != layout.CODEBASE_VERSION:
        problems.append(f"codebase_version is {info['codebase_version']!r}, expected 'v3.0'")
    if not isinstance(info["fps"], int) or info["fps"] <= 0:
        problems.append(f"fps must be a positive int, got {info['fps']!r}")
    for key in layout.DEFAULT_FEATURES:
        if key not in info["features"]:
            problems.append(f"features lack {key!r}")
    for key in (layout.STATE_KEY, layout.ACTION_KEY):
        if key not in info["features"]:
            problems.append(f"features lack {key!r}")
    return problems


def _check_tasks(root: Path) -> list[str]:
    table = pq.read_table(root / layout.TASKS_PATH)
    problems = []
    indices = table["task_index"].to_pylist()
    if sorted(indices) != list(range(len(indices))):
        problems.append(f"tasks.parquet task_index is not 0..{len(indices) - 1}: {indices}")
    meta = json.loads((table.schema.metadata or {}).get(b"pandas", b"{}"))
    if meta.get("index_columns") != ["task"]:
        problems.append("tasks.parquet does not mark 'task' as the (pandas) index")
    return problems


def _check_episodes(dataset: LeRobotV3Dataset, info: dict) -> list[str]:
    problems = []
    episodes = sorted(dataset._episodes_meta)
    if episodes != list(range(info["total_episodes"])):
        problems.append(f"episode indices are not 0..{info['total_episodes'] - 1}")
    expected_from = 0
    for episode in episodes:
        meta = dataset._episodes_meta[episode]
        if meta["dataset_from_index"] != expected_from:
            problems.append(
                f"episode {episode}: dataset_from_index {meta['dataset_from_index']}, "
                f"expected {expected_from}"
            )
        if meta["dataset_to_index"] - meta["dataset_from_index"] != meta["length"]:
            problems.append(f"episode {episode}: index range does not match length")
        expected_from = meta["dataset_to_index"]
    if expected_from != info["total_frames"]:
        problems.append(f"episodes hold {expected_from} frames, info says {info['total_frames']}")
    for name, value in info.get("splits", {}).items():
        start, stop = (int(v) for v in value.split(":"))
        if not 0 <= start <= stop <= info["total_episodes"]:
            problems.append(f"split {name!r} = {value!r} is outside the episodes")
    return problems


def _check_frames(dataset: LeRobotV3Dataset) -> list[str]:
    problems = []
    dims = {key: dataset.features[key]["shape"][0] for key in (layout.STATE_KEY, layout.ACTION_KEY)}
    for episode in dataset.episode_indices:
        data = dataset.episode(episode)
        for key, array in ((layout.STATE_KEY, data.states), (layout.ACTION_KEY, data.actions)):
            if array.shape[1] != dims[key]:
                problems.append(f"episode {episode}: {key} has {array.shape[1]} dims")
            if not np.all(np.isfinite(array)):
                problems.append(f"episode {episode}: {key} has non-finite values")
        expected = np.arange(data.length) / dataset.fps
        if not np.allclose(data.timestamps, expected, atol=1e-4):
            problems.append(f"episode {episode}: timestamps are not frame_index / fps")
        if not 0 <= data.task_index < len(dataset.tasks):
            problems.append(f"episode {episode}: task_index {data.task_index} has no task")
    return problems


def _check_videos(dataset: LeRobotV3Dataset, decode_all: bool) -> list[str]:
    problems = []
    for episode in dataset.episode_indices:
        meta = dataset._episodes_meta[episode]
        for key in dataset.image_keys:
            span = meta[f"videos/{key}/to_timestamp"] - meta[f"videos/{key}/from_timestamp"]
            if round(span * dataset.fps) != meta["length"]:
                problems.append(f"episode {episode}: {key} spans {span:.3f} s for {meta['length']}")
            path = dataset.root / dataset.info["video_path"].format(
                video_key=key,
                chunk_index=meta[f"videos/{key}/chunk_index"],
                file_index=meta[f"videos/{key}/file_index"],
            )
            if not path.is_file():
                problems.append(f"episode {episode}: missing video {path}")
                continue
            # always decode the first and last frame; everything with decode_all
            length = meta["length"]
            indices = None if decode_all else sorted({0, length - 1})
            try:
                decode_episode(
                    path,
                    float(meta[f"videos/{key}/from_timestamp"]),
                    length,
                    dataset.fps,
                    frame_indices=indices,
                )
            except VideoDecodeError as exc:
                problems.append(f"episode {episode}: {exc}")
    return problems


def _check_stats(root: Path, info: dict) -> list[str]:
    try:
        stats = json.loads((root / layout.STATS_PATH).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return [f"cannot read {layout.STATS_PATH}: {exc}"]
    problems = []
    for key, feature in info["features"].items():
        if key not in stats:
            problems.append(f"stats.json lacks feature {key!r}")
            continue
        missing = [s for s in STAT_KEYS if s not in stats[key]]
        if missing:
            problems.append(f"stats.json {key!r} lacks {missing}")
            continue
        expected = (3, 1, 1) if feature["dtype"] == "video" else tuple(feature["shape"])
        shape = np.asarray(stats[key]["mean"]).shape
        if shape != expected:
            problems.append(f"stats.json {key!r} mean has shape {shape}, expected {expected}")
    if "rynnvla" not in stats:
        problems.append("stats.json lacks the 'rynnvla' processor block")
    else:
        from rynnvla_policy.core.actions import ActionStatistics

        try:
            ActionStatistics.from_dict(stats["rynnvla"])
        except ValueError as exc:
            problems.append(f"stats.json 'rynnvla' block: {exc}")
    return problems
