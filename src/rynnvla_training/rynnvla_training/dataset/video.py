"""Decoding an episode's stretch of a (multi-episode) video file, once, with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


class VideoDecodeError(RuntimeError):
    """Frames of an episode cannot be decoded; the message names the file and frames."""


def decode_episode(
    path: Path,
    from_timestamp: float,
    length: int,
    fps: int,
    *,
    size: tuple[int, int] | None = None,
    frame_indices: np.ndarray | None = None,
) -> np.ndarray:
    """Frames ``0 .. length-1`` of the episode starting at ``from_timestamp`` in ``path``.

    Frame ``k`` is the video frame presented at ``from_timestamp + k / fps``. Decodes from the
    keyframe before the episode to its last frame, in one pass. ``size`` = (H, W) resizes while
    decoding; ``frame_indices`` keeps only those frames (returned in that order).
    Returns (len(frame_indices) or length, H, W, 3) uint8.
    """
    wanted = np.arange(length) if frame_indices is None else np.asarray(frame_indices)
    if wanted.size and (wanted.min() < 0 or wanted.max() >= length):
        raise VideoDecodeError(f"frame indices out of range [0, {length}) for {path}")
    slots: dict[int, list[int]] = {}
    for slot, index in enumerate(wanted.tolist()):
        slots.setdefault(index, []).append(slot)
    out: np.ndarray | None = None
    found = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            time_base = float(stream.time_base)
            container.seek(int(from_timestamp / time_base), stream=stream, backward=True)
            last = max(slots) if slots else -1
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                index = round((frame.pts * time_base - from_timestamp) * fps)
                if index > last:
                    break
                if index not in slots:
                    continue
                image = _to_rgb(frame, size)
                if out is None:
                    out = np.empty((wanted.size, *image.shape), np.uint8)
                for slot in slots[index]:
                    out[slot] = image
                found += 1
    except av.FFmpegError as exc:
        raise VideoDecodeError(f"cannot decode {path}: {exc}") from exc
    if found != len(slots):
        raise VideoDecodeError(
            f"{path}: found {found} of {len(slots)} frames of the episode at "
            f"{from_timestamp:.3f} s ({length} frames at {fps} fps)"
        )
    if out is None:
        height, width = size or (0, 0)
        out = np.empty((0, height, width, 3), np.uint8)
    return out


def _to_rgb(frame, size: tuple[int, int] | None) -> np.ndarray:
    if size is None:
        return frame.to_ndarray(format="rgb24")
    height, width = size
    return frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
