"""One bag -> one or more episode segments in a work directory (runs inside a worker).

A segment directory holds ``frames.npz`` (state (N, D), action (N, D), frame times),
``<camera>.mp4`` and is described by a ``SegmentResult``. ``convert_bag`` never raises for bad
data: the bag's result carries the reason instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import shutil
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rynnvla_policy.conversions import (
    ConversionError,
    image_to_rgb,
    joint_positions,
    trajectory_points,
)

from .bag import BagError, BagSource, header_stamp_ns
from .camera_sink import CameraSink
from .config import ConvertConfig, StreamConfig
from .resample import NS_PER_S, AsOfResampler, Frame, Sample, StreamSpec
from .sync_report import stream_report
from .video import VideoEncoder, VideoError

STATE, ACTION, INSTRUCTION = "state", "action", "instruction"
CAMERA_PREFIX = "camera."
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


@dataclasses.dataclass
class SegmentResult:
    """A converted episode segment (JSON-serialisable)."""

    directory: str  # name of the segment directory inside the bag's work directory
    length: int
    task: str
    start_ns: int  # time of frame 0 (in the bag's time base)
    match_rate: float  # fraction of frames where every stream was fresh
    sync: dict[str, dict]  # stream -> stream_report(...)
    image_stats: dict[str, dict]  # camera -> ImageHistogram.to_dict()
    image_sizes: dict[str, list[int]]  # camera -> [H, W]


@dataclasses.dataclass
class BagResult:
    """Everything a worker learnt about one bag (JSON-serialisable)."""

    bag: str
    fingerprint: str
    segments: list[SegmentResult] = dataclasses.field(default_factory=list)
    dropped: list[dict] = dataclasses.field(default_factory=list)  # segments: start, reason
    error: str | None = None  # set when the whole bag was skipped
    duration_s: float = 0.0
    messages: dict[str, dict] = dataclasses.field(default_factory=dict)  # stream -> counters

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BagResult:
        segments = [SegmentResult(**s) for s in data.get("segments", [])]
        return cls(**{**data, "segments": segments})


class EpisodeDataError(ValueError):
    """Recorded data that makes a bag unusable (missing topic, wrong type, bad stamps...)."""


# --------------------------------------------------------------------------- stream layout


@dataclasses.dataclass(frozen=True)
class _Route:
    """How one recorded topic feeds one resampler stream."""

    stream: str
    topic: str
    msgtype: str
    use_header: bool


def _resolve_topic(source: BagSource, stream: StreamConfig, what: str) -> str:
    topic = source.resolve(stream.topics)
    if topic is None:
        recorded = ", ".join(sorted(source.topics)) or "none"
        raise EpisodeDataError(
            f"{what} topic {' or '.join(stream.topics)} is not in the bag (recorded: {recorded})"
        )
    return topic


def _routes(source: BagSource, config: ConvertConfig) -> list[_Route]:
    """Topics to read, checked against the bag's recorded types."""
    routes = []
    wanted: list[tuple[str, StreamConfig, tuple[str, ...]]] = [
        (CAMERA_PREFIX + name, cam, IMAGE_TYPES) for name, cam in config.cameras.items()
    ]
    wanted.append((STATE, config.state, ("sensor_msgs/msg/JointState",)))
    if config.action.source == "trajectory":
        wanted.append((ACTION, config.action, ("trajectory_msgs/msg/JointTrajectory",)))
    for name, stream, types in wanted:
        topic = _resolve_topic(source, stream, name)
        msgtype = source.topics[topic]
        if msgtype not in types:
            raise EpisodeDataError(f"{name} topic {topic} has type {msgtype}, expected {types}")
        use_header = config.stream_time_source(stream) == "header"
        routes.append(_Route(name, topic, msgtype, use_header))
    instruction = config.instruction.topic
    if config.task is None and instruction is not None:
        if instruction not in source.topics:
            raise EpisodeDataError(
                f"no task: the instruction topic {instruction} is not in the bag and no task "
                "was given (--task or `task:` in the config)"
            )
        if source.topics[instruction] != "std_msgs/msg/String":
            raise EpisodeDataError(
                f"instruction topic {instruction} has type {source.topics[instruction]}, "
                "expected std_msgs/msg/String"
            )
        routes.append(_Route(INSTRUCTION, instruction, "std_msgs/msg/String", False))
    return routes


def _specs(routes: list[_Route], config: ConvertConfig) -> list[StreamSpec]:
    specs = []
    for route in routes:
        if route.stream == INSTRUCTION:
            specs.append(
                StreamSpec(INSTRUCTION, None, required=True, filter_latched=False, sparse=True)
            )
        else:
            max_age = _stream_config(config, route.stream).max_age_s
            specs.append(StreamSpec(route.stream, round(max_age * NS_PER_S)))
    return specs


def _stream_config(config: ConvertConfig, stream: str) -> StreamConfig:
    if stream.startswith(CAMERA_PREFIX):
        return config.cameras[stream[len(CAMERA_PREFIX) :]]
    return {STATE: config.state, ACTION: config.action}[stream]


# --------------------------------------------------------------------------- decoding


class _Decoder:
    """Decodes the as-of samples of a frame; caches the last message of every stream."""

    def __init__(self, source: BagSource, routes: list[_Route], config: ConvertConfig):
        self._source = source
        self._topics = {r.stream: r.topic for r in routes}
        self._config = config
        self._cache: dict[str, tuple[int, Any]] = {}

    def _decode(self, stream: str, sample: Sample, decode: Callable[[Any], Any]) -> Any:
        message = self._source.deserialize(sample.payload, self._topics[stream])
        try:
            return decode(message)
        except ConversionError as exc:
            seconds = sample.stamp_ns / NS_PER_S
            raise ConversionError(f"{stream} message stamped {seconds:.3f} s: {exc}") from exc

    def _cached(self, stream: str, frame: Frame, decode: Callable[[Any], Any]) -> Any:
        sample = frame.samples[stream]
        hit = self._cache.get(stream)
        if hit is not None and hit[0] == sample.stamp_ns:
            return hit[1]
        value = self._decode(stream, sample, decode)
        self._cache[stream] = (sample.stamp_ns, value)
        return value

    def image_job(self, camera: str, frame: Frame) -> tuple[int, Callable[[], np.ndarray]]:
        """(message stamp, decode): the camera's own thread decodes (JPEG in parallel)."""
        stream = CAMERA_PREFIX + camera
        sample = frame.samples[stream]
        resize = self._config.cameras[camera].resize
        return sample.stamp_ns, functools.partial(
            self._decode, stream, sample, functools.partial(_rgb, resize=resize)
        )

    def state(self, frame: Frame) -> np.ndarray:
        names = self._config.state.joint_names
        return self._cached(STATE, frame, lambda m: _finite(joint_positions(m, names), "state"))

    def action(self, frame: Frame) -> np.ndarray:
        return self._cached(ACTION, frame, self._first_point)

    def _first_point(self, message: Any) -> np.ndarray:
        positions, _ = trajectory_points(message, self._config.state.joint_names)
        if positions.shape[0] == 0:
            raise ConversionError("JointTrajectory has no points")
        return _finite(positions[0], "action")

    def instruction(self, frame: Frame) -> str | None:
        if INSTRUCTION not in frame.samples or frame.samples[INSTRUCTION] is None:
            return None
        return self._cached(INSTRUCTION, frame, lambda m: str(m.data).strip())


def _rgb(message: Any, resize: tuple[int, int] | None) -> np.ndarray:
    rgb = image_to_rgb(message)
    if resize is not None and rgb.shape[:2] != tuple(resize):
        from PIL import Image as PILImage

        height, width = resize
        resized = PILImage.fromarray(rgb).resize((width, height), PILImage.Resampling.BILINEAR)
        rgb = np.asarray(resized)
    return rgb


def _finite(values: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        raise ConversionError(f"{what} has non-finite values {values.tolist()}")
    return values


# --------------------------------------------------------------------------- segments


class _SegmentWriter:
    """Accumulates one segment: encodes images, keeps state/action/ages arrays."""

    def __init__(self, directory: Path, config: ConvertConfig, task: str):
        self.directory = directory
        directory.mkdir(parents=True)
        self.config = config
        self.task = task
        video = config.video
        self.cameras = {
            name: CameraSink(
                VideoEncoder(
                    directory / f"{name}.mp4",
                    config.fps,
                    codec=video.codec,
                    crf=video.crf,
                    preset=video.preset,
                    gop=video.gop,
                    threads=video.threads,
                    pix_fmt=video.pix_fmt,
                )
            )
            for name in config.cameras
        }
        self.states: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.times: list[int] = []
        self.fresh: list[bool] = []
        self.ages: dict[str, list[int]] = {}
        self._held: tuple | None = None  # next_state: the frame waiting for its action

    def add(self, frame: Frame, images: dict, state: np.ndarray, action, fresh: bool) -> None:
        if self.config.action.source == "next_state":
            if self._held is not None:
                self._commit(
                    *self._held[:2], state=self._held[2], action=state, fresh=self._held[3]
                )
            self._held = (frame, images, state, fresh)
            return
        self._commit(frame, images, state=state, action=action, fresh=fresh)

    def _commit(self, frame: Frame, images: dict, *, state, action, fresh: bool) -> None:
        for name, (key, decode) in images.items():
            self.cameras[name].add(key, decode)
        self.states.append(state)
        self.actions.append(action)
        self.times.append(frame.time_ns)
        self.fresh.append(fresh)
        for stream, sample in frame.samples.items():
            if sample is not None:
                self.ages.setdefault(stream, []).append(frame.time_ns - sample.stamp_ns)

    def close(self) -> None:
        errors = []
        for camera in self.cameras.values():  # close all, even after one failed
            try:
                camera.close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def discard(self) -> None:
        with contextlib.suppress(Exception):  # the segment is dropped anyway
            self.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def finish(self, specs: dict[str, StreamSpec]) -> SegmentResult | str:
        """Writes frames.npz and returns the result, or the reason the segment is dropped."""
        self.close()
        length = len(self.times)
        min_frames = max(1, round(self.config.timing.min_episode_s * self.config.fps))
        if length < min_frames:
            return f"{length} frames, fewer than min_episode_s ({min_frames} frames)"
        match_rate = float(np.mean(self.fresh))
        if match_rate < self.config.timing.min_match_rate:
            return (
                f"match rate {match_rate:.3f} below timing.min_match_rate "
                f"{self.config.timing.min_match_rate}"
            )
        np.savez(
            self.directory / "frames.npz",
            state=np.asarray(self.states, np.float32),  # (N, D)
            action=np.asarray(self.actions, np.float32),  # (N, D)
            time_ns=np.asarray(self.times, np.int64),  # (N,)
        )
        sync = {
            stream: stream_report(np.asarray(ages, np.int64), specs[stream].max_age_ns)
            for stream, ages in self.ages.items()
        }
        return SegmentResult(
            directory=self.directory.name,
            length=length,
            task=self.task,
            start_ns=self.times[0],
            match_rate=match_rate,
            sync=sync,
            image_stats={name: c.histogram.to_dict() for name, c in self.cameras.items()},
            image_sizes={name: list(c.size) for name, c in self.cameras.items()},
        )


class _Segmenter:
    """Decides where segments start and end: freshness, gaps, instruction changes."""

    def __init__(self, work_dir, config, decoder, specs, result: BagResult, origin_ns: int):
        self.work_dir = work_dir
        self.origin_ns = origin_ns  # bag start: report times are seconds since then
        self.config = config
        self.decoder = decoder
        self.specs = {spec.name: spec for spec in specs}
        self.result = result
        self.writer: _SegmentWriter | None = None
        self.pending: list[Frame] = []  # stale frames kept until a fresh frame follows
        self.stopped = False
        self.opened = 0
        self.untasked = 0  # fresh frames outside any episode: empty instruction
        self.last_ns = 0
        self._max_gap_ns = round(config.timing.max_gap_s * NS_PER_S)

    def _is_fresh(self, frame: Frame) -> bool:
        for name, spec in self.specs.items():
            if spec.max_age_ns is not None and frame.age_ns(name) > spec.max_age_ns:
                return False
        return True

    def on_frame(self, frame: Frame) -> None:
        if self.stopped:
            return
        self.last_ns = frame.time_ns
        instruction = self.decoder.instruction(frame)
        if (
            self.writer is not None
            and self.config.instruction.split_episodes
            and self.config.task is None
            and instruction != self.writer.task
        ):
            self._close(frame.time_ns)
        if not self._is_fresh(frame):
            if self.writer is not None:
                self._hold(frame)
            return
        if self.writer is None:
            task = self.config.task or instruction
            if not task:
                self.untasked += 1
                return
            self._open(task)
        for held in self.pending:
            self._add(held, fresh=False)
        self.pending.clear()
        self._add(frame, fresh=True)

    def _hold(self, frame: Frame) -> None:
        self.pending.append(frame)
        if frame.time_ns - self.pending[0].time_ns > self._max_gap_ns:
            start = self.pending[0].time_ns
            self.pending.clear()
            at = (start - self.origin_ns) / NS_PER_S
            self._close(start, cut=f"stale for more than timing.max_gap_s from {at:.3f} s")
            if self.config.timing.gap_policy == "truncate":
                self.stopped = True

    def _open(self, task: str) -> None:
        directory = self.work_dir / f"segment-{self.opened:03d}"
        self.opened += 1
        self.writer = _SegmentWriter(directory, self.config, task)

    def _add(self, frame: Frame, fresh: bool) -> None:
        images = {name: self.decoder.image_job(name, frame) for name in self.config.cameras}
        state = self.decoder.state(frame)
        action = self.decoder.action(frame) if self.config.action.source == "trajectory" else None
        self.writer.add(frame, images, state, action, fresh)

    def _close(self, end_ns: int, cut: str | None = None) -> None:
        writer, self.writer = self.writer, None
        self.pending.clear()
        if writer is None:
            return
        outcome = writer.finish(self.specs)
        at_s = round((end_ns - self.origin_ns) / NS_PER_S, 3)  # seconds since the bag start
        if isinstance(outcome, SegmentResult):
            self.result.segments.append(outcome)
            if cut:
                self.result.dropped.append({"at_s": at_s, "reason": f"episode cut: {cut}"})
        else:
            writer.discard()
            self.result.dropped.append({"at_s": at_s, "reason": f"episode dropped: {outcome}"})

    def finish(self) -> None:
        self._close(self.last_ns)  # trailing stale frames (pending) are trimmed
        if self.untasked:
            self.result.dropped.append(
                {
                    "at_s": None,
                    "reason": f"{self.untasked} frames without a task (empty instruction)",
                }
            )

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.discard()
            self.writer = None


# --------------------------------------------------------------------------- entry point


def convert_bag(
    bag: Path,
    fingerprint: str,
    config: ConvertConfig,
    work_dir: Path,
    *,
    progress: Callable[[float], None] | None = None,
) -> BagResult:
    """Convert one bag into segment directories under ``work_dir``; never raises for bad data."""
    result = BagResult(bag=str(bag), fingerprint=fingerprint)
    segmenter = None
    try:
        with BagSource(bag, config.typestore) as source:
            result.duration_s = source.duration_ns / NS_PER_S
            routes = _routes(source, config)
            specs = _specs(routes, config)
            timing = config.timing
            resampler = AsOfResampler(
                specs,
                config.fps,
                reorder_window_ns=round(timing.reorder_window_s * NS_PER_S),
                latched_gap_ns=round(timing.latched_gap_s * NS_PER_S),
                max_wait_ns=round(timing.max_gap_s * NS_PER_S),
            )
            decoder = _Decoder(source, routes, config)
            segmenter = _Segmenter(work_dir, config, decoder, specs, result, source.start_time_ns)
            _run(source, routes, resampler, segmenter, progress)
            if resampler.start_ns is None:
                missing = resampler.missing_streams()
                raise EpisodeDataError(f"no frame: stream(s) {missing} have no usable message")
            for frame in resampler.finish():
                segmenter.on_frame(frame)
            segmenter.finish()
            result.messages = {k: dataclasses.asdict(v) for k, v in resampler.counters.items()}
            _check_monotonic(result.messages)
    except (BagError, EpisodeDataError, ConversionError, VideoError) as exc:
        result.error = str(exc)
    except Exception as exc:  # never let one bag crash the dataset: report it instead
        where = traceback.extract_tb(exc.__traceback__)[-1]
        result.error = (
            f"unexpected {type(exc).__name__}: {exc} (at {Path(where.filename).name}:"
            f"{where.lineno})"
        )
    if result.error is not None:
        if segmenter is not None:
            segmenter.abort()
        for segment in result.segments:
            shutil.rmtree(work_dir / segment.directory, ignore_errors=True)
        result.segments = []
    return result


MAX_OUT_OF_ORDER_FRACTION = 0.05


def _check_monotonic(messages: dict[str, dict]) -> None:
    """Too many messages older than their predecessor: the stamps jumped back (clock reset)."""
    for stream, counts in messages.items():
        if (
            counts["received"]
            and counts["out_of_order"] > MAX_OUT_OF_ORDER_FRACTION * counts["received"]
        ):
            raise EpisodeDataError(
                f"{stream}: {counts['out_of_order']} of {counts['received']} messages have "
                "non-monotonic stamps (older than an earlier message: clock jump?)"
            )


def _run(source, routes, resampler, segmenter, progress) -> None:
    by_topic = {route.topic: route for route in routes}
    start = source.start_time_ns
    last_report = start
    for topic, log_ns, raw in source.messages(by_topic):
        route = by_topic[topic]
        stamp = header_stamp_ns(raw) if route.use_header else log_ns
        if route.use_header and stamp == 0:
            raise EpisodeDataError(
                f"{route.stream} topic {topic} has header.stamp 0 (unset); set its "
                "time_source: receive in the config"
            )
        for frame in resampler.push(route.stream, stamp, raw):
            segmenter.on_frame(frame)
        if progress is not None and log_ns - last_report > NS_PER_S:
            progress((log_ns - last_report) / NS_PER_S)
            last_report = log_ns
    if progress is not None:
        progress(max(0, start + source.duration_ns - last_report) / NS_PER_S)
