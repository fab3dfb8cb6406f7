"""The checkpoint's feature contract against the node parameters."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from rynnvla_policy.core.joints import SO100_JOINT_NAMES
from rynnvla_policy.node.contract import ContractMismatchError, check_contract
from rynnvla_policy.node.params import PolicyNodeParams


@dataclass
class Contract:
    camera_names: tuple = ("front", "wrist")
    state_dim: int = 6
    action_dim: int = 6
    joint_names: tuple = SO100_JOINT_NAMES
    chunk_length: int = 20
    fps: float = 30.0
    absolute_dims: tuple = (5,)


PARAMS = PolicyNodeParams.from_mapping({"checkpoint_path": "/ckpt"})


def test_matching_contract_gives_timing():
    timing = check_contract(PARAMS, Contract())
    assert timing.step_s == pytest.approx(1 / 30)
    assert timing.inference_period_s == pytest.approx(10 / 30)
    assert timing.chunk_span_s == pytest.approx(20 / 30)


def test_joint_order_may_differ():
    check_contract(PARAMS, Contract(joint_names=tuple(reversed(SO100_JOINT_NAMES))))


def test_explicit_inference_rate():
    params = PolicyNodeParams.from_mapping({"checkpoint_path": "/c", "inference_rate_hz": 5.0})
    assert check_contract(params, Contract()).inference_period_s == pytest.approx(0.2)


def test_every_mismatch_is_named():
    contract = Contract(
        camera_names=("front", "side"),
        state_dim=7,
        action_dim=7,
        joint_names=(*SO100_JOINT_NAMES[:5], "jaw", "wrist_yaw"),
        chunk_length=8,
        fps=15.0,
    )
    params = PolicyNodeParams.from_mapping({"checkpoint_path": "/c", "control_rate_hz": 30.0})
    with pytest.raises(ContractMismatchError) as info:
        check_contract(params, contract)
    text = str(info.value)
    assert "checkpoint '/c' does not match" in text
    assert "the checkpoint expects cameras ['front', 'side']" in text
    assert "missing here: ['jaw', 'wrist_yaw'], not in the checkpoint: ['gripper']" in text
    assert "6 joints but the checkpoint's state has 7 dims" in text
    assert "predicts 7 action dims" in text
    assert "control_rate_hz=30.0: the checkpoint was trained at 15.0 Hz" in text
    assert "execution_horizon=10: larger than the checkpoint's chunk length 8" in text
