"""ActionVAE samples: one normalised relative action chunk per frame of every episode."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset

from rynnvla_policy.core.actions import (
    ActionNormalizer,
    RelativeActionTransform,
    build_relative_chunks,
)
from rynnvla_training.data.sampling import SampleKey


class ActionChunkDataset(Dataset):
    """`dataset[key]` -> {"actions" (T, D) float32, "mask" (T,) bool}.

    Every frame of every episode starts one chunk (exactly as the statistics were computed);
    chunks running past the episode end hold the last action and are masked there.
    """

    def __init__(
        self,
        episodes: list[tuple[np.ndarray, np.ndarray]],  # (states (N, D), actions (N, D))
        chunk_length: int,
        transform: RelativeActionTransform,
        normalizer: ActionNormalizer,
    ) -> None:
        if not episodes:
            raise ValueError("ActionChunkDataset got no episodes")
        self.episodes = [
            (np.asarray(s, np.float64), np.asarray(a, np.float64)) for s, a in episodes
        ]
        self.chunk_length = chunk_length
        self.transform = transform
        self.normalizer = normalizer
        lengths = [len(states) for states, _ in self.episodes]
        self.episode_of = np.repeat(np.arange(len(lengths)), lengths)
        self.frame_of = np.concatenate([np.arange(n) for n in lengths])

    def __len__(self) -> int:
        return len(self.episode_of)

    def __getitem__(self, key: SampleKey) -> dict[str, Any]:
        states, actions = self.episodes[int(self.episode_of[key.index])]
        start = np.array([self.frame_of[key.index]])
        chunks, valid = build_relative_chunks(
            states, actions, self.chunk_length, self.transform, start
        )  # (1, T, D), (1, T)
        return {
            "actions": self.normalizer.normalize_actions(chunks[0]).astype(np.float32),
            "mask": valid[0],
        }


def trajectory_as_episode(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A position trajectory (N, D) (e.g. human wrist keypoints) in the robot convention:
    the "state" at t is the position at t, the "action" (target) at t the position at t + 1.
    Relative chunks then hold per-step displacements. Returns (N - 1, D) pairs."""
    positions = np.asarray(positions, np.float64)
    if positions.ndim != 2 or positions.shape[0] < 2:
        raise ValueError(f"a trajectory needs shape (N >= 2, D), got {positions.shape}")
    return positions[:-1], positions[1:]
