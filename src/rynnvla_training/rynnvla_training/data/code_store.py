"""VQ codes of every frame, computed once with the frozen image tokenizer.

The image tokenizer is frozen in stages 1-3, so without colour jitter a frame's codes never
change during training. Encoding them once per run, instead of once per sample, removes the
tokenizer from the training step (on the tiny CPU preset it was about a fifth of each step).
Codes are cached next to the preprocessed frames, under a fingerprint of the tokenizer's
weights, so a resumed run or a second run with the same tokenizer reads them back and a
different tokenizer can never read stale codes. Files are written to a temporary name and
renamed (`save_npy_atomic`, shared with `FrameStore`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rynnvla_policy.core.image_tokenizer import ImageTokenizer
from rynnvla_training.data.frame_store import FrameStore, save_npy_atomic, uint8_to_pixels

ENCODE_BATCH = 256  # frames per tokenizer call while filling the cache


def tokenizer_fingerprint(tokenizer: ImageTokenizer) -> str:
    """Hash of the tokenizer's config and every weight: equal only for identical encoders."""
    digest = hashlib.sha1(repr(tokenizer.config.to_dict()).encode())
    for name, tensor in sorted(tokenizer.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class CodeStore:
    """`get(episode, camera, indices)` -> (n, gh, gw) int16 VQ codes of those frames."""

    def __init__(self, frames: FrameStore, tokenizer: ImageTokenizer) -> None:
        if frames.root is None:
            raise ValueError("CodeStore needs a FrameStore with a cache directory")
        self.frames = frames
        self.root = frames.root / f"codes-{tokenizer_fingerprint(tokenizer)}"
        # The tokenizer stays out of the pickled store: DataLoader workers only read files.
        self._tokenizer: ImageTokenizer | None = tokenizer

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_tokenizer"] = None
        return state

    def path(self, episode: int, camera: str) -> Path:
        return self.root / camera / f"episode_{episode:06d}.npy"

    def fill(self, cameras: tuple[str, ...], label: str = "encoding frames") -> None:
        """Encode every (episode, camera) whose codes are not cached yet, with a progress bar."""
        todo = [
            (episode, camera)
            for episode in range(len(self.frames.source))
            for camera in cameras
            if not self.path(episode, camera).is_file()
        ]
        for episode, camera in tqdm(todo, desc=label, unit="video", disable=not todo):
            self._write(episode, camera)

    def get(self, episode: int, camera: str, indices: np.ndarray) -> np.ndarray:
        path = self.path(episode, camera)
        if not path.is_file():
            if self._tokenizer is None:
                raise FileNotFoundError(
                    f"no cached codes at {path}: call CodeStore.fill() before handing the "
                    "store to DataLoader workers"
                )
            self._write(episode, camera)
        return np.array(np.load(path, mmap_mode="r")[indices])

    @torch.no_grad()
    def _write(self, episode: int, camera: str) -> None:
        tokenizer = self._tokenizer
        if tokenizer is None:
            raise RuntimeError("this CodeStore copy has no tokenizer (a DataLoader worker)")
        length = self.frames.source.length(episode)
        device = next(tokenizer.parameters()).device
        codes = []
        for start in range(0, length, ENCODE_BATCH):
            ids = np.arange(start, min(start + ENCODE_BATCH, length))
            pixels = uint8_to_pixels(self.frames.get(episode, camera, ids))  # (n, 3, h, w)
            # fp32 whatever the training precision: the policy encodes in fp32 at inference
            with torch.autocast(device.type, enabled=False):
                codes.append(tokenizer.encode(pixels.to(device)).cpu())  # (n, gh, gw)
        save_npy_atomic(self.path(episode, camera), torch.cat(codes).numpy().astype(np.int16))
