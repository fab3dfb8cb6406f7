"""Video encoding: colours and content survive the RGB -> YUV -> H.264 round trip."""

from __future__ import annotations

import av
import numpy as np
import pytest

from rynnvla_training.convert.stats import PIXEL_STRIDE, ImageHistogram
from rynnvla_training.convert.video import VideoEncoder, VideoError, probe

HEIGHT, WIDTH = 96, 128
PATCHES = {  # (row, col) of a 16x16 patch -> its flat RGB colour
    (8, 8): (230, 30, 40),
    (8, 56): (30, 200, 60),
    (8, 104): (40, 60, 220),
    (64, 8): (240, 240, 240),
    (64, 56): (20, 20, 20),
    (64, 104): (200, 180, 40),
}


def _frames(count: int) -> list[np.ndarray]:
    """A moving colour gradient with flat colour patches (checked after decoding)."""
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    frames = []
    for k in range(count):
        image = np.stack(
            [20 + cols * 1.5 + k, 20 + rows * 2 + k, 20 + (rows + cols) * 0.8], axis=-1
        ).astype(np.uint8)  # (H, W, 3): smooth, in range for k < 30
        for (row, col), colour in PATCHES.items():
            image[row : row + 16, col : col + 16] = colour
        frames.append(image)
    return frames


def _encode(path, frames) -> None:
    encoder = VideoEncoder(path, 30, crf=18, preset="ultrafast", threads=2)
    for frame in frames:
        encoder.add(frame)
    encoder.close()


def _decode(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def test_colours_and_content_survive_the_round_trip(tmp_path):
    frames = _frames(12)
    _encode(tmp_path / "v.mp4", frames)
    decoded = _decode(tmp_path / "v.mp4")
    info = probe(tmp_path / "v.mp4")
    assert (info.frames, info.height, info.width, info.pix_fmt) == (12, HEIGHT, WIDTH, "yuv420p")
    assert len(decoded) == 12
    for source, result in zip(frames, decoded, strict=True):
        assert _psnr(source, result) > 35.0
        for (row, col), colour in PATCHES.items():
            inner = result[row + 4 : row + 12, col + 4 : col + 12].reshape(-1, 3)  # (64, 3)
            # BT.601 limited range both ways: a flat patch keeps its colour (8-bit rounding)
            np.testing.assert_allclose(inner.mean(axis=0), colour, atol=4.0)


def _dot_frames(count: int) -> list[np.ndarray]:
    """A 2x2 px green dot moving one pixel per frame over a flat table colour."""
    frames = []
    for k in range(count):
        image = np.full((HEIGHT, WIDTH, 3), (222, 170, 130), np.uint8)  # (H, W, 3)
        image[40 : 40 + 2, 30 + k : 30 + k + 2] = (40, 220, 60)
        frames.append(image)
    return frames


def test_lossless_yuv444_keeps_a_two_pixel_dot_that_yuv420_smears(tmp_path):
    frames = _dot_frames(8)
    for pix_fmt, crf in (("yuv444p", 0), ("yuv420p", 23)):
        encoder = VideoEncoder(tmp_path / f"{pix_fmt}.mp4", 30, crf=crf, pix_fmt=pix_fmt)
        for frame in frames:
            encoder.add(frame)
        encoder.close()
    assert probe(tmp_path / "yuv444p.mp4").pix_fmt == "yuv444p"
    full = _decode(tmp_path / "yuv444p.mp4")
    sub = _decode(tmp_path / "yuv420p.mp4")
    for k, (source, a, b) in enumerate(zip(frames, full, sub, strict=True)):
        error_444 = np.abs(a.astype(int) - source.astype(int)).max()
        error_420 = np.abs(b.astype(int) - source.astype(int))[40:42, 30 + k : 32 + k].max()
        assert error_444 <= 3, f"frame {k}: lossless 4:4:4 is off by {error_444} levels"
        assert error_420 > 3 * max(error_444, 1), f"frame {k}: 4:2:0 error {error_420}"


def test_pixel_formats_are_checked_per_codec(tmp_path):
    with pytest.raises(VideoError, match="pix_fmt 'yuv444p' is not one of"):
        VideoEncoder(tmp_path / "v.mp4", 30, codec="av1", pix_fmt="yuv444p")
    encoder = VideoEncoder(tmp_path / "odd.mp4", 30, pix_fmt="yuv444p")
    encoder.add(np.zeros((15, 17, 3), np.uint8))  # 4:4:4 takes odd sizes
    encoder.close()
    assert (probe(tmp_path / "odd.mp4").height, probe(tmp_path / "odd.mp4").width) == (15, 17)


def test_non_contiguous_frames_encode_like_their_contiguous_copy(tmp_path):
    frames = _frames(6)
    padded = [np.pad(f, ((0, 0), (0, 8), (0, 0)))[:, :WIDTH] for f in frames]  # row padding
    reversed_bgr = [np.ascontiguousarray(f[:, :, ::-1])[:, :, ::-1] for f in frames]  # view
    assert not padded[0].flags.c_contiguous and not reversed_bgr[0].flags.c_contiguous
    _encode(tmp_path / "plain.mp4", frames)
    _encode(tmp_path / "padded.mp4", padded)
    _encode(tmp_path / "reversed.mp4", reversed_bgr)
    plain = _decode(tmp_path / "plain.mp4")
    for name in ("padded.mp4", "reversed.mp4"):
        for a, b in zip(plain, _decode(tmp_path / name), strict=True):
            np.testing.assert_array_equal(a, b)


def test_read_only_frames_are_encoded(tmp_path):
    frames = _frames(3)
    for frame in frames:
        frame.flags.writeable = False  # image data deserialised as a view of the bag bytes
    _encode(tmp_path / "v.mp4", frames)
    assert len(_decode(tmp_path / "v.mp4")) == 3


def test_image_histogram_counts_every_sampled_pixel_exactly():
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(3)]
    histogram = ImageHistogram()
    for image in images:
        histogram.update(image)
    sampled = np.concatenate([i[::PIXEL_STRIDE, ::PIXEL_STRIDE].reshape(-1, 3) for i in images])
    for channel in range(3):
        expected, _ = np.histogram(sampled[:, channel], bins=256, range=(0, 256))
        np.testing.assert_array_equal(histogram.counts[channel], expected)
    assert histogram.frames == 3
