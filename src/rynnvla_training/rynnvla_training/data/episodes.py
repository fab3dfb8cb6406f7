"""What the training datasets need from a robot dataset, whatever its storage.

`EpisodeSource` is implemented for LeRobot v3 datasets (`LeRobotEpisodes`, over the converter's
reader); tests and other formats can implement it too.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class EpisodeSource(Protocol):
    """Episodes of one robot dataset: cheap arrays, and video frames decoded on demand."""

    fps: float
    camera_names: tuple[str, ...]

    def __len__(self) -> int: ...

    def length(self, episode: int) -> int:
        """Frames in `episode`."""
        ...

    def task(self, episode: int) -> str:
        """The instruction of `episode`."""
        ...

    def arrays(self, episode: int) -> tuple[np.ndarray, np.ndarray]:
        """(states (N, D), actions (N, D)) float arrays; actions are absolute joint targets."""
        ...

    def frames(self, episode: int, camera: str, indices: np.ndarray | None = None) -> np.ndarray:
        """Frames `indices` (default: all) of one camera, RGB uint8 (n, H, W, 3), decoded in
        one pass over the episode's video."""
        ...


def episode_windows(lengths: list[int], span: int) -> tuple[np.ndarray, np.ndarray]:
    """Start frames of every window of `span` frames that fits inside an episode.

    Returns (episode index (S,), start frame (S,)) over all episodes, episode-major."""
    episodes, starts = [], []
    for episode, length in enumerate(lengths):
        count = max(0, length - span + 1)
        episodes.append(np.full(count, episode, dtype=np.int64))
        starts.append(np.arange(count, dtype=np.int64))
    if not episodes:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(episodes), np.concatenate(starts)
