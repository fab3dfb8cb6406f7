"""Check the node's parameters against the checkpoint's feature contract, before any motion.

A policy trained with other cameras, joints, state size or control rate than the robot provides
would silently produce nonsense; configure refuses it with every difference spelled out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rynnvla_policy.node.params import PolicyNodeParams


class ContractMismatchError(ValueError):
    """The checkpoint does not fit the robot described by the parameters."""

    def __init__(self, checkpoint: str, problems: list[str]):
        self.problems = problems
        super().__init__(
            f"checkpoint {checkpoint!r} does not match the node parameters:\n  "
            + "\n  ".join(problems)
        )


class FeatureContract(Protocol):
    camera_names: tuple[str, ...]
    state_dim: int
    action_dim: int
    joint_names: tuple[str, ...]
    chunk_length: int
    fps: float


@dataclass(frozen=True)
class ControlTiming:
    """Timing the node runs at, resolved from parameters and checkpoint."""

    step_s: float  # time between two chunk steps (1 / control rate)
    chunk_length: int  # steps per chunk
    execution_horizon: int  # steps executed before the next chunk takes over
    inference_period_s: float  # time between the observations of two consecutive inferences

    @property
    def chunk_span_s(self) -> float:
        return self.step_s * self.chunk_length


def check_contract(params: PolicyNodeParams, contract: FeatureContract) -> ControlTiming:
    """ControlTiming when the checkpoint fits the parameters, else ContractMismatchError."""
    problems = _feature_problems(params, contract)
    rate = params.control_rate_hz or float(contract.fps)
    if params.control_rate_hz and abs(params.control_rate_hz - contract.fps) > 1e-6 * contract.fps:
        problems.append(
            f"control_rate_hz={params.control_rate_hz}: the checkpoint was trained at "
            f"{contract.fps} Hz (set 0 to use it)"
        )
    if params.execution_horizon > contract.chunk_length:
        problems.append(
            f"execution_horizon={params.execution_horizon}: larger than the checkpoint's chunk "
            f"length {contract.chunk_length}"
        )
    if problems:
        raise ContractMismatchError(params.checkpoint_path, problems)
    step_s = 1.0 / rate
    period = (
        1.0 / params.inference_rate_hz
        if params.inference_rate_hz
        else step_s * params.execution_horizon
    )
    return ControlTiming(
        step_s=step_s,
        chunk_length=int(contract.chunk_length),
        execution_horizon=params.execution_horizon,
        inference_period_s=period,
    )


def _feature_problems(params: PolicyNodeParams, contract: FeatureContract) -> list[str]:
    out = []
    ckpt_cams, our_cams = tuple(contract.camera_names), tuple(params.camera_names)
    if set(ckpt_cams) != set(our_cams):
        out.append(
            f"camera_names={list(our_cams)}: the checkpoint expects cameras {list(ckpt_cams)}"
        )
    ckpt_joints, our_joints = tuple(contract.joint_names), tuple(params.joint_names)
    if set(ckpt_joints) != set(our_joints):
        missing = [j for j in ckpt_joints if j not in our_joints]
        extra = [j for j in our_joints if j not in ckpt_joints]
        out.append(
            f"joint_names={list(our_joints)}: the checkpoint was trained on joints "
            f"{list(ckpt_joints)} (missing here: {missing}, not in the checkpoint: {extra})"
        )
    if contract.state_dim != len(our_joints):
        out.append(
            f"joint_names={list(our_joints)}: {len(our_joints)} joints but the checkpoint's "
            f"state has {contract.state_dim} dims"
        )
    if contract.action_dim != len(our_joints):
        out.append(
            f"joint_names={list(our_joints)}: {len(our_joints)} joints but the checkpoint "
            f"predicts {contract.action_dim} action dims"
        )
    return out
