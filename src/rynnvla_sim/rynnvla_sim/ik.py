"""Inverse kinematics of the 5-joint arm on the MuJoCo model (damped least squares).

The arm has 5 joints for a 6-D pose, so only orientations with the gripper's approach axis in
the arm's vertical plane are reachable. The poses the expert asks for are of that kind (top-down
grasps with a yaw, horizontal approach along the radial direction), and for those the weighted
6-D least-squares problem has an exact solution; for other poses the solver returns the
closest compromise (position weighted above orientation) and reports the residuals.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from rynnvla_sim.scenes.arm import JOINT_LIMITS


@dataclass(frozen=True)
class IKResult:
    q: np.ndarray  # (5,) arm joint angles (rad), gripper excluded
    position_error: float  # m
    rotation_error: float  # rad
    converged: bool


def rotation_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """World-frame rotation vector (3,) that turns `current` (3, 3) into `target` (3, 3)."""
    q_target, q_current, q_err = np.empty(4), np.empty(4), np.empty(4)
    mujoco.mju_mat2Quat(q_target, target.reshape(9))
    mujoco.mju_mat2Quat(q_current, current.reshape(9))
    mujoco.mju_negQuat(q_current, q_current)
    mujoco.mju_mulQuat(q_err, q_target, q_current)
    if q_err[0] < 0:  # the short way round
        q_err = -q_err
    vel = np.empty(3)
    mujoco.mju_quat2Vel(vel, q_err, 1.0)
    return vel


class ArmIK:
    """DLS IK for the `tcp` site over the first 5 joints, on a private copy of the state."""

    def __init__(
        self,
        model: mujoco.MjModel,
        joint_names: tuple[str, ...],
        site: str = "tcp",
        rotation_weight: float = 0.15,  # metres of position error worth one radian
        damping: float = 2e-3,
    ) -> None:
        self.model = model
        self._data = mujoco.MjData(model)
        self._site_id = model.site(site).id
        self._qpos_adr = np.array([model.joint(n).qposadr[0] for n in joint_names[:5]])
        self._dof_adr = np.array([model.joint(n).dofadr[0] for n in joint_names[:5]])
        self._lower, self._upper = JOINT_LIMITS[:5, 0], JOINT_LIMITS[:5, 1]
        self.rotation_weight = rotation_weight
        self.damping = damping
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TCP world position (3,) and rotation (3, 3) for arm joints `q` (5,)."""
        self._data.qpos[self._qpos_adr] = q[:5]
        mujoco.mj_kinematics(self.model, self._data)
        site = self._data.site(self._site_id)
        return site.xpos.copy(), site.xmat.reshape(3, 3).copy()

    def solve(
        self,
        target_pos: np.ndarray,
        target_rot: np.ndarray,
        q_init: np.ndarray,
        max_iters: int = 100,
        pos_tol: float = 2e-4,
        rot_tol: float = 2e-3,
    ) -> IKResult:
        """Joint angles (5,) reaching `target_pos` (3,) with `target_rot` (3, 3), from `q_init`."""
        q = np.clip(np.asarray(q_init, dtype=np.float64)[:5], self._lower, self._upper)
        w = self.rotation_weight
        for _ in range(max_iters):
            pos, rot = self.forward(q)
            e_pos = target_pos - pos
            e_rot = rotation_error(target_rot, rot)
            if np.linalg.norm(e_pos) < pos_tol and np.linalg.norm(e_rot) < rot_tol:
                return IKResult(q, float(np.linalg.norm(e_pos)), float(np.linalg.norm(e_rot)), True)
            mujoco.mj_comPos(self.model, self._data)
            mujoco.mj_jacSite(self.model, self._data, self._jacp, self._jacr, self._site_id)
            jac = np.vstack(
                [self._jacp[:, self._dof_adr], w * self._jacr[:, self._dof_adr]]
            )  # (6, 5)
            err = np.concatenate([e_pos, w * e_rot])  # (6,)
            dq = jac.T @ np.linalg.solve(jac @ jac.T + self.damping**2 * np.eye(6), err)
            step = np.max(np.abs(dq))
            if step > 0.25:  # keep each iteration inside the linear regime
                dq *= 0.25 / step
            q = np.clip(q + dq, self._lower, self._upper)
        pos, rot = self.forward(q)
        e_pos = float(np.linalg.norm(target_pos - pos))
        e_rot = float(np.linalg.norm(rotation_error(target_rot, rot)))
        return IKResult(q, e_pos, e_rot, e_pos < 10 * pos_tol and e_rot < 10 * rot_tol)
