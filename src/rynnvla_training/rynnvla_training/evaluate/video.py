"""Rollout videos: camera frames with the instruction and the predicted action chunk overlaid,
encoded as H.264 mp4 with PyAV. Pure numpy + PIL + av (no rclpy).

Each video frame is the camera image (scaled up), a banner (instruction, task, seed, time,
outcome) and a plot of the chunk being executed at that instant: every joint's predicted
targets over the chunk horizon, normalised to the joint's limits, with a cursor at the step due
at the frame's time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SCALE = 3
BANNER_H = 44
PLOT_H = 150
# Colours of the six joints (shoulder_pan ... gripper), readable on white.
JOINT_COLOURS = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (23, 190, 207),
)


@dataclass(frozen=True)
class ChunkTrace:
    """One predicted chunk on the time axis of the camera stamps."""

    obs_stamp_ns: int  # observation the chunk was computed from
    published_ns: int  # when it was published (obs stamp + end-to-end latency)
    step_ns: int
    positions: np.ndarray  # (T, D) absolute joint targets


@dataclass(frozen=True)
class VideoContext:
    instruction: str
    task_id: str
    seed: int
    joint_names: tuple[str, ...]
    lower: np.ndarray  # (D,)
    upper: np.ndarray  # (D,)
    success: bool
    time_to_success_s: float
    start_ns: int  # episode reset time (sim clock)


def chunk_at(chunks: Sequence[ChunkTrace], stamp_ns: int) -> ChunkTrace | None:
    """The newest chunk already published at `stamp_ns` (the one being executed)."""
    current = None
    for chunk in chunks:  # in publication order
        if chunk.published_ns <= stamp_ns:
            current = chunk
    return current


def compose_frame(
    rgb: np.ndarray, stamp_ns: int, chunk: ChunkTrace | None, ctx: VideoContext, final: bool
) -> np.ndarray:
    """(H, W, 3) uint8 video frame: banner + scaled camera image + chunk plot."""
    height, width = rgb.shape[:2]
    w, h = width * SCALE, height * SCALE
    canvas = Image.new("RGB", (w, BANNER_H + h + PLOT_H), (255, 255, 255))
    canvas.paste(Image.fromarray(rgb).resize((w, h), Image.NEAREST), (0, BANNER_H))
    draw = ImageDraw.Draw(canvas)
    _banner(draw, w, stamp_ns, ctx, final)
    _chunk_plot(draw, (0, BANNER_H + h, w, PLOT_H), stamp_ns, chunk, ctx)
    return np.asarray(canvas)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _banner(draw: ImageDraw.ImageDraw, width: int, stamp_ns: int, ctx: VideoContext, final: bool):
    t = max(0.0, (stamp_ns - ctx.start_ns) / 1e9)
    draw.text((6, 4), f'"{ctx.instruction}"', fill=(0, 0, 0), font=_font(13))
    status = f"{ctx.task_id}  seed {ctx.seed}  t = {t:4.1f} s"
    draw.text((6, 24), status, fill=(60, 60, 60), font=_font(12))
    if final or (ctx.success and t >= ctx.time_to_success_s):
        label, colour = ("SUCCESS", (20, 140, 20)) if ctx.success else ("FAILED", (200, 30, 30))
        draw.text((width - 80, 24), label, fill=colour, font=_font(12))


def short_name(joint: str) -> str:
    """`shoulder_pan` -> `sh_pan`: six labels fit under a 384 px plot."""
    parts = joint.split("_")
    if len(joint) <= 8 or len(parts) < 2:
        return joint[:8]
    return f"{parts[0][:2]}_{parts[-1][:5]}"


def _chunk_plot(draw, box, stamp_ns: int, chunk: ChunkTrace | None, ctx: VideoContext) -> None:
    x0, y0, width, height = box
    left, right, top, bottom = x0 + 30, x0 + width - 8, y0 + 18, y0 + height - 22
    draw.rectangle((left, top, right, bottom), outline=(180, 180, 180))
    draw.text((x0 + 6, y0 + 2), "predicted chunk (joint targets, 0-1 = limits)", fill=(0, 0, 0))
    for j, name in enumerate(ctx.joint_names):
        colour = JOINT_COLOURS[j % len(JOINT_COLOURS)]
        x = left + j * (width - 40) // len(ctx.joint_names)
        draw.text((x, bottom + 4), short_name(name), fill=colour)
    if chunk is None:
        draw.text(
            (left + 8, (top + bottom) // 2 - 6), "waiting for the first chunk", fill=(120, 120, 120)
        )
        return
    steps = len(chunk.positions)
    span = np.maximum(ctx.upper - ctx.lower, 1e-9)
    norm = np.clip((chunk.positions - ctx.lower) / span, 0.0, 1.0)  # (T, D)
    xs = left + (right - left) * np.arange(steps) / max(steps - 1, 1)
    for j in range(norm.shape[1]):
        ys = bottom - (bottom - top) * norm[:, j]
        colour = JOINT_COLOURS[j % len(JOINT_COLOURS)]
        draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=colour, width=2)
    due = (stamp_ns - chunk.obs_stamp_ns) / chunk.step_ns - 1  # step index due now
    if 0 <= due <= steps - 1:
        x = left + (right - left) * due / max(steps - 1, 1)
        draw.line((x, top, x, bottom), fill=(0, 0, 0), width=1)


def write_mp4(path: str | Path, frames: Sequence[np.ndarray], fps: float, crf: int = 23) -> Path:
    """Encode RGB frames (H, W, 3) as H.264 (yuv420p) mp4; written to a temp name, then moved."""
    import av

    if not frames:
        raise ValueError(f"{path}: no frames to encode")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.mp4")
    height, width = frames[0].shape[:2]
    even_h, even_w = height - height % 2, width - width % 2  # yuv420p needs even sizes
    with av.open(str(partial), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = even_w, even_h
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for frame in frames:
            video_frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(frame[:even_h, :even_w]), format="rgb24"
            )
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    partial.replace(path)
    return path


def render_rollout(
    path: str | Path,
    frames: Sequence[tuple[int, np.ndarray]],
    chunks: Sequence[ChunkTrace],
    ctx: VideoContext,
    fps: float,
) -> Path:
    """The rollout video of one episode: `frames` are (stamp_ns, rgb) in time order."""
    images = [
        compose_frame(rgb, stamp, chunk_at(chunks, stamp), ctx, final=i == len(frames) - 1)
        for i, (stamp, rgb) in enumerate(frames)
    ]
    return write_mp4(path, images, fps)
