"""The simulated arm behind a joint_trajectory_controller, stepped at the controller's rate.

Shared by the sim node (live, over DDS) and the recorder (in-process): both drive the arm the
same way, so recorded demonstrations are what the live system would have executed. No rclpy.

Time is integer nanoseconds on the sim clock: ``now_ns = epoch_ns + simulated time since the
stepper was created`` (it never goes back, also across episode resets, unlike ``env.time``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rynnvla_sim.trajectory import NS_PER_S, FollowerConfig, SubmitResult, TrajectoryFollower


def period_ns(rate_hz: float) -> int:
    return round(NS_PER_S / rate_hz)


class PeriodicSchedule:
    """Ideal times ``start + k / rate`` of a stream, fired at the first tick at or after each.

    Streams faster than the control tick cannot exist (one event per tick at most); a stream
    whose rate does not divide the tick rate gets the quantisation jitter a real driver has.
    """

    def __init__(self, rate_hz: float, start_ns: int, phase_ns: int = 0):
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be a positive number, got {rate_hz!r}")
        self.rate_hz = float(rate_hz)
        self.restart(start_ns, phase_ns)

    def restart(self, start_ns: int, phase_ns: int = 0) -> None:
        self._origin_ns = int(start_ns) + int(phase_ns)
        self._k = 0
        self.next_ns = self._origin_ns

    def due(self, t_ns: int) -> bool:
        """True if an event is due by ``t_ns`` (then the schedule moves past ``t_ns``)."""
        if t_ns < self.next_ns:
            return False
        while self.next_ns <= t_ns:  # ideal times computed from k: no drift from rounding
            self._k += 1
            self.next_ns = self._origin_ns + round(self._k * NS_PER_S / self.rate_hz)
        return True

    def skip(self, t_ns: int) -> None:
        """Drop the events ideally before ``t_ns`` (nothing was simulated then): the next one
        fires at its ideal time, so the stream stays on its grid."""
        while self.next_ns < t_ns:
            self._k += 1
            self.next_ns = self._origin_ns + round(self._k * NS_PER_S / self.rate_hz)


class ControlledArm:
    """``ArmSimEnv`` + ``TrajectoryFollower``: each ``tick`` samples the trajectory at the
    current time, commands the position actuators and steps physics by one control period.
    """

    def __init__(
        self,
        env: Any,
        follower_config: FollowerConfig,
        control_rate_hz: float,
        epoch_ns: int = 0,
    ):
        timestep_ns = round(env.timestep * NS_PER_S)
        self.period_ns = period_ns(control_rate_hz)
        if self.period_ns % timestep_ns != 0:
            raise ValueError(
                f"control_rate_hz={control_rate_hz!r}: the control period "
                f"({self.period_ns / 1e6:g} ms) must be a whole number of physics steps "
                f"({timestep_ns / 1e6:g} ms), e.g. 500, 250 or 100 Hz"
            )
        if tuple(follower_config.joint_names) != tuple(env.joint_names):
            raise ValueError(
                f"controller joints {list(follower_config.joint_names)} differ from the arm's "
                f"joints {list(env.joint_names)}"
            )
        self.env = env
        self.now_ns = int(epoch_ns)
        self.follower = TrajectoryFollower(follower_config, env.joint_positions())
        self.episode_start_ns = self.now_ns
        self.time_to_success_s = -1.0
        self.last_command = env.joint_positions()  # (6,)

    def rebase_clock(self, now_ns: int) -> None:
        """Move the clock to ``now_ns`` before the first tick (no trajectory may be queued)."""
        if self.follower.accepted_count:
            raise RuntimeError("rebase_clock after trajectories were accepted would shift them")
        shift = int(now_ns) - self.now_ns
        self.now_ns += shift
        self.episode_start_ns += shift

    def skip_clock(self, duration_ns: int) -> None:
        """Move the clock ``duration_ns`` forward without simulating (a stalled controller:
        the arm holds still; trajectories go on in time, so the next tick samples them later).
        """
        if duration_ns < 0:
            raise ValueError(f"skip_clock: duration_ns must be >= 0, got {duration_ns!r}")
        self.now_ns += int(duration_ns)

    def reset_episode(self, task_id: str, seed: int, distractors: bool = False) -> dict:
        """New episode: the arm holds its new start pose; sim time goes on."""
        info = self.env.reset(task_id, seed, distractors=distractors)
        self.follower.hold(self.env.joint_positions())
        self.episode_start_ns = self.now_ns
        self.time_to_success_s = -1.0
        self.last_command = self.env.joint_positions()
        return info

    @property
    def elapsed_s(self) -> float:
        """Simulated seconds since the episode started."""
        return (self.now_ns - self.episode_start_ns) / NS_PER_S

    def _measured(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The measured state, only when the follower splices from it (saves time per tick)."""
        if self.follower.config.interpolate_from_desired_state:
            return None, None
        return self.env.joint_positions(), self.env.joint_velocities()

    def submit(self, msg: Any) -> SubmitResult:
        """A JointTrajectory arriving now (validated; replaces the active one if accepted)."""
        return self.follower.submit(msg, self.now_ns, *self._measured())

    def tick(self) -> None:
        """One controller update + physics for one control period."""
        command, _ = self.follower.sample(self.now_ns, *self._measured())
        self.env.set_joint_targets(command)
        self.last_command = command
        self.env.step(self.period_ns / NS_PER_S)
        self.now_ns += self.period_ns
        if self.time_to_success_s < 0 and self.env.success():
            self.time_to_success_s = self.elapsed_s

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        """Measured joint positions and velocities (6,) now."""
        return self.env.joint_positions(), self.env.joint_velocities()
