"""`ArmSimEnv`: the simulated SO-100-style arm on a table (pure Python + MuJoCo, no rclpy).

Usage (what the sim node and the recorder do)::

    env = ArmSimEnv(SimConfig())
    info = env.reset("block_to_plate", seed=3)       # {"task_id", "instruction", "seed", ...}
    env.set_joint_targets(q)                          # (6,) position targets, clipped to limits
    env.step(1 / 30)                                  # whole physics steps
    rgb = env.render("front")                         # (96, 128, 3) uint8
    env.success()                                     # placed + released + still for 0.3 s

The arm behaves like a position-controlled servo arm behind ros2_control: targets are held
until replaced, each joint has a force limit, and the state is what the joints measure.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from rynnvla_sim import rendering, tasks
from rynnvla_sim.config import CAMERA_NAMES, SimConfig
from rynnvla_sim.scenes import (
    HOME_QPOS,
    JOINT_LIMITS,
    JOINT_NAMES,
    VELOCITY_LIMITS,
    build_scene_xml,
)
from rynnvla_sim.scenes import objects as scene_objects
from rynnvla_sim.scenes.arm import FINGER_PER_RAD

TASKS = tasks.TASKS
__all__ = ["JOINT_NAMES", "TASKS", "ArmSimEnv", "SimConfig"]

SUCCESS_CHECK_PERIOD_S = 0.02
SETTLE_S = 0.05  # physics run at reset so contacts settle before time 0


class ArmSimEnv:
    """MuJoCo arm + table scene with seeded task layouts, cameras and success detection."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        xml, self._scene = build_scene_xml(
            self.config.joint_names,
            self.config.image_width,
            self.config.image_height,
            self.config.physics_timestep,
        )
        try:
            self.model = mujoco.MjModel.from_xml_string(xml)
        except ValueError as error:
            raise ValueError(
                f"could not build the arm model with joint_names={self.config.joint_names!r}: {error}"
            ) from error
        self.data = mujoco.MjData(self.model)
        names = self.config.joint_names
        self._qpos_adr = np.array([self.model.joint(n).qposadr[0] for n in names])
        self._dof_adr = np.array([self.model.joint(n).dofadr[0] for n in names])
        self._act_ids = np.array([self.model.actuator(n).id for n in names])
        self._arm_body_ids = _subtree_body_ids(self.model, self.model.body("arm_base").id)
        self._object_geoms = {
            name: np.flatnonzero(self.model.geom_bodyid == self.model.body(name).id)
            for name in self._scene.specs
        }
        self._geom_contype = self.model.geom_contype.copy()
        self._geom_conaffinity = self.model.geom_conaffinity.copy()
        self._renderer: rendering.CameraRenderer | None = None
        self._pending_s = 0.0
        self._steps_per_check = max(1, round(SUCCESS_CHECK_PERIOD_S / self.model.opt.timestep))
        self._steps_since_check = 0
        self.target_clip_count = 0  # joint target components clipped to limits since reset
        self._task: tasks.TaskSpec | None = None
        self._seed: int | None = None
        self._success = _SuccessHold(tasks.SUCCESS_HOLD_S)

    # ---- episode ---------------------------------------------------------------------------

    def reset(self, task_id: str, seed: int, distractors: bool = False) -> dict:
        """Start an episode: seeded object layout and arm pose. Returns the episode info."""
        task = tasks.get_task(task_id)
        if not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        rng = np.random.default_rng(int(seed))
        n_distractors = self.config.n_distractors if distractors else 0
        layout = tasks.sample_layout(task, rng, self._scene, n_distractors)
        mujoco.mj_resetData(self.model, self.data)
        for name, spec in self._scene.specs.items():
            if name in layout:
                p = layout[name]
                self._set_free_pose(name, (p.x, p.y, spec.rest_z + 1e-4), p.yaw)
            else:
                self._set_free_pose(name, self._scene.park_positions[name], 0.0)
            self._set_parked(name, parked=name not in layout)
        noise = rng.uniform(-1, 1, 6) * self.config.initial_pose_noise_rad
        q0 = np.clip(HOME_QPOS + noise, JOINT_LIMITS[:, 0], JOINT_LIMITS[:, 1])
        self.data.qpos[self._qpos_adr] = q0
        self._sync_fingers()
        self.data.ctrl[self._act_ids] = q0
        mujoco.mj_forward(self.model, self.data)
        for _ in range(round(SETTLE_S / self.model.opt.timestep)):
            mujoco.mj_step(self.model, self.data)
        self.data.time = 0.0
        self._task, self._seed = task, int(seed)
        self._pending_s = 0.0
        self._steps_since_check = 0
        self.target_clip_count = 0
        self._success.reset()
        return {
            "task_id": task.task_id,
            "instruction": task.instruction,
            "seed": int(seed),
            "distractors": bool(distractors),
            "objects": {name: (p.x, p.y, p.yaw) for name, p in layout.items()},
        }

    @property
    def task_id(self) -> str:
        return self._require_task().task_id

    @property
    def instruction(self) -> str:
        return self._require_task().instruction

    @property
    def task(self) -> tasks.TaskSpec:
        return self._require_task()

    @property
    def seed(self) -> int | None:
        return self._seed

    # ---- control and physics ---------------------------------------------------------------

    def set_joint_targets(self, q: np.ndarray) -> None:
        """Position targets (6,) in joint_names order, rad; out-of-limit values are clipped."""
        q = np.asarray(q, dtype=np.float64)
        if q.shape != (6,):
            raise ValueError(f"joint targets must have shape (6,), got {q.shape}")
        if not np.all(np.isfinite(q)):
            raise ValueError(f"joint targets must be finite, got {q.tolist()}")
        clipped = np.clip(q, JOINT_LIMITS[:, 0], JOINT_LIMITS[:, 1])
        self.target_clip_count += int(np.count_nonzero(clipped != q))
        self.data.ctrl[self._act_ids] = clipped

    def joint_targets(self) -> np.ndarray:
        return self.data.ctrl[self._act_ids].copy()

    def step(self, duration_s: float) -> int:
        """Advance physics by `duration_s` in whole timesteps; returns the number of steps.

        Fractions of a timestep carry over to the next call, so repeated `step(1/30)` with a
        2 ms timestep keeps sim time in lockstep with the caller's clock.
        """
        if not (math.isfinite(duration_s) and duration_s >= 0):
            raise ValueError(f"duration_s must be finite and >= 0, got {duration_s!r}")
        self._require_task()
        dt = self.model.opt.timestep
        self._pending_s += duration_s
        n_steps = math.floor(self._pending_s / dt + 1e-9)
        self._pending_s -= n_steps * dt
        for _ in range(n_steps):
            mujoco.mj_step(self.model, self.data)
            self._steps_since_check += 1
            if self._steps_since_check >= self._steps_per_check:
                self._success.update(self._placed_released_still(), self._steps_since_check * dt)
                self._steps_since_check = 0
        return n_steps

    @property
    def time(self) -> float:
        """Simulated seconds since the episode started."""
        return float(self.data.time)

    @property
    def timestep(self) -> float:
        return float(self.model.opt.timestep)

    # ---- state ----------------------------------------------------------------------------

    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self._qpos_adr].copy()  # (6,)

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self._dof_adr].copy()  # (6,)

    def joint_efforts(self) -> np.ndarray:
        """Actuator forces (N m), what a servo driver reports as load."""
        return self.data.actuator_force[self._act_ids].copy()  # (6,)

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.config.joint_names

    @property
    def joint_limits(self) -> np.ndarray:
        return JOINT_LIMITS.copy()  # (6, 2) [lower, upper] rad

    @property
    def velocity_limits(self) -> np.ndarray:
        return VELOCITY_LIMITS.copy()  # (6,) rad/s

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """World position (3,) and rotation matrix (3, 3) of an object body (privileged)."""
        body = self.data.body(name)
        return body.xpos.copy(), body.xmat.reshape(3, 3).copy()

    def set_object_pose(self, name: str, pos, quat=(1.0, 0.0, 0.0, 0.0)) -> None:
        """Teleport an object (zero velocity): scenario setup for tests and tools."""
        if name not in self._scene.specs:
            raise ValueError(f"unknown object {name!r}; objects: {sorted(self._scene.specs)}")
        adr = self.model.joint(f"{name}_joint").qposadr[0]
        dof = self.model.joint(f"{name}_joint").dofadr[0]
        self.data.qpos[adr : adr + 3] = pos
        self.data.qpos[adr + 3 : adr + 7] = np.asarray(quat) / np.linalg.norm(quat)
        self.data.qvel[dof : dof + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def container(self, name: str) -> scene_objects.ContainerGeometry:
        """Inner geometry of a container object ("bowl", "pen_holder")."""
        if name not in self._scene.containers:
            raise ValueError(
                f"{name!r} is not a container; containers: {sorted(self._scene.containers)}"
            )
        return self._scene.containers[name]

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """World position (3,) and rotation (3, 3) of the gripper's tool centre point."""
        site = self.data.site("tcp")
        return site.xpos.copy(), site.xmat.reshape(3, 3).copy()

    # ---- cameras ---------------------------------------------------------------------------

    @property
    def camera_names(self) -> tuple[str, ...]:
        return CAMERA_NAMES

    def render(self, camera: str) -> np.ndarray:
        """RGB image (H, W, 3) uint8 of camera "front" or "wrist"."""
        if camera not in CAMERA_NAMES:
            raise ValueError(f"unknown camera {camera!r}; cameras: {list(CAMERA_NAMES)}")
        if self._renderer is None:
            self._renderer = rendering.CameraRenderer(
                self.model, self.config.image_width, self.config.image_height
            )
        return self._renderer.render(self.data, camera)

    @property
    def render_ms(self) -> float:
        """Mean wall time per rendered frame (ms) so far; 0 before the first render."""
        return self._renderer.mean_ms if self._renderer else 0.0

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ---- success ---------------------------------------------------------------------------

    def success(self) -> bool:
        """Object placed, released and still for SUCCESS_HOLD_S (checked every 20 ms)."""
        return self._success.achieved

    def placed(self) -> bool:
        """The task's geometric placement condition alone (no release / stillness)."""
        task = self._require_task()
        obj_pos, obj_mat = self.object_pose(task.object_name)
        tgt_pos, tgt_mat = self.object_pose(task.target_name)
        if task.task_id == "block_to_plate":
            return tasks.block_on_plate(obj_pos, tgt_pos, tgt_mat)
        geometry = self._scene.containers[task.target_name]
        if task.task_id == "pen_to_holder":
            return tasks.pen_in_holder(obj_pos, obj_mat, tgt_pos, tgt_mat, geometry)
        return tasks.object_in_container(obj_pos, tgt_pos, tgt_mat, geometry)

    def object_touches_arm(self, name: str) -> bool:
        body_id = self.model.body(name).id
        for contact in self.data.contact[: self.data.ncon]:
            b1 = self.model.geom_bodyid[contact.geom1]
            b2 = self.model.geom_bodyid[contact.geom2]
            if (b1 == body_id and b2 in self._arm_body_ids) or (
                b2 == body_id and b1 in self._arm_body_ids
            ):
                return True
        return False

    def object_still(self, name: str) -> bool:
        vel = self.data.body(name).cvel  # (6,) [angular, linear] at the subtree com
        return (
            np.linalg.norm(vel[3:]) < tasks.STILL_LINEAR_SPEED
            and np.linalg.norm(vel[:3]) < tasks.STILL_ANGULAR_SPEED
        )

    def _placed_released_still(self) -> bool:
        name = self._require_task().object_name
        return self.placed() and not self.object_touches_arm(name) and self.object_still(name)

    # ---- helpers ---------------------------------------------------------------------------

    def _require_task(self) -> tasks.TaskSpec:
        if self._task is None:
            raise RuntimeError("no episode: call reset(task_id, seed) first")
        return self._task

    def _set_free_pose(self, name: str, pos, yaw: float) -> None:
        adr = self.model.joint(f"{name}_joint").qposadr[0]
        self.data.qpos[adr : adr + 3] = pos
        self.data.qpos[adr + 3 : adr + 7] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))

    def _set_parked(self, name: str, parked: bool) -> None:
        """Parked objects float without contacts (gravity compensated): no physics cost."""
        body = self.model.body(name).id
        geoms = self._object_geoms[name]
        self.model.body_gravcomp[body] = 1.0 if parked else 0.0
        self.model.geom_contype[geoms] = 0 if parked else self._geom_contype[geoms]
        self.model.geom_conaffinity[geoms] = 0 if parked else self._geom_conaffinity[geoms]

    def _sync_fingers(self) -> None:
        """Put the finger slides where the gripper coupling wants them (no start-up jolt)."""
        grip = self.data.qpos[self._qpos_adr[5]]
        for finger in ("finger_left_slide", "finger_right_slide"):
            self.data.qpos[self.model.joint(finger).qposadr[0]] = FINGER_PER_RAD * grip


class _SuccessHold:
    """True once a condition has held continuously for `hold_s` seconds of sim time."""

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self.reset()

    def reset(self) -> None:
        self.held_s = 0.0
        self.achieved = False

    def update(self, condition: bool, elapsed_s: float) -> None:
        self.held_s = self.held_s + elapsed_s if condition else 0.0
        # Success is a property of the current state: it is lost if the object is picked up again.
        self.achieved = self.held_s >= self.hold_s


def _subtree_body_ids(model: mujoco.MjModel, root: int) -> frozenset[int]:
    ids = {root}
    for body in range(model.nbody):
        parent = body
        while parent not in (0, root):
            parent = model.body_parentid[parent]
        if parent == root:
            ids.add(body)
    return frozenset(ids)
