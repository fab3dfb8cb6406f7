"""URDF of the SO-100-layout arm with a `<ros2_control>` block, generated from a robot profile.

The kinematic chain (joint origins and axes) is the one of the MuJoCo arm in
`rynnvla_sim/scenes/arm.py` (a test compares them body by body), so Gazebo, mock hardware and
the MuJoCo sim move the same arm. Joint names and position / velocity limits come from the
robot profile (`config/robots/*.yaml`, layered by `params.py`); the hardware plugin is chosen
by one word:

    gazebo -> gz_ros2_control/GazeboSimSystem  (+ the gz_ros2_control Gazebo plugin)
    mock   -> mock_components/GenericSystem    (commands mirrored to states)
    real   -> the driver plugin you name       (+ its <param> entries)

The controllers stay in one YAML (`config/controllers.yaml`) for all three. No xacro, no ROS
imports: `urdf(...)` returns the XML text for robot_state_publisher's `robot_description`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HARDWARE_CHOICES = ("gazebo", "mock", "real")
GAZEBO_SYSTEM = "gz_ros2_control/GazeboSimSystem"
MOCK_SYSTEM = "mock_components/GenericSystem"
GZ_PLUGIN_FILE = "gz_ros2_control-system"
GZ_PLUGIN_NAME = "gz_ros2_control::GazeboSimROS2ControlPlugin"

# Resting pose of the simulated arm (gripper above the workspace, pointing down, half open);
# equal to rynnvla_sim.scenes.arm.HOME_QPOS (tested). The initial state of mock/Gazebo joints.
SO100_HOME = (0.0, -0.35, 2.05, 1.45, 0.0, 0.9)
# Effort limits (N m) = the MuJoCo actuators' force ranges.
ARM_EFFORT = 3.0
GRIPPER_EFFORT = 0.5


class RobotDescriptionError(ValueError):
    """The profile or hardware choice cannot make a valid URDF (message names the value)."""


@dataclass(frozen=True)
class LinkSpec:
    """A joint of the chain and the link it moves: origin (m) in the parent frame, axis."""

    parent: str
    child: str
    origin: tuple[float, float, float]
    axis: tuple[float, float, float]
    # Visual/collision box of the child link (m), centred `box_offset` above its origin.
    box: tuple[float, float, float]
    box_offset: float
    mass: float  # kg


# The chain of the MuJoCo arm, one entry per joint in SO-100 order. Origins are the MuJoCo body
# positions: shoulder 56 mm above the base, lift axis at 90 mm, 125 mm upper arm, 140 mm
# forearm, wrist roll 30 mm beyond wrist flex, gripper crank on the palm (12 mm).
# fmt: off
CHAIN: tuple[LinkSpec, ...] = (
    #        parent            child             origin            axis       box (x, y, z)          z     kg
    LinkSpec("base_link",      "shoulder_link",  (0, 0, 0.056),  (0, 0, 1), (0.044, 0.06, 0.034),  0.017,  0.08),
    LinkSpec("shoulder_link",  "upper_arm_link", (0, 0, 0.034),  (0, 1, 0), (0.032, 0.032, 0.125), 0.0625, 0.10),
    LinkSpec("upper_arm_link", "forearm_link",   (0, 0, 0.125),  (0, 1, 0), (0.028, 0.028, 0.14),  0.07,   0.09),
    LinkSpec("forearm_link",   "wrist_link",     (0, 0, 0.14),   (0, 1, 0), (0.036, 0.04, 0.03),   0.015,  0.05),
    LinkSpec("wrist_link",     "gripper_link",   (0, 0, 0.03),   (0, 0, 1), (0.04, 0.092, 0.024),  0.012,  0.06),
    LinkSpec("gripper_link",   "jaw_link",       (0, 0, 0.012),  (1, 0, 0), (0.024, 0.008, 0.05),  0.025,  0.01),
)
# fmt: on
BASE_FOOT = (0.05, 0.012)  # radius, height (m) of the base cylinder


def hardware_plugin(hardware: str, driver_plugin: str = "") -> str:
    """The ros2_control hardware plugin for `hardware` (gazebo | mock | real)."""
    if hardware == "gazebo":
        return GAZEBO_SYSTEM
    if hardware == "mock":
        return MOCK_SYSTEM
    if hardware == "real":
        if not driver_plugin:
            raise RobotDescriptionError(
                "hardware='real' needs the driver's ros2_control plugin name "
                "(launch argument hardware_plugin:=<package>/<Class>)"
            )
        return driver_plugin
    raise RobotDescriptionError(f"hardware={hardware!r}: expected one of {list(HARDWARE_CHOICES)}")


def parse_hardware_params(text: str) -> dict[str, str]:
    """`port=/dev/ttyACM0;baud=1000000` -> {"port": "/dev/ttyACM0", "baud": "1000000"}."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        key, found, value = item.partition("=")
        if not found or not key.strip():
            raise RobotDescriptionError(f"hardware parameter {item!r}: expected key=value")
        out[key.strip()] = value.strip()
    return out


def default_initial_positions(profile: Mapping[str, Any]) -> list[float]:
    """The sim's home pose for the SO-100 layout, else zeros; clipped into the limits."""
    lower, upper = profile["joint_lower_limits"], profile["joint_upper_limits"]
    home = SO100_HOME if len(profile["joint_names"]) == len(SO100_HOME) else ()
    values = list(home) or [0.0] * len(lower)
    return [min(max(v, lo), hi) for v, lo, hi in zip(values, lower, upper, strict=True)]


def urdf(
    profile: Mapping[str, Any],
    hardware: str = "mock",
    *,
    driver_plugin: str = "",
    hardware_params: Mapping[str, str] | None = None,
    controllers_file: str | Path | None = None,
    initial_positions: Sequence[float] | None = None,
    robot_name: str = "rynnvla_arm",
) -> str:
    """URDF text of the arm for the policy-node parameters `profile` (a merged robot profile).

    `controllers_file` is required for hardware='gazebo' (gz_ros2_control loads the
    controllers from it).
    """
    joints = list(profile["joint_names"])
    if len(joints) != len(CHAIN):
        raise RobotDescriptionError(
            f"joint_names={joints}: this arm description has {len(CHAIN)} joints "
            "(5 arm joints + gripper, SO-100 layout)"
        )
    lower = [float(v) for v in profile["joint_lower_limits"]]
    upper = [float(v) for v in profile["joint_upper_limits"]]
    velocity = [float(v) for v in profile["joint_velocity_limits"]]
    initial = list(initial_positions or default_initial_positions(profile))
    if len(initial) != len(joints):
        raise RobotDescriptionError(
            f"initial_positions={initial}: expected {len(joints)} values, one per joint"
        )
    plugin = hardware_plugin(hardware, driver_plugin)
    if hardware == "gazebo" and not controllers_file:
        raise RobotDescriptionError("hardware='gazebo' needs controllers_file for gz_ros2_control")

    robot = ET.Element("robot", name=robot_name)
    _add_world_and_base(robot)
    for index, (spec, name) in enumerate(zip(CHAIN, joints, strict=True)):
        effort = GRIPPER_EFFORT if index == len(CHAIN) - 1 else ARM_EFFORT
        _add_link(robot, spec)
        _add_joint(robot, spec, name, lower[index], upper[index], velocity[index], effort)
    _add_ros2_control(
        robot, robot_name, plugin, dict(hardware_params or {}), joints, lower, upper, initial
    )
    if hardware == "gazebo":
        gazebo = ET.SubElement(robot, "gazebo")
        gz = ET.SubElement(gazebo, "plugin", filename=GZ_PLUGIN_FILE, name=GZ_PLUGIN_NAME)
        ET.SubElement(gz, "parameters").text = str(controllers_file)
    ET.indent(robot, space="  ")
    return '<?xml version="1.0"?>\n' + ET.tostring(robot, encoding="unicode") + "\n"


# ---------------------------------------------------------------------------- pieces
def _fmt(values: Sequence[float]) -> str:
    return " ".join(f"{float(v):g}" for v in values)


def _add_world_and_base(robot: ET.Element) -> None:
    ET.SubElement(robot, "link", name="world")
    fixed = ET.SubElement(robot, "joint", name="world_to_base", type="fixed")
    ET.SubElement(fixed, "parent", link="world")
    ET.SubElement(fixed, "child", link="base_link")
    ET.SubElement(fixed, "origin", xyz="0 0 0", rpy="0 0 0")
    radius, height = BASE_FOOT
    base = ET.SubElement(robot, "link", name="base_link")
    for tag in ("visual", "collision"):
        element = ET.SubElement(base, tag)
        ET.SubElement(element, "origin", xyz=f"0 0 {height / 2:g}", rpy="0 0 0")
        geometry = ET.SubElement(element, "geometry")
        ET.SubElement(geometry, "cylinder", radius=f"{radius:g}", length=f"{height:g}")
    _add_inertial(base, 0.3, (2 * radius, 2 * radius, height), height / 2)


def _add_link(robot: ET.Element, spec: LinkSpec) -> None:
    link = ET.SubElement(robot, "link", name=spec.child)
    for tag in ("visual", "collision"):
        element = ET.SubElement(link, tag)
        ET.SubElement(element, "origin", xyz=f"0 0 {spec.box_offset:g}", rpy="0 0 0")
        geometry = ET.SubElement(element, "geometry")
        ET.SubElement(geometry, "box", size=_fmt(spec.box))
    _add_inertial(link, spec.mass, spec.box, spec.box_offset)


def _add_inertial(link: ET.Element, mass: float, box: Sequence[float], z: float) -> None:
    """Solid-box inertia (Gazebo refuses massless links)."""
    x, y, h = box
    inertial = ET.SubElement(link, "inertial")
    ET.SubElement(inertial, "origin", xyz=f"0 0 {z:g}", rpy="0 0 0")
    ET.SubElement(inertial, "mass", value=f"{mass:g}")
    ixx, iyy, izz = (mass / 12 * (b * b + c * c) for b, c in ((y, h), (x, h), (x, y)))
    ET.SubElement(
        inertial, "inertia", ixx=f"{ixx:.6g}", iyy=f"{iyy:.6g}", izz=f"{izz:.6g}",
        ixy="0", ixz="0", iyz="0",
    )  # fmt: skip


def _add_joint(
    robot: ET.Element,
    spec: LinkSpec,
    name: str,
    lower: float,
    upper: float,
    velocity: float,
    effort: float,
) -> None:
    if not lower < upper:
        raise RobotDescriptionError(f"joint {name!r}: lower limit {lower} >= upper {upper}")
    joint = ET.SubElement(robot, "joint", name=name, type="revolute")
    ET.SubElement(joint, "parent", link=spec.parent)
    ET.SubElement(joint, "child", link=spec.child)
    ET.SubElement(joint, "origin", xyz=_fmt(spec.origin), rpy="0 0 0")
    ET.SubElement(joint, "axis", xyz=_fmt(spec.axis))
    ET.SubElement(
        joint, "limit", lower=f"{lower:g}", upper=f"{upper:g}", velocity=f"{velocity:g}",
        effort=f"{effort:g}",
    )  # fmt: skip
    ET.SubElement(joint, "dynamics", damping="0.1", friction="0.02")


def _add_ros2_control(
    robot: ET.Element,
    name: str,
    plugin: str,
    params: Mapping[str, str],
    joints: Sequence[str],
    lower: Sequence[float],
    upper: Sequence[float],
    initial: Sequence[float],
) -> None:
    control = ET.SubElement(robot, "ros2_control", name=name, type="system")
    hardware = ET.SubElement(control, "hardware")
    ET.SubElement(hardware, "plugin").text = plugin
    for key, value in params.items():
        ET.SubElement(hardware, "param", name=key).text = value
    for joint, lo, hi, start in zip(joints, lower, upper, initial, strict=True):
        element = ET.SubElement(control, "joint", name=joint)
        command = ET.SubElement(element, "command_interface", name="position")
        ET.SubElement(command, "param", name="min").text = f"{lo:g}"
        ET.SubElement(command, "param", name="max").text = f"{hi:g}"
        position = ET.SubElement(element, "state_interface", name="position")
        ET.SubElement(position, "param", name="initial_value").text = f"{start:g}"
        ET.SubElement(element, "state_interface", name="velocity")


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m rynnvla_bringup.robot_description --robot so100 --hardware mock > arm.urdf`."""
    import argparse

    from rynnvla_bringup.params import controllers_path, policy_layers

    parser = argparse.ArgumentParser(description="Print the arm's URDF for a robot profile.")
    parser.add_argument("--robot", default="sim_arm", help="robot profile name or YAML path")
    parser.add_argument("--hardware", default="mock", choices=HARDWARE_CHOICES)
    parser.add_argument("--hardware-plugin", default="", help="driver plugin (hardware real)")
    parser.add_argument("--hardware-params", default="", help="key=value;key=value (real)")
    args = parser.parse_args(argv)
    print(
        urdf(
            policy_layers(args.robot).merged(),
            args.hardware,
            driver_plugin=args.hardware_plugin,
            hardware_params=parse_hardware_params(args.hardware_params),
            controllers_file=controllers_path(),
        ),
        end="",
    )
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
