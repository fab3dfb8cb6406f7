"""LeRobot v3 datasets (written by `rynnvla-convert`) as training episode sources."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from rynnvla_policy.core.actions import ActionStatistics, compute_statistics
from rynnvla_training.dataset import LeRobotV3Dataset


class LeRobotEpisodes:
    """`EpisodeSource` over one `LeRobotV3Dataset`; episodes are numbered 0..n-1 in the order
    of the dataset's selected episode indices."""

    def __init__(self, root: str | Path, split: str | None = None) -> None:
        self.dataset = LeRobotV3Dataset(root, split=split, load_images=False)
        self.root = Path(root)
        self.fps = float(self.dataset.fps)
        self.camera_names = tuple(self.dataset.cameras)
        self.joint_names = tuple(self.dataset.joint_names)
        self._ids = list(self.dataset.episode_indices)

    def __len__(self) -> int:
        return len(self._ids)

    def _episode(self, episode: int):
        return self.dataset.episode(self._ids[episode])

    def length(self, episode: int) -> int:
        return self._episode(episode).length

    def task(self, episode: int) -> str:
        return self._episode(episode).task

    def arrays(self, episode: int) -> tuple[np.ndarray, np.ndarray]:
        data = self._episode(episode)
        return data.states, data.actions

    def frames(self, episode: int, camera: str, indices: np.ndarray | None = None) -> np.ndarray:
        return self.dataset.episode_frames(self._ids[episode], camera, frame_indices=indices)

    @property
    def source_id(self) -> str:
        """Identity of the dataset content for frame caches: root path + its metadata."""
        digest = hashlib.sha1(str(self.root.resolve()).encode())
        for name in ("meta/info.json", "meta/stats.json"):
            path = self.root / name
            if path.is_file():
                digest.update(path.read_bytes())
        digest.update(repr(self._ids).encode())
        return digest.hexdigest()

    def statistics(
        self, chunk_length: int, absolute_dims: tuple[int, ...], recompute: bool = False
    ) -> ActionStatistics:
        """The dataset's `rynnvla` statistics block when it was computed with the same chunk
        length and absolute dims; otherwise (or when asked) computed from the episodes."""
        if not recompute:
            block = self.dataset.stats.get("rynnvla")
            if block is not None and _same_chunking(block, chunk_length, absolute_dims):
                return ActionStatistics.from_dict(block)
        episodes = (self.arrays(e) for e in range(len(self)))
        return compute_statistics(episodes, chunk_length, absolute_dims, progress=False)


def _same_chunking(block: dict, chunk_length: int, absolute_dims: tuple[int, ...]) -> bool:
    """A block is reused only when it records the same chunking (else it is recomputed)."""
    if "chunk_length" not in block or "absolute_dims" not in block:
        return False
    recorded_dims = tuple(int(d) for d in block["absolute_dims"])
    return int(block["chunk_length"]) == chunk_length and recorded_dims == tuple(absolute_dims)
