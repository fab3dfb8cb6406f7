"""The processor: one serialisable pipeline between raw robot arrays and the model.

Raw side: RGB uint8 (H, W, 3) images of any size per camera, the raw joint state (D,), an
instruction string. Model side: pixel tensors, normalised state, token ids and image blocks.
Back: a normalised relative chunk (T, D) -> absolute joint targets (T, D) float64.

Saved as ``processor.json`` next to the weights (with the text tokenizer as ``tokenizer.json``);
the statistics come only from there. A missing field, a statistics vector of the wrong size or a
token layout that disagrees with the model is an error when the checkpoint is loaded.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .actions import ActionNormalizer, ActionStatistics, RelativeActionTransform
from .config import ImageTokenizerConfig, ProcessorConfig, TokenLayout
from .image_tokenizer import check_image, cropped_shape, preprocess_image
from .sequence import FrameBlocks, image_block
from .text_tokenizer import TextTokenizer

PROCESSOR_NAME = "processor.json"
TOKENIZER_NAME = "tokenizer.json"
PROCESSOR_FORMAT = "rynnvla_processor/1"


class ProcessorError(ValueError):
    """An observation or a saved processor does not match the checkpoint's features."""


class RynnVLAProcessor:
    """Raw arrays <-> model inputs/outputs for one checkpoint."""

    def __init__(
        self,
        config: ProcessorConfig,
        image: ImageTokenizerConfig,
        tokens: TokenLayout,
        statistics: ActionStatistics,
        text_tokenizer: TextTokenizer,
    ) -> None:
        self.config = config
        self.image = image
        self.tokens = tokens
        self.statistics = statistics
        self.text_tokenizer = text_tokenizer
        self._check_statistics()
        self.normalizer = ActionNormalizer(statistics, mode=config.normalization)
        self.transform = RelativeActionTransform(absolute_dims=config.absolute_dims)
        self._encode_instruction = lru_cache(maxsize=64)(self._encode_uncached)

    def _check_statistics(self) -> None:
        stats, cfg = self.statistics, self.config
        if stats.state_dim != cfg.state_dim:
            raise ProcessorError(
                f"statistics state dim {stats.state_dim} != {cfg.state_dim} joints "
                f"{list(cfg.joint_names)}"
            )
        if stats.action_dim != cfg.action_dim:
            raise ProcessorError(
                f"statistics action dim {stats.action_dim} != {cfg.action_dim} joints "
                f"{list(cfg.joint_names)}"
            )
        if self.tokens.codebook_size != self.image.codebook_size:
            raise ProcessorError(
                f"token layout codebook {self.tokens.codebook_size} != image tokenizer "
                f"codebook {self.image.codebook_size}"
            )

    # ---- raw -> model ---------------------------------------------------------------------
    def check_observation(self, images: dict[str, np.ndarray], state: np.ndarray) -> None:
        """Every configured camera present as RGB uint8 and a finite state of the right size;
        extra cameras are ignored (the contract names the ones used)."""
        missing = [c for c in self.config.camera_names if c not in images]
        if missing:
            raise ProcessorError(
                f"observation lacks camera(s) {missing}; expected {list(self.config.camera_names)}"
                f", got {sorted(images)}"
            )
        for camera in self.config.camera_names:
            try:
                check_image(images[camera])
            except ValueError as err:
                raise ProcessorError(f"camera {camera!r}: {err}") from err
        state = np.asarray(state)
        if state.shape != (self.config.state_dim,):
            raise ProcessorError(
                f"state must have shape ({self.config.state_dim},) for joints "
                f"{list(self.config.joint_names)}, got {state.shape}"
            )
        if not np.all(np.isfinite(state)):
            raise ProcessorError(f"state has non-finite values: {state.tolist()}")

    def preprocess_images(self, images: dict[str, np.ndarray]) -> list[torch.Tensor]:
        """Pixel tensors (3, h, w) in [-1, 1], in camera order."""
        return [self.preprocess_camera(c, images[c]) for c in self.config.camera_names]

    def preprocess_camera(self, camera: str, image: np.ndarray) -> torch.Tensor:
        """One camera's RGB uint8 (H, W, 3) -> pixels (3, h, w) in [-1, 1]."""
        try:
            return preprocess_image(image, self.image)
        except ValueError as err:
            raise ProcessorError(f"camera {camera!r}: {err}") from err

    def grid_shape(self, height: int, width: int) -> tuple[int, int]:
        """VQ code grid of a raw (height, width) image."""
        h, w = cropped_shape(height, width, self.image)
        return h // self.image.downsample, w // self.image.downsample

    def _encode_uncached(self, text: str) -> tuple[int, ...]:
        return tuple(self.text_tokenizer.encode(text))

    def encode_instruction(self, text: str) -> list[int]:
        """``[BOS] + BPE(text)`` (memoised: instructions repeat every step)."""
        return list(self._encode_instruction(text))

    def normalize_state(self, state: np.ndarray) -> np.ndarray:
        """Raw joint state (D,) or (N, D) -> z-scored float32."""
        return np.asarray(
            self.normalizer.normalize_state(np.asarray(state, np.float64)), dtype=np.float32
        )

    def frame_blocks(self, codes: list[torch.Tensor]) -> list[list[int]]:
        """One image block per camera from its code grid (grid_h, grid_w)."""
        if len(codes) != len(self.config.camera_names):
            raise ProcessorError(
                f"got {len(codes)} code grids for cameras {list(self.config.camera_names)}"
            )
        return [
            self.camera_block(camera, grid)
            for camera, grid in zip(self.config.camera_names, codes, strict=True)
        ]

    def camera_block(self, camera: str, codes: torch.Tensor) -> list[int]:
        """The image block of one camera's code grid (grid_h, grid_w); the wrist cameras'
        blocks are wrapped by WRIST_START/WRIST_END."""
        if camera not in self.config.camera_names:
            raise ProcessorError(
                f"unknown camera {camera!r}; expected one of {list(self.config.camera_names)}"
            )
        return image_block(
            codes,
            self.tokens,
            downsample=self.image.downsample,
            crop_multiple=self.image.crop_multiple,
            is_wrist=camera in self.config.wrist_cameras,
            code_ids=self.text_tokenizer.image_code_ids,
        )

    # ---- actions ---------------------------------------------------------------------------
    def normalize_chunk(self, actions: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Absolute action chunk (T, D) + raw state (D,) -> normalised relative chunk (T, D)."""
        relative = self.transform.to_relative(
            np.asarray(actions, np.float64), np.asarray(state, np.float64)
        )
        return self.normalizer.normalize_actions(relative)

    def to_absolute(self, normalized_chunk: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Model output (T, D) + raw state (D,) -> absolute joint targets (T, D) float64."""
        chunk = np.asarray(normalized_chunk, np.float64)
        expected = (self.config.chunk_length, self.config.action_dim)
        if chunk.shape != expected:
            raise ProcessorError(f"decoded chunk has shape {chunk.shape}, expected {expected}")
        relative = self.normalizer.unnormalize_actions(chunk)
        return np.asarray(self.transform.to_absolute(relative, np.asarray(state, np.float64)))

    # ---- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PROCESSOR_FORMAT,
            "features": self.config.to_dict(),
            "image": self.image.to_dict(),
            "tokens": self.tokens.to_dict(),
            "statistics": self.statistics.to_dict(),
        }

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / PROCESSOR_NAME).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        self.text_tokenizer.save(directory / TOKENIZER_NAME)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> RynnVLAProcessor:
        directory = Path(directory)
        path = directory / PROCESSOR_NAME
        if not path.is_file():
            raise ProcessorError(f"processor file not found: {path}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ProcessorError(f"{path} is not valid JSON: {err}") from err
        missing = [k for k in ("features", "image", "tokens", "statistics") if k not in data]
        if missing:
            raise ProcessorError(f"{path} lacks section(s) {missing}")
        if data.get("format") != PROCESSOR_FORMAT:
            raise ProcessorError(
                f"{path}: format {data.get('format')!r}, expected {PROCESSOR_FORMAT!r}"
            )
        try:
            tokens = TokenLayout.from_dict(data["tokens"])
            processor_config = ProcessorConfig.from_dict(data["features"])
            image = ImageTokenizerConfig.from_dict(data["image"])
            statistics = ActionStatistics.from_dict(data["statistics"])
        except (ValueError, TypeError) as err:
            raise ProcessorError(f"{path}: {err}") from err
        text_tokenizer = TextTokenizer.from_file(directory / TOKENIZER_NAME, tokens)
        return cls(processor_config, image, tokens, statistics, text_tokenizer)


__all__ = ["FrameBlocks", "ProcessorError", "RynnVLAProcessor"]
