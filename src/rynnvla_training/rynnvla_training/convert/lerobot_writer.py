"""Assemble converted episode segments into a LeRobotDataset v3.0 directory.

Input: the segments (``frames.npz`` + one MP4 per camera each) in final episode order. Output:
the v3.0 layout (see ``rynnvla_training.dataset.layout``): episodes packed back to back into
data parquet files and per-camera video files (packets copied, never re-encoded), tasks,
per-episode metadata with per-episode statistics, dataset statistics plus our ``rynnvla``
processor block, and info.json.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from rynnvla_training.dataset import layout

from .config import ConvertConfig
from .episode import SegmentResult
from .stats import ImageHistogram, to_json, vector_stats
from .video import VideoError, concatenate, probe

MB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class EpisodeInput:
    """One episode to write: its segment directory, the worker's result, its split."""

    directory: Path
    segment: SegmentResult
    split: str  # "train" or "val"
    source: str  # bag path (provenance)


def _load_frames(episode: EpisodeInput) -> dict[str, np.ndarray]:
    with np.load(episode.directory / "frames.npz") as data:
        return {key: data[key] for key in data.files}


def _fixed_list(values: np.ndarray) -> pa.Array:
    """(N, D) float32 -> arrow fixed_size_list<float32>[D] (LeRobot's Sequence(length=D))."""
    flat = pa.array(values.reshape(-1), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])


def _episode_table(frames: dict, episode_index: int, first_index: int, task_index: int, fps: int):
    length = frames["state"].shape[0]
    frame_index = np.arange(length, dtype=np.int64)
    return pa.table(
        {
            layout.STATE_KEY: _fixed_list(frames["state"]),
            layout.ACTION_KEY: _fixed_list(frames["action"]),
            "timestamp": pa.array((frame_index / fps).astype(np.float32)),
            "frame_index": pa.array(frame_index),
            "episode_index": pa.array(np.full(length, episode_index, np.int64)),
            "index": pa.array(first_index + frame_index),
            "task_index": pa.array(np.full(length, task_index, np.int64)),
        }
    )


class _RollingParquet:
    """Appends tables to chunk-XXX/file-YYY.parquet, starting a new file past a size limit."""

    def __init__(self, root: Path, template: str, limit_mb: float):
        self.root, self.template, self.limit = root, template, limit_mb * MB
        self.number, self.bytes, self.writer = 0, 0, None

    def location(self, table: pa.Table) -> tuple[int, int]:
        if self.writer is not None and self.bytes + table.nbytes > self.limit:
            self.close()
            self.number += 1
        chunk, file = layout.chunk_and_file(self.number)
        if self.writer is None:
            path = self.root / self.template.format(chunk_index=chunk, file_index=file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(path, table.schema)
            self.bytes = 0
        self.writer.write_table(table)
        self.bytes += table.nbytes
        return chunk, file

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _write_data(root: Path, episodes, task_index, fps) -> Iterator[tuple[dict, dict]]:
    """Writes data parquet files; yields (episode row, frames) per episode."""
    data = _RollingParquet(root, layout.DATA_PATH, layout.DATA_FILES_SIZE_IN_MB)
    first = 0
    try:
        for number, episode in enumerate(episodes):
            frames = _load_frames(episode)
            table = _episode_table(frames, number, first, task_index[episode.segment.task], fps)
            chunk, file = data.location(table)
            length = table.num_rows
            row = {
                "episode_index": number,
                "tasks": [episode.segment.task],
                "length": length,
                "data/chunk_index": chunk,
                "data/file_index": file,
                "dataset_from_index": first,
                "dataset_to_index": first + length,
            }
            first += length
            yield row, frames
    finally:
        data.close()


def _write_videos(root: Path, camera: str, episodes, rows: list[dict], fps: int) -> dict:
    """Concatenates one camera's episode videos into files of at most the size limit."""
    key = layout.image_key(camera)
    groups: list[list[int]] = [[]]
    size = 0
    for number, episode in enumerate(episodes):
        part = episode.directory / f"{camera}.mp4"
        part_size = part.stat().st_size
        if groups[-1] and size + part_size > layout.VIDEO_FILES_SIZE_IN_MB * MB:
            groups.append([])
            size = 0
        groups[-1].append(number)
        size += part_size
    for file_number, members in enumerate(groups):
        chunk, file = layout.chunk_and_file(file_number)
        path = root / layout.VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
        path.parent.mkdir(parents=True, exist_ok=True)
        parts = [episodes[n].directory / f"{camera}.mp4" for n in members]
        starts = concatenate(parts, path, fps)
        for number, start in zip(members, starts, strict=True):
            length = rows[number]["length"]
            rows[number].update(
                {
                    f"videos/{key}/chunk_index": chunk,
                    f"videos/{key}/file_index": file,
                    f"videos/{key}/from_timestamp": start / fps,
                    f"videos/{key}/to_timestamp": (start + length) / fps,
                }
            )
    info = probe(root / layout.VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0))
    return info.feature_info()


def _check_video_lengths(episodes: Sequence[EpisodeInput], cameras) -> None:
    for episode in episodes:
        for camera in cameras:
            frames = probe(episode.directory / f"{camera}.mp4").frames
            if frames != episode.segment.length:
                raise VideoError(
                    f"{episode.directory / camera}.mp4 has {frames} frames, the episode "
                    f"{episode.segment.length}"
                )


def _features(config: ConvertConfig, sizes: dict, video_infos: dict) -> dict:
    joints = list(config.state.joint_names)
    features = {}
    for camera in config.cameras:
        height, width = sizes[camera]
        features[layout.image_key(camera)] = {
            "dtype": "video",
            "shape": [height, width, 3],
            "names": ["height", "width", "channels"],
            "info": video_infos[camera],
        }
    features[layout.STATE_KEY] = {"dtype": "float32", "shape": [len(joints)], "names": joints}
    features[layout.ACTION_KEY] = {"dtype": "float32", "shape": [len(joints)], "names": joints}
    features.update(json.loads(json.dumps(layout.DEFAULT_FEATURES)))
    return features


def _frame_stats(columns: dict[str, list[np.ndarray]]) -> dict:
    return {name: vector_stats(np.concatenate(parts)) for name, parts in columns.items()}


def _episode_stat_columns(row: dict, frames: dict, number: int, segment, fps: int) -> None:
    length = frames["state"].shape[0]
    frame_index = np.arange(length)
    per_feature = {
        layout.STATE_KEY: vector_stats(frames["state"]),
        layout.ACTION_KEY: vector_stats(frames["action"]),
        "timestamp": vector_stats(frame_index / fps),
        "frame_index": vector_stats(frame_index),
        "episode_index": vector_stats(np.full(length, number)),
        "index": vector_stats(row["dataset_from_index"] + frame_index),
        "task_index": vector_stats(np.full(length, row["_task_index"])),
    }
    for camera, data in segment.image_stats.items():
        per_feature[layout.image_key(camera)] = ImageHistogram.from_dict(data).feature_stats()
    for feature, stats in per_feature.items():
        for key, value in stats.items():
            row[f"stats/{feature}/{key}"] = np.asarray(value).tolist()


def _write_tasks(root: Path, tasks: list[str]) -> None:
    table = pa.table(
        {"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks)}
    )
    table = table.replace_schema_metadata({b"pandas": layout.tasks_pandas_metadata()})
    path = root / layout.TASKS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def _rynnvla_block(train_arrays: list[tuple[np.ndarray, np.ndarray]], config) -> dict:
    from rynnvla_policy.core.actions import compute_statistics

    stats = compute_statistics(
        train_arrays,
        config.statistics.chunk_length,
        config.statistics.absolute_dims,
        progress=False,
    )
    return {
        **stats.to_dict(),
        "chunk_length": config.statistics.chunk_length,
        "absolute_dims": list(config.statistics.absolute_dims),
        "computed_on": "train",
    }


def write_dataset(
    root: Path, episodes: Sequence[EpisodeInput], config: ConvertConfig, *, progress=True
) -> dict:
    """Writes the dataset under ``root`` (which must not exist); returns info.json's dict.

    ``episodes`` come in final order, train episodes first (``info.splits`` are ranges).
    """
    if not episodes:
        raise ValueError("no episode to write")
    root.mkdir(parents=True)
    fps = config.fps
    sizes = {c: tuple(episodes[0].segment.image_sizes[c]) for c in config.cameras}
    _check_video_lengths(episodes, config.cameras)
    tasks = list(dict.fromkeys(e.segment.task for e in episodes))
    task_index = {task: i for i, task in enumerate(tasks)}

    rows: list[dict] = []
    columns: dict[str, list[np.ndarray]] = {name: [] for name in _STAT_COLUMNS}
    train_arrays = []
    bar = tqdm(total=len(episodes), desc="writing data", unit="episode", disable=not progress)
    written = _write_data(root, episodes, task_index, fps)
    for (row, frames), episode in zip(written, episodes, strict=True):
        row["_task_index"] = task_index[episode.segment.task]
        _collect_columns(columns, row, frames, fps)
        _episode_stat_columns(row, frames, row["episode_index"], episode.segment, fps)
        if episode.split == "train":
            train_arrays.append((frames["state"], frames["action"]))
        rows.append(row)
        bar.update()
    bar.close()

    video_infos = {}
    for camera in tqdm(config.cameras, desc="joining videos", disable=not progress):
        video_infos[camera] = _write_videos(root, camera, episodes, rows, fps)

    for row in rows:
        row.pop("_task_index")
        # one metadata file holds every episode (about 10 kB per episode: far below the limit)
        row["meta/episodes/chunk_index"], row["meta/episodes/file_index"] = 0, 0
    episodes_path = root / layout.EPISODES_PATH.format(chunk_index=0, file_index=0)
    episodes_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), episodes_path)
    _write_tasks(root, tasks)

    stats = _frame_stats(columns)
    for camera in config.cameras:
        merged = ImageHistogram()
        for episode in episodes:
            merged.merge(ImageHistogram.from_dict(episode.segment.image_stats[camera]))
        stats[layout.image_key(camera)] = merged.feature_stats()
    stats_json = to_json(stats)
    if not train_arrays:
        raise ValueError("no training episode to compute the processor statistics on")
    stats_json["rynnvla"] = _rynnvla_block(train_arrays, config)
    _write_json(root / layout.STATS_PATH, stats_json)

    info = _info(config, episodes, rows, tasks, sizes, video_infos)
    _write_json(root / layout.INFO_PATH, info)
    return info


_STAT_COLUMNS = (
    layout.STATE_KEY,
    layout.ACTION_KEY,
    "timestamp",
    "frame_index",
    "episode_index",
    "index",
    "task_index",
)


def _collect_columns(columns: dict, row: dict, frames: dict, fps: int) -> None:
    length = row["length"]
    frame_index = np.arange(length, dtype=np.int64)
    columns[layout.STATE_KEY].append(frames["state"])
    columns[layout.ACTION_KEY].append(frames["action"])
    columns["timestamp"].append((frame_index / fps).astype(np.float32))
    columns["frame_index"].append(frame_index)
    columns["episode_index"].append(np.full(length, row["episode_index"]))
    columns["index"].append(row["dataset_from_index"] + frame_index)
    columns["task_index"].append(np.full(length, row["_task_index"]))


def _info(config, episodes, rows, tasks, sizes, video_infos) -> dict:
    train = sum(1 for e in episodes if e.split == "train")
    splits = {"train": f"0:{train}"}
    if train < len(episodes):
        splits["val"] = f"{train}:{len(episodes)}"
    return {
        "codebase_version": layout.CODEBASE_VERSION,
        "robot_type": config.robot_type,
        "total_episodes": len(episodes),
        "total_frames": int(sum(row["length"] for row in rows)),
        "total_tasks": len(tasks),
        "chunks_size": layout.CHUNKS_SIZE,
        "data_files_size_in_mb": layout.DATA_FILES_SIZE_IN_MB,
        "video_files_size_in_mb": layout.VIDEO_FILES_SIZE_IN_MB,
        "fps": config.fps,
        "splits": splits,
        "data_path": layout.DATA_PATH,
        "video_path": layout.VIDEO_PATH,
        "features": _features(config, sizes, video_infos),
    }


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
