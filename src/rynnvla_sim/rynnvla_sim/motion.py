"""Cartesian motion primitives of the scripted expert: waypoints, min-jerk segments, rotations."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mujoco
import numpy as np


def topdown_rotation(closing_yaw: float) -> np.ndarray:
    """TCP rotation (3, 3) pointing straight down with the finger closing axis at `closing_yaw`.

    Columns are the TCP axes in world coordinates: x palm normal, y closing axis, z approach.
    """
    y = np.array([math.cos(closing_yaw), math.sin(closing_yaw), 0.0])
    z = np.array([0.0, 0.0, -1.0])
    return np.stack([np.cross(y, z), y, z], axis=1)


def rotation_from_axes(
    approach: np.ndarray, tool_dir: np.ndarray, world_dir: np.ndarray
) -> np.ndarray:
    """TCP rotation (3, 3) with approach axis `approach` (world) that maps a direction given in
    the TCP frame, `tool_dir`, onto the world direction `world_dir` (both made orthogonal to
    the approach axis)."""
    z_tool = np.array([0.0, 0.0, 1.0])
    d_tool = tool_dir - tool_dir @ z_tool * z_tool
    d_tool /= np.linalg.norm(d_tool)
    a = approach / np.linalg.norm(approach)
    d_world = world_dir - world_dir @ a * a
    d_world /= np.linalg.norm(d_world)
    tool_basis = np.stack([z_tool, d_tool, np.cross(z_tool, d_tool)], axis=1)  # (3, 3)
    world_basis = np.stack([a, d_world, np.cross(a, d_world)], axis=1)  # (3, 3)
    return world_basis @ tool_basis.T


def _rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def arm_azimuth(pos: np.ndarray) -> float:
    """Azimuth of the arm's vertical plane through a TCP position (arm base at the origin)."""
    return math.atan2(pos[1], pos[0])


def arm_rotation(azimuth: float, pitch: float, roll: float) -> np.ndarray:
    """TCP rotation (3, 3) reachable by the 5-joint arm: the approach axis lies in the arm's
    plane at `azimuth`, tilted by `pitch` from straight up (pi = straight down), rolled by
    `roll` about itself. Equals Rz(pan) Ry(lift + elbow + wrist_flex) Rz(wrist_roll)."""
    return _rot_z(azimuth) @ _rot_y(pitch) @ _rot_z(roll)


def pitch_roll(rot: np.ndarray, azimuth: float) -> tuple[float, float]:
    """Inverse of `arm_rotation` for a known azimuth (projects unreachable rotations).

    With pitch in [-pi/2, 3pi/2) the returned roll is the wrist_roll joint angle."""
    m = _rot_z(-azimuth) @ rot
    # Pitch in [-pi/2, 3pi/2): straight down (pi) sits mid-range, so it never flips sign.
    pitch = math.atan2(m[0, 2], m[2, 2]) % (2 * math.pi)
    if pitch >= 1.5 * math.pi:
        pitch -= 2 * math.pi
    n = _rot_y(-pitch) @ m
    return pitch, math.atan2(n[1, 0], n[0, 0])


def min_jerk(s: float) -> float:
    """Minimum-jerk time scaling: 0 -> 1 with zero velocity and acceleration at both ends."""
    s = min(max(s, 0.0), 1.0)
    return s**3 * (10.0 - 15.0 * s + 6.0 * s * s)


def slerp_rotation(start: np.ndarray, end: np.ndarray, h: float) -> np.ndarray:
    """Rotation (3, 3) a fraction `h` of the way from `start` to `end` (shortest arc)."""
    q0, q1 = np.empty(4), np.empty(4)
    mujoco.mju_mat2Quat(q0, start.reshape(9))
    mujoco.mju_mat2Quat(q1, end.reshape(9))
    if q0 @ q1 < 0:
        q1 = -q1
    omega = math.acos(min(1.0, float(q0 @ q1)))
    if omega < 1e-6:
        q = q1
    else:
        q = (math.sin((1 - h) * omega) * q0 + math.sin(h * omega) * q1) / math.sin(omega)
    mat = np.empty(9)
    mujoco.mju_quat2Mat(mat, q / np.linalg.norm(q))
    return mat.reshape(3, 3)


@dataclass(frozen=True)
class Waypoint:
    pos: np.ndarray  # (3,) TCP position, world (m)
    rot: np.ndarray  # (3, 3) TCP rotation, world
    gripper: float  # gripper joint target (rad)


@dataclass(frozen=True)
class Wobble:
    """Smooth, seeded deviation from the straight path: a hand is never perfectly straight."""

    amplitude: np.ndarray  # (3,) m
    frequency: np.ndarray  # (3,) Hz
    phase: np.ndarray  # (3,) rad

    @staticmethod
    def none() -> Wobble:
        return Wobble(np.zeros(3), np.ones(3), np.zeros(3))

    def offset(self, t: float, s: float) -> np.ndarray:
        envelope = math.sin(math.pi * min(max(s, 0.0), 1.0))  # zero at both segment ends
        return envelope * self.amplitude * np.sin(2 * math.pi * self.frequency * t + self.phase)


@dataclass(frozen=True)
class Segment:
    phase: str
    duration: float  # s
    end: Waypoint
    wobble: Wobble = field(default_factory=Wobble.none)

    def sample(self, start: Waypoint, t: float) -> Waypoint:
        """Pose `t` seconds into the segment (min-jerk in position, rotation and gripper).

        The rotation is interpolated as pitch and roll relative to the arm's plane, which
        keeps every intermediate pose reachable by the 5-joint arm (a plain slerp between two
        reachable rotations at different azimuths generally is not).
        """
        s = t / self.duration if self.duration > 0 else 1.0
        h = min_jerk(s)
        pos = start.pos + h * (self.end.pos - start.pos) + self.wobble.offset(t, s)
        pitch0, roll0 = pitch_roll(start.rot, arm_azimuth(start.pos))
        pitch1, roll1 = pitch_roll(self.end.rot, arm_azimuth(self.end.pos))
        # Roll is the wrist_roll joint angle (in (-pi, pi]): interpolate it as the joint moves.
        rot = arm_rotation(
            arm_azimuth(pos), pitch0 + h * (pitch1 - pitch0), roll0 + h * (roll1 - roll0)
        )
        gripper = start.gripper + h * (self.end.gripper - start.gripper)
        return Waypoint(pos, rot, gripper)
