"""Token sequences and labels for the three training stages and for inference.

Layouts (reference section 4), one frame = one image block per camera:

- stage 1: ``[instr][frame_1][instr][frame_2]...``; frame prediction only.
- stage 2/3: per frame ``[instr][front][wrist][STATE][ACTION]`` (stage 2: one camera and the
  human wrist-keypoint state); the hidden state at STATE regresses the ActionVAE embedding.
- inference: the stage-3 layout of the last ``inference_history`` frames, ending at STATE.

Labels (token-aligned, -100 = not supervised; the model shifts them): the image tokens of the
first ``condition_frames`` frames are inputs only, later frames' image blocks are supervised
(future-frame prediction); STATE and ACTION ids are supervised; the instruction is never
supervised unless ``supervise_repeated_instruction`` re-enables the reference behaviour for
frames after the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .config import LossConfig, TokenLayout
from .modeling import IGNORE_INDEX, TokenBookkeepingError

FrameBlocks = Sequence[Sequence[int]]  # one token block per camera, camera order


@dataclass
class TokenSequence:
    """Parallel ``input_ids`` / ``labels`` lists being built left to right."""

    input_ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    def add(self, ids: Sequence[int], supervised: bool) -> None:
        ids = [int(i) for i in ids]
        self.input_ids.extend(ids)
        self.labels.extend(ids if supervised else [IGNORE_INDEX] * len(ids))

    def __len__(self) -> int:
        return len(self.input_ids)


def image_block(
    codes: np.ndarray | torch.Tensor,  # (grid_h, grid_w) VQ codes
    layout: TokenLayout,
    downsample: int,
    crop_multiple: int,
    is_wrist: bool,
    code_ids: torch.Tensor | None = None,
) -> list[int]:
    """``[start, size_h, size_w, (row codes + NEWLINE) x grid_h, end]`` as published.

    ``code_ids`` (codebook_size,) maps VQ codes to token ids (Chameleon's vocabulary orders
    its IMGIMG tokens by name, so the map comes from the tokenizer file); None means the
    contiguous ``image_code_offset + code``.
    """
    codes = torch.as_tensor(codes)
    if codes.ndim != 2:
        raise TokenBookkeepingError(f"codes must be (grid_h, grid_w), got {tuple(codes.shape)}")
    grid_h, grid_w = codes.shape
    if int(codes.min()) < 0 or int(codes.max()) >= layout.codebook_size:
        raise TokenBookkeepingError(
            f"VQ codes outside [0, {layout.codebook_size}): min {int(codes.min())}, "
            f"max {int(codes.max())}"
        )
    height, width = grid_h * downsample, grid_w * downsample
    if height % crop_multiple or width % crop_multiple:
        raise TokenBookkeepingError(
            f"code grid {grid_h}x{grid_w} (image {height}x{width}) is not a multiple of "
            f"crop_multiple={crop_multiple}"
        )
    start, end = layout.camera_delimiters(is_wrist)
    if code_ids is None:
        code_ids = torch.arange(layout.codebook_size) + layout.image_code_offset
    rows = code_ids[codes.long()]  # (grid_h, grid_w)
    newline = torch.full((grid_h, 1), layout.newline_id, dtype=torch.long)
    body = torch.cat([rows, newline], dim=1).flatten().tolist()
    sizes = [layout.size_token(height // crop_multiple), layout.size_token(width // crop_multiple)]
    return [start, *sizes, *body, end]


def image_block_length(grid_h: int, grid_w: int) -> int:
    return 4 + grid_h * (grid_w + 1)


def build_stage1_sequence(
    instruction_ids: Sequence[int], frames: Sequence[FrameBlocks], loss: LossConfig
) -> TokenSequence:
    """``[instr][frame_1][instr][frame_2]...`` with frames after ``condition_frames``
    supervised (the instruction is repeated to mimic closed-loop inference, never supervised)."""
    seq = TokenSequence()
    for index, blocks in enumerate(frames):
        seq.add(instruction_ids, supervised=False)
        for block in blocks:
            seq.add(block, supervised=index >= loss.condition_frames)
    return seq


def build_action_sequence(
    instruction_ids: Sequence[int],
    frames: Sequence[FrameBlocks],
    layout: TokenLayout,
    loss: LossConfig,
    instruction_every_frame: bool,
    end_with_action: bool = True,
) -> TokenSequence:
    """Stage 2/3 layout ``[instr][camera blocks][STATE][ACTION]`` per frame.

    With ``end_with_action=False`` the last frame stops at STATE (the inference prompt).
    """
    if not frames:
        raise TokenBookkeepingError("an action sequence needs at least one frame")
    seq = TokenSequence()
    for index, blocks in enumerate(frames):
        if index == 0:
            seq.add(instruction_ids, supervised=False)
        elif instruction_every_frame:
            seq.add(instruction_ids, supervised=loss.supervise_repeated_instruction)
        for block in blocks:
            seq.add(block, supervised=index >= loss.condition_frames)
        seq.add([layout.state_id], supervised=True)
        if end_with_action or index < len(frames) - 1:
            seq.add([layout.action_id], supervised=True)
    return seq


def collate(sequences: Sequence[TokenSequence], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest: ``input_ids`` / ``labels`` / ``attention_mask`` (B, S)."""
    if not sequences:
        raise ValueError("cannot collate an empty list of sequences")
    longest = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    labels = torch.full((len(sequences), longest), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if len(seq.labels) != len(seq.input_ids):
            raise TokenBookkeepingError(
                f"sequence {row}: {len(seq.input_ids)} ids but {len(seq.labels)} labels"
            )
        input_ids[row, : len(seq)] = torch.tensor(seq.input_ids)
        labels[row, : len(seq)] = torch.tensor(seq.labels)
        mask[row, : len(seq)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": mask}
