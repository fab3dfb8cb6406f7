"""Scripted expert: solves every task with IK on the MuJoCo model, like a teleoperator would.

Phases: approach -> descend -> grasp -> lift -> move -> place -> release -> retreat. Each phase
is a minimum-jerk Cartesian segment of the tool centre point (TCP); every control tick the
current TCP pose is turned into joint targets by damped-least-squares IK warm-started from the
previous tick, so targets are smooth. The pick is planned from the object's pose at the start;
the place is planned after the lift from where the object actually sits in the hand. A failed
pick (object not in the hand after the lift) is retried up to twice. An expert that takes over
an arm already holding the object (after a policy's lead-in, `lead_in.py`) plans the place at
once.

Per-episode human-like variation (seeded): speed, approach and carry heights, grasp and place
offsets, a short hesitation, a smooth wobble on the transport segments, and in some episodes an
approach that first misses the object by a few centimetres and is then corrected, as a
teleoperator's would be. Such corrections are what a learned policy needs to see: without them
every recorded state beside the object is on the way to it, never off target.

Grasp and release are told apart by height: the object is let go a little above its target
(`release_clearance`), so "gripper closed, at the object's height" always precedes a lift and
"gripper closed, held above the target" always precedes opening. From a single observation the
two would otherwise look alike to a policy.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from rynnvla_sim import tasks
from rynnvla_sim.ik import ArmIK
from rynnvla_sim.motion import (
    Segment,
    Waypoint,
    Wobble,
    rotation_from_axes,
    topdown_rotation,
)
from rynnvla_sim.scenes.objects import PEN_HALF_LENGTH

PHASES = ("approach", "descend", "grasp", "lift", "move", "place", "release", "retreat")
MAX_PICK_ATTEMPTS = 3
GRIPPER_CLOSED = 0.0
APPROACH_MISS_PROBABILITY = 0.4
APPROACH_MISS_RANGE_M = (0.015, 0.035)
LIFTED_Z_M = 0.03  # an object whose centre is above this is off the table


@dataclass(frozen=True)
class HumanStyle:
    """Seeded per-episode variation of how the demonstration is performed."""

    speed: float  # duration multiplier (> 1 is slower)
    approach_height: float  # m above the grasp pose
    carry_height: float  # m, TCP height while transporting (block, strawberry)
    grasp_jitter: np.ndarray  # (2,) m, xy offset of the grasp point
    place_jitter: np.ndarray  # (2,) m, xy offset of the drop point
    grasp_yaw_jitter: float  # rad
    hesitation_s: float  # pause above the object before descending
    wobble: Wobble
    approach_miss: np.ndarray  # (2,) m, xy error of the first approach, then corrected; 0: none
    release_clearance: float  # m, the object's bottom above its resting height when let go

    @staticmethod
    def sample(rng: np.random.Generator) -> HumanStyle:
        return HumanStyle(
            speed=float(rng.uniform(0.85, 1.2)),
            approach_height=float(rng.uniform(0.05, 0.08)),
            carry_height=float(rng.uniform(0.095, 0.125)),
            grasp_jitter=rng.uniform(-0.003, 0.003, 2),
            place_jitter=rng.uniform(-0.008, 0.008, 2),
            grasp_yaw_jitter=float(rng.uniform(-0.08, 0.08)),
            hesitation_s=float(rng.choice([0.0, rng.uniform(0.1, 0.35)], p=[0.6, 0.4])),
            wobble=Wobble(
                amplitude=rng.uniform(0.001, 0.005, 3),
                frequency=rng.uniform(0.4, 1.4, 3),
                phase=rng.uniform(0, 2 * math.pi, 3),
            ),
            approach_miss=_sample_miss(rng, APPROACH_MISS_PROBABILITY, APPROACH_MISS_RANGE_M),
            release_clearance=float(rng.uniform(0.012, 0.022)),
        )


def _sample_miss(rng: np.random.Generator, probability: float, radius: tuple[float, float]):
    """(2,) xy offset: zero with 1 - `probability`, else a random direction and length."""
    angle, length = rng.uniform(0, 2 * math.pi), rng.uniform(*radius)
    if rng.uniform() >= probability:
        return np.zeros(2)
    return length * np.array([math.cos(angle), math.sin(angle)])


@dataclass(frozen=True)
class ObjectGrip:
    """How a task's object is picked: gripper opening and TCP height relative to the object."""

    open_gripper: float  # rad before closing (finger gap = 2 * 0.02 * rad)
    release_gripper: float  # rad when letting go
    tcp_above_center: float  # TCP height above the object's centre at the grasp (m)
    symmetry: float  # rad: closing-axis yaws equivalent by the object's symmetry
    yaw_offset: float  # closing-axis yaw relative to the object's body x axis


GRIPS = {
    # Fingertips are 12 mm below the TCP: these put them 1.5-4 mm above the table.
    "block_to_plate": ObjectGrip(1.35, 1.2, 0.001, math.pi / 2, 0.0),
    "strawberry_to_bowl": ObjectGrip(1.35, 1.2, 0.002, math.pi, math.pi / 2),
    "pen_to_holder": ObjectGrip(1.0, 0.8, 0.0087, math.pi, math.pi / 2),
}


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def _yaw(mat: np.ndarray) -> float:
    return math.atan2(mat[1, 0], mat[0, 0])


def _closing_yaw(tcp_rot: np.ndarray) -> float:
    """The finger closing axis' yaw (the TCP's y axis, see `topdown_rotation`)."""
    return math.atan2(tcp_rot[1, 1], tcp_rot[0, 1])


class ScriptedExpert:
    """Produces the next joint position targets (6,) at each control tick: `act(env)`."""

    def __init__(self, env, seed: int | None = None) -> None:
        self._env = env
        base_seed = env.seed if seed is None else seed
        self._rng = np.random.default_rng([int(base_seed or 0), 0x5EED])
        self.style = HumanStyle.sample(self._rng)
        self._task = env.task
        self._grip = GRIPS[self._task.task_id]
        self._ik = ArmIK(env.model, env.joint_names)
        self._q = env.joint_positions()[:5]  # (5,) last IK solution: warm start, smooth targets
        self._segments: list[Segment] = []
        self._index = 0
        self._segment_start_t = env.time
        self._segment_start = self._current_waypoint(env)
        self._pick_attempts = 0
        self._grasp_closing_yaw = 0.0
        self._pen_place_rot: np.ndarray | None = None
        self.done = False
        self.ik_failures = 0
        if self._object_in_hand(env):  # taking over from a policy that already picked it
            self._grasp_closing_yaw = _closing_yaw(env.tcp_pose()[1])
            self._plan_place(env)
        else:
            self._plan_pick(env)

    @property
    def phase(self) -> str:
        return "done" if self.done else self._segments[self._index].phase

    def act(self, env=None) -> np.ndarray:
        """Joint position targets (6,) for the current sim time of `env`."""
        env = env or self._env
        t = env.time
        while not self.done and t - self._segment_start_t >= self._segments[self._index].duration:
            self._finish_segment(env)
        if self.done:
            waypoint = self._segments[-1].end
        else:
            segment = self._segments[self._index]
            waypoint = segment.sample(self._segment_start, t - self._segment_start_t)
        result = self._ik.solve(waypoint.pos, waypoint.rot, self._q)
        self.ik_failures += not result.converged
        self._q = result.q
        return np.append(result.q, waypoint.gripper)  # (6,)

    # ---- segment bookkeeping ---------------------------------------------------------------

    def _finish_segment(self, env) -> None:
        finished = self._segments[self._index]
        self._segment_start_t += finished.duration
        self._segment_start = finished.end
        self._index += 1
        if finished.phase == "lift" and (self._index == len(self._segments)):
            if self._object_in_hand(env) or self._pick_attempts >= MAX_PICK_ATTEMPTS:
                self._plan_place(env)
            else:
                self._plan_pick(env)
        if self._index >= len(self._segments):
            self.done = True

    def _add(self, phase: str, duration: float, end: Waypoint, wobble: bool = False) -> None:
        style = self.style
        self._segments.append(
            Segment(phase, duration * style.speed, end, style.wobble if wobble else Wobble.none())
        )

    def _current_waypoint(self, env) -> Waypoint:
        pos, rot = self._ik.forward(env.joint_positions())
        return Waypoint(pos, rot, float(env.joint_positions()[5]))

    def _object_in_hand(self, env) -> bool:
        obj_pos, _ = env.object_pose(self._task.object_name)
        tcp_pos, _ = env.tcp_pose()
        return obj_pos[2] > LIFTED_Z_M and np.linalg.norm(obj_pos - tcp_pos) < 0.05

    # ---- pick ------------------------------------------------------------------------------

    def _plan_pick(self, env) -> None:
        """approach -> descend -> grasp -> lift, from the object's current pose."""
        self._pick_attempts += 1
        grip, style = self._grip, self.style
        obj_pos, obj_mat = env.object_pose(self._task.object_name)
        start = self._segment_start if self._segments else self._current_waypoint(env)
        closing_yaw, grasp_xy = self._choose_grasp(env, obj_pos, obj_mat)
        self._grasp_closing_yaw = closing_yaw
        rot = topdown_rotation(closing_yaw)
        grasp = np.array([*grasp_xy, obj_pos[2] + grip.tcp_above_center])
        above = grasp + np.array([0.0, 0.0, style.approach_height])
        lifted = np.array([*grasp_xy, style.carry_height])
        miss = np.array([*style.approach_miss, 0.0]) if self._pick_attempts == 1 else np.zeros(3)
        first_stop = above + miss
        travel = float(np.linalg.norm(first_stop - start.pos))
        self._add(
            "approach",
            float(np.clip(travel / 0.22, 0.9, 1.8)),
            Waypoint(first_stop, rot, grip.open_gripper),
            True,
        )
        if miss.any():  # notice the miss, then correct it
            self._add("approach", 0.25, Waypoint(first_stop, rot, grip.open_gripper))
            self._add("approach", 0.6, Waypoint(above, rot, grip.open_gripper))
        if style.hesitation_s > 0:
            self._add("approach", style.hesitation_s, Waypoint(above, rot, grip.open_gripper))
        self._add("descend", 0.75, Waypoint(grasp, rot, grip.open_gripper))
        self._add("grasp", 0.7, Waypoint(grasp, rot, GRIPPER_CLOSED))
        self._add("grasp", 0.15, Waypoint(grasp, rot, GRIPPER_CLOSED))
        self._add("lift", 0.7, Waypoint(lifted, rot, GRIPPER_CLOSED))

    def _choose_grasp(self, env, obj_pos, obj_mat) -> tuple[float, np.ndarray]:
        """Closing-axis yaw and grasp point (2,) that keep the wrist roll smallest."""
        grip, style = self._grip, self.style
        base_yaw = _yaw(obj_mat) + grip.yaw_offset + style.grasp_yaw_jitter
        arm_yaw = math.atan2(obj_pos[1], obj_pos[0])
        candidates = [
            base_yaw + k * grip.symmetry for k in range(round(2 * math.pi / grip.symmetry))
        ]
        # Zero wrist roll closes the fingers across the arm's plane (yaw = arm_yaw + pi/2).
        closing_yaw = min(candidates, key=lambda c: abs(_wrap(c - arm_yaw - math.pi / 2)))
        grasp_xy = obj_pos[:2] + style.grasp_jitter
        if self._task.task_id == "pen_to_holder":
            closing_yaw, grasp_xy = self._choose_pen_grasp(env, obj_pos, obj_mat, candidates)
        return closing_yaw, grasp_xy

    # ---- place -----------------------------------------------------------------------------

    def _plan_place(self, env) -> None:
        """move -> place -> release -> retreat, from where the object sits in the hand."""
        tcp_pos, tcp_rot = env.tcp_pose()
        obj_pos, obj_mat = env.object_pose(self._task.object_name)
        offset_tcp = tcp_rot.T @ (obj_pos - tcp_pos)  # (3,) object centre in the TCP frame
        if self._task.task_id == "pen_to_holder":
            self._plan_pen_place(env, tcp_pos, tcp_rot, obj_pos, obj_mat)
            return
        target_pos, _ = env.object_pose(self._task.target_name)
        drop_height = {
            "block_to_plate": 0.01 + 0.015 + 0.006,
            "strawberry_to_bowl": 0.006 + 0.014 + 0.012,
        }
        arm_turn = math.atan2(target_pos[1], target_pos[0]) - math.atan2(tcp_pos[1], tcp_pos[0])
        rot = topdown_rotation(self._grasp_closing_yaw + arm_turn)  # same wrist roll as the grasp
        drop = np.array(
            [
                *(target_pos[:2] + self.style.place_jitter),
                target_pos[2] + drop_height[self._task.task_id] + self.style.release_clearance,
            ]
        )
        place = drop - rot @ offset_tcp
        above = np.array([*place[:2], self.style.carry_height])
        self._add_transport(tcp_pos, above, place, rot, retreat=np.array([0.0, 0.0, 0.06]))

    def _add_transport(self, tcp_pos, above, place, rot, retreat: np.ndarray) -> None:
        grip = self._grip
        travel = float(np.linalg.norm(above - tcp_pos))
        self._add(
            "move",
            float(np.clip(travel / 0.2, 0.9, 1.8)),
            Waypoint(above, rot, GRIPPER_CLOSED),
            True,
        )
        self._add("place", 0.8, Waypoint(place, rot, GRIPPER_CLOSED))
        self._add("release", 0.6, Waypoint(place, rot, grip.release_gripper))
        self._add("retreat", 0.6, Waypoint(place + retreat, rot, grip.release_gripper), True)

    # ---- the pen: picked lying down, put upright into the holder -----------------------------

    def _choose_pen_grasp(self, env, pen_pos, pen_mat, candidates) -> tuple[float, np.ndarray]:
        """Grip the pen off-centre, choosing side and yaw so both grasp and upright place are
        reachable with the least wrist roll."""
        holder_pos, _ = env.object_pose(self._task.target_name)
        axis = pen_mat[:, 0]
        offset = 0.025 + float(self._rng.uniform(-0.004, 0.004))
        best = None
        for closing_yaw in candidates:
            grasp_rot = topdown_rotation(closing_yaw)
            for side in (1.0, -1.0):
                grip_point = pen_pos + side * offset * axis
                hanging_tool = grasp_rot.T @ (-side * axis)  # long part direction, TCP frame
                place_rot = self._pen_place_rotation(holder_pos, hanging_tool)
                q_grasp = self._ik.solve(np.array([*grip_point[:2], 0.03]), grasp_rot, self._q)
                place_probe = np.array([*holder_pos[:2], 0.15])
                q_place = self._ik.solve(place_probe, place_rot, q_grasp.q)
                if not (q_grasp.converged and q_place.converged):
                    continue
                cost = abs(q_grasp.q[4]) + abs(q_place.q[4] - q_grasp.q[4])
                if best is None or cost < best[0]:
                    best = (cost, closing_yaw, grip_point[:2].copy(), place_rot)
        if best is None:  # nothing reachable: fall back to a centred grasp, the IK compromises
            return candidates[0], pen_pos[:2].copy()
        _, closing_yaw, grip_xy, self._pen_place_rot = best
        return closing_yaw, grip_xy

    @staticmethod
    def _pen_place_rotation(holder_pos: np.ndarray, hanging_tool: np.ndarray) -> np.ndarray:
        """Gripper horizontal, pointing away from the arm base over the holder, pen hanging."""
        radial = np.array([holder_pos[0], holder_pos[1], 0.0])
        return rotation_from_axes(radial, hanging_tool, np.array([0.0, 0.0, -1.0]))

    def _plan_pen_place(self, env, tcp_pos, tcp_rot, pen_pos, pen_mat) -> None:
        holder_pos, _ = env.object_pose(self._task.target_name)
        geometry = env.container(self._task.target_name)
        ends = [pen_pos + s * PEN_HALF_LENGTH * pen_mat[:, 0] for s in (1.0, -1.0)]
        hanging_tool = tcp_rot.T @ (pen_pos - tcp_pos)
        lower_end = max(ends, key=lambda e: (tcp_rot.T @ (e - tcp_pos)) @ hanging_tool)
        lower_tool = tcp_rot.T @ (lower_end - tcp_pos)  # (3,) in the TCP frame
        rot = self._pen_place_rotation(holder_pos, lower_tool)
        self._pen_place_rot = rot
        floor_z = holder_pos[2] + geometry.floor_top
        target_end = np.array([*(holder_pos[:2] + 0.3 * self.style.place_jitter), floor_z + 0.012])
        place = target_end - rot @ lower_tool
        clear = holder_pos[2] + geometry.rim_height + 0.025 - target_end[2]
        above = place + np.array([0.0, 0.0, max(clear, self.style.carry_height - place[2])])
        back = -0.05 * rot[:, 2] + np.array([0.0, 0.0, 0.03])  # out of the pen, then up
        self._add_transport(tcp_pos, above, place, rot, retreat=back)


@dataclass(frozen=True)
class EpisodeOutcome:
    task_id: str
    seed: int
    success: bool
    sim_time_s: float
    expert_done: bool
    ik_failures: int


@dataclass
class RolloutTimer:
    """Wall time spent per part of expert rollouts (s), and what it produced."""

    expert_s: float = 0.0
    physics_s: float = 0.0
    render_s: float = 0.0
    sim_s: float = 0.0
    frames: int = 0

    def summary(self) -> dict[str, float]:
        wall = self.expert_s + self.physics_s + self.render_s
        return {
            "realtime_factor": round(self.sim_s / max(wall, 1e-9), 2),
            "render_ms_per_frame": round(1e3 * self.render_s / max(self.frames, 1), 3),
            "physics_ms_per_sim_s": round(1e3 * self.physics_s / max(self.sim_s, 1e-9), 2),
            "expert_ms_per_sim_s": round(1e3 * self.expert_s / max(self.sim_s, 1e-9), 2),
            "sim_s": round(self.sim_s, 2),
            "frames": self.frames,
        }


def run_expert_episode(
    env,
    task_id: str,
    seed: int,
    distractors: bool = False,
    render: bool = False,
    max_time_s: float = 20.0,
    settle_s: float = 1.5,
    on_tick=None,
    timer: RolloutTimer | None = None,
) -> EpisodeOutcome:
    """Roll the expert out at the env's control rate until success (after the expert is done)
    or time-out. `render` renders both cameras at the camera rate, as a recorder would;
    `on_tick(env, q_target)` is called every control tick; `timer` accumulates wall times."""
    env.reset(task_id, seed, distractors=distractors)
    timer = timer if timer is not None else RolloutTimer()
    clock = time.perf_counter
    expert = ScriptedExpert(env)
    dt = 1.0 / env.config.control_rate_hz
    camera_period = 1.0 / env.config.camera_rate_hz
    next_frame_t = 0.0
    done_at = None
    while env.time < max_time_s:
        t0 = clock()
        q = expert.act(env)
        env.set_joint_targets(q)
        t1 = clock()
        timer.expert_s += t1 - t0
        if on_tick is not None:
            on_tick(env, q)
        if render and env.time + 1e-9 >= next_frame_t:
            t1 = clock()
            for camera in env.camera_names:
                env.render(camera)
            timer.render_s += clock() - t1
            timer.frames += len(env.camera_names)
            next_frame_t += camera_period
        t2 = clock()
        env.step(dt)
        timer.physics_s += clock() - t2
        timer.sim_s += dt
        if expert.done:
            done_at = env.time if done_at is None else done_at
            if env.success() or env.time - done_at > settle_s:
                break
    return EpisodeOutcome(task_id, seed, env.success(), env.time, expert.done, expert.ik_failures)


def evaluate_expert(
    task_id: str,
    seeds,
    config=None,
    distractors: bool = False,
    render: bool = False,
    progress: bool = False,
    timer: RolloutTimer | None = None,
) -> float:
    """Success rate of the scripted expert over `seeds` (one episode per seed)."""
    from tqdm import tqdm

    from rynnvla_sim.env import ArmSimEnv

    tasks.get_task(task_id)
    env = ArmSimEnv(config)
    try:
        seeds = list(seeds)
        outcomes = [
            run_expert_episode(
                env, task_id, seed, distractors=distractors, render=render, timer=timer
            )
            for seed in tqdm(seeds, desc=f"expert {task_id}", disable=not progress)
        ]
    finally:
        env.close()
    return sum(o.success for o in outcomes) / max(len(outcomes), 1)


def main(argv=None) -> None:
    """`python -m rynnvla_sim.expert --episodes 100`: per-task success rate as one JSON line."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument(
        "--tasks", nargs="+", default=sorted(tasks.TASKS), choices=sorted(tasks.TASKS)
    )
    parser.add_argument("--episodes", type=int, default=100, help="seeds 0..N-1 per task")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--distractors", action="store_true")
    parser.add_argument("--render", action="store_true", help="also render both cameras at 30 Hz")
    args = parser.parse_args(argv)
    seeds = range(args.first_seed, args.first_seed + args.episodes)
    start = time.perf_counter()
    timer = RolloutTimer()
    rates = {
        task_id: evaluate_expert(
            task_id,
            seeds,
            distractors=args.distractors,
            render=args.render,
            progress=True,
            timer=timer,
        )
        for task_id in args.tasks
    }
    print(
        json.dumps(
            {
                "expert_success": rates,
                "episodes_per_task": args.episodes,
                "distractors": args.distractors,
                "wall_s": round(time.perf_counter() - start, 1),
                "timing": timer.summary(),
            }
        )
    )


if __name__ == "__main__":
    main()
