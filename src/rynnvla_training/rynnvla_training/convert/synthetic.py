"""Synthetic rosbag2 recordings with known ground truth (for tests and the benchmark).

The arm follows smooth sinusoids ``joint_truth(t)``; the commanded action leads the state by
``ACTION_LEAD_S``. Every camera frame carries its frame number as a block-bit code that
survives JPEG and H.264 (``read_frame_code``), so a converted dataset can be checked frame by
frame against the exact list of messages written (``Recording.messages``).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

from rynnvla_policy.conversions import ns_to_stamp, rgb_to_compressed_image, rgb_to_image

from .config import DEFAULT_JOINTS

NS_PER_S = 1_000_000_000
ACTION_LEAD_S = 0.1
CODE_BITS = 16
BLOCK = 8  # code block size in pixels (>= 8 keeps it readable through 4:2:0 video)
START_NS = 1_700_000_000 * NS_PER_S


def joint_truth(t_s: np.ndarray | float) -> np.ndarray:
    """Ground-truth joint positions at times ``t_s`` (seconds since start): (..., 6)."""
    t = np.asarray(t_s, dtype=np.float64)[..., None]
    freq = np.array([0.3, 0.5, 0.7, 0.4, 0.6, 0.25])
    phase = np.arange(6) * 0.7
    return 0.8 * np.sin(2 * np.pi * freq * t + phase)


def action_truth(t_s: np.ndarray | float) -> np.ndarray:
    return joint_truth(np.asarray(t_s, dtype=np.float64) + ACTION_LEAD_S)


def write_frame_code(image: np.ndarray, number: int) -> None:
    """Paints ``number`` as CODE_BITS black/white blocks in the top rows of ``image``."""
    per_row = image.shape[1] // BLOCK
    for bit in range(CODE_BITS):
        row, col = divmod(bit, per_row)
        value = 255 if (number >> bit) & 1 else 0
        image[row * BLOCK : (row + 1) * BLOCK, col * BLOCK : (col + 1) * BLOCK] = value


def read_frame_code(image: np.ndarray) -> int:
    """Inverse of ``write_frame_code`` on a (lossily) decoded image."""
    per_row = image.shape[1] // BLOCK
    number = 0
    for bit in range(CODE_BITS):
        row, col = divmod(bit, per_row)
        block = image[
            row * BLOCK + 2 : (row + 1) * BLOCK - 2, col * BLOCK + 2 : (col + 1) * BLOCK - 2
        ]
        if block.mean() > 127:
            number |= 1 << bit
    return number


@dataclasses.dataclass(frozen=True)
class RecordingSpec:
    """What to record. Times in seconds; sizes (H, W)."""

    duration_s: float = 4.0
    image_size: tuple[int, int] = (96, 128)  # x264 output is not repeatable below ~96 px
    camera_hz: float = 30.0
    state_hz: float = 200.0
    action_hz: float = 30.0
    cameras: tuple[str, ...] = ("front", "wrist")
    image_format: str = "raw"  # raw | jpeg
    encoding: str = "rgb8"
    storage: str = "sqlite3"  # sqlite3 | mcap
    compressed: bool = False  # rosbag2 file compression (zstd)
    jitter_s: float = 0.002  # std of capture-time jitter around the nominal period
    latency_s: tuple[float, float] = (0.004, 0.016)  # receive - capture, uniform
    drop_rate: float = 0.0  # fraction of camera / state messages lost
    instructions: tuple[tuple[float, str], ...] = ((0.0, "put the green block on the plate"),)
    latched_state_age_s: float | None = None  # add a stale latched joint state this old
    camera_gap_s: tuple[float, float] | None = None  # no camera messages in [start, end)
    state_clock_jump: tuple[float, float] | None = None  # (at_s, jump_s): stamps jump by jump_s
    typestore: str = "latest"
    seed: int = 0
    noise: int = 0  # amplitude of per-pixel sensor noise (0: clean images)


@dataclasses.dataclass
class Recording:
    """The written bag and its ground truth: per stream, (header stamp ns, receive ns, value)."""

    path: Path
    messages: dict[str, list[tuple[int, int, object]]]


def _topic(camera: str, image_format: str) -> str:
    suffix = "/compressed" if image_format == "jpeg" else ""
    return f"/camera/{camera}/image_raw{suffix}"


class _Scene:
    """Camera images: a gradient, a moving square, sensor noise, the frame code."""

    def __init__(self, size: tuple[int, int], seed: int, noise: int = 0):
        height, width = size
        yy, xx = np.mgrid[0:height, 0:width]
        self.background = np.stack(
            [xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1), (xx + yy) % 256], -1
        ).astype(np.uint8)
        self.size = size
        self.shade = 40 + (seed * 37) % 160
        rng = np.random.default_rng(seed)
        # a small bank of noise frames, cycled: realistic for the encoder, cheap to render
        self.noise = (
            [rng.integers(0, noise + 1, (height, width, 1), dtype=np.uint8) for _ in range(7)]
            if noise
            else []
        )

    def render(self, number: int, t_s: float) -> np.ndarray:
        height, width = self.size
        image = self.background.copy()
        side = max(4, min(height, width) // 6)
        cx = int((width - side) * (0.5 + 0.4 * np.sin(t_s)))
        cy = int((height - side) * (0.5 + 0.4 * np.cos(0.7 * t_s)))
        image[cy : cy + side, cx : cx + side] = (self.shade, 200, 60)
        if self.noise:
            np.minimum(image, 255 - self.noise[number % len(self.noise)], out=image)
            image += self.noise[number % len(self.noise)]
        write_frame_code(image, number)
        return image


def _times(rng, hz: float, duration_s: float, jitter_s: float) -> np.ndarray:
    nominal = np.arange(0.0, duration_s, 1.0 / hz)
    jitter = rng.normal(0.0, jitter_s, nominal.shape) if jitter_s else 0.0
    return np.sort(np.clip(nominal + jitter, 0.0, None))


def write_recording(path: Path, spec: RecordingSpec = RecordingSpec()) -> Recording:
    """Writes a rosbag2 directory at ``path`` (must not exist) and returns its ground truth."""
    from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores(spec.typestore))
    types = store.types
    rng = np.random.default_rng(spec.seed)
    plugin = StoragePlugin.MCAP if spec.storage == "mcap" else StoragePlugin.SQLITE3
    writer = Writer(path, version=9, storage_plugin=plugin)
    if spec.compressed:
        writer.set_compression(CompressionMode.FILE, CompressionFormat.ZSTD)

    # (receive ns, sequence, topic, make_message): messages are built lazily while writing, so
    # memory stays small whatever the duration
    events: list[tuple[int, int, str, object]] = []
    truth: dict[str, list[tuple[int, int, object]]] = {}

    def add(stream: str, topic: str, stamp: int, make, value: object) -> None:
        received = stamp + int(rng.uniform(*spec.latency_s) * NS_PER_S)
        events.append((received, len(events), topic, make))
        truth.setdefault(stream, []).append((stamp, received, value))

    for index, camera in enumerate(spec.cameras):
        scene = _Scene(spec.image_size, spec.seed + index, spec.noise)
        for number, t in enumerate(_times(rng, spec.camera_hz, spec.duration_s, spec.jitter_s)):
            if rng.random() < spec.drop_rate or _in(spec.camera_gap_s, t):
                continue
            stamp = START_NS + int(t * NS_PER_S)
            make = _image_factory(types, spec, scene, number, float(t), stamp)
            add(f"camera.{camera}", _topic(camera, spec.image_format), stamp, make, number)

    for t in _times(rng, spec.state_hz, spec.duration_s, spec.jitter_s / 4):
        if rng.random() < spec.drop_rate:
            continue
        stamp = START_NS + int(t * NS_PER_S)
        make = _factory(_joint_state, types, stamp, joint_truth(t))
        if spec.state_clock_jump is not None and t >= spec.state_clock_jump[0]:
            # receive time follows the true time; the header clock jumps
            jumped = stamp + int(spec.state_clock_jump[1] * NS_PER_S)
            make = _factory(_joint_state, types, jumped, joint_truth(t))
            events.append(
                (stamp + int(spec.latency_s[0] * NS_PER_S), len(events), "/joint_states", make)
            )
            continue
        add("state", "/joint_states", stamp, make, float(t))
    if spec.latched_state_age_s is not None:
        stamp = START_NS - int(spec.latched_state_age_s * NS_PER_S)
        make = _factory(_joint_state, types, stamp, np.full(6, 9.0))
        events.append((START_NS, -1, "/joint_states", make))

    for t in np.arange(0.0, spec.duration_s, 1.0 / spec.action_hz):
        stamp = START_NS + int(t * NS_PER_S)
        make = _factory(_trajectory, types, stamp, action_truth(t))
        add("action", "/arm_controller/joint_trajectory", stamp, make, float(t))

    for t, text in spec.instructions:
        stamp = START_NS + int(t * NS_PER_S)
        make = functools.partial(types["std_msgs/msg/String"], data=text)
        events.append((stamp, len(events), "/instruction", make))
        truth.setdefault("instruction", []).append((stamp, stamp, text))

    _write_sorted(writer, store, events)
    return Recording(path=Path(path), messages=truth)


def _in(interval: tuple[float, float] | None, t: float) -> bool:
    return interval is not None and interval[0] <= t < interval[1]


def _factory(build, types, stamp: int, positions: np.ndarray):
    return lambda: build(types, _header(types, stamp), positions)


def _header(types, stamp: int):
    time = ns_to_stamp(stamp, types["builtin_interfaces/msg/Time"])
    return types["std_msgs/msg/Header"](stamp=time, frame_id="")


def _image_factory(types, spec: RecordingSpec, scene: _Scene, number: int, t: float, stamp: int):
    def make():
        rgb = scene.render(number, t)
        if spec.image_format == "jpeg":
            cls = types["sensor_msgs/msg/CompressedImage"]
            return rgb_to_compressed_image(rgb, cls, quality=90, stamp_ns=stamp)
        cls = types["sensor_msgs/msg/Image"]
        return rgb_to_image(rgb, cls, encoding=spec.encoding, stamp_ns=stamp)

    return make


def _joint_state(types, header, positions: np.ndarray):
    return types["sensor_msgs/msg/JointState"](
        header=header,
        name=list(DEFAULT_JOINTS),
        position=np.asarray(positions, np.float64),
        velocity=np.zeros(0),
        effort=np.zeros(0),
    )


def _trajectory(types, header, positions: np.ndarray):
    duration = types["builtin_interfaces/msg/Duration"]
    point = types["trajectory_msgs/msg/JointTrajectoryPoint"](
        positions=np.asarray(positions, np.float64),
        velocities=np.zeros(0),
        accelerations=np.zeros(0),
        effort=np.zeros(0),
        time_from_start=ns_to_stamp(NS_PER_S // 30, duration),
    )
    return types["trajectory_msgs/msg/JointTrajectory"](
        header=header, joint_names=list(DEFAULT_JOINTS), points=[point]
    )


def _write_sorted(writer, store, events) -> None:
    events.sort(key=lambda event: (event[0], event[1]))
    with writer:
        connections = {}
        for received, _, topic, make in events:
            message = make()
            if topic not in connections:
                connections[topic] = writer.add_connection(
                    topic, message.__msgtype__, typestore=store
                )
            writer.write(
                connections[topic], received, store.serialize_cdr(message, message.__msgtype__)
            )
