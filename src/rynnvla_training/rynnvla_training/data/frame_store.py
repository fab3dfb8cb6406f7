"""Model-ready frames: decoded once per episode and camera, preprocessed once, then read by
index.

Decoding video dominates sample loading. `FrameStore` decodes an episode's camera video in one
pass the first time any sample needs it, applies the model core's preprocessing (resize +
crop; the processor's own function, so training and inference see identical pixels) and keeps
the result as uint8 `.npy` files in a cache directory. Every later sample of that episode - in
any DataLoader worker, on any rank of the node, in a resumed run - memory-maps the file and
reads just the frames it needs. Files are written to a temporary name and renamed, so racing
workers and killed runs never leave a torn file.

Without a cache directory each sample decodes its episode once and preprocesses only the frames
it uses (for datasets too large to cache at model resolution).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from rynnvla_policy.core.config import ImageTokenizerConfig
from rynnvla_policy.core.image_tokenizer import preprocess_image
from rynnvla_training.data.episodes import EpisodeSource


def preprocess_to_uint8(frame: np.ndarray, image: ImageTokenizerConfig) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> model-resolution uint8 (h, w, 3), exactly invertible to the
    processor's float pixels by `uint8_to_pixels`."""
    pixels = preprocess_image(frame, image)  # (3, h, w) in [-1, 1]
    return ((pixels + 1.0) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


def uint8_to_pixels(frames: np.ndarray) -> torch.Tensor:
    """(..., h, w, 3) uint8 -> (..., 3, h, w) float32 in [-1, 1] (the processor's scaling)."""
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).float()
    return tensor.movedim(-1, -3).div_(127.5).sub_(1.0)


def cache_key(source_id: str, image: ImageTokenizerConfig) -> str:
    """Directory name tying cached frames to the dataset and the preprocessing settings."""
    settings = json.dumps({"source": source_id, "image": image.to_dict()}, sort_keys=True)
    return hashlib.sha1(settings.encode()).hexdigest()[:16]


class FrameStore:
    def __init__(
        self,
        source: EpisodeSource,
        image: ImageTokenizerConfig,
        cache_dir: Path | None,
        source_id: str,
    ) -> None:
        self.source = source
        self.image = image
        self.root = Path(cache_dir) / cache_key(source_id, image) if cache_dir else None

    def get(self, episode: int, camera: str, indices: np.ndarray) -> np.ndarray:
        """Frames `indices` of one camera: (len(indices), h, w, 3) uint8 at model resolution."""
        if self.root is None:
            raw = self.source.frames(episode, camera, indices)
            return np.stack([preprocess_to_uint8(frame, self.image) for frame in raw])
        path = self.root / camera / f"episode_{episode:06d}.npy"
        if not path.is_file():
            self._write(path, episode, camera)
        return np.array(np.load(path, mmap_mode="r")[indices])

    def _write(self, path: Path, episode: int, camera: str) -> None:
        raw = self.source.frames(episode, camera)
        save_npy_atomic(path, np.stack([preprocess_to_uint8(frame, self.image) for frame in raw]))


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """`np.save` to a temporary name in the same directory, then rename: readers (other
    workers, ranks, a resumed run) see the whole file or none, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.save(file, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
