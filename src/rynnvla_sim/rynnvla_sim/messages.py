"""Builders for the joint messages the sim publishes and records (rclpy or rosbags classes).

Images go through ``rynnvla_policy.conversions`` (the project's one msg <-> numpy module);
JointState and JointTrajectory are built here the same duck-typed way: the message classes are
passed in, so the live node (rclpy) and the recorder (rosbags dataclasses) share the code.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from rynnvla_policy.conversions import make_header, ns_to_stamp


def _float_array(msg_cls: type, values: np.ndarray) -> Any:
    """A float64[] field value: a list for rclpy messages, an ndarray for rosbags dataclasses."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if hasattr(msg_cls, "get_fields_and_field_types"):
        return values.tolist()
    return values


def _duration_cls(point_cls: type) -> type:
    if hasattr(point_cls, "get_fields_and_field_types"):
        return type(point_cls().time_from_start)
    return getattr(sys.modules[point_cls.__module__], point_cls.__annotations__["time_from_start"])


def joint_state(
    msg_cls: type,
    names: Sequence[str],
    positions: np.ndarray,
    velocities: np.ndarray,
    *,
    stamp_ns: int,
    frame_id: str = "",
) -> Any:
    """sensor_msgs/JointState with positions and velocities (J,), no efforts."""
    return msg_cls(
        header=make_header(msg_cls, stamp_ns, frame_id),
        name=list(names),
        position=_float_array(msg_cls, positions),
        velocity=_float_array(msg_cls, velocities),
        effort=_float_array(msg_cls, np.zeros(0)),
    )


def joint_trajectory(
    msg_cls: type,
    point_cls: type,
    names: Sequence[str],
    positions: np.ndarray,
    times_from_start_ns: Sequence[int],
    *,
    velocities: np.ndarray | None = None,
    stamp_ns: int = 0,
) -> Any:
    """trajectory_msgs/JointTrajectory from positions (P, J) and time_from_start (P,) in ns."""
    positions = np.asarray(positions, dtype=np.float64)  # (P, J)
    duration_cls = _duration_cls(point_cls)
    empty = _float_array(point_cls, np.zeros(0))
    points = []
    for i, tfs in enumerate(times_from_start_ns):
        vel = empty if velocities is None else _float_array(point_cls, velocities[i])
        points.append(
            point_cls(
                positions=_float_array(point_cls, positions[i]),
                velocities=vel,
                accelerations=empty,
                effort=empty,
                time_from_start=ns_to_stamp(int(tfs), duration_cls),
            )
        )
    return msg_cls(
        header=make_header(msg_cls, stamp_ns, ""), joint_names=list(names), points=points
    )
