"""Video encoding (PyAV / FFmpeg) and loss-free concatenation of episode videos.

H.264 (libx264) by default, AV1 (SVT-AV1 or libaom) optional; yuv420p by default (what every
player and LeRobot expect), yuv444p for H.264 where chroma subsampling must not blur small
coloured objects; constant frame rate, frame ``k`` at pts ``k`` in a ``1/fps`` time base.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from .config import PIXEL_FORMATS

# codec name in the config -> FFmpeg encoders to try, fastest first
ENCODERS: dict[str, tuple[str, ...]] = {
    "h264": ("libx264", "h264"),
    "av1": ("libsvtav1", "libaom-av1"),
}


# RGB -> YUV in libswscale: BT.601 limited range (FFmpeg's default, what decoders assume
# for untagged video), chroma averaged over each 2x2 block (bilinear; "POINT" would be ~40 %
# faster but aliases colour edges). One thread: the cameras already run in parallel, and
# swscale's slice threads only add hand-over overhead at 640x480.
COLOUR_INTERPOLATION = "BILINEAR"


class VideoError(RuntimeError):
    """A video cannot be encoded, concatenated or read."""


def pick_encoder(codec: str) -> str:
    """The first FFmpeg encoder for ``codec`` that this PyAV build has."""
    for name in ENCODERS[codec]:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # av raises UnknownCodecError (or ValueError on old versions)
            continue
        return name
    raise VideoError(f"no {codec} encoder in this FFmpeg build (tried {ENCODERS[codec]})")


def _encoder_options(encoder: str, crf: int, preset: str, gop: int) -> dict[str, str]:
    if encoder == "libx264":
        # bf=0: no B-frames, decode order = presentation order (simple, robust seeking)
        return {"crf": str(crf), "preset": preset, "g": str(gop), "bf": "0"}
    if encoder == "libsvtav1":
        svt_preset = preset if preset.isdigit() else "10"
        return {"crf": str(crf), "preset": svt_preset, "g": str(gop)}
    if encoder == "libaom-av1":
        return {"crf": str(crf), "cpu-used": "8", "g": str(gop), "row-mt": "1"}
    return {"g": str(gop)}


class VideoEncoder:
    """Encodes RGB frames (H, W, 3) uint8 to an MP4 file, one ``add`` per frame."""

    def __init__(
        self,
        path: Path,
        fps: int,
        *,
        codec: str = "h264",
        crf: int = 23,
        preset: str = "veryfast",
        gop: int = 30,
        threads: int = 1,
        pix_fmt: str = "yuv420p",
    ):
        if pix_fmt not in PIXEL_FORMATS[codec]:
            raise VideoError(
                f"pix_fmt {pix_fmt!r} is not one of {PIXEL_FORMATS[codec]} for {codec}"
            )
        self.path = Path(path)
        self.pix_fmt = pix_fmt
        self.fps = fps
        self.encoder = pick_encoder(codec)
        self._options = _encoder_options(self.encoder, crf, preset, gop)
        self._threads = threads
        self._container = None
        self._stream = None
        self._reformatter = VideoReformatter()  # keeps its SwsContext between frames
        self.frames = 0
        self.size: tuple[int, int] | None = None  # (H, W)

    def _open(self, height: int, width: int) -> None:
        if self.pix_fmt == "yuv420p" and (height % 2 or width % 2):
            raise VideoError(f"yuv420p video needs even sizes, got {width}x{height}")
        self._container = av.open(str(self.path), mode="w")
        stream = self._container.add_stream(self.encoder, rate=self.fps, options=self._options)
        stream.width, stream.height, stream.pix_fmt = width, height, self.pix_fmt
        stream.time_base = Fraction(1, self.fps)
        stream.codec_context.thread_count = self._threads
        self._stream = stream
        self.size = (height, width)

    def add(self, rgb: np.ndarray) -> None:
        if self._container is None:
            self._open(rgb.shape[0], rgb.shape[1])
        if rgb.shape[:2] != self.size:
            raise VideoError(f"frame {self.frames} is {rgb.shape[:2]}, the video is {self.size}")
        # a view of the caller's pixels (no copy); swscale reads them once, into a new frame
        rgb_frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(rgb), format="rgb24")
        frame = self._reformatter.reformat(
            rgb_frame, format=self.pix_fmt, interpolation=COLOUR_INTERPOLATION, threads=1
        )
        frame.pts = self.frames
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        if self._container is None:
            return
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    height: int
    width: int
    codec: str
    pix_fmt: str
    fps: int
    frames: int

    def feature_info(self) -> dict:
        """The ``info`` block of a video feature in meta/info.json (LeRobot keys)."""
        return {
            "video.height": self.height,
            "video.width": self.width,
            "video.codec": self.codec,
            "video.pix_fmt": self.pix_fmt,
            "video.is_depth_map": False,
            "video.fps": self.fps,
            "video.channels": 3,
            "has_audio": False,
            "is_depth_map": False,
        }


def probe(path: Path) -> VideoInfo:
    """Stream facts of a video file (frame count from packets, exact for our files)."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = sum(1 for packet in container.demux(stream) if packet.size > 0)
            return VideoInfo(
                height=stream.height,
                width=stream.width,
                codec=stream.codec_context.codec.canonical_name,  # "h264", "av1"
                pix_fmt=stream.pix_fmt or "",
                fps=int(stream.base_rate or stream.average_rate or 0),
                frames=frames,
            )
    except (av.FFmpegError, IndexError) as exc:
        raise VideoError(f"cannot read video {path}: {exc}") from exc


def concatenate(parts: Sequence[Path], output: Path, fps: int) -> list[int]:
    """Join episode videos into one MP4 by copying packets (no re-encoding).

    Every part must have the same codec, size and pixel format, frame k at pts k (1/fps).
    Returns each part's first frame number in the output (part i starts at
    ``starts[i] / fps`` seconds).
    """
    if not parts:
        raise VideoError("nothing to concatenate")
    starts: list[int] = []
    offset = 0
    output = Path(output)
    with av.open(str(output), mode="w", options={"movflags": "faststart"}) as out:
        out_stream = None
        reference: tuple | None = None
        for part in parts:
            with av.open(str(part)) as container:
                stream = container.streams.video[0]
                facts = (stream.codec_context.name, stream.width, stream.height, stream.pix_fmt)
                if out_stream is None:
                    out_stream = out.add_stream_from_template(stream, opaque=True)  # remux only
                    out_stream.time_base = Fraction(1, fps)
                    reference = facts
                elif facts != reference:
                    raise VideoError(f"{part} is {facts}, the first part is {reference}")
                starts.append(offset)
                count = 0
                scale = stream.time_base * fps  # input ticks -> frame numbers
                for packet in container.demux(stream):
                    if packet.dts is None or packet.size == 0:
                        continue
                    packet.pts = offset + round(packet.pts * scale)
                    packet.dts = offset + round(packet.dts * scale)
                    packet.duration = 1
                    packet.time_base = Fraction(1, fps)
                    packet.stream = out_stream
                    out.mux(packet)
                    count += 1
                offset += count
    return starts
