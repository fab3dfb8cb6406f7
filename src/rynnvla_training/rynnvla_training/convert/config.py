"""Mapping config of the rosbag -> LeRobot v3 converter: dataclasses that validate themselves.

The shipped default is ``config/convert_default.yaml`` (installed to
``share/rynnvla_training/config``); a user YAML only overrides the fields it names. Every
field is documented once, here. Errors name the field path and the bad value.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import typing
from pathlib import Path
from typing import Any

import yaml

from rynnvla_policy.core.joints import SO100_JOINT_NAMES

TIME_SOURCES = ("header", "receive")
ACTION_SOURCES = ("trajectory", "next_state")
GAP_POLICIES = ("split", "truncate")
VIDEO_CODECS = ("h264", "av1")
# pixel formats per codec (the first is the default): SVT-AV1 encodes 4:2:0 only
PIXEL_FORMATS: dict[str, tuple[str, ...]] = {"h264": ("yuv420p", "yuv444p"), "av1": ("yuv420p",)}
DEFAULT_JOINTS = SO100_JOINT_NAMES  # the converter's default state joints


class ConfigError(ValueError):
    """A config field has a bad value; the message names the field path and the value."""


def _check(condition: bool, field: str, value: Any, expected: str) -> None:
    if not condition:
        raise ConfigError(f"{field} = {value!r}: expected {expected}")


def _topics(value: str | list[str] | tuple[str, ...], field: str) -> tuple[str, ...]:
    topics = (value,) if isinstance(value, str) else tuple(value)
    _check(
        len(topics) > 0 and all(isinstance(t, str) and t.startswith("/") for t in topics),
        field,
        value,
        "a topic name starting with '/' or a list of candidate topics",
    )
    return topics


@dataclasses.dataclass(frozen=True)
class StreamConfig:
    """One recorded topic sampled "as-of" at every frame time.

    topic: the topic, or a list of candidates (the first one present in a bag is used, e.g.
        ``[/camera/front/image_raw, /camera/front/image_raw/compressed]``).
    max_age_s: a sample older than this at a frame time is stale (counts against the match
        rate; a stale stretch longer than ``timing.max_gap_s`` cuts the episode).
    time_source: "header" (the message's header.stamp: capture time, the right choice) or
        "receive" (the bag's log time); null = the global ``time_source``.
    """

    topic: str | tuple[str, ...] = ""
    max_age_s: float = 0.1
    time_source: str | None = None

    def validated(self, field: str) -> StreamConfig:
        topics = _topics(self.topic, f"{field}.topic")
        _check(
            _is_number(self.max_age_s) and self.max_age_s > 0,
            f"{field}.max_age_s",
            self.max_age_s,
            "a positive number of seconds",
        )
        _check(
            self.time_source is None or self.time_source in TIME_SOURCES,
            f"{field}.time_source",
            self.time_source,
            f"one of {TIME_SOURCES} or null",
        )
        return dataclasses.replace(self, topic=topics)

    @property
    def topics(self) -> tuple[str, ...]:
        return self.topic if isinstance(self.topic, tuple) else (self.topic,)


@dataclasses.dataclass(frozen=True)
class StateConfig(StreamConfig):
    """sensor_msgs/JointState stream; ``joint_names`` picks and orders the state vector."""

    topic: str | tuple[str, ...] = "/joint_states"
    max_age_s: float = 0.05
    joint_names: tuple[str, ...] = DEFAULT_JOINTS

    def validated(self, field: str) -> StateConfig:
        base = StreamConfig.validated(self, field)
        names = tuple(self.joint_names)
        _check(
            len(names) > 0
            and all(isinstance(n, str) and n for n in names)
            and len(set(names)) == len(names),
            f"{field}.joint_names",
            self.joint_names,
            "a non-empty list of distinct joint names",
        )
        return dataclasses.replace(self, topic=base.topic, joint_names=names)


@dataclasses.dataclass(frozen=True)
class ActionConfig(StreamConfig):
    """Where the action (absolute joint targets, state order) comes from.

    source: "trajectory" = the latest trajectory_msgs/JointTrajectory on ``topic`` at or
        before the frame time, its first point's positions (the commanded target);
        "next_state" = the state of the next frame (the episode's last frame is dropped).
    """

    topic: str | tuple[str, ...] = "/arm_controller/joint_trajectory"
    max_age_s: float = 0.5
    source: str = "trajectory"

    def validated(self, field: str) -> ActionConfig:
        _check(
            self.source in ACTION_SOURCES,
            f"{field}.source",
            self.source,
            f"one of {ACTION_SOURCES}",
        )
        base = StreamConfig.validated(self, field)
        return dataclasses.replace(self, topic=base.topic)


@dataclasses.dataclass(frozen=True)
class CameraConfig(StreamConfig):
    """sensor_msgs/Image or CompressedImage stream (the type is read from the bag).

    resize: optional [height, width]; frames are resized (bilinear) before encoding.
    """

    max_age_s: float = 0.1
    resize: tuple[int, int] | None = None

    def validated(self, field: str) -> CameraConfig:
        base = StreamConfig.validated(self, field)
        resize = None if self.resize is None else tuple(self.resize)
        _check(
            resize is None
            or (len(resize) == 2 and all(isinstance(v, int) and v > 0 for v in resize)),
            f"{field}.resize",
            self.resize,
            "null or [height, width] positive ints",
        )
        return dataclasses.replace(self, topic=base.topic, resize=resize)


@dataclasses.dataclass(frozen=True)
class InstructionConfig:
    """std_msgs/String instruction topic (the language task), sampled by receive time.

    topic: null disables it. split_episodes: start a new episode whenever the instruction
    changes inside a bag (otherwise one bag = one episode, task = its first instruction).
    """

    topic: str | None = "/instruction"
    split_episodes: bool = False

    def validated(self, field: str) -> InstructionConfig:
        if self.topic is not None:
            _topics(self.topic, f"{field}.topic")
        _check(
            isinstance(self.split_episodes, bool),
            f"{field}.split_episodes",
            self.split_episodes,
            "true or false",
        )
        return self


@dataclasses.dataclass(frozen=True)
class TimingConfig:
    """Time alignment.

    reorder_window_s: how long to wait for late (out of order) messages before a frame is
        final; messages arriving later than that are dropped and counted.
    latched_gap_s: a stream's leading message followed by a gap longer than this is a stale
        latched message (recorded before the bag started) and is dropped.
    max_gap_s: a stale stretch (some stream older than its max_age_s) longer than this cuts
        the episode: "split" starts a new episode when all streams are fresh again,
        "truncate" ends the episode there.
    min_match_rate: an episode whose fraction of fully fresh frames is below this is skipped.
    min_episode_s: episodes shorter than this are skipped.
    """

    reorder_window_s: float = 0.05
    latched_gap_s: float = 1.0
    max_gap_s: float = 1.0
    gap_policy: str = "split"
    min_match_rate: float = 0.9
    min_episode_s: float = 1.0

    def validated(self, field: str) -> TimingConfig:
        for name in ("reorder_window_s", "latched_gap_s", "max_gap_s", "min_episode_s"):
            value = getattr(self, name)
            _check(_is_number(value) and value >= 0, f"{field}.{name}", value, "seconds >= 0")
        _check(
            self.gap_policy in GAP_POLICIES,
            f"{field}.gap_policy",
            self.gap_policy,
            f"one of {GAP_POLICIES}",
        )
        _check(
            _is_number(self.min_match_rate) and 0 <= self.min_match_rate <= 1,
            f"{field}.min_match_rate",
            self.min_match_rate,
            "a number in [0, 1]",
        )
        return self


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """Train/validation split: ``val_fraction`` of the episodes (seeded choice) go to "val"."""

    val_fraction: float = 0.0
    seed: int = 0

    def validated(self, field: str) -> SplitConfig:
        _check(
            _is_number(self.val_fraction) and 0 <= self.val_fraction < 1,
            f"{field}.val_fraction",
            self.val_fraction,
            "a number in [0, 1)",
        )
        _check(isinstance(self.seed, int), f"{field}.seed", self.seed, "an int")
        return self


@dataclasses.dataclass(frozen=True)
class VideoConfig:
    """Video encoding: H.264 (libx264) by default, AV1 (SVT-AV1) optional.

    crf: constant rate factor (lower = better, bigger; 0 = lossless for H.264). pix_fmt:
    yuv420p (default, plays everywhere) or yuv444p (H.264 only: full-resolution colour, for
    datasets whose policy sees small coloured objects at low resolution). preset: encoder speed preset
    (x264 names like "veryfast"; SVT-AV1 takes 0-13, 13 fastest). gop: keyframe interval
    in frames (small = faster random access, bigger files). threads: encoder threads per
    video; fixed (not "all cores") because the bitstream depends on it, so that the same bags
    always give the same dataset whatever the machine or the number of workers. The quality /
    speed trade-off of these settings is measured in convert/README.md (Performance).
    """

    codec: str = "h264"
    crf: int = 23
    preset: str = "ultrafast"
    gop: int = 30
    threads: int = 2
    pix_fmt: str = "yuv420p"

    def validated(self, field: str) -> VideoConfig:
        _check(self.codec in VIDEO_CODECS, f"{field}.codec", self.codec, f"one of {VIDEO_CODECS}")
        formats = PIXEL_FORMATS[self.codec]
        _check(
            self.pix_fmt in formats,
            f"{field}.pix_fmt",
            self.pix_fmt,
            f"one of {formats} for {self.codec}",
        )
        _check(
            isinstance(self.crf, int) and 0 <= self.crf <= 63,
            f"{field}.crf",
            self.crf,
            "an int in [0, 63]",
        )
        _check(isinstance(self.gop, int) and self.gop >= 1, f"{field}.gop", self.gop, "an int >= 1")
        _check(isinstance(self.preset, str | int), f"{field}.preset", self.preset, "a preset name")
        _check(
            isinstance(self.threads, int) and 1 <= self.threads <= 16,
            f"{field}.threads",
            self.threads,
            "an int in [1, 16]",
        )
        return dataclasses.replace(self, preset=str(self.preset))


@dataclasses.dataclass(frozen=True)
class StatisticsConfig:
    """Settings of our processor statistics (relative action chunks), see core/actions.py."""

    chunk_length: int = 20
    absolute_dims: tuple[int, ...] = (5,)

    def validated(self, field: str) -> StatisticsConfig:
        _check(
            isinstance(self.chunk_length, int) and self.chunk_length >= 1,
            f"{field}.chunk_length",
            self.chunk_length,
            "an int >= 1",
        )
        dims = tuple(self.absolute_dims)
        _check(
            all(isinstance(d, int) and d >= 0 for d in dims),
            f"{field}.absolute_dims",
            self.absolute_dims,
            "a list of non-negative ints",
        )
        return dataclasses.replace(self, absolute_dims=dims)


@dataclasses.dataclass(frozen=True)
class ConvertConfig:
    """The whole mapping.

    fps: output frame rate (an integer, as LeRobot requires).
    time_source: default time base of every stream ("header" or "receive").
    typestore: message definitions used for bags that do not embed theirs (rosbags store
        name: "latest", "ros2_humble", "ros2_jazzy", ...).
    cameras: camera name -> stream (feature ``observation.images.<name>``).
    task: fixed task text for every episode (overrides the instruction topic); null = read it
        from ``instruction.topic``.
    robot_type: written to meta/info.json.
    """

    fps: int = 30
    time_source: str = "header"
    typestore: str = "latest"
    cameras: dict[str, CameraConfig] = dataclasses.field(
        default_factory=lambda: {  # raw images, or else their compressed transport
            name: CameraConfig(
                topic=(f"/camera/{name}/image_raw", f"/camera/{name}/image_raw/compressed")
            )
            for name in ("front", "wrist")
        }
    )
    state: StateConfig = dataclasses.field(default_factory=StateConfig)
    action: ActionConfig = dataclasses.field(default_factory=ActionConfig)
    instruction: InstructionConfig = dataclasses.field(default_factory=InstructionConfig)
    task: str | None = None
    timing: TimingConfig = dataclasses.field(default_factory=TimingConfig)
    split: SplitConfig = dataclasses.field(default_factory=SplitConfig)
    video: VideoConfig = dataclasses.field(default_factory=VideoConfig)
    statistics: StatisticsConfig = dataclasses.field(default_factory=StatisticsConfig)
    robot_type: str = "so100"

    def __post_init__(self) -> None:
        _check(
            isinstance(self.fps, int) and not isinstance(self.fps, bool) and self.fps > 0,
            "fps",
            self.fps,
            "a positive int",
        )
        _check(self.time_source in TIME_SOURCES, "time_source", self.time_source, str(TIME_SOURCES))
        _check(isinstance(self.cameras, dict), "cameras", self.cameras, "a mapping name -> stream")
        cameras = {}
        for name, camera in self.cameras.items():
            _check(
                isinstance(name, str) and name.replace("_", "").isalnum(),
                "cameras",
                name,
                "camera names made of letters, digits and '_'",
            )
            cameras[name] = camera.validated(f"cameras.{name}")
        object.__setattr__(self, "cameras", cameras)
        for name in ("state", "action", "instruction", "timing", "split", "video", "statistics"):
            object.__setattr__(self, name, getattr(self, name).validated(name))
        _check(
            self.task is None or (isinstance(self.task, str) and self.task.strip() != ""),
            "task",
            self.task,
            "null or a non-empty string",
        )
        dims = len(self.state.joint_names)
        _check(
            all(d < dims for d in self.statistics.absolute_dims),
            "statistics.absolute_dims",
            self.statistics.absolute_dims,
            f"indices below the state size {dims}",
        )
        from rosbags.typesys import Stores

        stores = tuple(store.value for store in Stores)
        _check(self.typestore in stores, "typestore", self.typestore, f"one of {stores}")

    def stream_time_source(self, stream: StreamConfig) -> str:
        return stream.time_source or self.time_source

    # ------------------------------------------------------------------ I/O

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ConvertConfig:
        """Build from a (YAML) dict; unknown keys are rejected with a near-miss suggestion."""
        return _build(cls, data or {}, "")

    @classmethod
    def from_yaml(cls, path: str | Path | None) -> ConvertConfig:
        """The shipped defaults overridden by the YAML at ``path`` (if any)."""
        if path is None:
            return cls()
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        if data is not None and not isinstance(data, dict):
            raise ConfigError(f"config {path} must be a mapping, got {type(data).__name__}")
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def fingerprint(self) -> str:
        """Hash of everything that changes the converted episodes (not the split)."""
        data = self.to_dict()
        data.pop("split")
        text = json.dumps(data, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _build(cls: type, data: Any, path: str) -> Any:
    """Recursively build dataclass ``cls`` from ``data`` (defaults for absent keys)."""
    where = path or "config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where} = {data!r}: expected a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [key for key in data if key not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), list(fields), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {sorted(fields)}"
        raise ConfigError(f"unknown field {path + '.' if path else ''}{key}{hint}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        field_path = f"{path}.{key}" if path else key
        kwargs[key] = _convert(hints[key], value, field_path)
    return cls(**kwargs)


def _convert(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path)
    if origin is dict:
        _, value_type = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{path} = {value!r}: expected a mapping")
        return {k: _convert(value_type, v, f"{path}.{k}") for k, v in value.items()}
    return value
