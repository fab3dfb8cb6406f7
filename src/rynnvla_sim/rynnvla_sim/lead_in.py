"""A policy drives the arm first, then the expert takes over: recovery demonstrations (DAgger).

A policy trained only on the expert's demonstrations fails in states the expert never visits:
it stops a few centimetres beside the object, or closes the gripper next to it, and nothing in
the data says how to get out of there. `PolicyLeadIn` lets a trained checkpoint drive the
simulated arm for a seeded random time; then a fresh `ScriptedExpert` plans from wherever the
arm (and the object) ended up, and only the expert's part is recorded. Training on these
episodes teaches the corrections from the policy's own mistakes (data aggregation, as in
DAgger, with the scripted expert as the labeller).

The lead-in ends early when the object leaves the table (the policy picked it): the expert then
carries it on, so the move and place phases get their recoveries too.

The policy runs as the node runs it, in sim time: observe (both cameras and the joints at one
instant), infer a chunk, send its first `horizon` targets as one JointTrajectory to the same
trajectory follower, execute them, repeat. Pure Python (no rclpy); torch is imported only when a
lead-in is configured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rynnvla_sim.expert import LIFTED_Z_M
from rynnvla_sim.messages import joint_trajectory
from rynnvla_sim.stepper import period_ns
from rynnvla_sim.tasks import get_task


@dataclass(frozen=True)
class LeadInSpec:
    """Which checkpoint leads in, for how long (uniform in [min_s, max_s], seeded per episode),
    and how many chunk steps it executes between inferences."""

    checkpoint: str
    min_s: float = 0.5
    max_s: float = 5.0
    horizon: int = 10
    torch_threads: int = 1  # per collection worker

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoint", str(self.checkpoint))
        if not Path(self.checkpoint).is_dir():
            raise ValueError(
                f"LeadInSpec.checkpoint: no checkpoint directory at {self.checkpoint!r}"
            )
        if not (math.isfinite(self.min_s) and 0 <= self.min_s <= self.max_s):
            raise ValueError(
                f"LeadInSpec: need 0 <= min_s <= max_s, got min_s={self.min_s!r}, "
                f"max_s={self.max_s!r}"
            )
        if not isinstance(self.horizon, int) or self.horizon < 1:
            raise ValueError(f"LeadInSpec.horizon must be an int >= 1, got {self.horizon!r}")
        if not isinstance(self.torch_threads, int) or self.torch_threads < 1:
            raise ValueError(
                f"LeadInSpec.torch_threads must be an int >= 1, got {self.torch_threads!r}"
            )


@dataclass(frozen=True)
class LeadInResult:
    planned_s: float  # the drawn lead-in time
    policy_s: float  # simulated seconds the policy drove (shorter when the object was lifted)
    chunks: int
    object_lifted: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "planned_s": round(self.planned_s, 3),
            "policy_s": round(self.policy_s, 3),
            "chunks": self.chunks,
            "object_lifted": self.object_lifted,
        }


class PolicyLeadIn:
    """Loads the checkpoint once (per collection worker) and drives episodes with it."""

    def __init__(self, spec: LeadInSpec, env: Any, trajectory_types: tuple[type, type]) -> None:
        import torch

        from rynnvla_policy.core.runner import PolicyRunner

        torch.set_num_threads(spec.torch_threads)
        self.spec = spec
        self.runner = PolicyRunner.from_pretrained(spec.checkpoint)
        contract = self.runner.contract
        if tuple(contract.joint_names) != tuple(env.joint_names):
            raise ValueError(
                f"lead-in checkpoint {spec.checkpoint} controls joints {list(contract.joint_names)}"
                f", the simulated arm has {list(env.joint_names)}"
            )
        missing = [c for c in contract.camera_names if c not in env.camera_names]
        if missing:
            raise ValueError(
                f"lead-in checkpoint {spec.checkpoint} needs cameras {missing} that the simulated "
                f"arm does not have (it has {list(env.camera_names)})"
            )
        if spec.horizon > contract.chunk_length:
            raise ValueError(
                f"LeadInSpec.horizon={spec.horizon} is longer than the checkpoint's chunk of "
                f"{contract.chunk_length} steps"
            )
        self.step_ns = period_ns(contract.fps)
        self.trajectory_types = trajectory_types

    def run(self, arm: Any, instruction: str, task_id: str, rng: np.random.Generator):
        """Drive `arm` (a ControlledArm at the start of an episode); returns a LeadInResult."""
        from rynnvla_policy.core.runner import Observation

        env, spec = arm.env, self.spec
        planned = float(rng.uniform(spec.min_s, spec.max_s))
        object_name = get_task(task_id).object_name
        cameras = self.runner.contract.camera_names
        self.runner.reset()

        def lifted() -> bool:
            return bool(env.object_pose(object_name)[0][2] > LIFTED_Z_M)

        chunks = 0
        while arm.elapsed_s < planned and not lifted():
            observation = Observation(
                images={camera: env.render(camera) for camera in cameras},
                state=env.joint_positions(),
                instruction=instruction,
            )
            targets = self.runner.infer(observation).positions[: spec.horizon]  # (H, joints)
            times = [self.step_ns * (k + 1) for k in range(len(targets))]
            msg = joint_trajectory(
                *self.trajectory_types, env.joint_names, targets, times, stamp_ns=arm.now_ns
            )
            result = arm.submit(msg)
            if not result.accepted:
                raise RuntimeError(f"the lead-in policy's chunk was rejected: {result}")
            chunks += 1
            end_ns = arm.now_ns + times[-1]
            while arm.now_ns < end_ns:
                arm.tick()
        return LeadInResult(planned, arm.elapsed_s, chunks, lifted())
