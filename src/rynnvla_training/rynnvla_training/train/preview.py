"""Preview images: true frames over predicted frames, one block of two rows per camera."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

_GAP = 2  # pixels between tiles
_LABEL_W = 34


def palette_image(codes: np.ndarray, cell: int) -> np.ndarray:
    """codes (..., gh, gw) -> (..., gh * cell, gw * cell, 3) uint8 with a fixed colour per code.

    Used when no VQ decoder is available (a k-means-fitted tokenizer has no decoder): equal
    colours still show where prediction and truth agree."""
    colours = np.random.default_rng(0).integers(0, 256, (int(codes.max()) + 1, 3), np.uint8)
    image = colours[codes]  # (..., gh, gw, 3)
    return image.repeat(cell, axis=-3).repeat(cell, axis=-2)


def compose_preview(
    true_frames: np.ndarray, predicted_frames: np.ndarray, conditioned_frames: int
) -> np.ndarray:
    """true / predicted (F, C, h, w, 3) uint8 -> one (H, W, 3) uint8 sheet.

    Rows per camera: "true" then "pred"; conditioning frames in the predicted row are greyed
    (the model saw them, it did not predict them)."""
    frames, cameras, height = true_frames.shape[:3]
    rows = []
    for camera in range(cameras):
        rows.append(_row("true", [true_frames[f, camera] for f in range(frames)]))
        predicted = []
        for f in range(frames):
            tile = predicted_frames[f, camera]
            if f < conditioned_frames:
                tile = (tile.astype(np.float32) * 0.35 + 80).astype(np.uint8)
            predicted.append(tile)
        rows.append(_row("pred", predicted))
    sheet_w = max(r.shape[1] for r in rows)
    sheet = np.full((len(rows) * (height + _GAP), sheet_w, 3), 255, np.uint8)
    for index, row in enumerate(rows):
        top = index * (height + _GAP)
        sheet[top : top + height, : row.shape[1]] = row
    return sheet


def _row(label: str, tiles: list[np.ndarray]) -> np.ndarray:
    height, width = tiles[0].shape[:2]
    row = np.full((height, _LABEL_W + len(tiles) * (width + _GAP), 3), 255, np.uint8)
    canvas = Image.fromarray(row)
    ImageDraw.Draw(canvas).text((2, height // 2 - 5), label, fill=(0, 0, 0))
    row = np.asarray(canvas).copy()
    for index, tile in enumerate(tiles):
        left = _LABEL_W + index * (width + _GAP)
        row[:, left : left + width] = tile
    return row
