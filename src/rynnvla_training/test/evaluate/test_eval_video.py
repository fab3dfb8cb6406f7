"""Rollout videos: overlay composition and H.264 mp4 encoding (decoded back with PyAV)."""

from __future__ import annotations

import numpy as np
import pytest

from rynnvla_training.evaluate.video import (
    ChunkTrace,
    VideoContext,
    chunk_at,
    compose_frame,
    render_rollout,
    short_name,
    write_mp4,
)

av = pytest.importorskip("av")
MS = 1_000_000
JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


def context() -> VideoContext:
    return VideoContext(
        instruction="put the green block on the plate",
        task_id="block_to_plate",
        seed=3,
        joint_names=JOINTS,
        lower=np.full(6, -2.0),
        upper=np.full(6, 2.0),
        success=True,
        time_to_success_s=0.5,
        start_ns=0,
    )


def chunk(obs_ms: int, latency_ms: int) -> ChunkTrace:
    positions = np.linspace(-1, 1, 20)[:, None] * np.ones((1, 6))  # (T, D)
    return ChunkTrace(obs_ms * MS, (obs_ms + latency_ms) * MS, 33 * MS, positions)


def test_the_chunk_shown_is_the_newest_already_published():
    chunks = [chunk(0, 100), chunk(300, 100), chunk(600, 100)]
    assert chunk_at(chunks, 50 * MS) is None
    assert chunk_at(chunks, 399 * MS) is chunks[0]
    assert chunk_at(chunks, 400 * MS) is chunks[1]
    assert chunk_at(chunks, 10_000 * MS) is chunks[2]


def test_overlay_draws_banner_image_and_plot():
    rgb = np.zeros((96, 128, 3), np.uint8)
    rgb[:, :, 1] = 200
    frame = compose_frame(rgb, 200 * MS, chunk(0, 100), context(), final=False)
    assert frame.shape == (44 + 288 + 150, 384, 3) and frame.dtype == np.uint8
    camera = frame[44:332]
    assert (camera[..., 1] == 200).mean() > 0.99  # the image, scaled x3
    banner = frame[:44]
    assert (banner < 128).any()  # instruction text drawn
    plot = frame[332:]
    coloured = (np.abs(plot.astype(int) - plot.mean(axis=2, keepdims=True)) > 40).any(axis=2)
    assert coloured.sum() > 200  # joint curves in colour
    assert short_name("shoulder_pan") == "sh_pan" and short_name("gripper") == "gripper"


def test_mp4_is_h264_and_decodes_to_the_frames(tmp_path):
    frames = [np.full((50, 65, 3), 20 * i, np.uint8) for i in range(12)]  # odd width: cropped
    path = write_mp4(tmp_path / "v.mp4", frames, fps=15)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 12 and decoded[0].shape == (50, 64, 3)
    assert abs(int(decoded[5].mean()) - 100) <= 3
    assert not list(tmp_path.glob("*.partial*"))
    with pytest.raises(ValueError, match="no frames"):
        write_mp4(tmp_path / "empty.mp4", [], fps=15)


def test_render_rollout(tmp_path):
    frames = [(i * 66 * MS, np.full((96, 128, 3), 90, np.uint8)) for i in range(10)]
    path = render_rollout(tmp_path / "r.mp4", frames, [chunk(0, 50), chunk(330, 50)], context(), 15)
    with av.open(str(path)) as container:
        assert len(list(container.decode(video=0))) == 10
