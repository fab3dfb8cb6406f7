"""Joint trajectory following with the semantics of ros2_controllers' joint_trajectory_controller.

Pure Python (numpy), no rclpy: the sim node and the offline recorder share it, and it works on
``trajectory_msgs/JointTrajectory`` messages of rclpy and of the ``rosbags`` library alike (fields
are read by name). Times are integer nanoseconds on one clock (the sim clock in the node).

Semantics (joint_trajectory_controller, Jazzy and newer):

- Validation (a rejected message leaves the active trajectory untouched; the reason names the
  problem and the value): joint names non-empty, known, no duplicates, in any order; all joints
  unless ``allow_partial_joints_goal``; at least one point; ``time_from_start`` non-negative and
  strictly increasing; ``positions`` of every point as long as ``joint_names``; ``velocities`` /
  ``accelerations`` empty or as long as ``joint_names``, on every point or on none; no
  ``effort`` (position interface); finite values; the last point's velocity zero unless
  ``allow_nonzero_velocity_at_trajectory_end``; a trajectory with a non-zero stamp that ends
  before now is rejected.
- Start time: ``header.stamp`` zero = start now; a future stamp defers the start (the active
  trajectory, or the hold, goes on until then); a past stamp is fine as long as the trajectory
  ends in the future: the points already due are dropped.
- Replacement: a new trajectory replaces the active one (and any pending deferred one). At its
  start time it is spliced: a first segment goes from the state at that instant to the first
  point that is not yet due. That state is the last commanded (desired) state when
  ``interpolate_from_desired_state`` (smooth streaming of chunks), else the measured state
  passed to ``sample`` (the controller's default).
- Interpolation: positions only -> linear; with velocities -> cubic Hermite; with velocities
  and accelerations -> quintic. After the last point its position is held.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

NS_PER_S = 1_000_000_000
# The controller compares end velocities against float epsilon, not exact zero.
_END_VELOCITY_TOLERANCE = float(np.finfo(np.float32).eps)


class TrajectoryRejected(ValueError):
    """A JointTrajectory message was refused; ``reason`` says why (the log line)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FollowerConfig:
    """Settings of one trajectory follower (the controller's parameters of the same names).

    joint_names: the controlled joints, in the order of ``sample``'s output.
    allow_partial_joints_goal: accept trajectories naming a subset of the joints (the others
        hold their position).
    allow_nonzero_velocity_at_trajectory_end: accept a last point with non-zero velocity
        (False on Jazzy and newer, True on Humble).
    interpolate_from_desired_state: splice a new trajectory from the last commanded state
        (True) or from the measured state (False, the controller's default).
    """

    joint_names: tuple[str, ...]
    allow_partial_joints_goal: bool = False
    allow_nonzero_velocity_at_trajectory_end: bool = False
    interpolate_from_desired_state: bool = True

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.joint_names)
        object.__setattr__(self, "joint_names", names)
        if not names:
            raise ValueError("FollowerConfig.joint_names must not be empty, got ()")
        if len(set(names)) != len(names):
            raise ValueError(f"FollowerConfig.joint_names has duplicates: {list(names)}")
        if any(not n for n in names):
            raise ValueError(f"FollowerConfig.joint_names has an empty name: {list(names)}")


@dataclass(frozen=True)
class Trajectory:
    """A validated trajectory in the follower's joint order and absolute time.

    ``positions`` etc. may contain NaN columns for joints the message did not name (partial
    goals); they are filled with the held position when the trajectory starts.
    """

    start_ns: int  # absolute time of time_from_start = 0
    activate_ns: int  # when it takes over: max(start, arrival); earlier points are dropped
    times_ns: np.ndarray  # (P,) int64, absolute, strictly increasing
    positions: np.ndarray  # (P, J) float64
    velocities: np.ndarray | None  # (P, J) float64, or None (linear interpolation)
    accelerations: np.ndarray | None  # (P, J) float64, or None

    @property
    def end_ns(self) -> int:
        return int(self.times_ns[-1])


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces Time or Duration -> integer nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


# --------------------------------------------------------------------------- validation


def _joint_columns(names: Sequence[str], config: FollowerConfig) -> np.ndarray:
    """Column of each message joint in the follower's order; rejects bad joint sets."""
    if not names:
        raise TrajectoryRejected("empty joint_names on incoming trajectory")
    if len(set(names)) != len(names):
        raise TrajectoryRejected(f"duplicate joint names on incoming trajectory: {list(names)}")
    unknown = [n for n in names if n not in config.joint_names]
    if unknown:
        raise TrajectoryRejected(
            f"incoming joints {unknown} do not match the controller's joints "
            f"{list(config.joint_names)}"
        )
    if len(names) != len(config.joint_names) and not config.allow_partial_joints_goal:
        missing = [n for n in config.joint_names if n not in names]
        raise TrajectoryRejected(
            f"trajectory names {len(names)} of {len(config.joint_names)} joints (missing "
            f"{missing}) and allow_partial_joints_goal is false"
        )
    return np.array([config.joint_names.index(n) for n in names], dtype=np.intp)


def _point_field(points: Sequence[Any], field: str, n_joints: int) -> np.ndarray | None:
    """One field of every point as (P, n_joints) float64; None when empty on every point."""
    rows = [np.asarray(getattr(p, field, ()), dtype=np.float64).reshape(-1) for p in points]
    sizes = [r.size for r in rows]
    if all(s == 0 for s in sizes):
        return None
    for i, size in enumerate(sizes):
        if size != n_joints:
            what = "on every point or on none" if size == 0 else "one per joint"
            raise TrajectoryRejected(
                f"point #{i} has {size} {field} for {n_joints} joints ({field} must be given "
                f"{what})"
            )
    values = np.stack(rows)  # (P, n_joints)
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        i, j = bad[0]
        raise TrajectoryRejected(f"non-finite {field} {values[i, j]} at point #{i}, joint #{j}")
    return values


def _times_from_start(points: Sequence[Any]) -> np.ndarray:
    times = np.array([stamp_to_ns(p.time_from_start) for p in points], dtype=np.int64)  # (P,)
    if times[0] < 0:
        raise TrajectoryRejected(f"negative time_from_start {times[0] / NS_PER_S:.9f}s at #0")
    for i in range(1, times.size):
        if times[i] <= times[i - 1]:
            raise TrajectoryRejected(
                f"time_from_start is not strictly increasing: point #{i - 1} at "
                f"{times[i - 1] / NS_PER_S:.9f}s, point #{i} at {times[i] / NS_PER_S:.9f}s"
            )
    return times


def _to_follower_order(values: np.ndarray | None, columns: np.ndarray, dof: int):
    if values is None:
        return None
    out = np.full((values.shape[0], dof), np.nan)  # (P, J), NaN = joint not in the message
    out[:, columns] = values
    return out


def parse_trajectory(msg: Any, config: FollowerConfig, now_ns: int) -> Trajectory:
    """Validate a JointTrajectory message at time ``now_ns``; TrajectoryRejected if refused."""
    names = [str(n) for n in msg.joint_names]
    columns = _joint_columns(names, config)
    points = list(msg.points)
    if not points:
        raise TrajectoryRejected("empty trajectory received (no points)")
    times = _times_from_start(points)
    positions = _point_field(points, "positions", len(names))
    if positions is None:
        raise TrajectoryRejected(
            "trajectory points have no positions (the controller commands positions)"
        )
    velocities = _point_field(points, "velocities", len(names))
    accelerations = _point_field(points, "accelerations", len(names))
    if accelerations is not None and velocities is None:
        raise TrajectoryRejected("accelerations given without velocities")
    efforts = [i for i, p in enumerate(points) if len(getattr(p, "effort", ())) > 0]
    if efforts:
        raise TrajectoryRejected(
            f"point #{efforts[0]} has effort values; only the position interface is commanded"
        )
    if velocities is not None and not config.allow_nonzero_velocity_at_trajectory_end:
        moving = np.flatnonzero(np.abs(velocities[-1]) > _END_VELOCITY_TOLERANCE)
        if moving.size:
            j = moving[0]
            raise TrajectoryRejected(
                f"velocity of the last point of joint {names[j]} is not zero: "
                f"{velocities[-1, j]:.15g} (allow_nonzero_velocity_at_trajectory_end is false)"
            )
    stamp_ns = stamp_to_ns(msg.header.stamp)
    start_ns = now_ns if stamp_ns == 0 else stamp_ns
    if stamp_ns != 0 and start_ns + int(times[-1]) < now_ns:
        raise TrajectoryRejected(
            f"trajectory with start time {stamp_ns / NS_PER_S:.9f}s ends in the past "
            f"({(start_ns + int(times[-1])) / NS_PER_S:.9f}s < now {now_ns / NS_PER_S:.9f}s)"
        )
    dof = len(config.joint_names)
    return Trajectory(
        start_ns=int(start_ns),
        activate_ns=max(int(start_ns), int(now_ns)),
        times_ns=start_ns + times,
        positions=_to_follower_order(positions, columns, dof),
        velocities=_to_follower_order(velocities, columns, dof),
        accelerations=_to_follower_order(accelerations, columns, dof),
    )


# --------------------------------------------------------------------------- interpolation


@dataclass(frozen=True)
class _Knots:
    """The executed trajectory: knots in absolute time (a single knot = hold)."""

    times_ns: np.ndarray  # (K,) int64
    positions: np.ndarray  # (K, J)
    velocities: np.ndarray | None  # (K, J)
    accelerations: np.ndarray | None  # (K, J)

    @property
    def end_ns(self) -> int:
        return int(self.times_ns[-1])


def _hold_knots(positions: np.ndarray) -> _Knots:
    return _Knots(np.array([np.iinfo(np.int64).min], np.int64), positions[None].copy(), None, None)


def _segment(knots: _Knots, k: int, t_s: float):
    """Position, velocity, acceleration (J,) inside segment k at t_s seconds after its start."""
    duration = (int(knots.times_ns[k + 1]) - int(knots.times_ns[k])) / NS_PER_S
    p0, p1 = knots.positions[k], knots.positions[k + 1]
    if knots.velocities is None:  # linear
        slope = (p1 - p0) / duration
        return p0 + slope * t_s, slope, np.zeros_like(p0)
    v0, v1 = knots.velocities[k], knots.velocities[k + 1]
    if knots.accelerations is None:  # cubic Hermite
        coeffs = [
            p0,
            v0,
            (3.0 * (p1 - p0) - (2.0 * v0 + v1) * duration) / duration**2,
            (2.0 * (p0 - p1) + (v0 + v1) * duration) / duration**3,
        ]
    else:  # quintic with boundary accelerations
        a0, a1 = knots.accelerations[k], knots.accelerations[k + 1]
        T = duration
        coeffs = [
            p0,
            v0,
            0.5 * a0,
            (20.0 * (p1 - p0) - (8.0 * v1 + 12.0 * v0) * T - (3.0 * a0 - a1) * T**2) / (2 * T**3),
            (30.0 * (p0 - p1) + (14.0 * v1 + 16.0 * v0) * T + (3.0 * a0 - 2.0 * a1) * T**2)
            / (2 * T**4),
            (12.0 * (p1 - p0) - 6.0 * (v1 + v0) * T - (a0 - a1) * T**2) / (2 * T**5),
        ]
    pos = sum(c * t_s**n for n, c in enumerate(coeffs))
    vel = sum(n * c * t_s ** (n - 1) for n, c in enumerate(coeffs) if n >= 1)
    acc = sum(n * (n - 1) * c * t_s ** (n - 2) for n, c in enumerate(coeffs) if n >= 2)
    return pos, vel, acc


def _evaluate(knots: _Knots, t_ns: int):
    """Desired (position, velocity, acceleration) at t_ns; holds the ends outside the knots."""
    if t_ns >= knots.end_ns or len(knots.times_ns) == 1:
        zeros = np.zeros_like(knots.positions[-1])
        return knots.positions[-1].copy(), zeros, zeros.copy()
    if t_ns < knots.times_ns[0]:
        zeros = np.zeros_like(knots.positions[0])
        return knots.positions[0].copy(), zeros, zeros.copy()
    k = int(np.searchsorted(knots.times_ns, t_ns, side="right")) - 1  # times[k] <= t < times[k+1]
    return _segment(knots, k, (t_ns - int(knots.times_ns[k])) / NS_PER_S)


def _splice(traj: Trajectory, at_ns: int, state: tuple[np.ndarray, ...]) -> _Knots:
    """Knots that start at ``at_ns`` from ``state`` (p, v, a) and follow ``traj``'s due points."""
    p, v, a = state
    # Points due by now are dropped (the splice segment starts here). The last point is never
    # due earlier (parse_trajectory rejects those); if it is due exactly now it is kept and
    # commanded at once.
    keep = traj.times_ns > at_ns
    keep[-1] = True
    times = traj.times_ns[keep]

    def fill(values: np.ndarray | None, held: np.ndarray) -> np.ndarray | None:
        if values is None:
            return None
        values = values[keep].copy()
        missing = np.isnan(values)  # partial goals: other joints hold the spliced state
        values[missing] = np.broadcast_to(held, values.shape)[missing]
        return values

    zeros = np.zeros_like(p)
    positions = fill(traj.positions, p)
    velocities = fill(traj.velocities, zeros)
    accelerations = fill(traj.accelerations, zeros)
    if times[0] == at_ns:  # the first kept point starts now: no splice segment
        return _Knots(times, positions, velocities, accelerations)

    def prepend(first: np.ndarray, rest: np.ndarray | None) -> np.ndarray | None:
        return None if rest is None else np.vstack([first[None], rest])

    return _Knots(
        np.concatenate([[at_ns], times]).astype(np.int64),
        prepend(p, positions),
        prepend(v, velocities),
        prepend(a, accelerations),
    )


# --------------------------------------------------------------------------- follower


@dataclass(frozen=True)
class SubmitResult:
    accepted: bool
    reason: str = ""


class TrajectoryFollower:
    """The controller's command generator: ``submit`` messages, ``sample`` the command.

    Not thread-safe: the caller serialises ``submit``/``sample``/``hold`` (the sim node uses
    one lock). ``sample`` must be called with non-decreasing times.
    """

    def __init__(self, config: FollowerConfig, initial_positions: Sequence[float]):
        self.config = config
        self._knots = _hold_knots(self._check_positions(initial_positions))
        self._pending: Trajectory | None = None
        self.accepted_count = 0
        self.rejected_count = 0
        self.last_rejection = ""

    @property
    def dof(self) -> int:
        return len(self.config.joint_names)

    def _check_positions(self, positions: Sequence[float]) -> np.ndarray:
        q = np.asarray(positions, dtype=np.float64).reshape(-1)
        if q.size != self.dof or not np.all(np.isfinite(q)):
            raise ValueError(f"expected {self.dof} finite joint positions, got {q.tolist()}")
        return q

    def hold(self, positions: Sequence[float]) -> None:
        """Drop every trajectory and hold ``positions`` (J,) (e.g. after an episode reset)."""
        self._knots = _hold_knots(self._check_positions(positions))
        self._pending = None

    def submit(
        self,
        msg: Any,
        now_ns: int,
        measured_positions: Sequence[float] | None = None,
        measured_velocities: Sequence[float] | None = None,
    ) -> SubmitResult:
        """Validate ``msg`` at ``now_ns``; if accepted it replaces the active trajectory.

        The measured state splices in a pending trajectory that started by ``now_ns`` (only
        when ``interpolate_from_desired_state`` is false), as in ``sample``.
        """
        try:
            traj = parse_trajectory(msg, self.config, now_ns)
        except TrajectoryRejected as exc:
            self.rejected_count += 1
            self.last_rejection = exc.reason
            return SubmitResult(False, exc.reason)
        self.accepted_count += 1
        # a pending trajectory that started by now takes over before it is replaced
        self._activate_due(now_ns, measured_positions, measured_velocities)
        self._pending = traj
        return SubmitResult(True)

    def _activate_due(
        self,
        t_ns: int,
        measured_positions: Sequence[float] | None = None,
        measured_velocities: Sequence[float] | None = None,
    ) -> None:
        """Splice in the pending trajectory if its activation time has come by ``t_ns``."""
        pending = self._pending
        if pending is None or t_ns < pending.activate_ns:
            return
        at_ns = pending.activate_ns
        state = _evaluate(self._knots, at_ns)
        if not self.config.interpolate_from_desired_state and measured_positions is not None:
            velocity = (
                np.zeros(self.dof)
                if measured_velocities is None
                else np.asarray(measured_velocities, dtype=np.float64)
            )
            state = (self._check_positions(measured_positions), velocity, np.zeros(self.dof))
        self._knots = _splice(pending, at_ns, state)
        self._pending = None

    def is_active(self, t_ns: int) -> bool:
        """True while a trajectory is pending or not yet played out at ``t_ns``."""
        return self._pending is not None or t_ns < self._knots.end_ns

    def sample(
        self,
        t_ns: int,
        measured_positions: Sequence[float] | None = None,
        measured_velocities: Sequence[float] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The command at ``t_ns``: (positions (J,), velocities (J,)).

        The measured state is used only to splice a trajectory that starts by ``t_ns`` when
        ``interpolate_from_desired_state`` is false.
        """
        self._activate_due(t_ns, measured_positions, measured_velocities)
        position, velocity, _ = _evaluate(self._knots, t_ns)
        return position, velocity


__all__ = [
    "FollowerConfig",
    "SubmitResult",
    "Trajectory",
    "TrajectoryFollower",
    "TrajectoryRejected",
    "parse_trajectory",
    "stamp_to_ns",
]
