"""Training batches for the three stages: raw samples -> ``RynnVLAModel.forward`` inputs.

Uses the same processor as inference (one preprocessing path), the frozen image tokenizer and
the frozen ActionVAE (its encoder output ``[mu || logvar]`` is the action-head target).

- stage 1 (``VideoSample``): instruction + F ego-centric frames, frame prediction only.
- stage 2 (``TrajectorySample``): frames + normalised human wrist-keypoint state per frame +
  normalised future trajectory chunks encoded by the human ActionVAE.
- stage 3 (``RobotSample``): K frames of all cameras, raw joint states, absolute action chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .action_vae import ActionVAE
from .config import RynnVLAConfig
from .image_tokenizer import ImageTokenizer
from .modeling import TokenBookkeepingError
from .processor import ProcessorError, RynnVLAProcessor
from .sequence import (
    TokenSequence,
    build_action_sequence,
    build_stage1_sequence,
    collate,
    image_block,
)


@dataclass
class RobotSample:
    """Stage 3: K consecutive frames of one episode.

    images: camera -> (K, H, W, 3) uint8 (or ``codes``: camera -> (K, gh, gw) VQ codes, e.g.
    cached by the trainer); states (K, D) raw; actions (K, T, D) absolute chunks starting at
    each frame; action_mask (K, T) bool, True = real step (False past the episode end).
    """

    instruction: str
    states: np.ndarray
    actions: np.ndarray
    images: dict[str, np.ndarray] | None = None
    codes: dict[str, np.ndarray] | None = None
    action_mask: np.ndarray | None = None


@dataclass
class VideoSample:
    """Stage 1: frames (F, H, W, 3) uint8 of one clip (or codes (F, gh, gw))."""

    instruction: str
    frames: np.ndarray | None = None
    codes: np.ndarray | None = None


@dataclass
class TrajectorySample:
    """Stage 2: frames (K, H, W, 3) (or codes), normalised keypoint states (K, state_dim),
    normalised trajectory chunks (K, T, Dk) for the human ActionVAE, mask (K, T)."""

    instruction: str
    states: np.ndarray
    trajectories: np.ndarray
    frames: np.ndarray | None = None
    codes: np.ndarray | None = None
    trajectory_mask: np.ndarray | None = None


class StageBatcher:
    """Builds ``forward(batch)`` inputs; every tensor on ``device``."""

    def __init__(
        self,
        config: RynnVLAConfig,
        processor: RynnVLAProcessor,
        image_tokenizer: ImageTokenizer,
        action_vae: ActionVAE | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.config = config
        self.processor = processor
        self.image_tokenizer = image_tokenizer
        self.action_vae = action_vae
        self.device = torch.device(device)

    # ---- images ------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        """(F, H, W, 3) uint8 -> VQ codes (F, gh, gw) (CPU)."""
        if frames.ndim != 4:
            raise ProcessorError(f"frames must be (F, H, W, 3), got {frames.shape}")
        pixels = torch.stack([self.image_tokenizer.preprocess(f) for f in frames])
        return self.image_tokenizer.encode(pixels.to(self.device)).cpu()

    def _blocks(self, codes: torch.Tensor, is_wrist: bool) -> list[list[int]]:
        image = self.config.image
        return [
            image_block(
                grid,
                self.config.tokens,
                image.downsample,
                image.crop_multiple,
                is_wrist,
                self.processor.text_tokenizer.image_code_ids,
            )
            for grid in torch.as_tensor(codes)
        ]

    def _camera_blocks(self, sample: RobotSample, frames: int) -> list[list[list[int]]]:
        """Per frame, the blocks of every camera in camera order."""
        per_camera = []
        for camera in self.processor.config.camera_names:
            if sample.codes is not None and camera in sample.codes:
                codes = torch.as_tensor(sample.codes[camera])
            elif sample.images is not None and camera in sample.images:
                codes = self.encode_frames(np.asarray(sample.images[camera]))
            else:
                raise ProcessorError(f"robot sample lacks camera {camera!r} (images or codes)")
            if codes.shape[0] != frames:
                raise TokenBookkeepingError(
                    f"camera {camera!r} has {codes.shape[0]} frames, states have {frames}"
                )
            per_camera.append(self._blocks(codes, camera in self.processor.config.wrist_cameras))
        return [list(blocks) for blocks in zip(*per_camera, strict=True)]

    # ---- stages 2 and 3 ----------------------------------------------------------------------
    def _action_sequence(self, instruction: str, frames: list[list[list[int]]]) -> TokenSequence:
        """``[instr][frame][STATE][ACTION]`` per frame (stage 2 and stage 3)."""
        return build_action_sequence(
            self.processor.encode_instruction(instruction),
            frames,
            self.config.tokens,
            self.config.loss,
            self.config.instruction_every_frame,
        )

    @torch.no_grad()
    def _action_batch(
        self,
        sequences: Sequence[TokenSequence],
        states: Sequence[np.ndarray],
        chunks: Sequence[np.ndarray],
        masks: Sequence[np.ndarray],
        vae: ActionVAE | None,
    ) -> dict[str, torch.Tensor]:
        """Collated sequences plus, per sample frame (N over the batch), the STATE input and
        the ActionVAE encoding its ACTION token regresses."""
        if vae is None:
            raise ValueError("an ActionVAE is needed to build action targets")
        batch = self._collate(sequences)
        batch["states"] = torch.from_numpy(np.concatenate(states)).to(self.device)  # (N, D)
        chunks_t = torch.as_tensor(np.concatenate(chunks), dtype=torch.float32, device=self.device)
        mask_t = torch.as_tensor(np.concatenate(masks), dtype=torch.bool, device=self.device)
        batch["action_targets"] = vae.eval().encode(chunks_t, mask_t).float()  # (N, 2L)
        return batch

    # ---- stage 3 -----------------------------------------------------------------------------
    def robot_batch(self, samples: Sequence[RobotSample]) -> dict[str, torch.Tensor]:
        """Stage-3 batch: ids/labels/mask (B, S), states (B*K, D), action_targets (B*K, 2L)."""
        sequences: list[TokenSequence] = []
        states, chunks, masks = [], [], []
        for sample in samples:
            raw_states = np.asarray(sample.states, np.float64)  # (K, D)
            actions = np.asarray(sample.actions, np.float64)  # (K, T, D)
            frames = raw_states.shape[0]
            expected = (
                frames,
                self.processor.config.chunk_length,
                self.processor.config.action_dim,
            )
            if actions.shape != expected:
                raise ProcessorError(f"actions must be {expected} (K, T, D), got {actions.shape}")
            mask = _step_mask(sample.action_mask, actions.shape[:2])
            states.append(self.processor.normalize_state(raw_states))
            chunks.append(self.processor.normalize_chunk(actions, raw_states))
            masks.append(mask)
            sequences.append(
                self._action_sequence(sample.instruction, self._camera_blocks(sample, frames))
            )
        return self._action_batch(sequences, states, chunks, masks, self.action_vae)

    # ---- stage 1 -----------------------------------------------------------------------------
    def video_batch(self, samples: Sequence[VideoSample]) -> dict[str, torch.Tensor]:
        """Stage-1 batch: ``[instr][frame]`` repeated; no states, no action targets."""
        sequences = []
        for sample in samples:
            codes = self._sample_codes(sample.codes, sample.frames)
            frames = [[block] for block in self._blocks(codes, is_wrist=False)]
            sequences.append(
                build_stage1_sequence(
                    self.processor.encode_instruction(sample.instruction), frames, self.config.loss
                )
            )
        return self._collate(sequences)

    # ---- stage 2 -----------------------------------------------------------------------------
    def trajectory_batch(
        self, samples: Sequence[TrajectorySample], trajectory_vae: ActionVAE
    ) -> dict[str, torch.Tensor]:
        """Stage-2 batch: ``[instr][frame][STATE][ACTION]`` per frame, targets from the human
        (wrist trajectory) ActionVAE."""
        sequences, states, chunks, masks = [], [], [], []
        for sample in samples:
            codes = self._sample_codes(sample.codes, sample.frames)
            frames = [[block] for block in self._blocks(codes, is_wrist=False)]
            kp = np.asarray(sample.states, np.float32)
            if kp.shape != (len(frames), self.config.state_dim):
                raise ProcessorError(
                    f"keypoint states must be ({len(frames)}, {self.config.state_dim}), "
                    f"got {kp.shape}"
                )
            traj = np.asarray(sample.trajectories, np.float32)
            states.append(kp)
            chunks.append(traj)
            masks.append(_step_mask(sample.trajectory_mask, traj.shape[:2]))
            sequences.append(self._action_sequence(sample.instruction, frames))
        return self._action_batch(sequences, states, chunks, masks, trajectory_vae)

    # ---- helpers -----------------------------------------------------------------------------
    def _sample_codes(self, codes: np.ndarray | None, frames: np.ndarray | None) -> torch.Tensor:
        if codes is not None:
            return torch.as_tensor(codes)
        if frames is None:
            raise ProcessorError("a sample needs frames or codes")
        return self.encode_frames(np.asarray(frames))

    def _collate(self, sequences: Sequence[TokenSequence]) -> dict[str, torch.Tensor]:
        batch = collate(sequences, self.config.tokens.pad_id)
        limit = self.config.backbone.max_position_embeddings
        if batch["input_ids"].shape[1] > limit:
            raise TokenBookkeepingError(
                f"sequence of {batch['input_ids'].shape[1]} tokens exceeds "
                f"max_position_embeddings={limit}"
            )
        return {k: v.to(self.device) for k, v in batch.items()}


def _step_mask(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """The (K, T) validity mask of a sample's chunks; None = every step is valid."""
    return np.ones(shape, bool) if mask is None else np.asarray(mask, bool)
