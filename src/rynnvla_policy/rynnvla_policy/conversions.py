"""The one message <-> numpy module, shared by the policy node and the offline converter.

Every function is duck-typed on field names, so the same code works on messages from
``rclpy`` (``sensor_msgs.msg.Image`` ...) and on the dataclasses of the pure-Python
``rosbags`` library (``typestore.types["sensor_msgs/msg/Image"]``). This module never
imports rclpy.

Reading:
    image_to_rgb(msg)                      -> (H, W, 3) uint8 RGB, Image or CompressedImage
    joint_positions(msg, joint_names)      -> (N,) float64, picked by name
    trajectory_points(msg, joint_names)    -> positions (P, N) float64, times_from_start_ns (P,)
    stamp_to_ns(stamp)                     -> int nanoseconds

Writing (the message class is passed in, so both worlds work):
    rgb_to_image(arr, Image, encoding="rgb8", stamp_ns=..., frame_id=...)
    rgb_to_compressed_image(arr, CompressedImage, fmt="jpeg", quality=90, ...)
    ns_to_stamp(ns, Time)

Header and time classes are found from the message class (an rclpy default instance, or the
rosbags module that defines the dataclass); pass ``header_cls=`` where that is not possible.

Bad data raises ``ConversionError`` (a ``ValueError``) naming the encoding, the expected and
actual sizes, or the missing joints - never an obscure numpy error.
"""

from __future__ import annotations

import array
import dataclasses
import functools
import io
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

NS_PER_S = 1_000_000_000

# encoding -> (channels, numpy dtype of one channel, colour layout). Layout names the channel
# order; "raw" means "pass through as RGB" (the cv_bridge behaviour for 8UC3: no conversion).
_RAW_LAYOUTS: dict[str, tuple[int, str, str]] = {
    "rgb8": (3, "u1", "rgb"),
    "bgr8": (3, "u1", "bgr"),
    "rgba8": (4, "u1", "rgba"),
    "bgra8": (4, "u1", "bgra"),
    "mono8": (1, "u1", "mono"),
    "8UC1": (1, "u1", "mono"),
    "8UC3": (3, "u1", "rgb"),
    "8UC4": (4, "u1", "rgba"),
    "mono16": (1, "u2", "mono"),
    "16UC1": (1, "u2", "mono"),
    "rgb16": (3, "u2", "rgb"),
    "bgr16": (3, "u2", "bgr"),
    "rgba16": (4, "u2", "rgba"),
    "bgra16": (4, "u2", "bgra"),
}
# Packed 4:2:2 encodings: two pixels share one (U, V) pair; byte order of one macro-pixel.
_YUV422_ORDERS: dict[str, str] = {
    "yuv422": "uyvy",  # ROS "yuv422" is UYVY (sensor_msgs/image_encodings.hpp)
    "uyvy": "uyvy",
    "yuv422_yuy2": "yuyv",
    "yuyv": "yuyv",
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_RAW_LAYOUTS) + tuple(_YUV422_ORDERS)
SUPPORTED_COMPRESSED_FORMATS: tuple[str, ...] = ("jpeg", "png")


class ConversionError(ValueError):
    """A message holds data that cannot be converted (bad size, encoding, missing field...)."""


class MissingJointsError(ConversionError):
    """A joint message lacks some of the requested joints."""

    def __init__(self, missing: Sequence[str], available: Sequence[str]):
        self.missing = tuple(missing)
        self.available = tuple(available)
        super().__init__(
            f"missing joints {list(self.missing)}; the message has {list(self.available)}"
        )


# --------------------------------------------------------------------------- time


def stamp_to_ns(stamp: Any) -> int:
    """``builtin_interfaces/Time`` (or Duration: fields sec, nanosec) -> integer nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def ns_to_stamp(ns: int, stamp_cls: type) -> Any:
    """Integer nanoseconds -> ``stamp_cls(sec=..., nanosec=...)`` (Time or Duration class)."""
    sec, nanosec = divmod(int(ns), NS_PER_S)
    return stamp_cls(sec=sec, nanosec=nanosec)


# --------------------------------------------------------------------------- bytes helpers


def _as_u8(data: Any) -> np.ndarray:
    """A message's ``data`` field (bytes, array.array, ndarray, list) -> flat uint8 view."""
    if isinstance(data, np.ndarray) and data.dtype == np.uint8:
        return data.reshape(-1)
    if isinstance(data, bytes | bytearray | memoryview | array.array):
        return np.frombuffer(data, dtype=np.uint8)
    try:
        return np.asarray(data, dtype=np.uint8).reshape(-1)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConversionError(f"image data of type {type(data).__name__} is not bytes") from exc


def _is_rclpy_class(msg_cls: type) -> bool:
    return hasattr(msg_cls, "get_fields_and_field_types")


def _bytes_field(msg_cls: type, payload: bytes | np.ndarray) -> Any:
    """The value to store in a ``uint8[]`` field of ``msg_cls``.

    rclpy's setter walks a plain ``bytes`` value element by element (slow for images), but
    takes an ``array.array('B')`` as is; rosbags dataclasses hold a uint8 ndarray.
    """
    if _is_rclpy_class(msg_cls):
        out = array.array("B")
        out.frombytes(payload.tobytes() if isinstance(payload, np.ndarray) else payload)
        return out
    if isinstance(payload, np.ndarray):
        return np.ascontiguousarray(payload).reshape(-1).view(np.uint8)
    return np.frombuffer(payload, dtype=np.uint8).copy()


@functools.lru_cache(maxsize=64)
def _field_class(msg_cls: type, field: str) -> type:
    """The class of a nested message field (e.g. Image.header -> Header), in either world."""
    if _is_rclpy_class(msg_cls):
        return type(getattr(msg_cls(), field))
    if dataclasses.is_dataclass(msg_cls):
        # rosbags annotations are strings naming classes of the defining module.
        annotation = msg_cls.__annotations__.get(field)
        module = sys.modules.get(msg_cls.__module__)
        found = getattr(module, annotation, None) if isinstance(annotation, str) else None
        if isinstance(found, type):
            return found
    raise ConversionError(
        f"cannot find the class of field {field!r} of {msg_cls.__name__}; pass header_cls="
    )


def make_header(msg_cls: type, stamp_ns: int, frame_id: str, header_cls: type | None = None):
    """A ``std_msgs/Header`` for ``msg_cls`` with the given stamp and frame id."""
    header_cls = header_cls or _field_class(msg_cls, "header")
    stamp_cls = _field_class(header_cls, "stamp")
    return header_cls(stamp=ns_to_stamp(stamp_ns, stamp_cls), frame_id=frame_id)


# --------------------------------------------------------------------------- raw images


def _rows(msg: Any, bytes_per_pixel: int, width_units: int | None = None) -> np.ndarray:
    """The image buffer as (H, row_bytes) uint8, row padding (``step``) removed, sizes checked."""
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = (width_units if width_units is not None else width) * bytes_per_pixel
    if height <= 0 or width <= 0:
        raise ConversionError(f"{msg.encoding} image has an empty size {width}x{height}")
    if step < row_bytes:
        raise ConversionError(
            f"{msg.encoding} image {width}x{height}: step {step} is smaller than one row "
            f"({row_bytes} bytes)"
        )
    data = _as_u8(msg.data)
    expected = step * height
    if data.size < expected:
        raise ConversionError(
            f"{msg.encoding} image {width}x{height} (step {step}) needs {expected} bytes, "
            f"got {data.size} (truncated data)"
        )
    return data[:expected].reshape(height, step)[:, :row_bytes]


def _to_u8(values: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 by full-range scaling (65535 -> 255), rounding to nearest."""
    return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _raw_to_rgb(msg: Any, encoding: str) -> np.ndarray:
    channels, kind, layout = _RAW_LAYOUTS[encoding]
    itemsize = 1 if kind == "u1" else 2
    rows = _rows(msg, channels * itemsize)  # (H, W * C * itemsize)
    if itemsize == 2:
        dtype = np.dtype(">u2" if int(msg.is_bigendian) else "<u2")
        pixels = _to_u8(np.ascontiguousarray(rows).view(dtype))
    else:
        pixels = rows
    pixels = pixels.reshape(int(msg.height), int(msg.width), channels)  # (H, W, C)
    if layout == "mono":
        return np.repeat(pixels, 3, axis=2)
    if layout.startswith("bgr"):
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    return np.ascontiguousarray(pixels[:, :, :3])


def _yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """BT.601 limited-range YUV (float arrays, same shape) -> RGB uint8 (..., 3)."""
    c = (y - 16.0) * 1.164
    d, e = u - 128.0, v - 128.0
    rgb = np.stack([c + 1.596 * e, c - 0.392 * d - 0.813 * e, c + 2.017 * d], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _yuv422_to_rgb(msg: Any, order: str) -> np.ndarray:
    width = int(msg.width)
    if width % 2:
        raise ConversionError(f"{msg.encoding} image needs an even width, got {width}")
    rows = _rows(msg, 2)  # (H, W * 2): macro-pixels of 4 bytes for 2 pixels
    quads = rows.reshape(int(msg.height), width // 2, 4).astype(np.float32)
    if order == "uyvy":
        u, y0, v, y1 = (quads[..., i] for i in range(4))
    else:
        y0, u, y1, v = (quads[..., i] for i in range(4))
    y = np.stack([y0, y1], axis=-1).reshape(int(msg.height), width)  # (H, W)
    u = np.repeat(u, 2, axis=1)
    v = np.repeat(v, 2, axis=1)
    return _yuv_to_rgb(y, u, v)


def _rgb_to_yuv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB uint8 (H, W, 3) -> BT.601 limited-range Y, U, V float arrays (H, W)."""
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    y = 16.0 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128.0 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128.0 + 0.439 * r - 0.368 * g - 0.071 * b
    return y, u, v


# --------------------------------------------------------------------------- compressed images


def compressed_kind(fmt: str) -> str:
    """``CompressedImage.format`` -> "jpeg" or "png" (e.g. "rgb8; jpeg compressed bgr8")."""
    text = fmt.lower()
    if "compresseddepth" in text:
        return "compressedDepth"
    for kind, words in (("jpeg", ("jpeg", "jpg")), ("png", ("png",))):
        if any(word in text for word in words):
            return kind
    return ""


def _compressed_to_rgb(msg: Any) -> np.ndarray:
    from PIL import Image as PILImage  # Pillow is only needed for compressed images

    fmt = str(msg.format)
    kind = compressed_kind(fmt)
    if kind not in SUPPORTED_COMPRESSED_FORMATS:
        raise ConversionError(
            f"unsupported CompressedImage format {fmt!r}; supported: jpeg, png "
            "(e.g. 'rgb8; jpeg compressed bgr8')"
        )
    payload = _as_u8(msg.data)
    if payload.size == 0:
        raise ConversionError(f"CompressedImage ({fmt!r}) has no data")
    try:
        with PILImage.open(io.BytesIO(payload.tobytes())) as image:
            image.load()
            return _pil_to_rgb(image)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ConversionError(
            f"cannot decode CompressedImage ({fmt!r}, {payload.size} bytes): {exc}"
        ) from exc


def _pil_to_rgb(image: Any) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image).astype(np.uint32).clip(0, 65535)
        return np.repeat(_to_u8(values)[:, :, None], 3, axis=2)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


# --------------------------------------------------------------------------- public: images


def image_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/Image or CompressedImage -> (H, W, 3) uint8 RGB.

    Image: every encoding in ``SUPPORTED_ENCODINGS``; ``step`` row padding and
    ``is_bigendian`` are honoured; 16-bit data is scaled to 8 bits (65535 -> 255).
    CompressedImage: JPEG or PNG (any ``format`` string naming them).
    """
    if hasattr(msg, "format") and not hasattr(msg, "encoding"):
        return _compressed_to_rgb(msg)
    encoding = str(msg.encoding)
    if encoding in _RAW_LAYOUTS:
        return _raw_to_rgb(msg, encoding)
    if encoding in _YUV422_ORDERS:
        return _yuv422_to_rgb(msg, _YUV422_ORDERS[encoding])
    raise ConversionError(
        f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
    )


def _check_rgb(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ConversionError(
            f"expected an RGB uint8 array (H, W, 3), got {arr.dtype} {tuple(arr.shape)}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ConversionError(f"expected a non-empty image, got shape {tuple(arr.shape)}")
    return arr


def _encode_raw(rgb: np.ndarray, encoding: str, bigendian: bool) -> tuple[np.ndarray, int]:
    """RGB (H, W, 3) -> (payload (H, row_bytes) uint8, bytes per row) for ``encoding``."""
    height, width = rgb.shape[:2]
    if encoding in _YUV422_ORDERS:
        if width % 2:
            raise ConversionError(f"{encoding} needs an even width, got {width}")
        y, u, v = _rgb_to_yuv(rgb)
        u = (u[:, 0::2] + u[:, 1::2]) / 2.0  # (H, W/2) chroma shared by a pixel pair
        v = (v[:, 0::2] + v[:, 1::2]) / 2.0
        y0, y1 = y[:, 0::2], y[:, 1::2]
        if _YUV422_ORDERS[encoding] == "uyvy":
            quads = np.stack([u, y0, v, y1], axis=-1)
        else:
            quads = np.stack([y0, u, y1, v], axis=-1)
        payload = np.clip(np.rint(quads), 0, 255).astype(np.uint8).reshape(height, width * 2)
        return payload, width * 2
    channels, kind, layout = _RAW_LAYOUTS[encoding]
    if layout == "mono":
        # full-range luma (ITU-R BT.601 weights) so that grey images round-trip exactly
        luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        pixels = np.clip(np.rint(luma), 0, 255).astype(np.uint8)[:, :, None]
    elif layout.startswith("bgr"):
        pixels = rgb[:, :, ::-1]
    else:
        pixels = rgb
    if channels == 4:
        alpha = np.full((height, width, 1), 255, dtype=np.uint8)
        pixels = np.concatenate([pixels, alpha], axis=2)
    if kind == "u2":
        wide = pixels.astype(np.uint16) * 257  # 255 -> 65535
        pixels = wide.astype(">u2" if bigendian else "<u2").view(np.uint8)
    pixels = np.ascontiguousarray(pixels).reshape(height, -1)
    return pixels, pixels.shape[1]


def rgb_to_image(
    arr: np.ndarray,
    msg_cls: type,
    *,
    encoding: str = "rgb8",
    stamp_ns: int = 0,
    frame_id: str = "",
    bigendian: bool = False,
    header_cls: type | None = None,
) -> Any:
    """RGB uint8 (H, W, 3) -> ``msg_cls`` (a sensor_msgs/Image class, rclpy or rosbags)."""
    rgb = _check_rgb(arr)
    if encoding not in SUPPORTED_ENCODINGS:
        raise ConversionError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    payload, step = _encode_raw(rgb, encoding, bigendian)
    return msg_cls(
        header=make_header(msg_cls, stamp_ns, frame_id, header_cls),
        height=rgb.shape[0],
        width=rgb.shape[1],
        encoding=encoding,
        is_bigendian=int(bigendian),
        step=step,
        data=_bytes_field(msg_cls, payload),
    )


def rgb_to_compressed_image(
    arr: np.ndarray,
    msg_cls: type,
    *,
    fmt: str = "jpeg",
    quality: int = 90,
    stamp_ns: int = 0,
    frame_id: str = "",
    header_cls: type | None = None,
) -> Any:
    """RGB uint8 (H, W, 3) -> ``msg_cls`` (sensor_msgs/CompressedImage), JPEG or PNG.

    The ``format`` field follows image_transport: "rgb8; jpeg compressed bgr8".
    """
    from PIL import Image as PILImage

    rgb = _check_rgb(arr)
    kind = compressed_kind(fmt)
    if kind not in SUPPORTED_COMPRESSED_FORMATS:
        raise ConversionError(f"unsupported compressed format {fmt!r}; supported: jpeg, png")
    if kind == "jpeg" and not 1 <= int(quality) <= 100:
        raise ConversionError(f"JPEG quality must be in [1, 100], got {quality}")
    buffer = io.BytesIO()
    image = PILImage.fromarray(np.ascontiguousarray(rgb), mode="RGB")
    if kind == "jpeg":
        image.save(buffer, format="JPEG", quality=int(quality))
    else:
        image.save(buffer, format="PNG", compress_level=1)
    return msg_cls(
        header=make_header(msg_cls, stamp_ns, frame_id, header_cls),
        format=f"rgb8; {kind} compressed bgr8",
        data=_bytes_field(msg_cls, buffer.getvalue()),
    )


# --------------------------------------------------------------------------- joints


def _name_index(names: Sequence[str], joint_names: Sequence[str]) -> np.ndarray:
    """Column indices of ``joint_names`` inside ``names``; MissingJointsError otherwise."""
    lookup = {str(name): i for i, name in enumerate(names)}
    missing = [name for name in joint_names if name not in lookup]
    if missing:
        raise MissingJointsError(missing, [str(n) for n in names])
    return np.array([lookup[name] for name in joint_names], dtype=np.intp)


def joint_positions(msg: Any, joint_names: Sequence[str]) -> np.ndarray:
    """sensor_msgs/JointState -> (N,) float64 positions in ``joint_names`` order.

    Joints are picked by name (any order in the message); extra joints are ignored.
    """
    names = list(msg.name)
    positions = np.asarray(msg.position, dtype=np.float64).reshape(-1)
    if positions.size != len(names):
        raise ConversionError(f"JointState has {len(names)} names but {positions.size} positions")
    return positions[_name_index(names, joint_names)]


def trajectory_points(msg: Any, joint_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """trajectory_msgs/JointTrajectory -> (positions (P, N) float64, times_from_start_ns (P,)).

    Columns are reordered to ``joint_names``; extra joints are ignored.
    """
    names = list(msg.joint_names)
    columns = _name_index(names, joint_names)
    points = list(msg.points)
    positions = np.empty((len(points), len(joint_names)), dtype=np.float64)  # (P, N)
    times = np.empty(len(points), dtype=np.int64)  # (P,)
    for i, point in enumerate(points):
        row = np.asarray(point.positions, dtype=np.float64).reshape(-1)
        if row.size != len(names):
            raise ConversionError(
                f"JointTrajectory point {i} has {row.size} positions for {len(names)} joints"
            )
        positions[i] = row[columns]
        times[i] = stamp_to_ns(point.time_from_start)
    return positions, times
