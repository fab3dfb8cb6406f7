"""Learned 2-D positions of image code tokens (row, column, wrist or not), for small presets.

Chameleon marks where an image code sits only through rotary positions of the 1-D sequence,
which act on queries and keys, never on values: a layer that finds "the green block's code" by
content learns nothing of *where* it is unless earlier layers have built that into the hidden
state (counting newlines back to the block start). A 7B model learns this from billions of
tokens; the tiny preset trained for a few thousand CPU steps did not (open loop on its own
training data it could not tell which way to turn for the block: shoulder_pan off by 0.2-0.8
rad at the first frame). An embedding of (row, column, camera kind) added to each code token's
embedding puts the position into the value itself.

Off (``RynnVLAConfig.image_position_embeddings = False``) for the 7B preset, whose published
weights have no such table. Positions are computed from the token ids alone (``grid_positions``),
so prompts split into chunks at image-block boundaries (prefix cache) get the same values.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import TokenLayout


class ImagePositionEmbedding(nn.Module):
    """(row, column, wrist) -> (H,) added to the embeddings of image code tokens."""

    def __init__(self, layout: TokenLayout, hidden_size: int) -> None:
        super().__init__()
        self.layout = layout
        self.rows = nn.Embedding(layout.max_size_grids, hidden_size)
        self.columns = nn.Embedding(layout.max_size_grids, hidden_size)
        self.camera_kind = nn.Embedding(2, hidden_size)  # 0: other camera, 1: wrist camera

    def forward(self, input_ids: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
        """embeds (B, S, H) plus the position embedding at every image code token of input_ids
        (B, S)."""
        is_code, row, column, wrist = grid_positions(input_ids, self.layout)
        limit = self.layout.max_size_grids
        if bool(is_code.any()) and (int(row.max()) >= limit or int(column.max()) >= limit):
            raise ValueError(
                f"image grid of {int(row.max()) + 1} rows x {int(column.max()) + 1} columns "
                f"exceeds max_size_grids={limit}"
            )
        added = self.rows(row) + self.columns(column) + self.camera_kind(wrist)  # (B, S, H)
        return embeds + added.to(embeds.dtype) * is_code.unsqueeze(-1).to(embeds.dtype)


def grid_positions(
    input_ids: torch.Tensor, layout: TokenLayout
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """For input_ids (B, S): is_code (B, S) bool, and row, column, wrist (B, S) long (0 where
    not a code). Rows count the newlines since the block's start token, columns the codes since
    the last start token or newline; wrist is 1 inside WRIST_START ... WRIST_END."""
    offset = layout.image_code_offset
    is_code = (input_ids >= offset) & (input_ids < offset + layout.codebook_size)
    # a block starts with IMAGE_START, or WRIST_START for the wrist camera (which replaces it)
    is_start = (input_ids == layout.image_start_id) | (input_ids == layout.wrist_start_id)
    is_newline = input_ids == layout.newline_id
    newlines_before = torch.cumsum(is_newline.long(), dim=1) - is_newline.long()
    row = newlines_before - _last_value_at(is_start, newlines_before)
    codes_so_far = torch.cumsum(is_code.long(), dim=1)
    column = codes_so_far - 1 - _last_value_at(is_start | is_newline, codes_so_far)
    wrist_opened = torch.cumsum((input_ids == layout.wrist_start_id).long(), dim=1)
    wrist_closed = torch.cumsum((input_ids == layout.wrist_end_id).long(), dim=1)
    wrist = (wrist_opened > wrist_closed).long()
    zero = torch.zeros_like(row)
    return (
        is_code,
        torch.where(is_code, row, zero),
        torch.where(is_code, column, zero),
        torch.where(is_code, wrist, zero),
    )


def _last_value_at(marker: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """(B, S): `values` at the latest position <= each position where `marker` is set (0 before
    the first). `values` must be non-decreasing along S (cumulative counts)."""
    return torch.cummax(torch.where(marker, values, torch.zeros_like(values)), dim=1).values
