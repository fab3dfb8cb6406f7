"""`SimConfig`: every setting of the simulated arm, validated on construction."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from rynnvla_sim.scenes.arm import JOINT_NAMES

# ROS names: letters, digits and underscores, not starting with a digit.
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CAMERA_NAMES: tuple[str, ...] = ("front", "wrist")
MAX_IMAGE_SIDE = 1024


@dataclass(frozen=True)
class SimConfig:
    """Settings of `ArmSimEnv`. Errors name the field and the bad value."""

    # Names of the 6 joints in state/action order (SO-100/SO-101 layout by default).
    joint_names: tuple[str, ...] = JOINT_NAMES
    # Camera image size in pixels (width x height); 128x96 keeps the 4:3 aspect of real cams.
    image_width: int = 128
    image_height: int = 96
    # Physics step (s). 2 ms keeps the gripper contacts stiff and stable.
    physics_timestep: float = 0.002
    # Rates (Hz) at which a driver sends position targets, renders cameras, publishes states.
    control_rate_hz: float = 30.0
    camera_rate_hz: float = 30.0
    joint_state_rate_hz: float = 100.0
    # Number of distractor objects put on the table when a reset asks for distractors.
    n_distractors: int = 2
    # Uniform noise (rad) added per joint to the home pose at reset, from the episode seed.
    # Wide on purpose: demonstrations that all start from one pose let a policy read the whole
    # reach from the joint state alone and never learn to look; varied starts make the state
    # ambiguous, so the camera has to tell where to go (the expert still solves 100 %).
    initial_pose_noise_rad: float = 0.25

    def __post_init__(self) -> None:
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        self._check_joint_names()
        for field in ("image_width", "image_height"):
            value = getattr(self, field)
            if not isinstance(value, int) or not 16 <= value <= MAX_IMAGE_SIDE:
                raise ValueError(
                    f"SimConfig.{field} must be an int in [16, {MAX_IMAGE_SIDE}], got {value!r}"
                )
        if not 1e-4 <= self.physics_timestep <= 0.005:
            raise ValueError(
                f"SimConfig.physics_timestep must be in [1e-4, 0.005] s (contacts go unstable "
                f"above), got {self.physics_timestep!r}"
            )
        for field in ("control_rate_hz", "camera_rate_hz", "joint_state_rate_hz"):
            value = getattr(self, field)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"SimConfig.{field} must be a positive number, got {value!r}")
            if value > 1.0 / self.physics_timestep:
                raise ValueError(
                    f"SimConfig.{field}={value!r} exceeds the physics rate "
                    f"{1.0 / self.physics_timestep:.0f} Hz"
                )
        if not isinstance(self.n_distractors, int) or not 0 <= self.n_distractors <= 4:
            raise ValueError(
                f"SimConfig.n_distractors must be an int in [0, 4], got {self.n_distractors!r}"
            )
        if not 0.0 <= self.initial_pose_noise_rad <= 0.3:
            raise ValueError(
                f"SimConfig.initial_pose_noise_rad must be in [0, 0.3], got {self.initial_pose_noise_rad!r}"
            )

    def _check_joint_names(self) -> None:
        names = self.joint_names
        if len(names) != len(JOINT_NAMES):
            raise ValueError(
                f"SimConfig.joint_names must have {len(JOINT_NAMES)} names, got {names!r}"
            )
        for name in names:
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise ValueError(f"SimConfig.joint_names: invalid joint name {name!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"SimConfig.joint_names must be unique, got {names!r}")
