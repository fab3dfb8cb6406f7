"""Parameters of the sim node: one validated dataclass, filled from ROS parameters.

The node declares every field below as a ROS parameter (same name, same default; the shipped
values are in ``config/sim_node.yaml``) and builds ``SimNodeParams`` from them. Validation
collects every problem at once and names the parameter and the value. No rclpy in here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from rynnvla_sim.scenes.arm import JOINT_NAMES

# rgb8 / bgr8: sensor_msgs/Image on <camera>/image_raw; jpeg: sensor_msgs/CompressedImage on
# <camera>/image_raw/compressed (the image_transport name).
IMAGE_ENCODINGS = ("rgb8", "bgr8", "jpeg")
CAMERA_NAMES = ("front", "wrist")


class SimParamsError(ValueError):
    """One or more parameters are invalid; the message lists each as ``name=value: reason``."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("invalid sim node parameters:\n  " + "\n  ".join(self.problems))


@dataclass(frozen=True)
class SimNodeParams:
    """Every setting of the sim node."""

    # Episode the node starts with (the reset service starts others).
    task_id: str = "block_to_plate"
    seed: int = 0
    distractors: bool = False
    # Joint names of the arm (the controller's joints and /joint_states names).
    joint_names: tuple[str, ...] = JOINT_NAMES

    # 1.0 = real time (wall clock); > 1 faster, < 1 slower; 0 = as fast as possible.
    real_time_factor: float = 1.0
    # Publish /clock (sim time) for nodes with use_sim_time. Always on when real_time_factor != 1.
    publish_clock: bool = False
    # How often /clock goes out (sim time). Every physics tick (500 Hz) would wake every
    # subscribed executor 500 times a second, which starves Python threads of the GIL.
    clock_rate_hz: float = 100.0
    # ros2_control update rate: the trajectory is sampled and the actuators commanded this often.
    control_rate_hz: float = 500.0
    joint_state_rate_hz: float = 100.0
    status_rate_hz: float = 2.0

    cameras: tuple[str, ...] = CAMERA_NAMES
    camera_rate_hz: float = 30.0
    image_width: int = 128
    image_height: int = 96
    image_encoding: str = "rgb8"
    jpeg_quality: int = 90
    # Topic of camera <name> = <camera_topic_prefix>/<name>/image_raw[/compressed].
    camera_topic_prefix: str = "/camera"
    # In real time, frames waiting to be rendered beyond this many are dropped (never blocking
    # physics); as fast as possible, physics waits for the renderer instead.
    render_queue_size: int = 2

    # joint_trajectory_controller settings (same names as the controller's parameters).
    controller_name: str = "arm_controller"
    allow_partial_joints_goal: bool = False
    allow_nonzero_velocity_at_trajectory_end: bool = False
    interpolate_from_desired_state: bool = True

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SimNodeParams:
        """Build from ``{name: value}`` (ROS parameter values); unknown names are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SimParamsError([f"{name}: unknown parameter" for name in unknown])
        converted = {}
        for f in fields(cls):
            if f.name in values:
                value = values[f.name]
                converted[f.name] = tuple(value) if isinstance(f.default, tuple) else value
        return cls(**converted)

    def __post_init__(self) -> None:
        problems = _validate(self)
        if problems:
            raise SimParamsError(problems)

    @property
    def compressed(self) -> bool:
        return self.image_encoding == "jpeg"

    @property
    def publishes_clock(self) -> bool:
        return self.publish_clock or self.real_time_factor != 1.0

    @property
    def trajectory_topic(self) -> str:
        return f"/{self.controller_name}/joint_trajectory"

    def camera_topic(self, camera: str) -> str:
        suffix = "/compressed" if self.compressed else ""
        return f"{self.camera_topic_prefix.rstrip('/')}/{camera}/image_raw{suffix}"


def _validate(p: SimNodeParams) -> list[str]:
    problems: list[str] = []

    def bad(name: str, reason: str) -> None:
        problems.append(f"{name}={getattr(p, name)!r}: {reason}")

    for name in (
        "control_rate_hz",
        "joint_state_rate_hz",
        "status_rate_hz",
        "camera_rate_hz",
        "clock_rate_hz",
    ):
        value = getattr(p, name)
        if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            bad(name, "must be a finite number > 0")
    rtf = p.real_time_factor
    if not isinstance(rtf, int | float) or not math.isfinite(rtf) or rtf < 0:
        bad("real_time_factor", "must be >= 0 (0 = as fast as possible)")
    rates_ok = all(
        isinstance(getattr(p, n), int | float) and getattr(p, n) > 0
        for n in ("control_rate_hz", "joint_state_rate_hz", "camera_rate_hz", "clock_rate_hz")
    )
    if rates_ok:
        for name in ("joint_state_rate_hz", "camera_rate_hz", "clock_rate_hz"):
            if getattr(p, name) > p.control_rate_hz:
                bad(name, f"must not exceed control_rate_hz ({p.control_rate_hz})")
    if len(p.joint_names) != 6 or len(set(p.joint_names)) != 6 or not all(p.joint_names):
        bad("joint_names", "must be 6 distinct non-empty names (5 arm joints + gripper)")
    if not p.cameras or len(set(p.cameras)) != len(p.cameras):
        bad("cameras", f"must be distinct names among {list(CAMERA_NAMES)}")
    elif any(c not in CAMERA_NAMES for c in p.cameras):
        bad("cameras", f"unknown camera; the sim has {list(CAMERA_NAMES)}")
    for name in ("image_width", "image_height"):
        value = getattr(p, name)
        if not isinstance(value, int) or not 16 <= value <= 1024:
            bad(name, "must be an integer in [16, 1024]")
    if p.image_encoding not in IMAGE_ENCODINGS:
        bad("image_encoding", f"must be one of {list(IMAGE_ENCODINGS)}")
    if not isinstance(p.jpeg_quality, int) or not 1 <= p.jpeg_quality <= 100:
        bad("jpeg_quality", "must be an integer in [1, 100]")
    if not isinstance(p.render_queue_size, int) or p.render_queue_size < 1:
        bad("render_queue_size", "must be an integer >= 1")
    if not p.camera_topic_prefix.startswith("/"):
        bad("camera_topic_prefix", "must be an absolute topic prefix starting with '/'")
    if not p.controller_name or "/" in p.controller_name:
        bad("controller_name", "must be a non-empty name without '/'")
    if not isinstance(p.seed, int) or p.seed < 0:
        bad("seed", "must be an integer >= 0")
    return problems
