"""Safety filter between the model and the controller. Pure numpy, no ROS.

Layers, in order: refuse non-finite output; clip to position limits (counted); refuse a chunk
whose first target is too far from the measured state (`screen_chunk`); then, on the plan that is
actually sent, limit each step's velocity (counted, `limit_velocity`); hold on any refusal.
A refused chunk raises UnsafeChunkError: the caller holds position instead of commanding it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class UnsafeChunkError(ValueError):
    """A chunk that must not reach the robot; the message says which joint and why."""


@dataclass(frozen=True)
class SafetyLimits:
    """Per-joint limits, in the order of `joint_names`."""

    joint_names: tuple[str, ...]
    lower: np.ndarray  # (D,)
    upper: np.ndarray  # (D,)
    max_velocity: np.ndarray  # (D,) unit/s
    max_first_target_distance: np.ndarray  # (D,)

    @classmethod
    def from_lists(
        cls,
        joint_names: Sequence[str],
        lower: Sequence[float],
        upper: Sequence[float],
        max_velocity: Sequence[float],
        max_first_target_distance: Sequence[float] | float,
    ) -> SafetyLimits:
        n = len(joint_names)
        distance = np.broadcast_to(np.asarray(max_first_target_distance, dtype=np.float64), (n,))
        arrays = [np.asarray(v, dtype=np.float64) for v in (lower, upper, max_velocity, distance)]
        names = ("lower", "upper", "max_velocity", "max_first_target_distance")
        for name, arr in zip(names, arrays, strict=True):
            if arr.shape != (n,):
                raise ValueError(f"{name} has shape {arr.shape}, expected ({n},)")
        return cls(tuple(joint_names), *arrays)

    def reordered(self, joint_names: Sequence[str]) -> SafetyLimits:
        """The same limits for the same joints listed in another order."""
        index = [self.joint_names.index(j) for j in joint_names]
        return SafetyLimits(
            tuple(joint_names),
            self.lower[index],
            self.upper[index],
            self.max_velocity[index],
            self.max_first_target_distance[index],
        )


def check_finite(positions: np.ndarray, joint_names: Sequence[str]) -> None:
    """Raise UnsafeChunkError naming the first non-finite target."""
    bad = ~np.isfinite(positions)
    if bad.any():
        step, joint = np.argwhere(bad)[0]
        raise UnsafeChunkError(
            f"non-finite target {positions[step, joint]} for {joint_names[joint]} at step {step} "
            f"({int(bad.sum())} non-finite values in the chunk)"
        )


def clip_to_limits(positions: np.ndarray, limits: SafetyLimits) -> tuple[np.ndarray, int]:
    """(positions clipped to [lower, upper], number of clipped values)."""
    clipped = np.clip(positions, limits.lower, limits.upper)
    return clipped, int(np.count_nonzero(clipped != positions))


def check_first_target(first: np.ndarray, current: np.ndarray, limits: SafetyLimits) -> None:
    """Raise UnsafeChunkError when any joint's first target is too far from its current value."""
    distance = np.abs(first - current)  # (D,)
    excess = distance - limits.max_first_target_distance
    joint = int(np.argmax(excess))
    if excess[joint] > 0:
        raise UnsafeChunkError(
            f"first target of {limits.joint_names[joint]} is {first[joint]:.3f}, "
            f"{distance[joint]:.3f} from the current position {current[joint]:.3f} "
            f"(max_first_target_distance {limits.max_first_target_distance[joint]})"
        )


def limit_velocity(
    positions: np.ndarray, start: np.ndarray, step_s: float, limits: SafetyLimits
) -> tuple[np.ndarray, int]:
    """Limit every step (start -> p0 -> p1 ...) to max_velocity * step_s; returns (out, clips).

    Applied last, to the plan actually sent (blend and ensemble mix chunks). Sequential, so a
    shortened step is made up by the following ones when they allow it. The result stays within
    the position limits even when the start lies outside them.
    """
    max_step = limits.max_velocity * step_s  # (D,)
    out = np.empty_like(positions)
    previous = start.astype(np.float64)
    clips = 0
    for i, target in enumerate(positions):
        delta = target - previous
        limited = np.clip(delta, -max_step, max_step)
        clips += int(np.count_nonzero(limited != delta))
        previous = previous + limited
        out[i] = previous
    return np.clip(out, limits.lower, limits.upper), clips


def screen_chunk(
    positions: np.ndarray, current: np.ndarray, limits: SafetyLimits
) -> tuple[np.ndarray, int]:
    """Layers 1-3 on a model chunk (T, D) given the measured state (D,).

    Returns (positions clipped to the limits, number of clipped values); raises
    UnsafeChunkError for non-finite output or a first target too far from the state.
    """
    positions = np.asarray(positions, dtype=np.float64)
    check_finite(positions, limits.joint_names)
    if not np.isfinite(current).all():
        raise UnsafeChunkError(f"current state is not finite: {current.tolist()}")
    clipped, clips = clip_to_limits(positions, limits)
    check_first_target(clipped[0], current, limits)
    return clipped, clips
