"""Tests for rynnvla_policy.conversions on rosbags dataclasses and rclpy messages alike."""

from __future__ import annotations

import array
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

from rynnvla_policy.conversions import (
    SUPPORTED_ENCODINGS,
    ConversionError,
    MissingJointsError,
    image_to_rgb,
    joint_positions,
    make_header,
    ns_to_stamp,
    rgb_to_compressed_image,
    rgb_to_image,
    stamp_to_ns,
    trajectory_points,
)

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


@dataclass(frozen=True)
class World:
    """The message classes of one world (rosbags typestore or rclpy wheels)."""

    name: str
    image: type
    compressed: type
    joint_state: type
    trajectory: type
    point: type
    duration: type
    time: type
    header: type
    serialize: Any  # msg -> bytes, proves the built message is well-typed

    def deserialize(self, raw: bytes, cls: type) -> Any:
        return self.serialize.deserialize(raw, cls)


class _RosbagsCodec:
    def __init__(self, store):
        self.store = store

    def __call__(self, msg):
        return self.store.serialize_cdr(msg, msg.__msgtype__)

    def deserialize(self, raw, cls):
        return self.store.deserialize_cdr(raw, cls.__msgtype__)


class _RclpyCodec:
    def __call__(self, msg):
        from rclpy.serialization import serialize_message

        return serialize_message(msg)

    def deserialize(self, raw, cls):
        from rclpy.serialization import deserialize_message

        return deserialize_message(raw, cls)


def _rosbags_world() -> World:
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    types = store.types
    return World(
        name="rosbags",
        image=types["sensor_msgs/msg/Image"],
        compressed=types["sensor_msgs/msg/CompressedImage"],
        joint_state=types["sensor_msgs/msg/JointState"],
        trajectory=types["trajectory_msgs/msg/JointTrajectory"],
        point=types["trajectory_msgs/msg/JointTrajectoryPoint"],
        duration=types["builtin_interfaces/msg/Duration"],
        time=types["builtin_interfaces/msg/Time"],
        header=types["std_msgs/msg/Header"],
        serialize=_RosbagsCodec(store),
    )


def _rclpy_world() -> World:
    sensor_msgs = pytest.importorskip("sensor_msgs.msg", reason="rclpy message wheels absent")
    trajectory_msgs = pytest.importorskip("trajectory_msgs.msg")
    builtin = pytest.importorskip("builtin_interfaces.msg")
    std_msgs = pytest.importorskip("std_msgs.msg")
    return World(
        name="rclpy",
        image=sensor_msgs.Image,
        compressed=sensor_msgs.CompressedImage,
        joint_state=sensor_msgs.JointState,
        trajectory=trajectory_msgs.JointTrajectory,
        point=trajectory_msgs.JointTrajectoryPoint,
        duration=builtin.Duration,
        time=builtin.Time,
        header=std_msgs.Header,
        serialize=_RclpyCodec(),
    )


@pytest.fixture(params=["rosbags", "rclpy"], scope="module")
def world(request) -> World:
    return _rosbags_world() if request.param == "rosbags" else _rclpy_world()


def _random_rgb(height=6, width=8, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _smooth_rgb(height=32, width=48) -> np.ndarray:
    """A gradient image: lossy codecs (JPEG, 4:2:2 chroma) reproduce it closely."""
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([xx * 255 // (width - 1), yy * 255 // (height - 1), (xx + yy) * 2 % 256], -1)
    return rgb.astype(np.uint8)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return np.repeat(rgb[:, :, :1], 3, axis=2)


def _raw_image(world: World, *, encoding, height, width, step, data, is_bigendian=0):
    payload = bytes(data)
    return world.image(
        header=world.header(stamp=world.time(sec=0, nanosec=0), frame_id=""),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=is_bigendian,
        step=step,
        data=array.array("B", payload)
        if world.name == "rclpy"
        else np.frombuffer(payload, np.uint8),
    )


# --------------------------------------------------------------------------- raw round trips

LOSSLESS = [e for e in SUPPORTED_ENCODINGS if e not in ("yuv422", "uyvy", "yuv422_yuy2", "yuyv")]
MONO = ("mono8", "8UC1", "mono16", "16UC1")


@pytest.mark.parametrize("encoding", LOSSLESS)
def test_raw_round_trip_every_lossless_encoding(world, encoding):
    rgb = _random_rgb()
    if encoding in MONO:
        rgb = _grey(rgb)  # mono keeps one channel: only grey images survive exactly
    msg = rgb_to_image(rgb, world.image, encoding=encoding, stamp_ns=1_500_000_000, frame_id="cam")
    assert msg.encoding == encoding
    assert msg.header.frame_id == "cam"
    assert stamp_to_ns(msg.header.stamp) == 1_500_000_000
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)
    # the built message is well-typed: it serialises and deserialises to the same image
    again = world.deserialize(world.serialize(msg), world.image)
    np.testing.assert_array_equal(image_to_rgb(again), rgb)


@pytest.mark.parametrize("encoding", ["yuv422", "uyvy", "yuv422_yuy2", "yuyv"])
def test_yuv422_round_trip_within_chroma_subsampling_tolerance(world, encoding):
    rgb = _smooth_rgb()
    out = image_to_rgb(rgb_to_image(rgb, world.image, encoding=encoding))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    error = np.abs(out.astype(int) - rgb.astype(int))
    assert error.mean() < 3.0 and error.max() < 20


@pytest.mark.parametrize("bigendian", [False, True])
def test_sixteen_bit_round_trip_both_endiannesses(world, bigendian):
    rgb = _random_rgb()
    msg = rgb_to_image(rgb, world.image, encoding="rgb16", bigendian=bigendian)
    assert msg.is_bigendian == int(bigendian)
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)


def test_known_values_bgr_and_mono16_scaling(world):
    bgr = _raw_image(world, encoding="bgr8", height=1, width=1, step=3, data=[1, 2, 3])
    np.testing.assert_array_equal(image_to_rgb(bgr), [[[3, 2, 1]]])
    values = np.array([0, 257, 32896, 65535], dtype=">u2")  # big-endian on the wire
    mono16 = _raw_image(
        world,
        encoding="mono16",
        height=1,
        width=4,
        step=8,
        data=values.tobytes(),
        is_bigendian=1,
    )
    np.testing.assert_array_equal(image_to_rgb(mono16)[0, :, 0], [0, 1, 128, 255])
    yuv_white = _raw_image(world, encoding="yuv422", height=1, width=2, step=4, data=[128, 235] * 2)
    np.testing.assert_array_equal(image_to_rgb(yuv_white), np.full((1, 2, 3), 255))


@pytest.mark.parametrize("encoding", ["rgb8", "mono8", "mono16", "bgra8", "yuv422"])
def test_row_padding_step_is_honoured(world, encoding):
    rgb = _smooth_rgb(5, 6)
    if encoding.startswith("mono"):
        rgb = _grey(rgb)
    tight = rgb_to_image(rgb, world.image, encoding=encoding)
    rows = np.frombuffer(bytes(tight.data), np.uint8).reshape(5, tight.step)
    pad = 7
    padded_rows = np.concatenate([rows, np.full((5, pad), 0xAB, np.uint8)], axis=1)
    padded = _raw_image(
        world,
        encoding=encoding,
        height=5,
        width=6,
        step=tight.step + pad,
        data=padded_rows.tobytes(),
    )
    np.testing.assert_array_equal(image_to_rgb(padded), image_to_rgb(tight))


def test_data_field_given_as_list_or_bytes():
    # users build messages by hand: data as a Python list must work too
    msg = _raw_image(_rosbags_world(), encoding="rgb8", height=1, width=1, step=3, data=[9, 8, 7])
    msg.data = [9, 8, 7]
    np.testing.assert_array_equal(image_to_rgb(msg), [[[9, 8, 7]]])
    msg.data = b"\x09\x08\x07"
    np.testing.assert_array_equal(image_to_rgb(msg), [[[9, 8, 7]]])


# --------------------------------------------------------------------------- compressed


def test_jpeg_round_trip_within_tolerance(world):
    rgb = _smooth_rgb(48, 64)
    msg = rgb_to_compressed_image(rgb, world.compressed, quality=95, stamp_ns=42, frame_id="f")
    assert msg.format == "rgb8; jpeg compressed bgr8"
    assert stamp_to_ns(msg.header.stamp) == 42
    out = image_to_rgb(world.deserialize(world.serialize(msg), world.compressed))
    assert out.shape == rgb.shape
    assert np.abs(out.astype(int) - rgb.astype(int)).mean() < 3.0


def test_png_round_trip_is_exact(world):
    rgb = _random_rgb(7, 9)
    msg = rgb_to_compressed_image(rgb, world.compressed, fmt="png")
    assert "png" in msg.format
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)


@pytest.mark.parametrize("fmt", ["jpeg", "jpg", "bgr8; jpeg compressed bgr8", "mono8; jpeg"])
def test_jpeg_format_strings_and_mono_jpeg(world, fmt):
    grey = _grey(_smooth_rgb(16, 16))
    buffer = io.BytesIO()
    PILImage.fromarray(grey[:, :, 0], mode="L").save(buffer, format="JPEG", quality=95)
    msg = world.compressed(
        header=world.header(stamp=world.time(sec=1, nanosec=2), frame_id=""),
        format=fmt,
        data=array.array("B", buffer.getvalue())
        if world.name == "rclpy"
        else np.frombuffer(buffer.getvalue(), np.uint8),
    )
    out = image_to_rgb(msg)
    assert out.shape == (16, 16, 3)
    assert np.abs(out.astype(int) - grey.astype(int)).mean() < 3.0


def test_sixteen_bit_png_is_scaled(world):
    depth = np.array([[0, 65535], [257, 32896]], dtype=np.uint16)
    buffer = io.BytesIO()
    PILImage.fromarray(depth).save(buffer, format="PNG")
    msg = rgb_to_compressed_image(np.zeros((1, 1, 3), np.uint8), world.compressed, fmt="png")
    msg.data = (
        array.array("B", buffer.getvalue())
        if world.name == "rclpy"
        else np.frombuffer(buffer.getvalue(), np.uint8)
    )
    np.testing.assert_array_equal(image_to_rgb(msg)[:, :, 0], [[0, 255], [1, 128]])


# --------------------------------------------------------------------------- errors


def test_truncated_data_names_sizes(world):
    msg = rgb_to_image(_random_rgb(4, 4), world.image)
    msg.data = msg.data[:-5]
    with pytest.raises(ConversionError, match=r"rgb8 image 4x4 .* needs 48 bytes, got 43"):
        image_to_rgb(msg)


def test_step_smaller_than_row_is_rejected(world):
    msg = _raw_image(world, encoding="rgb8", height=2, width=4, step=10, data=bytes(20))
    with pytest.raises(ConversionError, match="step 10 is smaller than one row"):
        image_to_rgb(msg)


def test_unsupported_encoding_is_named(world):
    msg = _raw_image(world, encoding="bayer_rggb8", height=2, width=2, step=2, data=bytes(4))
    with pytest.raises(ConversionError, match="unsupported image encoding 'bayer_rggb8'"):
        image_to_rgb(msg)
    with pytest.raises(ConversionError, match="'32FC1'"):
        rgb_to_image(_random_rgb(), world.image, encoding="32FC1")


def test_odd_width_yuv_and_empty_image_are_rejected(world):
    odd = _raw_image(world, encoding="yuv422", height=1, width=3, step=6, data=bytes(6))
    with pytest.raises(ConversionError, match="even width"):
        image_to_rgb(odd)
    empty = _raw_image(world, encoding="rgb8", height=0, width=4, step=12, data=b"")
    with pytest.raises(ConversionError, match="empty size"):
        image_to_rgb(empty)


def test_corrupt_and_unknown_compressed_images(world):
    msg = rgb_to_compressed_image(_smooth_rgb(), world.compressed)
    msg.data = msg.data[: len(msg.data) // 3]
    with pytest.raises(ConversionError, match="cannot decode CompressedImage"):
        image_to_rgb(msg)
    msg.format = "tiff"
    with pytest.raises(ConversionError, match="unsupported CompressedImage format 'tiff'"):
        image_to_rgb(msg)
    msg.format = "jpeg"
    msg.data = msg.data[:0]
    with pytest.raises(ConversionError, match="no data"):
        image_to_rgb(msg)


def test_writer_rejects_bad_arrays(world):
    with pytest.raises(ConversionError, match=r"\(H, W, 3\), got float64 \(4, 4, 3\)"):
        rgb_to_image(np.zeros((4, 4, 3)), world.image)
    with pytest.raises(ConversionError, match=r"got uint8 \(4, 4\)"):
        rgb_to_compressed_image(np.zeros((4, 4), np.uint8), world.compressed)
    with pytest.raises(ConversionError, match="quality"):
        rgb_to_compressed_image(_random_rgb(), world.compressed, quality=0)


# --------------------------------------------------------------------------- joints


def _joint_state(world, names, positions):
    return world.joint_state(
        header=world.header(stamp=world.time(sec=0, nanosec=0), frame_id=""),
        name=list(names),
        position=np.asarray(positions, dtype=np.float64)
        if world.name == "rosbags"
        else [float(p) for p in positions],
        velocity=np.zeros(0) if world.name == "rosbags" else [],
        effort=np.zeros(0) if world.name == "rosbags" else [],
    )


def test_joint_positions_by_name_any_order_extras_ignored(world):
    names = ["extra", *reversed(JOINTS)]
    positions = [99.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
    out = joint_positions(_joint_state(world, names, positions), JOINTS)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])


def test_missing_joints_are_listed(world):
    msg = _joint_state(world, JOINTS[:4], [0.0] * 4)
    with pytest.raises(MissingJointsError) as info:
        joint_positions(msg, JOINTS)
    assert info.value.missing == ("wrist_roll", "gripper")
    assert "wrist_roll" in str(info.value) and "shoulder_pan" in str(info.value)
    assert isinstance(info.value, ConversionError) and isinstance(info.value, ValueError)


def test_names_positions_length_mismatch(world):
    msg = _joint_state(world, JOINTS, [0.0] * 5)
    with pytest.raises(ConversionError, match="6 names but 5 positions"):
        joint_positions(msg, JOINTS)


def _trajectory(world, names, rows, times_ns):
    points = [
        world.point(
            positions=np.asarray(row, np.float64) if world.name == "rosbags" else list(row),
            velocities=np.zeros(0) if world.name == "rosbags" else [],
            accelerations=np.zeros(0) if world.name == "rosbags" else [],
            effort=np.zeros(0) if world.name == "rosbags" else [],
            time_from_start=ns_to_stamp(t, world.duration),
        )
        for row, t in zip(rows, times_ns, strict=True)
    ]
    return world.trajectory(
        header=world.header(stamp=world.time(sec=0, nanosec=0), frame_id=""),
        joint_names=list(names),
        points=points,
    )


def test_trajectory_points_reordered_with_times(world):
    names = list(reversed(JOINTS))
    rows = [[6, 5, 4, 3, 2, 1], [60, 50, 40, 30, 20, 10]]
    msg = _trajectory(world, names, rows, [33_333_333, 1_066_666_666])
    positions, times = trajectory_points(msg, JOINTS)
    np.testing.assert_array_equal(positions, [[1, 2, 3, 4, 5, 6], [10, 20, 30, 40, 50, 60]])
    np.testing.assert_array_equal(times, [33_333_333, 1_066_666_666])
    empty_positions, empty_times = trajectory_points(_trajectory(world, names, [], []), JOINTS)
    assert empty_positions.shape == (0, 6) and empty_times.shape == (0,)


def test_trajectory_point_size_mismatch_and_missing_joint(world):
    msg = _trajectory(world, JOINTS, [[0.0] * 5], [0])
    with pytest.raises(ConversionError, match="point 0 has 5 positions for 6 joints"):
        trajectory_points(msg, JOINTS)
    with pytest.raises(MissingJointsError, match="elbow"):
        trajectory_points(_trajectory(world, JOINTS[:2], [[0, 0]], [0]), ["elbow"])


def test_stamps_round_trip(world):
    for ns in (0, 1, 999_999_999, 1_000_000_000, 1_732_000_000_123_456_789):
        stamp = ns_to_stamp(ns, world.time)
        assert 0 <= stamp.nanosec < 1_000_000_000
        assert stamp_to_ns(stamp) == ns


# --------------------------------------------------------------------------- cv_bridge


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
def test_matches_cv_bridge_where_available(encoding):
    # cv_bridge ships only with a full ROS install (no wheel exists); skipped elsewhere.
    cv_bridge = pytest.importorskip("cv_bridge", reason="cv_bridge needs a ROS install")
    sensor_msgs = pytest.importorskip("sensor_msgs.msg")
    rgb = _random_rgb(5, 7)
    if encoding == "mono8":
        rgb = _grey(rgb)
    msg = rgb_to_image(rgb, sensor_msgs.Image, encoding=encoding)
    expected = cv_bridge.CvBridge().imgmsg_to_cv2(msg, desired_encoding="rgb8")
    np.testing.assert_array_equal(image_to_rgb(msg), expected)


def test_make_header_for_any_message_class(world):
    header = make_header(world.joint_state, 2_500_000_001, "base_link")
    assert isinstance(header, world.header)
    assert stamp_to_ns(header.stamp) == 2_500_000_001 and header.frame_id == "base_link"
    explicit = make_header(world.joint_state, 7, "x", header_cls=world.header)
    assert stamp_to_ns(explicit.stamp) == 7


def test_header_class_of_an_unknown_class_is_a_clear_error():
    class NotAMessage:
        pass

    with pytest.raises(ConversionError, match="pass header_cls="):
        make_header(NotAMessage, 0, "")
