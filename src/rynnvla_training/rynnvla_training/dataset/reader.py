"""Reader of LeRobotDataset v3.0 directories (ours, or any with the same features).

API::

    from rynnvla_training.dataset import LeRobotV3Dataset

    ds = LeRobotV3Dataset("datasets/pick")                  # every episode
    ds = LeRobotV3Dataset(root, episodes=[0, 3])            # a subset (dataset episode indices)
    ds = LeRobotV3Dataset(root, split="train")              # info.json "splits" ("train", "val")

    ds.fps, ds.cameras ("front", "wrist"), ds.image_keys ("observation.images.front", ...)
    ds.joint_names, ds.tasks (text by task_index), ds.stats (meta/stats.json)
    ds.processor_statistics()   # the "rynnvla" block of stats.json (relative-action stats)
    ds.episode_indices          # selected dataset episode indices, in order
    ds.num_frames, len(ds)      # frames of the selected episodes

    ep = ds.episode(3)          # EpisodeData: whole-episode arrays, no video decoding
    ep.states (N, D) float32, ep.actions (N, D) float32 (absolute joint targets),
    ep.timestamps (N,) float32 s, ep.task (str), ep.task_index, ep.length, ep.index

    frames = ds.episode_frames(3, "front")              # (N, H, W, 3) uint8, decoded once
    frames = ds.episode_frames(3, "front", size=(224, 224), frame_indices=[0, 10, 20])

    item = ds[i]                # one frame (i over the selected episodes' frames) as a dict:
    # "observation.state" (D,) float32, "action" (D,) float32, "timestamp", "frame_index",
    # "episode_index", "index", "task_index" (ints / float), "task" (str) and, unless
    # load_images=False, "observation.images.<camera>" (H, W, 3) uint8. Images come from a
    # cache of the last ``cache_episodes`` decoded episodes: sequential access within an
    # episode decodes its video once, not once per frame (memory: N * H * W * 3 bytes per
    # camera per cached episode; pass image_size=(H, W) to decode smaller frames).

Not thread-safe (share one per DataLoader worker process, as torch does by pickling).
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import layout
from .video import decode_episode


class DatasetError(ValueError):
    """The dataset is missing, malformed or asked for something it does not have."""


@dataclasses.dataclass(frozen=True)
class EpisodeData:
    """One episode's arrays (no images)."""

    index: int  # dataset episode index
    states: np.ndarray  # (N, D) float32
    actions: np.ndarray  # (N, D) float32, absolute joint targets
    timestamps: np.ndarray  # (N,) float32 seconds from the episode start
    task: str
    task_index: int

    @property
    def length(self) -> int:
        return int(self.states.shape[0])


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise DatasetError(f"{path} is missing: not a LeRobot v3.0 dataset") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path} is not valid JSON: {exc}") from exc


def _read_table(paths: Sequence[Path], columns: Sequence[str] | None = None):
    import pyarrow as pa

    if not paths:
        raise DatasetError("no parquet file found")
    try:
        return pa.concat_tables(pq.read_table(p, columns=columns) for p in paths)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DatasetError(f"cannot read {[str(p) for p in paths]}: {exc}") from exc


class LeRobotV3Dataset:
    """A LeRobotDataset v3.0 directory; see the module docstring for the API."""

    def __init__(
        self,
        root: str | Path,
        episodes: Sequence[int] | None = None,
        *,
        split: str | None = None,
        load_images: bool = True,
        image_size: tuple[int, int] | None = None,
        cache_episodes: int = 1,
    ):
        self.root = Path(root)
        self.info = _read_json(self.root / layout.INFO_PATH)
        version = self.info.get("codebase_version")
        if version != layout.CODEBASE_VERSION:
            raise DatasetError(
                f"{self.root}: codebase_version {version!r}, this reader reads "
                f"{layout.CODEBASE_VERSION!r}"
            )
        self.fps = int(self.info["fps"])
        self.features = self.info["features"]
        self.image_keys = tuple(k for k, f in self.features.items() if f["dtype"] == "video")
        self.cameras = tuple(k.removeprefix(layout.IMAGE_KEY_PREFIX) for k in self.image_keys)
        self.joint_names = tuple(self.features[layout.STATE_KEY].get("names") or ())
        self.load_images = load_images
        self.image_size = image_size
        self._episodes_meta = self._load_episode_meta()
        self.tasks = self._load_tasks()
        self.episode_indices = self._select(episodes, split)
        self._arrays = self._load_arrays()
        self._starts = np.cumsum([0] + [self._arrays[e].length for e in self.episode_indices])
        self._cache: collections.OrderedDict = collections.OrderedDict()
        self._cache_size = max(1, cache_episodes)

    # ------------------------------------------------------------------ metadata

    def _load_episode_meta(self) -> dict[int, dict]:
        files = sorted((self.root / layout.EPISODES_DIR).glob("chunk-*/file-*.parquet"))
        if not files:
            raise DatasetError(f"{self.root}: no {layout.EPISODES_DIR}/chunk-*/file-*.parquet")
        names = pq.read_schema(files[0]).names
        keep = [c for c in names if not c.startswith("stats/")]  # per-episode stats: not needed
        table = _read_table(files, keep)
        return {int(row["episode_index"]): row for row in table.to_pylist()}

    def _load_tasks(self) -> list[str]:
        table = _read_table([self.root / layout.TASKS_PATH])
        tasks = dict(zip(table["task_index"].to_pylist(), table["task"].to_pylist(), strict=True))
        return [tasks[i] for i in range(len(tasks))]

    def _select(self, episodes: Sequence[int] | None, split: str | None) -> list[int]:
        available = sorted(self._episodes_meta)
        if split is not None:
            ranges = self.info.get("splits", {})
            if split not in ranges:
                raise DatasetError(f"split {split!r} not in {sorted(ranges)}")
            start, stop = (int(v) for v in ranges[split].split(":"))
            chosen = [e for e in range(start, stop)]
            if episodes is not None:
                chosen = [e for e in episodes if e in set(chosen)]
        else:
            chosen = list(available) if episodes is None else [int(e) for e in episodes]
        missing = [e for e in chosen if e not in self._episodes_meta]
        if missing:
            raise DatasetError(
                f"episodes {missing} not in the dataset (it has {len(available)}: "
                f"{available[0]}..{available[-1]})"
            )
        return chosen

    def _load_arrays(self) -> dict[int, EpisodeData]:
        by_file = collections.defaultdict(list)
        for episode in self.episode_indices:
            meta = self._episodes_meta[episode]
            by_file[(meta["data/chunk_index"], meta["data/file_index"])].append(episode)
        arrays = {}
        columns = [layout.STATE_KEY, layout.ACTION_KEY, "timestamp", "episode_index"]
        columns += ["task_index", "frame_index", "index"]
        for (chunk, file), members in by_file.items():
            path = self.root / self.info["data_path"].format(chunk_index=chunk, file_index=file)
            table = _read_table([path], columns)
            first_index = int(table["index"][0].as_py()) if table.num_rows else 0
            for episode in members:
                arrays[episode] = self._episode_data(
                    episode, self._rows(table, episode, first_index)
                )
        return arrays

    def _rows(self, table, episode: int, first_index: int):
        """An episode's rows: a slice when the file is in index order (always, for ours)."""
        meta = self._episodes_meta[episode]
        start = int(meta["dataset_from_index"]) - first_index
        rows = table.slice(start, int(meta["length"])) if start >= 0 else table.slice(0, 0)
        episodes = rows["episode_index"]
        if rows.num_rows and pc.all(pc.equal(episodes, episode)).as_py():
            return rows
        return table.filter(pc.equal(table["episode_index"], episode))

    def _episode_data(self, episode: int, rows) -> EpisodeData:
        length = int(self._episodes_meta[episode]["length"])
        if rows.num_rows != length:
            raise DatasetError(f"episode {episode}: {rows.num_rows} data rows, metadata {length}")
        order = np.argsort(rows["frame_index"].to_numpy())
        states = _matrix(rows[layout.STATE_KEY])[order]
        actions = _matrix(rows[layout.ACTION_KEY])[order]
        task_index = int(rows["task_index"][0].as_py()) if length else 0
        return EpisodeData(
            index=episode,
            states=states,
            actions=actions,
            timestamps=rows["timestamp"].to_numpy().astype(np.float32)[order],
            task=self.tasks[task_index],
            task_index=task_index,
        )

    # ------------------------------------------------------------------ public

    @property
    def stats(self) -> dict:
        return _read_json(self.root / layout.STATS_PATH)

    def processor_statistics(self) -> dict:
        """The "rynnvla" block of meta/stats.json (load with ActionStatistics.from_dict)."""
        stats = self.stats
        if "rynnvla" not in stats:
            raise DatasetError(f"{self.root / layout.STATS_PATH} has no 'rynnvla' block")
        return stats["rynnvla"]

    @property
    def num_frames(self) -> int:
        return int(self._starts[-1])

    def __len__(self) -> int:
        return self.num_frames

    def episode(self, episode: int) -> EpisodeData:
        if episode not in self._arrays:
            raise DatasetError(f"episode {episode} is not selected ({self.episode_indices})")
        return self._arrays[episode]

    def episode_frames(
        self,
        episode: int,
        camera: str,
        *,
        size: tuple[int, int] | None = None,
        frame_indices: Sequence[int] | None = None,
    ) -> np.ndarray:
        """An episode's frames of ``camera`` ("front" or its feature key): (N, H, W, 3) uint8."""
        key = camera if camera in self.image_keys else layout.image_key(camera)
        if key not in self.image_keys:
            raise DatasetError(f"no camera {camera!r}; cameras: {self.cameras}")
        meta = self._episodes_meta[episode]
        chunk, file = meta[f"videos/{key}/chunk_index"], meta[f"videos/{key}/file_index"]
        path = self.root / self.info["video_path"].format(
            video_key=key, chunk_index=chunk, file_index=file
        )
        indices = None if frame_indices is None else np.asarray(frame_indices)
        return decode_episode(
            path,
            float(meta[f"videos/{key}/from_timestamp"]),
            int(meta["length"]),
            self.fps,
            size=size,
            frame_indices=indices,
        )

    def locate(self, index: int) -> tuple[int, int]:
        """Position ``index`` over the selected frames -> (episode index, frame index)."""
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame {index} out of range [0, {self.num_frames})")
        slot = bisect.bisect_right(self._starts, index) - 1
        return self.episode_indices[slot], index - int(self._starts[slot])

    def __getitem__(self, index: int) -> dict:
        episode, frame = self.locate(int(index))
        data = self._arrays[episode]
        meta = self._episodes_meta[episode]
        item = {
            layout.STATE_KEY: data.states[frame],
            layout.ACTION_KEY: data.actions[frame],
            "timestamp": float(data.timestamps[frame]),
            "frame_index": frame,
            "episode_index": episode,
            "index": int(meta["dataset_from_index"]) + frame,
            "task_index": data.task_index,
            "task": data.task,
        }
        if self.load_images:
            for key, frames in zip(self.image_keys, self._cached_frames(episode), strict=True):
                item[key] = frames[frame]
        return item

    def _cached_frames(self, episode: int) -> list[np.ndarray]:
        if episode in self._cache:
            self._cache.move_to_end(episode)
            return self._cache[episode]
        frames = [self.episode_frames(episode, k, size=self.image_size) for k in self.image_keys]
        self._cache[episode] = frames
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return frames

    def __repr__(self) -> str:
        return (
            f"LeRobotV3Dataset({str(self.root)!r}, episodes={len(self.episode_indices)}, "
            f"frames={self.num_frames}, fps={self.fps}, cameras={self.cameras})"
        )


def _matrix(column) -> np.ndarray:
    """A fixed/variable-size list column -> (N, D) float32."""
    values = column.combine_chunks()
    width = values.type.list_size if hasattr(values.type, "list_size") else None
    flat = values.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    if width is None:
        width = flat.size // max(1, len(values))
    return flat.reshape(len(values), width)
