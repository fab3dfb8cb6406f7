"""Action chunks as time-stamped plans, overlap policies, and JointTrajectory data. Pure numpy.

A chunk predicted from an observation captured at t_obs holds the targets for t_obs + (i+1)*dt,
i = 0..T-1. Keeping targets on that absolute time axis (nanoseconds, the node's clock) makes
latency compensation and the overlap of consecutive chunks plain array operations:

- latest:   the new chunk replaces the old one from its first target on.
- blend:    over the first `blend_steps` overlapping targets, the new chunk's weight ramps
            to 1 against the plan being executed (sampled at the same times); the ramp is
            linear, or smooth (smoothstep: zero slope at both ends, so the hand-over adds no
            velocity step at its start or its end, only a gradual velocity change in between).
- ensemble: temporal ensembling (ACT): every stored chunk that covers a target time votes,
            weight exp(-decay * rank), rank 0 = oldest chunk.

`trajectory_points` turns a plan into header stamp + time_from_start + positions + velocities
for joint_trajectory_controller, which replaces the running trajectory with each new message.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

NS = 1_000_000_000
BLEND_SHAPES = ("linear", "smooth")


class ChunkExpiredError(ValueError):
    """Every target of the plan lies in the past: publishing it would do nothing or be refused."""


@dataclass(frozen=True)
class Plan:
    """Targets on the absolute time axis."""

    times_ns: np.ndarray  # (N,) int64, strictly increasing
    positions: np.ndarray  # (N, D) float64
    # (N, D) the velocities sent with the targets; then sampling is cubic, like the controller's
    velocities: np.ndarray | None = None

    @classmethod
    def from_chunk(cls, positions: np.ndarray, obs_stamp_ns: int, step_ns: int) -> Plan:
        """The chunk (T, D) predicted from an observation captured at obs_stamp_ns."""
        steps = np.arange(1, len(positions) + 1, dtype=np.int64)
        return cls(obs_stamp_ns + steps * step_ns, np.asarray(positions, dtype=np.float64))

    @property
    def end_ns(self) -> int:
        return int(self.times_ns[-1])

    def sample(self, times_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions (M, D) at times, mask (M,) of times inside the plan).

        Cubic Hermite when the plan has velocities (what joint_trajectory_controller executes),
        else linear; held at the ends outside the plan.
        """
        inside = (times_ns >= self.times_ns[0]) & (times_ns <= self.times_ns[-1])
        if len(self.times_ns) == 1:
            return np.repeat(self.positions, len(times_ns), axis=0), inside
        src = self.times_ns
        t = np.clip(times_ns, src[0], src[-1])
        k = np.clip(np.searchsorted(src, t, side="right") - 1, 0, len(src) - 2)  # (M,)
        h = ((src[k + 1] - src[k]) / NS)[:, None]  # (M, 1) segment length, s
        u = ((t - src[k]) / NS)[:, None] / h  # (M, 1) in [0, 1]
        p0, p1 = self.positions[k], self.positions[k + 1]  # (M, D)
        if self.velocities is None:
            return p0 + u * (p1 - p0), inside
        v0, v1 = self.velocities[k], self.velocities[k + 1]
        h00, h10 = 2 * u**3 - 3 * u**2 + 1, u**3 - 2 * u**2 + u
        h01, h11 = -2 * u**3 + 3 * u**2, u**3 - u**2
        return h00 * p0 + h10 * h * v0 + h01 * p1 + h11 * h * v1, inside


# ---------------------------------------------------------------------------- overlap policies
class OverlapMerger:
    """Combines each new chunk with what is being executed, per the overlap policy.

    blend and ensemble hand over from the plan being executed continuously: at the time of
    the switch the merged plan equals the executing one, and the new chunk (or the ensemble)
    takes over linearly within `blend_steps` steps from then. Targets already due never jump.
    """

    def __init__(
        self,
        policy: str,
        blend_steps: int = 5,
        ensemble_decay: float = 0.01,
        blend_shape: str = "linear",
    ):
        if policy not in ("latest", "blend", "ensemble"):
            raise ValueError(f"overlap policy {policy!r}: expected latest, blend or ensemble")
        if blend_shape not in BLEND_SHAPES:
            raise ValueError(f"blend shape {blend_shape!r}: expected one of {BLEND_SHAPES}")
        self.policy = policy
        self.blend_steps = blend_steps
        self.blend_shape = blend_shape
        self.ensemble_decay = ensemble_decay
        self._executing: Plan | None = None  # last plan handed out (with its velocities)
        self._history: deque[Plan] = deque()  # chunks still covering future time (ensemble)

    def reset(self) -> None:
        """Forget everything: the next chunk is used as it is."""
        self._executing = None
        self._history.clear()

    def merge(self, chunk: Plan, now_ns: int, lead_ns: int = 0) -> Plan:
        """The plan to execute from the new chunk (its time axis) and the remembered ones.

        lead_ns: delivery margin; the hand-over starts at now + lead_ns, so a trajectory that
        reaches the controller up to lead_ns late still starts exactly on the executing plan.
        """
        if self.policy == "latest":
            return chunk
        target = self._ensemble(chunk, now_ns) if self.policy == "ensemble" else chunk
        return self._hand_over(target, now_ns + lead_ns)

    def commit(self, plan: Plan) -> None:
        """Record the plan actually sent (after safety, with its velocities)."""
        self._executing = plan

    def _hand_over(self, target: Plan, start_ns: int) -> Plan:
        """From the executing plan at start_ns to `target` within blend_steps steps."""
        if self._executing is None or self.blend_steps == 0 or len(target.times_ns) < 2:
            return target
        old, inside = self._executing.sample(target.times_ns)
        span_ns = self.blend_steps * int(target.times_ns[1] - target.times_ns[0])
        ramp = np.clip((target.times_ns - start_ns) / span_ns, 0.0, 1.0)  # (T,) 0 = executing
        if self.blend_shape == "smooth":
            # A linear ramp changes the velocity by (new - old) / span at once, at the switch
            # and again where the ramp ends; smoothstep spreads that change over the ramp.
            ramp = ramp * ramp * (3.0 - 2.0 * ramp)
        w_new = np.where(inside, ramp, 1.0)[:, None]  # (T, 1)
        return Plan(target.times_ns, w_new * target.positions + (1.0 - w_new) * old)

    def _ensemble(self, chunk: Plan, now_ns: int) -> Plan:
        while self._history and self._history[0].end_ns < now_ns:
            self._history.popleft()
        self._history.append(chunk)
        total = np.zeros_like(chunk.positions)
        weight = np.zeros((len(chunk.times_ns), 1))
        for rank, past in enumerate(self._history):
            values, inside = past.sample(chunk.times_ns)
            w = math.exp(-self.ensemble_decay * rank) * inside[:, None]  # (T, 1)
            total += w * values
            weight += w
        return Plan(chunk.times_ns, total / weight)  # the new chunk covers every time: weight > 0


# ---------------------------------------------------------------------------- trajectories
@dataclass(frozen=True)
class TrajectoryData:
    """Everything of a trajectory_msgs/JointTrajectory except the joint names."""

    stamp_ns: int  # header.stamp; 0 = "start when received"
    time_from_start_ns: np.ndarray  # (M,) int64, strictly increasing, > 0
    positions: np.ndarray  # (M, D)
    velocities: np.ndarray  # (M, D)


def finite_difference_velocities(plan: Plan, zero_last: bool) -> np.ndarray:
    """(N, D) velocities: central differences inside, one-sided at the ends."""
    if len(plan.times_ns) < 2:
        return np.zeros_like(plan.positions)
    seconds = plan.times_ns.astype(np.float64) / NS
    velocities = np.gradient(plan.positions, seconds, axis=0)
    if zero_last:
        velocities[-1] = 0.0
    return velocities


def trajectory_points(
    plan: Plan,
    now_ns: int,
    mode: str,
    zero_last_velocity: bool = True,
    min_lead_ns: int = 0,
) -> TrajectoryData:
    """Trajectory for `plan` published at now_ns, with the chosen latency compensation.

    stamp_observation: stamp = time of the plan's first target minus one step (the observation
        time for a fresh chunk); the controller skips targets already due.
    drop_due_points:  stamp = now; targets already due are dropped and the others keep their
        absolute times.
    none:             stamp = 0, time_from_start = (i+1) * step, as if the observation had been
        captured on arrival (the naive publisher; it lags by the whole latency).
    Raises ChunkExpiredError when the plan ends before now + min_lead_ns (modes 1 and 2): the
    controller would receive a trajectory that ends in the past and refuse it.
    """
    velocities = finite_difference_velocities(plan, zero_last_velocity)
    times = plan.times_ns
    if mode == "none":
        step = int(times[1] - times[0]) if len(times) > 1 else 0
        rel = (np.arange(1, len(times) + 1, dtype=np.int64) * step) if step else times - times[0]
        return TrajectoryData(0, rel, plan.positions, velocities)
    if times[-1] <= now_ns + min_lead_ns:
        ahead_ms = (int(times[-1]) - now_ns) / 1e6
        raise ChunkExpiredError(
            f"the chunk's last target is due {ahead_ms:+.1f} ms from now (needs more than "
            f"{min_lead_ns / 1e6:.0f} ms to reach the controller): inference or delivery is "
            "slower than the chunk span"
        )
    future = times > now_ns
    if mode == "stamp_observation":
        step = int(times[1] - times[0]) if len(times) > 1 else 0
        stamp = int(times[0]) - step
        return TrajectoryData(stamp, times - stamp, plan.positions, velocities)
    if mode == "drop_due_points":
        return TrajectoryData(
            now_ns, times[future] - now_ns, plan.positions[future], velocities[future]
        )
    raise ValueError(
        f"latency compensation {mode!r}: expected stamp_observation, drop_due_points or none"
    )


def hold_points(position: np.ndarray, settle_ns: int) -> TrajectoryData:
    """A one-point trajectory to `position` (D,), reached settle_ns after it arrives.

    Stamped zero ("start on arrival"): a hold delayed in delivery can never end in the past,
    which the controller would refuse.
    """
    position = np.asarray(position, dtype=np.float64)[None, :]  # (1, D)
    return TrajectoryData(
        0, np.array([max(settle_ns, 1)], dtype=np.int64), position, np.zeros_like(position)
    )


def future_part(plan: Plan, now_ns: int) -> Plan | None:
    """The targets after now_ns, or None when the plan is over."""
    keep = plan.times_ns > now_ns
    if not keep.any():
        return None
    return Plan(plan.times_ns[keep], plan.positions[keep])
