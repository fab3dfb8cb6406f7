"""Parameters of the policy node: one validated dataclass, filled from ROS parameters.

The node declares every field below as a ROS parameter (same name, same default) and builds a
`PolicyNodeParams` from their values at configure. Validation collects every problem at once and
names the parameter and the value, so a wrong YAML is fixed in one round. No rclpy in here.
"""

from __future__ import annotations

import array
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from rynnvla_policy.core.joints import SO100_JOINT_NAMES
from rynnvla_policy.node.chunks import BLEND_SHAPES

OVERLAP_POLICIES = ("latest", "blend", "ensemble")
# stamp_observation: header.stamp = observation capture time, the controller skips due points.
# drop_due_points: header.stamp = publish time, points already due are dropped by the node.
# none: header.stamp = 0 and times relative to arrival (the naive publisher, for comparisons).
LATENCY_MODES = ("stamp_observation", "drop_due_points", "none")
# zero: last point velocity 0 (Jazzy+ joint_trajectory_controller default rejects anything else).
# allow_nonzero: finite-difference velocity on the last point too (Humble default behaviour).
END_VELOCITY_MODES = ("zero", "allow_nonzero")

# Parameters rclpy or the launch system declare by themselves; never reported as unknown.
ROS_BUILTIN_PARAMETERS = ("use_sim_time", "start_type_description_service")
ROS_BUILTIN_PREFIXES = ("qos_overrides.",)


class ParamsError(ValueError):
    """One or more parameters are invalid; the message lists each as `name=value: reason`."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("invalid policy node parameters:\n  " + "\n  ".join(self.problems))


@dataclass(frozen=True)
class PolicyNodeParams:
    """Every setting of the policy node. Lists indexed by joint follow `joint_names`."""

    # Checkpoint directory written by the trainer (or converted from a released model).
    checkpoint_path: str = ""
    # torch device for inference: "cpu", "cuda", "cuda:1", ...
    device: str = "cpu"
    # torch intra-op threads for CPU inference (0 = torch's default, all cores).
    cpu_threads: int = 0

    # Camera names as the checkpoint calls them, their topics, and per camera whether the topic
    # carries sensor_msgs/CompressedImage (true) or sensor_msgs/Image (false).
    camera_names: tuple[str, ...] = ("front", "wrist")
    camera_topics: tuple[str, ...] = ("/camera/front/image_raw", "/camera/wrist/image_raw")
    camera_compressed: tuple[bool, ...] = (False, False)
    # A camera frame older than this (capture stamp vs now) is stale: the node holds position.
    camera_max_age_s: tuple[float, ...] = (0.25, 0.25)

    joint_states_topic: str = "/joint_states"
    joint_states_max_age_s: float = 0.25
    # Joints the policy reads (from /joint_states, by name, any order) and commands.
    joint_names: tuple[str, ...] = SO100_JOINT_NAMES
    controller_topic: str = "/arm_controller/joint_trajectory"

    # Rate of the trajectory points (the chunk step). 0 = the checkpoint's rate; anything else
    # must equal it (a chunk trained at 30 Hz played at another rate is a different motion).
    control_rate_hz: float = 0.0
    # Chunk steps executed before the next chunk takes over; sets the inference period.
    execution_horizon: int = 10
    # How often an inference starts. 0 = control rate / execution_horizon.
    inference_rate_hz: float = 0.0

    overlap_policy: str = "blend"
    # blend / ensemble: steps over which the new chunk (or the ensemble) takes over from the
    # plan being executed, starting at the switch (0 = replace at once, like latest).
    # 8 smooth steps: the smallest measured velocity jump of the simulated arm at chunk switches
    # (make bench-node: 0.28 rad/s vs 0.57 for 5 linear steps, naive 1.39).
    blend_steps: int = 8
    # blend / ensemble: smooth (smoothstep; no velocity step where the hand-over starts and
    # ends) or linear.
    blend_shape: str = "smooth"
    # ensemble: weight of a chunk = exp(-decay * age_rank), rank 0 = oldest (ACT's convention:
    # positive favours older predictions, negative favours newer ones).
    ensemble_decay: float = 0.01
    latency_compensation: str = "stamp_observation"
    end_velocity: str = "zero"

    # Robot profile: position limits (rad, or the joint's unit) and velocity limits (unit/s).
    joint_lower_limits: tuple[float, ...] = (-3.1, -3.1, -3.1, -3.1, -3.1, -0.2)
    joint_upper_limits: tuple[float, ...] = (3.1, 3.1, 3.1, 3.1, 3.1, 2.0)
    joint_velocity_limits: tuple[float, ...] = (2.0, 2.0, 2.0, 2.0, 3.0, 3.0)
    # A chunk whose first target is farther than this from the current state is refused (per
    # joint; a gripper commanded open/closed in absolute terms may jump across its range).
    max_first_target_distance: tuple[float, ...] = (0.5, 0.5, 0.5, 0.5, 0.5, 2.5)

    # false = dry run: chunks go to ~/action_chunk only. Hardware profiles keep this false.
    output_enabled: bool = False
    # Configure and activate by itself (plain launches without a lifecycle manager).
    auto_activate: bool = False
    # Instruction used until ~/set_instruction is called ("" = wait for one).
    instruction: str = ""
    max_instruction_chars: int = 512

    # Inference runs on a synthetic observation at configure, for warm-up and a latency report.
    warmup_runs: int = 5
    warmup_image_shape: tuple[int, ...] = (480, 640)
    # Stamps further than this in the future are refused (publisher clock differs from ours).
    max_future_stamp_s: float = 0.5
    status_rate_hz: float = 2.0

    # ------------------------------------------------------------------ construction
    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The parameter names, in declaration order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Default values in ROS-parameter form (tuples as lists)."""
        proto = cls()
        return {n: _to_ros(getattr(proto, n)) for n in cls.names()}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> PolicyNodeParams:
        """Validated params from a name -> value mapping; missing names keep their defaults.

        Raises ParamsError naming each unknown or invalid parameter and its value.
        """
        problems: list[str] = []
        known = set(cls.names())
        for name in sorted(values):
            if name in known or _is_builtin(name):
                continue
            hint = _near_miss(name, known)
            problems.append(f"{name}={values[name]!r}: unknown parameter{hint}")
        kwargs: dict[str, Any] = {}
        proto = cls()
        for name in cls.names():
            if name not in values:
                continue
            try:
                kwargs[name] = _coerce(values[name], getattr(proto, name))
            except (TypeError, ValueError) as exc:
                problems.append(f"{name}={values[name]!r}: {exc}")
        params = cls(**{**{n: getattr(proto, n) for n in cls.names()}, **kwargs})
        problems.extend(params.problems())
        if problems:
            raise ParamsError(problems)
        return params

    # ------------------------------------------------------------------ validation
    def problems(self) -> list[str]:
        """Every rule this parameter set breaks, as `name=value: reason` lines."""
        out: list[str] = []
        out += _check_cameras(self)
        out += _check_joints(self)
        out += _check_rates(self)
        out += _check_choices(self)
        out += _check_misc(self)
        return out

    @property
    def camera_topic_map(self) -> dict[str, str]:
        return dict(zip(self.camera_names, self.camera_topics, strict=True))

    @property
    def camera_compressed_map(self) -> dict[str, bool]:
        return dict(zip(self.camera_names, self.camera_compressed, strict=True))

    @property
    def camera_max_age_map(self) -> dict[str, float]:
        return dict(zip(self.camera_names, self.camera_max_age_s, strict=True))


def _check_cameras(p: PolicyNodeParams) -> list[str]:
    out = []
    if not p.camera_names:
        out.append("camera_names=[]: at least one camera is needed")
    if len(set(p.camera_names)) != len(p.camera_names):
        out.append(f"camera_names={list(p.camera_names)}: names must be unique")
    n = len(p.camera_names)
    for name in ("camera_topics", "camera_compressed", "camera_max_age_s"):
        value = getattr(p, name)
        if len(value) != n:
            out.append(
                f"{name}={list(value)}: expected {n} entries, one per camera_names "
                f"{list(p.camera_names)}"
            )
    for topic in p.camera_topics:
        if not topic:
            out.append(f"camera_topics={list(p.camera_topics)}: empty topic name")
    for age in p.camera_max_age_s:
        if not (math.isfinite(age) and age > 0):
            out.append(f"camera_max_age_s={list(p.camera_max_age_s)}: ages must be > 0")
            break
    return out


def _check_joints(p: PolicyNodeParams) -> list[str]:
    out = []
    if not p.joint_names:
        out.append("joint_names=[]: at least one joint is needed")
    if len(set(p.joint_names)) != len(p.joint_names):
        out.append(f"joint_names={list(p.joint_names)}: names must be unique")
    n = len(p.joint_names)
    for name in ("joint_lower_limits", "joint_upper_limits", "joint_velocity_limits"):
        value = getattr(p, name)
        if len(value) != n:
            out.append(f"{name}={list(value)}: expected {n} entries, one per joint_names")
        elif not all(math.isfinite(v) for v in value):
            out.append(f"{name}={list(value)}: values must be finite")
    if len(p.joint_lower_limits) == n == len(p.joint_upper_limits):
        for j, lo, hi in zip(
            p.joint_names, p.joint_lower_limits, p.joint_upper_limits, strict=True
        ):
            if not lo < hi:
                out.append(
                    f"joint_lower_limits/joint_upper_limits: {j} has lower {lo} >= upper {hi}"
                )
    if any(v <= 0 for v in p.joint_velocity_limits):
        out.append(f"joint_velocity_limits={list(p.joint_velocity_limits)}: values must be > 0")
    distances = p.max_first_target_distance
    if len(distances) != n:
        out.append(f"max_first_target_distance={list(distances)}: expected {n} entries")
    elif not all(math.isfinite(d) and d > 0 for d in distances):
        out.append(f"max_first_target_distance={list(distances)}: values must be > 0")
    if not (math.isfinite(p.joint_states_max_age_s) and p.joint_states_max_age_s > 0):
        out.append(f"joint_states_max_age_s={p.joint_states_max_age_s}: must be > 0")
    return out


def _check_rates(p: PolicyNodeParams) -> list[str]:
    out = []
    for name in ("control_rate_hz", "inference_rate_hz"):
        value = getattr(p, name)
        if not (math.isfinite(value) and value >= 0):
            out.append(f"{name}={value}: must be >= 0 (0 = automatic)")
    if not (math.isfinite(p.status_rate_hz) and p.status_rate_hz >= 1.0):
        out.append(f"status_rate_hz={p.status_rate_hz}: must be >= 1")
    if p.execution_horizon < 1:
        out.append(f"execution_horizon={p.execution_horizon}: must be >= 1")
    if p.blend_steps < 0:
        out.append(f"blend_steps={p.blend_steps}: must be >= 0")
    if not math.isfinite(p.ensemble_decay):
        out.append(f"ensemble_decay={p.ensemble_decay}: must be finite")
    return out


def _check_choices(p: PolicyNodeParams) -> list[str]:
    out = []
    for name, choices in (
        ("overlap_policy", OVERLAP_POLICIES),
        ("blend_shape", BLEND_SHAPES),
        ("latency_compensation", LATENCY_MODES),
        ("end_velocity", END_VELOCITY_MODES),
    ):
        value = getattr(p, name)
        if value not in choices:
            out.append(f"{name}={value!r}: must be one of {list(choices)}")
    return out


def _check_misc(p: PolicyNodeParams) -> list[str]:
    out = []
    if not p.checkpoint_path:
        out.append("checkpoint_path='': a checkpoint directory is required")
    if not p.device:
        out.append("device='': give a torch device such as 'cpu' or 'cuda'")
    for name in ("joint_states_topic", "controller_topic"):
        if not getattr(p, name):
            out.append(f"{name}='': empty topic name")
    if p.cpu_threads < 0:
        out.append(f"cpu_threads={p.cpu_threads}: must be >= 0 (0 = torch default)")
    if p.max_instruction_chars < 1:
        out.append(f"max_instruction_chars={p.max_instruction_chars}: must be >= 1")
    if len(p.instruction) > p.max_instruction_chars:
        out.append(
            f"instruction={p.instruction[:40]!r}...: {len(p.instruction)} characters, "
            f"more than max_instruction_chars={p.max_instruction_chars}"
        )
    if p.warmup_runs < 0:
        out.append(f"warmup_runs={p.warmup_runs}: must be >= 0")
    if len(p.warmup_image_shape) != 2 or any(v < 1 for v in p.warmup_image_shape):
        out.append(f"warmup_image_shape={list(p.warmup_image_shape)}: expected [height, width]")
    if not (math.isfinite(p.max_future_stamp_s) and p.max_future_stamp_s >= 0):
        out.append(f"max_future_stamp_s={p.max_future_stamp_s}: must be >= 0")
    return out


def _is_builtin(name: str) -> bool:
    return name in ROS_BUILTIN_PARAMETERS or name.startswith(ROS_BUILTIN_PREFIXES)


def _near_miss(name: str, known: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _to_ros(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _coerce(value: Any, default: Any) -> Any:
    """Convert a ROS parameter value to the type of the field's default, strictly."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise TypeError(f"expected true/false, got {type(value).__name__}")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    if isinstance(default, float):
        return _as_float(value)
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        raise TypeError(f"expected a string, got {type(value).__name__}")
    if isinstance(default, tuple):
        return _coerce_list(value, default)
    raise TypeError(f"unsupported parameter type {type(default).__name__}")


def _coerce_list(value: Any, default: tuple) -> tuple:
    if isinstance(value, str | bytes) or not isinstance(value, (Sequence, array.array)):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    items = list(value)
    kind = type(default[0]) if default else str
    if kind is bool:
        if not all(isinstance(v, bool) for v in items):
            raise TypeError("expected a list of true/false")
        return tuple(items)
    if kind is int:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            raise TypeError("expected a list of integers")
        return tuple(int(v) for v in items)
    if kind is float:
        return tuple(_as_float(v) for v in items)
    if not all(isinstance(v, str) for v in items):
        raise TypeError("expected a list of strings")
    return tuple(items)


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)
