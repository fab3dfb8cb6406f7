"""Samples of stages 1-3: a window of K frames of one episode or clip, every camera per frame.

With actions (stages 2-3, reference section 8) each frame also carries the normalised state and
the normalised relative action chunk that starts there (robot joints, or human wrist keypoints
in the robot convention: state = position, action = next position). Stage 1 has frames only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from rynnvla_policy.core.actions import (
    ActionNormalizer,
    RelativeActionTransform,
    build_relative_chunks,
)
from rynnvla_training.data.augment import ColorJitterConfig, JitterDraw
from rynnvla_training.data.code_store import CodeStore
from rynnvla_training.data.episodes import EpisodeSource, episode_windows
from rynnvla_training.data.frame_store import FrameStore, uint8_to_pixels
from rynnvla_training.data.sampling import SampleKey


@dataclass(frozen=True)
class WindowSpec:
    frames: int  # K frames per sample
    stride: int  # frames between consecutive sample frames
    chunk_length: int  # T steps per action chunk
    cameras: tuple[str, ...]

    @property
    def span(self) -> int:
        return (self.frames - 1) * self.stride + 1

    def offsets(self) -> np.ndarray:
        return np.arange(self.frames) * self.stride


class WindowDataset(Dataset):
    """`dataset[key]` -> {"pixels" (K, C, 3, h, w), "instruction_ids" list[int]} for one window
    of one episode, plus "states" (K, D), "chunks" (K, T, D) and "chunk_mask" (K, T) when a
    normaliser and transform are given. With a `CodeStore` (no colour jitter) the frames come
    as their VQ codes, "codes" (K, C, gh, gw) int64, instead of "pixels"."""

    def __init__(
        self,
        source: EpisodeSource,
        frames: FrameStore,
        window: WindowSpec,
        instruction_ids: dict[str, list[int]],
        jitter: ColorJitterConfig,
        normalizer: ActionNormalizer | None = None,
        transform: RelativeActionTransform | None = None,
        codes: CodeStore | None = None,
    ) -> None:
        if codes is not None and jitter.enabled:
            raise ValueError(
                "cached VQ codes need colour jitter off: jittered pixels encode to other codes"
            )
        missing = [c for c in window.cameras if c not in source.camera_names]
        if missing:
            raise ValueError(f"cameras {missing} not in the dataset's {list(source.camera_names)}")
        self.frames = frames
        self.codes = codes
        self.window = window
        self.normalizer = normalizer
        self.transform = transform
        self.jitter = jitter
        self.arrays = [source.arrays(e) for e in range(len(source))]  # small: (N, D) pairs
        self.tasks = [source.task(e) for e in range(len(source))]
        unknown = sorted(set(self.tasks) - set(instruction_ids))
        if unknown:
            raise ValueError(f"no instruction ids for tasks {unknown}")
        self.instruction_ids = instruction_ids
        lengths = [len(states) for states, _ in self.arrays]
        self.episodes, self.starts = episode_windows(lengths, window.span)
        if len(self.episodes) == 0:
            raise ValueError(
                f"no episode has the {window.span} frames a sample spans "
                f"(frames={window.frames}, stride={window.stride}); lengths {lengths[:10]}"
            )

    def __len__(self) -> int:
        return len(self.episodes)

    def __getitem__(self, key: SampleKey) -> dict[str, Any]:
        episode, start = int(self.episodes[key.index]), int(self.starts[key.index])
        frame_ids = start + self.window.offsets()  # (K,)
        sample: dict[str, Any] = {"instruction_ids": self.instruction_ids[self.tasks[episode]]}
        if self.codes is not None:
            codes = [self.codes.get(episode, camera, frame_ids) for camera in self.window.cameras]
            sample["codes"] = torch.from_numpy(np.stack(codes, axis=1).astype(np.int64))
        else:
            sample["pixels"] = self._pixels(episode, frame_ids, key)
        if self.normalizer is None or self.transform is None:
            return sample
        states, actions = self.arrays[episode]
        chunks, valid = build_relative_chunks(
            states, actions, self.window.chunk_length, self.transform, frame_ids
        )  # (K, T, D), (K, T)
        sample["states"] = self.normalizer.normalize_state(states[frame_ids]).astype(np.float32)
        sample["chunks"] = self.normalizer.normalize_actions(chunks).astype(np.float32)
        sample["chunk_mask"] = valid
        return sample

    def _pixels(self, episode: int, frame_ids: np.ndarray, key: SampleKey) -> torch.Tensor:
        pixels = np.stack(
            [self.frames.get(episode, camera, frame_ids) for camera in self.window.cameras],
            axis=1,
        )  # (K, C, h, w, 3) uint8
        pixels = uint8_to_pixels(pixels)  # (K, C, 3, h, w)
        if self.jitter.enabled:
            pixels = JitterDraw.sample(self.jitter, key.rng()).apply(pixels)
        return pixels
